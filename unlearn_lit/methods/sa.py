"""SA: sparsity-aware unlearning (Jia et al., NeurIPS 2023; METHOD.md §6).

Fine-tune on D_r with an ℓ1 penalty γ_t ‖θ‖₁ over the trainable parameters, γ_t decaying linearly
from γ to 0 over the run (γ = 5e-5 and 3 epochs in the paper's GLUE runs).
"""

from __future__ import annotations

import functools

from unlearn_lit.config.finetune import SAConfig
from unlearn_lit.methods.base import MethodResult, UnlearnInputs, register
from unlearn_lit.methods.finetune import finetune
from unlearn_lit.methods.losses import sa_loss


@register("sa", SAConfig)
def run(inputs: UnlearnInputs, cfg: SAConfig) -> MethodResult:
    """ℓ1-sparse fine-tuning on D_r, checkpoint chosen by the RT-free rule."""
    return finetune(inputs, cfg, functools.partial(sa_loss, gamma=cfg.gamma), uses=("retain",))
