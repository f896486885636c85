"""What a unit (attention head, FFN filter) is, which parameters it owns, and how to mask it exactly.

METHOD.md §2. A head mask scales the head's slice of the input of the attention output projection
W_O; a filter mask scales one input feature of the FFN down projection W_2. Both are applied with
forward pre-hooks on those projections (never ``head_mask=``, which Transformers v5 ignores), for a
shared mask ``[L, n]`` or a per-example mask ``[B, L, n]`` (each example scales only its own rows, so
one backward pass yields every example's mask gradient).

Ownership (HF ``Linear.weight`` is ``[out, in]``): head h owns rows ``h*d_h:(h+1)*d_h`` of W_Q, W_K, W_V
(and their bias entries) and the same columns of W_O; filter j owns row j of W_1 (gate and up for
gated FFNs, plus bias) and column j of W_2. A :class:`SliceRule` states this once per parameter, so
expansion to parameter-shaped masks is vectorized and the same rule answers "which slices does unit i
own".
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import Tensor, nn

KINDS = ("head", "filter")


@dataclass(frozen=True)
class SliceRule:
    """How one parameter of one layer is cut into the units of one kind.

    Attributes:
        param: parameter name in ``backbone.named_parameters()``.
        dim: dimension the units occupy (0 = rows / bias entries, 1 = columns).
        width: entries along ``dim`` per unit (head dim d_h for heads, 1 for filters).
        sections: fused projections stack this many slices along ``dim`` (Q, K, V -> 3).
        group: units that share one slice (GQA: query heads per K/V head); shared slices are
            updated when any unit of the group is selected.
    """

    param: str
    dim: int
    width: int
    sections: int = 1
    group: int = 1

    def expand(self, mask: Tensor) -> Tensor:
        """Unit mask ``[n]`` -> bool vector along ``dim`` of length ``sections * n / group * width``."""
        m = mask.bool()
        if self.group > 1:
            m = m.reshape(-1, self.group).any(-1)
        return m.repeat_interleave(self.width).repeat(self.sections)


@dataclass(frozen=True)
class OwnedSlice:
    """Entries ``start:stop`` along ``dim`` of parameter ``param``; ``shared`` for GQA K/V groups."""

    param: str
    dim: int
    start: int
    stop: int
    shared: bool = False


@dataclass(frozen=True)
class Block:
    """One layer's units of one kind: the unit of the greedy search (METHOD.md §4)."""

    layer: int
    kind: str
    count: int


@dataclass(frozen=True)
class LayerUnits:
    """One layer: the modules the masks hook into and the slice rules of each kind."""

    head_hook: str
    filter_hook: str
    rules: dict[str, tuple[SliceRule, ...]]


