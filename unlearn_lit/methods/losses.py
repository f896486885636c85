"""Objectives of the fine-tuning methods (METHOD.md §5 and §6), as plain functions.

Every objective has the signature ``loss(model, forget, retain, original, progress) -> scalar``: the
backbone being unlearned, a forget batch and a retain batch (either may be None when the method does
not use it), θ* as the reference (NPO) and the fraction of the run done, in [0, 1] (SA's decaying γ).
Method files bind their hyperparameters with ``functools.partial``; :class:`MaskedUnlearning` calls them.

- GA: −mean_{D_f} ℓ.
- GD (gradient difference): −mean_{D_f} ℓ + mean_{D_r} ℓ.
- NPO (Zhang et al. 2024): −(2/β) · mean_{D_f} log σ(−β · (log p_θ(y|x) − log p_ref(y|x))), with
  log p(y|x) = −ℓ (the backbone's per-example loss), plus an optional weighted retain term.
- FT: mean_{D_r} ℓ.
- RL (the SalUn recipe, Fan et al. 2024): cross-entropy on D_f with random labels, mixed with D_r.
- Repair (class forgetting; :mod:`unlearn_lit.methods.repair`): mean_{D_r} ℓ + mean_{D_f} −log(1 − p_θ(y|x)),
  the unlikelihood of the forgotten label (Welleck et al. 2020) -- bounded, unlike GA's −ℓ, and zero
  where the model already gives the label no mass, as RT does.
- SA (ℓ1-sparse unlearning, Jia et al. 2023): mean_{D_r} ℓ + γ_t ‖θ‖₁ over trainable parameters,
  γ_t = γ · (1 − progress).
"""

from __future__ import annotations

import random

import torch
import torch.nn.functional as F
from torch import Tensor

from unlearn_lit.models.base import Backbone


def mean_loss(model: Backbone, batch: dict[str, Tensor] | None) -> Tensor:
    """mean ℓ over a batch; a batch that is None is a method wiring error."""
    if batch is None:
        raise ValueError("this objective needs a batch the unlearning loaders did not provide")
    return model.per_example_loss(batch).mean()


def ga_loss(model: Backbone, forget: dict, retain: dict | None = None, original=None, progress=0.0) -> Tensor:
    """Gradient ascent: −mean_{D_f} ℓ."""
    return -mean_loss(model, forget)


def gd_loss(model: Backbone, forget: dict, retain: dict, original=None, progress=0.0) -> Tensor:
    """Gradient difference: −mean_{D_f} ℓ + mean_{D_r} ℓ."""
    return -mean_loss(model, forget) + mean_loss(model, retain)


def ft_loss(model: Backbone, forget: dict | None, retain: dict, original=None, progress=0.0) -> Tensor:
    """Fine-tuning on the retain set: mean_{D_r} ℓ."""
    return mean_loss(model, retain)


def npo_loss(
    model: Backbone,
    forget: dict,
    retain: dict | None,
    original: Backbone,
    progress: float = 0.0,
    beta: float = 0.1,
    retain_weight: float = 0.0,
) -> Tensor:
    """Negative preference optimization against the reference θ*.

    Args:
        beta: inverse temperature β (0.1 in the paper).
        retain_weight: weight of the optional mean_{D_r} ℓ term (0 = plain NPO).
    """
    if original is None:
        raise ValueError("NPO needs the original model θ* as its reference")
    with torch.no_grad():
        ref_logp = -original.per_example_loss(forget)  # log p_ref(y|x)
    log_ratio = -model.per_example_loss(forget) - ref_logp  # log p_θ(y|x) − log p_ref(y|x)
    loss = -(2.0 / beta) * F.logsigmoid(-beta * log_ratio).mean()
    if retain_weight:
        loss = loss + retain_weight * mean_loss(model, retain)
    return loss


def unlikelihood(losses: Tensor) -> Tensor:
    """−log(1 − p) from per-example losses ℓ = −log p, elementwise: −log(−expm1(−ℓ)), stable for large
    ℓ (→ e^{−ℓ}); ℓ is floored at 1e-6 (p = 1 would be infinite)."""
    return -torch.log(-torch.expm1(-losses.clamp_min(1e-6)))


def repair_loss(model: Backbone, forget: dict, retain: dict, original=None, progress=0.0) -> Tensor:
    """Retain repair after class forgetting: mean_{D_r} ℓ + mean_{D_f} −log(1 − p_θ(y|x))."""
    if forget is None:
        raise ValueError("the repair objective needs a forget batch")
    return mean_loss(model, retain) + unlikelihood(model.per_example_loss(forget)).mean()


def sa_loss(
    model: Backbone,
    forget: dict | None,
    retain: dict,
    original=None,
    progress: float = 0.0,
    gamma: float = 5e-5,
) -> Tensor:
    """ℓ1-sparse fine-tuning: mean_{D_r} ℓ + γ (1 − progress) Σ |θ| over parameters with requires_grad.

    Frozen entries of partially trained parameters enter the sum, but their gradient is discarded by
    the hard freeze, so the update is that of the penalty over the trainable entries.
    """
    gamma_t = gamma * max(0.0, 1.0 - progress)
    l1 = sum(p.abs().sum() for p in model.parameters() if p.requires_grad)
    return mean_loss(model, retain) + gamma_t * l1


def random_labels(labels: Tensor, index: Tensor | None, num_classes: int, seed: int = 0) -> Tensor:
    """A random label different from the true one, fixed per (seed, example index).

    SalUn relabels the forget set once before training; keying the draw on the example index gives
    the same fixed relabelling without a pass over the data. Without an ``index`` the labels are
    drawn fresh from torch's global generator.
    """
    if num_classes < 2:
        raise ValueError(f"random labels need a classification task with >= 2 classes, got {num_classes}")
    if index is None:
        offset = torch.randint(1, num_classes, labels.shape, device=labels.device)
    else:
        draws = [random.Random(seed * 1_000_003 + int(i)).randrange(1, num_classes) for i in index.tolist()]
        offset = torch.tensor(draws, device=labels.device)
    return (labels + offset) % num_classes


def rl_loss(
    model: Backbone, forget: dict, retain: dict | None, original=None, progress: float = 0.0, seed: int = 0
) -> Tensor:
    """Random labelling: mean ℓ over the forget batch (random labels) and the retain batch together."""
    if model.task != "classification":
        raise ValueError(f"random labelling needs a classification backbone, got task {model.task!r}")
    relabelled = {
        **forget,
        "labels": random_labels(forget["labels"], forget.get("index"), model.num_labels, seed),
    }
    losses = [model.per_example_loss(relabelled)]
    if retain is not None:
        losses.append(model.per_example_loss(retain))
    return torch.cat(losses).mean()
