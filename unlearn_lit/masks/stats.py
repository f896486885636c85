"""Per-example mask gradients in one backward pass, and the phase-1 statistics built from them.

METHOD.md §2–§4. With masks of shape ``[B, L, n]`` (all ones) every example scales only its own rows,
so the gradient of the *summed* batch loss with respect to that tensor is exactly each example's
mask gradient ∂ℓ(x)/∂m, for the cost of one forward and one backward pass.
"""

from __future__ import annotations

import torch
from torch import Tensor

from unlearn_lit.models.base import Backbone
from unlearn_lit.units.layout import KINDS, UnitLayout


def batch_size(batch: dict[str, Tensor]) -> int:
    key = "labels" if "labels" in batch else next(k for k in ("input_ids", "pixel_values") if k in batch)
    return batch[key].shape[0]


def per_example_mask_grads(
    backbone: Backbone, layout: UnitLayout, batch: dict[str, Tensor], kinds: tuple[str, ...] = KINDS
) -> dict[str, Tensor]:
    """Per-example mask gradients at m = 1.

    Returns:
        ``{kind: [B, L, n]}`` with entry ``[b, l, i] = ∂ℓ(x_b)/∂m_{l,i}``.
    """
    for k in kinds:
        layout.shape(k)  # validates the kind
    dtype = next(backbone.parameters()).dtype
    device = next(backbone.parameters()).device
    b = batch_size(batch)
    masks = {
        k: torch.ones(b, *layout.shape(k), dtype=dtype, device=device, requires_grad=True) for k in kinds
    }
    with torch.enable_grad(), layout.apply_masks(backbone, **masks):
        loss = backbone.per_example_loss(batch).sum()
        grads = torch.autograd.grad(loss, [masks[k] for k in kinds])
    return dict(zip(kinds, grads, strict=True))
