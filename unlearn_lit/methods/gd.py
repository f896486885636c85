"""GD (gradient difference): −mean_{D_f} ℓ + mean_{D_r} ℓ (METHOD.md §5).

The forget and retain loaders are combined so every step sees one batch of each (the shorter one
cycles). Masked variants (``mape_gd``, ...) come from ``inputs.param_mask``.
"""

from __future__ import annotations

from unlearn_lit.config.finetune import GDConfig
from unlearn_lit.methods.base import MethodResult, UnlearnInputs, register
from unlearn_lit.methods.finetune import finetune
from unlearn_lit.methods.losses import gd_loss


@register("gd", GDConfig)
def run(inputs: UnlearnInputs, cfg: GDConfig) -> MethodResult:
    """Gradient difference on D_f and D_r, checkpoint chosen by the RT-free rule."""
    return finetune(inputs, cfg, gd_loss, uses=("forget", "retain"))
