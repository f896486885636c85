"""SSD: selective synaptic dampening (Foster, Schoepf, Brintrup, AAAI 2024, arXiv 2308.07707; METHOD.md §6).

Importances are diagonal empirical Fishers, []_D on the full training data D and []_{D_f} on the forget
set. The rule, for each parameter entry i (eqs. 3-4 of the paper):

    β_i = min(λ · []_{D,i} / []_{D_f,i}, 1)   if []_{D_f,i} > α · []_{D,i}
    θ_i ← β_i · θ_i                          (entries the rule does not select are left unchanged)

with selection weighting α = 10 and dampening constant λ = 1 by default. The rule is applied only to
trainable entries (``inputs.param_mask``; None = every parameter). []_D is the size-weighted mixture
(|D_r| · F̂_r + |D_f| · F̂_f) / |D| with F̂_r taken on a seeded subsample of D_r **[choice]**, so the
cost stays bounded on large datasets (``fisher_examples=None`` uses all of D_r).

Two guards **[choice]**:

- Importances at rounding-noise level are never selected. An entry whose gradient is zero in exact
  arithmetic (a key bias: a constant added to every key score leaves the softmax unchanged) has
  importances of order (eps · max|∇|)², and ``f > α · d`` on two noise values is a coin flip that
  changes with batch shapes and thread counts. An entry is selected only when its forget importance also
  exceeds ``(NOISE_ULPS · eps_dtype)² · max(importance of its tensor)``.
- Since []_D ≥ (|D_f| / |D|) · []_{D_f}, the ratio f/d never exceeds |D| / |D_f|: with the paper's
  α = 10 the rule can select nothing once D_f is 10% of D or more. Whenever α selects nothing, SSD
  warns, and with ``auto_alpha`` (default) uses α = |D| / (2 |D_f|), which selects the entries whose
  importance comes more from D_f than from D_r (|D_f| · f > |D_r| · r).
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Mapping
from dataclasses import asdict

import torch
from torch import Tensor

from unlearn_lit.config.methods import SSDConfig
from unlearn_lit.methods.base import MethodResult, UnlearnInputs, register
from unlearn_lit.methods.fisher import ParamSelection, check_finite, nbytes, retain_fisher

log = logging.getLogger(__name__)


NOISE_ULPS = 64.0  # gradients below NOISE_ULPS · eps · max|∇| of their tensor count as rounding noise


def noise_floor(imp: Tensor, dtype: torch.dtype | None) -> Tensor | float:
    """Importance below which an entry is rounding noise of a ``dtype`` gradient (0 when dtype is None)."""
    if dtype is None or imp.numel() == 0:
        return 0.0
    return (NOISE_ULPS * torch.finfo(dtype).eps) ** 2 * imp.amax()


def rule_selects(f: Tensor, d: Tensor, alpha: float, dtype: torch.dtype | None = None) -> Tensor:
    """Entries SSD dampens: ``f > α · d``, and ``f`` above the rounding-noise floor of ``dtype``."""
    return (f > alpha * d) & (f > noise_floor(torch.maximum(f, d), dtype))


def dampening(
    forget_imp: Mapping[str, Tensor],
    full_imp: Mapping[str, Tensor],
    alpha: float = 10.0,
    lam: float = 1.0,
    dtype: torch.dtype | None = None,
) -> dict[str, Tensor]:
    """Per-entry factors β (1 where the rule does not select the entry), same shapes as the inputs.

    ``dtype`` is the dtype the gradients were computed in (its noise floor applies; None = no floor).
    """
    out = {}
    for n, f in forget_imp.items():
        d = full_imp[n]
        selected = rule_selects(f, d, alpha, dtype)
        out[n] = torch.where(selected, (lam * d / f).clamp(max=1.0), torch.ones_like(f))
    return out


def effective_alpha(alpha: float, n_forget: int, n_total: int, auto: bool) -> float:
    """α, or |D| / (2 |D_f|) when α ≥ |D| / |D_f| makes the rule unable to select anything (and ``auto``)."""
    ceiling = n_total / max(n_forget, 1)
    if alpha < ceiling:
        return alpha
    if auto:
        log.warning(
            "SSD: alpha=%g >= |D|/|D_f| = %.3g selects nothing; using alpha = |D|/(2|D_f|) = %.3g",
            alpha,
            ceiling,
            ceiling / 2,
        )
        return ceiling / 2
    log.warning(
        "SSD: alpha=%g >= |D|/|D_f| = %.3g: the rule cannot select any entry and returns the original "
        "model; lower alpha or set auto_alpha",
        alpha,
        ceiling,
    )
    return alpha


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
    alpha = effective_alpha(cfg.alpha, n_f, n_r + n_f, cfg.auto_alpha)
    dtype = next(original.parameters()).dtype

    def count(a: float) -> int:
        return sum(int(rule_selects(f_imp[n], full_imp[n], a, dtype).sum()) for n in sel.names)

    fallback = (n_r + n_f) / (2 * max(n_f, 1))
    if cfg.auto_alpha and fallback < alpha and count(alpha) == 0:
        log.warning(
            "SSD: alpha=%g selects no entry; using alpha = |D|/(2|D_f|) = %.3g (auto_alpha)", alpha, fallback
        )
        alpha = fallback
    beta = dampening(f_imp, full_imp, alpha, cfg.lam, dtype)
    model = copy.deepcopy(original)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if n in beta:
                p.copy_(sel.put(n, p, sel.take(n, p) * beta[n].to(p.dtype)))
    check_finite({n: p for n, p in model.named_parameters() if n in beta}, "the SSD update")
    dampened = sum(int((b < 1).sum()) for b in beta.values())
    selected = count(alpha)
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
    if selected == 0:
        log.warning("SSD selected no entry (alpha=%g): the model is unchanged", alpha)
    log.info("SSD: %d of %d trainable entries dampened (alpha=%g)", dampened, sel.numel, alpha)
    return MethodResult(model, {"alpha": alpha, "lam": cfg.lam, "fisher": cfg.fisher}, [], info)