class UnitLayout:
    """The units of a backbone: blocks, owned parameter slices, masks hooks and expansions.

    Args:
        family: architecture family (``bert``, ``vit``, ``llama``, ...).
        layers: one :class:`LayerUnits` per Transformer layer.
        counts: units per layer of each kind (``{"head": H, "filter": N}``).
        head_dim: d_h, the width of one head's slice of the W_O input.
    """

    def __init__(self, family: str, layers: list[LayerUnits], counts: dict[str, int], head_dim: int) -> None:
        self.family = family
        self.layers = layers
        self.counts = counts
        self.head_dim = head_dim
        self.widths = {"head": head_dim, "filter": 1}

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    @property
    def kinds(self) -> tuple[str, ...]:
        return KINDS

    def shape(self, kind: str) -> tuple[int, int]:
        """Shape ``[L, n]`` of the mask of ``kind``."""
        self._check_kind(kind)
        return (self.num_layers, self.counts[kind])

    @property
    def blocks(self) -> list[Block]:
        return [Block(l, k, self.counts[k]) for k in KINDS for l in range(self.num_layers)]

    def ones(self, dtype: torch.dtype = torch.bool) -> dict[str, Tensor]:
        """All-ones masks (every unit selected)."""
        return {k: torch.ones(self.shape(k), dtype=dtype) for k in KINDS}

    # ----------------------------------------------------------------------------------- ownership
    def owned(self, kind: str, layer: int, index: int) -> list[OwnedSlice]:
        """The parameter slices unit ``index`` of ``kind`` in ``layer`` owns."""
        self._check_kind(kind)
        if not 0 <= layer < self.num_layers or not 0 <= index < self.counts[kind]:
            raise IndexError(
                f"unit ({layer}, {kind}, {index}) out of range; layout is "
                f"{self.num_layers} layers x {self.counts[kind]} {kind}s"
            )
        out = []
        for r in self.layers[layer].rules[kind]:
            block = self.counts[kind] // r.group * r.width  # entries per section
            for s in range(r.sections):
                start = s * block + (index // r.group) * r.width
                out.append(OwnedSlice(r.param, r.dim, start, start + r.width, shared=r.group > 1))
        return out

    def param_count(self, kind: str, params: dict[str, Tensor], include_shared: bool = True) -> int:
        """Parameters owned by one unit of ``kind`` (layer 0, unit 0; all units of a kind are alike)."""
        total = 0
        for s in self.owned(kind, 0, 0):
            if s.shared and not include_shared:
                continue
            p = params[s.param]
            total += (s.stop - s.start) * (p.numel() // p.shape[s.dim])
        return total

    def unit_param_names(self) -> list[str]:
        """Names of every parameter some unit owns a slice of."""
        return sorted({r.param for lay in self.layers for rules in lay.rules.values() for r in rules})

    def param_masks(self, masks: dict[str, Tensor], params: dict[str, Tensor]) -> dict[str, Tensor]:
        """Expands unit masks ``{kind: [L, n]}`` to bool masks shaped like each owned parameter.

        Kinds missing from ``masks`` count as all-frozen. Parameters outside every unit are not in
        the result (callers decide whether they train).
        """
        out: dict[str, Tensor] = {}
        for kind in KINDS:
            m = masks.get(kind)
            if m is not None:
                self._check_mask(kind, m, batched=False)
            for l, lay in enumerate(self.layers):
                row = m[l] if m is not None else torch.zeros(self.counts[kind], dtype=torch.bool)
                for r in lay.rules[kind]:
                    p = params[r.param]
                    v = r.expand(row.cpu()).to(p.device)
                    if v.numel() != p.shape[r.dim]:
                        raise RuntimeError(f"slice rule for {r.param} covers {v.numel()} of {p.shape[r.dim]}")
                    shape = [1] * p.dim()
                    shape[r.dim] = -1
                    out[r.param] = v.view(shape).expand_as(p).clone()
        return out

    # ------------------------------------------------------------------------------------ masking
    @contextlib.contextmanager
    def apply_masks(
        self, model: nn.Module, head: Tensor | None = None, filter: Tensor | None = None
    ) -> Iterator[None]:
        """Installs mask forward pre-hooks for the duration of the ``with`` block.

        Args:
            model: the backbone the layout was built for.
            head: ``[L, H]`` shared or ``[B, L, H]`` per-example head mask (None = no head hook).
            filter: ``[L, N]`` or ``[B, L, N]`` filter mask (None = no filter hook).
        """
        handles = []
        try:
            for kind, mask in (("head", head), ("filter", filter)):
                if mask is None:
                    continue
                self._check_mask(kind, mask, batched=True)
                for l, lay in enumerate(self.layers):
                    module = model.get_submodule(lay.head_hook if kind == "head" else lay.filter_hook)
                    m = mask[l] if mask.dim() == 2 else mask[:, l]
                    handles.append(module.register_forward_pre_hook(_scaling_hook(m, self.widths[kind])))
            yield
        finally:
            for h in handles:
                h.remove()

    def _check_kind(self, kind: str) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown unit kind {kind!r}; valid choices: {', '.join(KINDS)}")

    def _check_mask(self, kind: str, mask: Tensor, batched: bool) -> None:
        L, n = self.shape(kind)
        ok = tuple(mask.shape) == (L, n) or (batched and mask.dim() == 3 and tuple(mask.shape[1:]) == (L, n))
        if not ok:
            expected = f"[L, n] = [{L}, {n}]" + (f" or [B, {L}, {n}]" if batched else "")
            raise ValueError(f"{kind} mask has shape {list(mask.shape)}; expected {expected}")


def _scaling_hook(mask: Tensor, width: int):
    """Forward pre-hook multiplying the last dim of the module input by the (expanded) unit mask."""

    def hook(module: nn.Module, args: tuple) -> tuple:
        x = args[0]
        m = mask.to(dtype=x.dtype, device=x.device)
        if width > 1:
            m = m.repeat_interleave(width, dim=-1)
        if m.dim() == 2:  # per-example [B, n*width]: broadcast over every middle dim (tokens)
            if m.shape[0] != x.shape[0]:
                raise ValueError(f"per-example mask has batch size {m.shape[0]}, the input {x.shape[0]}")
            m = m.view(m.shape[0], *([1] * (x.dim() - 2)), m.shape[1])
        return (x * m, *args[1:])

    return hook


def projection_rules(
    model: nn.Module, path: str, side: str, width: int, sections: int = 1, group: int = 1
) -> tuple[SliceRule, ...]:
    """Slice rules for one projection module.

    Args:
        model: the backbone.
        path: module path of the projection (``nn.Linear`` or HF's transposed ``Conv1D``).
        side: ``"out"`` when units own output features (W_Q, W_K, W_V, W_1: rows plus bias entries) or
            ``"in"`` when they own input features (W_O, W_2: columns; the bias stays outside units).
        width, sections, group: see :class:`SliceRule`.
    """
    module = model.get_submodule(path)
    transposed = type(module).__name__ == "Conv1D"  # GPT-2 stores weight as [in, out]
    out_dim, in_dim = (1, 0) if transposed else (0, 1)
    rules = [SliceRule(f"{path}.weight", out_dim if side == "out" else in_dim, width, sections, group)]
    if side == "out" and getattr(module, "bias", None) is not None:
        rules.append(SliceRule(f"{path}.bias", 0, width, sections, group))
    return tuple(rules)
