"""FT: fine-tune on the retain set, mean_{D_r} ℓ (METHOD.md §5–§6; "catastrophic forgetting" baseline)."""

from __future__ import annotations

from unlearn_lit.config.finetune import FTConfig
from unlearn_lit.methods.base import MethodResult, UnlearnInputs, register
from unlearn_lit.methods.finetune import finetune
from unlearn_lit.methods.losses import ft_loss


@register("ft", FTConfig)
def run(inputs: UnlearnInputs, cfg: FTConfig) -> MethodResult:
    """Fine-tuning on D_r, checkpoint chosen by the RT-free rule."""
    return finetune(inputs, cfg, ft_loss, uses=("retain",))
