"""NPO: negative preference optimization (Zhang et al. 2024; METHOD.md §5).

−(2/β) · mean_{D_f} log σ(−β · (log p_θ(y|x) − log p_ref(y|x))), reference = θ*, optionally plus a
weighted retain loss. The reference is a frozen copy of θ* kept by the phase module.
"""

from __future__ import annotations

import functools

from unlearn_lit.config.finetune import NPOConfig
from unlearn_lit.methods.base import MethodResult, UnlearnInputs, register
from unlearn_lit.methods.finetune import finetune
from unlearn_lit.methods.losses import npo_loss


@register("npo", NPOConfig)
def run(inputs: UnlearnInputs, cfg: NPOConfig) -> MethodResult:
    """NPO against θ*, checkpoint chosen by the RT-free rule."""
    objective = functools.partial(npo_loss, beta=cfg.beta, retain_weight=cfg.retain_weight)
    uses = ("forget", "retain") if cfg.retain_weight else ("forget",)
    return finetune(inputs, cfg, objective, uses=uses, reference=True)
