"""SSD: selective synaptic dampening (Foster, Schoepf, Brintrup, AAAI 2024, arXiv 2308.07707; METHOD.md §6).

Importances are diagonal empirical Fishers, []_D on the full training data D and []_{D_f} on the forget
set. The rule, for each parameter entry i (eqs. 3-4 of the paper):

    β_i = min(λ · []_{D,i} / []_{D_f,i}, 1)   if []_{D_f,i} > α · []_{D,i}
    θ_i ← β_i · θ_i                          (entries the rule does not select are left unchanged)

with selection weighting α = 10 and dampening constant λ = 1 by default. The rule is applied only to
trainable entries (``inputs.param_mask``; None = every parameter). []_D is the size-weighted mixture
(|D_r| · F̂_r + |D_f| · F̂_f) / |D| with F̂_r taken on a seeded subsample of D_r **[choice]**, so the
cost stays bounded on large datasets (``fisher_examples=None`` uses all of D_r).
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass

import torch
from torch import Tensor

from unlearn_lit.methods.base import MethodResult, UnlearnInputs, register
from unlearn_lit.methods.fisher import FISHER_MODES, ParamSelection, check_finite, nbytes, retain_fisher

log = logging.getLogger(__name__)


@dataclass
class SSDConfig:
    """Hyperparameters of SSD.

    Attributes:
        alpha: selection weighting α: an entry is dampened when its forget importance exceeds α times
            its full-data importance.
        lam: dampening constant λ: β = min(λ · []_D / []_{D_f}, 1).
        fisher: ``per_example`` (exact diagonal Fisher) or ``per_batch`` (squared batch gradients).
        fisher_examples: seeded subsample of D_r for []_D (None = all of D_r).
        chunk_size: examples whose per-example gradients are held at once.
        batch_size: batch size of the importance loaders.
    """

    alpha: float = 10.0
    lam: float = 1.0
    fisher: str = "per_example"
    fisher_examples: int | None = 1024
    chunk_size: int = 8
    batch_size: int = 32

    def __post_init__(self) -> None:
        if self.fisher not in FISHER_MODES:
            raise ValueError(f"unknown fisher {self.fisher!r}; valid choices: {', '.join(FISHER_MODES)}")
        if self.alpha <= 0 or self.lam <= 0:
            raise ValueError(f"alpha and lam must be positive, got {self.alpha}, {self.lam}")
        if self.fisher_examples is not None and self.fisher_examples < 1:
            raise ValueError(f"fisher_examples must be None or >= 1, got {self.fisher_examples}")


def dampening(
    forget_imp: Mapping[str, Tensor], full_imp: Mapping[str, Tensor], alpha: float = 10.0, lam: float = 1.0
) -> dict[str, Tensor]:
    """Per-entry factors β (1 where the rule does not select the entry), same shapes as the inputs."""
    out = {}
    for n, f in forget_imp.items():
        d = full_imp[n]
        selected = f > alpha * d
        out[n] = torch.where(selected, (lam * d / f).clamp(max=1.0), torch.ones_like(f))
    return out


@register("ssd", SSDConfig, finetunes=False)
def run(inputs: UnlearnInputs, cfg: SSDConfig) -> MethodResult:
    """Dampens θ* entries specialised to D_f; returns a new model (θ* is untouched)."""
    dm, original = inputs.datamodule, inputs.original
    sel = ParamSelection(original, inputs.trainable(original))
    t0 = time.perf_counter()
    opts = {"mode": cfg.fisher, "chunk_size": cfg.chunk_size}
    forget = retain_fisher(
        original, dm.forget_dataloader(batch_size=cfg.batch_size), sel, desc="ssd forget", **opts
    )
    retain_loader = dm.retain_dataloader(
        subsample=cfg.fisher_examples, seed=inputs.seed, batch_size=cfg.batch_size
    )
    retain = retain_fisher(original, retain_loader, sel, desc="ssd retain", **opts)
    check_finite(forget.sumsq, "SSD forget importance")
    check_finite(retain.sumsq, "SSD retain importance")
    n_r, n_f = len(dm.retain), forget.count
    f_imp, r_imp = forget.mean(), retain.mean()
    full_imp = {n: (n_r * r_imp[n] + n_f * f_imp[n]) / (n_r + n_f) for n in sel.names}
    beta = dampening(f_imp, full_imp, cfg.alpha, cfg.lam)
    model = copy.deepcopy(original)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if n in beta:
                p.copy_(sel.put(n, p, sel.take(n, p) * beta[n].to(p.dtype)))
    check_finite({n: p for n, p in model.named_parameters() if n in beta}, "the SSD update")
    dampened = sum(int((b < 1).sum()) for b in beta.values())
    selected = sum(int((f_imp[n] > cfg.alpha * full_imp[n]).sum()) for n in sel.names)
    info = {
        "time_importance_s": time.perf_counter() - t0,
        "entries_selected": selected,
        "entries_dampened": dampened,
        "params_trainable": sel.numel,
        "params_total": sel.total,
        "buffer_bytes": nbytes(f_imp) + nbytes(r_imp) + nbytes(full_imp),
        "fisher_examples": retain.count,
        "config": asdict(cfg),
    }
    log.info("SSD: %d of %d trainable entries dampened", dampened, sel.numel)
    return MethodResult(model, {"alpha": cfg.alpha, "lam": cfg.lam, "fisher": cfg.fisher}, [], info)
