"""Per-example mask gradients in one backward pass, and the phase-1 statistics built from them.

METHOD.md §2–§4. With masks of shape ``[B, L, n]`` (all ones) every example scales only its own rows,
so the gradient of the *summed* batch loss with respect to that tensor is exactly each example's
mask gradient ∂ℓ(x)/∂m, for the cost of one forward and one backward pass.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from unlearn_lit.config.names import GRANULARITIES
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


class MaskStatistics:
    """Accumulates the phase-1 statistics of METHOD.md §3–§4 from per-example mask gradients.

    Sums are accumulated in float64, so summing the same per-example gradients in another order
    (another world size, another batch order) changes them only by float64 rounding. The per-example
    gradients themselves are computed in the model's dtype and, in float32, depend on the batch shape
    (another split over processes gives batches of other sizes, hence other kernel reduction orders):
    a float32 model's statistics then agree across world sizes to a few float32 ulps of the summed
    |gradients|, not exactly; a float64 model's agree to float64 rounding. Per kind, with ``[L, n]``
    tensors:

    - ``forget_grad_sum`` g^f = Σ_{D_f} ∂ℓ/∂m, ``forget_grad_sq_sum`` (NORM, F^f), ``num_forget``;
    - ``retain_grad_sum`` g^r, ``retain_grad_sq_sum`` (F^r = it / ``num_retain``), ``num_retain``;
    - ``G`` ``[N_G, L, n]``: retain rows for the block-diagonal Fisher (per example on a fixed set of
      example indices, so identical for any world size; or per batch, scaled by 1/sqrt(B)).

    Args:
        shapes: ``{kind: (L, n)}`` of the maskable kinds.
        row_indices: example indices (into D) whose per-example retain gradients become rows of G;
            empty for no G.
        granularity: ``example`` or ``batch`` rows.
    """

    GRANULARITIES = GRANULARITIES  # the config's choices (unlearn_lit.config.names)

    def __init__(self, shapes: dict[str, tuple[int, int]], row_indices: Tensor, granularity: str = "example"):
        if granularity not in self.GRANULARITIES:
            raise ValueError(f"unknown granularity {granularity!r}; valid choices: example, batch")
        self.kinds = tuple(shapes)
        self.granularity = granularity
        self.row_indices = torch.as_tensor(row_indices, dtype=torch.long).sort().values
        z = {k: torch.zeros(s, dtype=torch.float64) for k, s in shapes.items()}
        self.sums = {
            f"{split}_{what}": {k: v.clone() for k, v in z.items()}
            for split in ("forget", "retain")
            for what in ("grad_sum", "grad_sq_sum")
        }
        self.counts = {"forget": 0, "retain": 0}
        self.rows: dict[str, list[Tensor]] = {k: [] for k in self.kinds}
        self.row_keys: list[Tensor] = []

    def update(self, split: str, grads: dict[str, Tensor], index: Tensor) -> None:
        """Adds one batch of per-example mask gradients ``{kind: [B, L, n]}`` of ``split``."""
        for k in self.kinds:
            g = grads[k].detach().to("cpu", torch.float64)
            if not torch.isfinite(g).all():
                raise FloatingPointError(f"non-finite {k} mask gradient on the {split} set (check the model)")
            self.sums[f"{split}_grad_sum"][k] += g.sum(0)
            self.sums[f"{split}_grad_sq_sum"][k] += (g * g).sum(0)
        self.counts[split] += int(index.shape[0])
        if split != "retain" or self.row_indices.numel() == 0:
            return
        index = index.cpu()
        if self.granularity == "example":
            keep = torch.isin(index, self.row_indices)
            if keep.any():
                self.row_keys.append(index[keep].double())
                for k in self.kinds:
                    self.rows[k].append(grads[k].detach().to("cpu", torch.float64)[keep])
        elif len(self.row_keys) < self.row_indices.numel():  # one row per batch, first N_G batches
            self.row_keys.append(index.min().double().view(1))
            for k in self.kinds:
                g = grads[k].detach().to("cpu", torch.float64)
                self.rows[k].append(g.sum(0, keepdim=True) / g.shape[0] ** 0.5)

    def reduce(
        self, all_sum: Callable[[Tensor], Tensor], all_gather_rows: Callable[[Tensor], Tensor]
    ) -> None:
        """Combines processes: sums are all-reduced, G rows gathered and ordered by example index."""
        for table in self.sums.values():
            for k in self.kinds:
                table[k] = all_sum(table[k])
        counts = all_sum(torch.tensor([self.counts["forget"], self.counts["retain"]], dtype=torch.float64))
        self.counts = {"forget": int(counts[0]), "retain": int(counts[1])}
        keys = torch.cat(self.row_keys) if self.row_keys else torch.zeros(0, dtype=torch.float64)
        keys = all_gather_rows(keys)
        order = keys.argsort(stable=True)
        self.row_keys = [keys[order]]
        for k in self.kinds:
            L, n = self.sums["forget_grad_sum"][k].shape
            local = torch.cat(self.rows[k]) if self.rows[k] else torch.zeros(0, L, n, dtype=torch.float64)
            self.rows[k] = [all_gather_rows(local)[order]]

    def result(self) -> dict[str, object]:
        """The statistics under the names the objectives use (see ``masks.objectives``)."""
        nf, nr = max(self.counts["forget"], 1), max(self.counts["retain"], 1)
        out: dict[str, object] = {
            "forget_grad_sum": self.sums["forget_grad_sum"],
            "forget_grad_sq_sum": self.sums["forget_grad_sq_sum"],
            "forget_fisher": {k: v / nf for k, v in self.sums["forget_grad_sq_sum"].items()},
            "retain_grad_sum": self.sums["retain_grad_sum"],
            "retain_fisher": {k: v / nr for k, v in self.sums["retain_grad_sq_sum"].items()},
            "num_forget": self.counts["forget"],
            "num_retain": self.counts["retain"],
        }
        rows = {k: torch.cat(self.rows[k]) for k in self.kinds if self.rows[k]}
        if rows and all(r.shape[0] > 0 for r in rows.values()):
            out["G"] = rows
        return out
