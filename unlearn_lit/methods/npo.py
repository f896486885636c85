"""NPO: negative preference optimization (Zhang et al. 2024; METHOD.md §5).

−(2/β) · mean_{D_f} log σ(−β · (log p_θ(y|x) − log p_ref(y|x))), reference = θ*, optionally plus a
weighted retain loss. The reference is a frozen copy of θ* kept by the phase module.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from unlearn_lit.methods.base import MethodResult, UnlearnInputs, register
from unlearn_lit.methods.finetune import FinetuneConfig, finetune
from unlearn_lit.methods.losses import npo_loss


@dataclass
class NPOConfig(FinetuneConfig):
    """NPO hyperparameters (plus the shared :class:`FinetuneConfig`).

    Attributes:
        beta: inverse temperature β of the preference loss.
        retain_weight: weight of the retain term (0 = forget-only NPO).
    """

    beta: float = 0.1
    retain_weight: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.beta <= 0 or self.retain_weight < 0:
            raise ValueError(f"need beta > 0 and retain_weight >= 0, got {self.beta}, {self.retain_weight}")


@register("npo", NPOConfig)
def run(inputs: UnlearnInputs, cfg: NPOConfig) -> MethodResult:
    """NPO against θ*, checkpoint chosen by the RT-free rule."""
    objective = functools.partial(npo_loss, beta=cfg.beta, retain_weight=cfg.retain_weight)
    uses = ("forget", "retain") if cfg.retain_weight else ("forget",)
    return finetune(inputs, cfg, objective, uses=uses, reference=True)
