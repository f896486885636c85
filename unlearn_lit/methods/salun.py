"""SalUn: weight saliency + random labelling (Fan et al., ICLR 2024; METHOD.md §6).

The saliency of a weight is |∇_θ L(θ*; D_f)| with L the mean forget loss; the global top ``fraction``
of all trainable entries (across every parameter, not per layer) is updated and the rest frozen, then
RL runs restricted to it. Module-oblivious: the natural contrast to a MAPE unit mask at equal
sparsity. :func:`salun_mask` is also the ``salun`` mask source for other methods (``salun_ga``, ...).
"""

from __future__ import annotations

import copy
import functools
import logging
from collections.abc import Iterable

import torch
from torch import Tensor

from unlearn_lit.config.finetune import SalUnConfig
from unlearn_lit.methods.base import MethodResult, UnlearnInputs, register
from unlearn_lit.methods.finetune import finetune
from unlearn_lit.methods.losses import rl_loss
from unlearn_lit.models.base import Backbone
from unlearn_lit.selection import to_device

log = logging.getLogger(__name__)


def salun_mask(
    model: Backbone,
    forget_loader: Iterable[dict],
    fraction: float = 0.5,
    allowed: dict[str, Tensor] | None = None,
) -> dict[str, Tensor]:
    """Saliency mask: the global top ``fraction`` of |∇_θ mean_{D_f} ℓ| (1 = updated).

    Args:
        model: θ* (not modified: gradients are taken on a copy, in eval mode).
        forget_loader: batches of D_f.
        fraction: share of the candidate entries kept, in (0, 1]; exactly ``round(fraction * n)``
            entries are kept (ties broken arbitrarily).
        allowed: parameter-shaped masks of the candidate entries (None = every parameter); the result
            covers only these parameters.

    Returns:
        ``{param name: Bool tensor}`` for every candidate parameter.
    """
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"saliency fraction must lie in (0, 1], got {fraction}")
    work = copy.deepcopy(model).eval().requires_grad_(True)
    named = {n: p for n, p in work.named_parameters() if allowed is None or n in allowed}
    grads = {n: torch.zeros_like(p) for n, p in named.items()}
    count = 0
    device = next(work.parameters()).device
    for batch in forget_loader:
        losses = work.per_example_loss(to_device(batch, device))  # [B]
        for g, d in zip(grads.values(), torch.autograd.grad(losses.sum(), list(named.values())), strict=True):
            g += d
        count += losses.numel()
    if count == 0:
        raise ValueError("saliency needs a non-empty forget set")
    # candidate entries carry |g| >= 0; the others -1, so they are never among the top k
    flat = torch.cat(
        [
            (g / count).abs().where(allowed[n].to(g.device), -1.0).flatten()
            if allowed is not None
            else (g / count).abs().flatten()
            for n, g in grads.items()
        ]
    )
    n_candidates = int((flat >= 0).sum())
    k = round(fraction * n_candidates)
    keep = torch.zeros(flat.numel(), dtype=torch.bool, device=flat.device)
    keep[torch.topk(flat, k).indices] = True
    masks, start = {}, 0
    for name, g in grads.items():
        masks[name] = keep[start : start + g.numel()].view_as(g).cpu()
        start += g.numel()
    log.info("salun mask: %d of %d entries (fraction %.3f)", k, n_candidates, fraction)
    return masks


@register("salun", SalUnConfig)
def run(inputs: UnlearnInputs, cfg: SalUnConfig) -> MethodResult:
    """Saliency mask over the trainable entries, then random labelling restricted to it."""
    allowed = inputs.trainable(inputs.original)
    mask = salun_mask(inputs.original, inputs.datamodule.forget_dataloader(), cfg.fraction, allowed)
    result = finetune(
        inputs, cfg, functools.partial(rl_loss, seed=inputs.seed), uses=("forget", "retain"), trainable=mask
    )
    result.hparams["fraction"] = cfg.fraction
    return result
