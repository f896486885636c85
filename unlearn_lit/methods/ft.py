"""FT: fine-tune on the retain set, mean_{D_r} ℓ (METHOD.md §5–§6; "catastrophic forgetting" baseline)."""

from __future__ import annotations

from dataclasses import dataclass

from unlearn_lit.methods.base import MethodResult, UnlearnInputs, register
from unlearn_lit.methods.finetune import FinetuneConfig, finetune
from unlearn_lit.methods.losses import ft_loss


@dataclass
class FTConfig(FinetuneConfig):
    """FT hyperparameters: the shared fine-tuning settings (:class:`FinetuneConfig`; paper: 3 epochs on GLUE)."""

    epochs: int = 3


@register("ft", FTConfig)
def run(inputs: UnlearnInputs, cfg: FTConfig) -> MethodResult:
    """Fine-tuning on D_r, checkpoint chosen by the RT-free rule."""
    return finetune(inputs, cfg, ft_loss, uses=("retain",))
