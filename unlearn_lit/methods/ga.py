"""GA: gradient ascent on the forget set, −mean_{D_f} ℓ (METHOD.md §5).

With a mask source the same objective becomes MAPE-GA (``mape_ga``), random-unit GA (``random_ga``)
or saliency-masked GA (``salun_ga``): the pipeline fills ``inputs.param_mask``.
"""

from __future__ import annotations

from unlearn_lit.config.finetune import GAConfig
from unlearn_lit.methods.base import MethodResult, UnlearnInputs, register
from unlearn_lit.methods.finetune import finetune
from unlearn_lit.methods.losses import ga_loss


@register("ga", GAConfig)
def run(inputs: UnlearnInputs, cfg: GAConfig) -> MethodResult:
    """Gradient ascent on D_f, checkpoint chosen by the RT-free rule."""
    return finetune(inputs, cfg, ga_loss, uses=("forget",))
