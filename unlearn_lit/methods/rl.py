"""RL: random labels on the forget set mixed with the retain set (the SalUn recipe; METHOD.md §5).

Each forget example gets a fixed random wrong label (keyed on its index and the seed); every step
minimizes the mean cross-entropy over one relabelled forget batch and one retain batch together.
"""

from __future__ import annotations

import functools

from unlearn_lit.config.finetune import RLConfig
from unlearn_lit.methods.base import MethodResult, UnlearnInputs, register
from unlearn_lit.methods.finetune import finetune
from unlearn_lit.methods.losses import rl_loss


@register("rl", RLConfig)
def run(inputs: UnlearnInputs, cfg: RLConfig) -> MethodResult:
    """Random labelling, checkpoint chosen by the RT-free rule."""
    return finetune(inputs, cfg, functools.partial(rl_loss, seed=inputs.seed), uses=("forget", "retain"))
