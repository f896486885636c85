"""The parameter diagonal empirical Fisher and the forget gradient sum of MAPE-SO (METHOD.md §5).

For the update θ_u = θ* + η · M ∘ (F̂_r + λ)^{-1} · Σ_{x∈D_f} ∇θ ℓ(θ*; x) this module computes

- ``F̂_r = mean_{x∈D_r} (∇θ ℓ(θ; x))²``, the diagonal empirical Fisher, from per-example gradients
  (``torch.func``: ``functional_call`` + ``vmap(grad)``, chunk by chunk), or per batch as an option:
  ``(1/N) Σ_batches (Σ_{x∈batch} ∇θ ℓ(x))²`` (exact for batches of one; unbiased for independent,
  zero-mean gradients; one backward pass per batch);
- ``g^f = Σ_{x∈D_f} ∇θ ℓ(θ; x)``, the signed forget gradient sum.

Memory is bounded by restricting everything to the selected entries (mask = 1): gradients are taken only
with respect to parameters that hold a selected entry, and the buffers kept (Fisher, gradient sums) are
compact vectors of the selected entries only (:class:`ParamSelection`), so MAPE-SO's buffers are a
fraction of SO's. Per-example gradients exist for one chunk at a time. Statistics are taken in eval mode
(no dropout).

Compute is bounded the same way for batch sums (the per-batch Fisher, the forget gradient): a unit mask
selects whole rows (a head's query rows, a filter's input rows) or whole columns (a head's output
columns, a filter's output column) of a ``Linear`` weight, and the gradient of those alone is
``δ[:, R]ᵀ x`` or ``δᵀ x[:, C]``: :class:`SlicedGradient` takes it from the output's gradient δ in a
tensor hook, so no weight needs ``requires_grad`` and the backward pass never forms a weight's whole
gradient. Because the hook sees every example's rows, it can keep separate sums for groups of them:
on a CPU, the examples of a window of padded text batches are re-cut by length into shared pieces
without their padding, and each batch still gets its own sum (:func:`_batch_sums`). Measured on
MiniLM's masked statistics at 90% sparsity (``experiments/bench_fisher.py``, 2 threads): the hooks
1.33x faster than a zero-valued side path through the forward pass, the shared pieces 1.09x more on
8 batches; on the quickstart's 32 random batches of tweets (about 40% padding), 1.24x for the Fisher.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.func import functional_call, grad, vmap
from torch.nn.attention import SDPBackend, sdpa_kernel
from tqdm.auto import tqdm

from unlearn_lit.config.names import FISHER_MODES  # noqa: F401  (re-exported)
from unlearn_lit.data.buckets import length_parts, sort_by_length
from unlearn_lit.families import is_causal
from unlearn_lit.masks.stats import batch_size
from unlearn_lit.methods.base import UnlearningFailed
from unlearn_lit.models.base import Backbone, per_example_loss
from unlearn_lit.selection.sets import to_device


class ParamSelection:
    """The selected entries of a model's parameters, and compact vectors over them.

    Args:
        model: the backbone.
        masks: ``{param name: Bool tensor}`` of entries that may change (1 = updated); parameters
            missing from it, or whose mask is all zero, are left out entirely.
    """

    def __init__(self, model: Backbone, masks: Mapping[str, Tensor]) -> None:
        params = dict(model.named_parameters())
        unknown = sorted(set(masks) - set(params))
        if unknown:
            raise KeyError(f"mask names unknown parameters {unknown[:3]}; e.g. {list(params)[:3]}")
        self.masks = {n: m.to(params[n].device).bool() for n, m in masks.items() if m.any()}
        self.full = {n: bool(m.all()) for n, m in self.masks.items()}
        self.numel = sum(int(m.sum()) for m in self.masks.values())
        self.total = sum(p.numel() for p in params.values())

    @property
    def names(self) -> list[str]:
        """Parameters with at least one selected entry (the only ones gradients are taken for)."""
        return list(self.masks)

    def take(self, name: str, t: Tensor, batched: bool = False) -> Tensor:
        """Selected entries of a parameter-shaped ``t`` (``[B, *shape]`` -> ``[B, k]`` when batched)."""
        if self.full[name]:
            return t.reshape(t.shape[0], -1) if batched else t.reshape(-1)
        return t[:, self.masks[name]] if batched else t[self.masks[name]]

    def put(self, name: str, base: Tensor, values: Tensor) -> Tensor:
        """``base`` with its selected entries replaced by ``values``; other entries are bit-identical."""
        if self.full[name]:
            return values.reshape(base.shape).to(base.dtype)
        out = base.clone()
        out[self.masks[name]] = values.to(base.dtype)
        return out

    def within(self, masks: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Compact bool vectors of ``masks`` over this selection (entries must lie inside it)."""
        out = {}
        for n, m in self.masks.items():
            sub = masks.get(n)
            sub = torch.zeros_like(m) if sub is None else sub.to(m.device).bool()
            if (sub & ~m).any():
                raise ValueError(f"mask of {n} selects entries outside the statistics' selection")
            out[n] = self.take(n, sub)
        missing = [n for n, m in masks.items() if n not in self.masks and m.any()]
        if missing:
            raise ValueError(f"mask selects parameters without statistics: {missing[:3]}")
        return out


@dataclass
class Fisher:
    """Sums of squared gradients over ``count`` examples; :meth:`mean` is the diagonal Fisher."""

    sumsq: dict[str, Tensor]  # compact [k] per parameter
    count: int

    def mean(self) -> dict[str, Tensor]:
        if self.count <= 0:
            raise ValueError("the Fisher needs at least one example")
        return {n: s / self.count for n, s in self.sumsq.items()}

    def __add__(self, other: Fisher) -> Fisher:
        return Fisher({n: s + other.sumsq[n] for n, s in self.sumsq.items()}, self.count + other.count)

    def downdate(self, removed: Fisher) -> Fisher:
        """The Fisher without ``removed``: ``F' = (N·F − Σ_removed g²) / (N − |removed|)``."""
        if removed.count >= self.count:
            raise ValueError(f"cannot remove {removed.count} of {self.count} examples from the Fisher")
        return Fisher(
            {n: (s - removed.sumsq[n]).clamp_min(0) for n, s in self.sumsq.items()},
            self.count - removed.count,
        )


def nbytes(tensors: Mapping[str, Tensor]) -> int:
    """Bytes held by a dict of tensors."""
    return sum(t.numel() * t.element_size() for t in tensors.values())


def check_finite(tensors: Mapping[str, Tensor], what: str) -> None:
    """NaN guard: raises :class:`UnlearningFailed` naming the first parameter with NaN/inf entries."""
    for n, t in tensors.items():
        if not torch.isfinite(t).all():
            bad = int((~torch.isfinite(t)).sum())
            raise UnlearningFailed(f"{what} has {bad} non-finite entries in {n}; θ* is left untouched")


def _acc_dtype(p: Tensor) -> torch.dtype:
    return torch.promote_types(p.dtype, torch.float32)


def _split(model: Backbone, sel: ParamSelection) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """(selected params, every other param and buffer), detached."""
    chosen, rest = {}, {n: b for n, b in model.named_buffers()}
    for n, p in model.named_parameters():
        (chosen if n in sel.masks else rest)[n] = p.detach()
    return chosen, rest


def _additive_mask(batch: dict[str, Tensor], family: str, dtype: torch.dtype) -> dict[str, Tensor]:
    """Replaces a 2D padding mask by a 4D additive one, so HF skips its data-dependent mask code under vmap."""
    am = batch.get("attention_mask")
    if am is None or am.dim() != 2:
        return batch
    keep = am[:, None, None, :].bool()  # [B, 1, 1, T]
    if is_causal(family):
        t = am.shape[-1]
        keep = keep & torch.ones(t, t, dtype=torch.bool, device=am.device).tril()
    add = torch.zeros(keep.shape, dtype=dtype, device=am.device).masked_fill(~keep, torch.finfo(dtype).min)
    return {**batch, "attention_mask": add}


def _example_loss(model: Backbone, rest: dict[str, Tensor]):
    """``loss(params, example) = ℓ`` of one (unbatched) example through ``functional_call``, for
    ``vmap(grad(...))``."""
    dtype = next(model.parameters()).dtype

    def loss(params: dict[str, Tensor], example: dict[str, Tensor]) -> Tensor:
        b = {k: v.unsqueeze(0) for k, v in example.items()}
        logits = functional_call(model, {**rest, **params}, (_additive_mask(b, model.family, dtype),))
        return per_example_loss(logits, b, model.task).sum()

    return loss


SLICE_FRACTION = 0.5  # a weight's selected rows (columns) above this share: its whole gradient is cheaper


def _structure(mask: Tensor) -> tuple[str, Tensor] | None:
    """``("rows", R)`` when ``mask`` (of a ``[out, in]`` weight) is exactly the rows R, ``("cols", C)``
    when exactly the columns C, each at most :data:`SLICE_FRACTION` of them; None otherwise."""
    if mask.dim() != 2:
        return None
    for axis, lines in (("rows", mask.any(1)), ("cols", mask.any(0))):
        full = lines[:, None] if axis == "rows" else lines[None, :]
        if bool((mask == full).all()) and int(lines.sum()) <= SLICE_FRACTION * lines.numel():
            return axis, lines.nonzero().flatten()
    return None


Segment = tuple[int, int, int]  # rows [start, end) of a batch and the group they add to


class SlicedGradient:
    """``Σ_batch ∇θ ℓ`` over the selected entries of ``sel`` (compact vectors), with every ``Linear``
    weight's and bias's gradient taken from its output's gradient ``δ`` by a tensor hook: ``δ[:, R]ᵀ x``
    for a weight whose mask is whole rows R, ``δᵀ x[:, C]`` for whole columns C (:func:`_structure`),
    ``δᵀ x`` then :meth:`ParamSelection.take` otherwise, ``Σ δ`` for a bias. No weight needs
    ``requires_grad``, so the backward pass computes the activations' gradients and only the selected
    slices of the weights'. Every other selected parameter (not owned by a ``Linear``, or shared by
    two modules) takes plain autograd (:attr:`whole`). The same numbers as the whole gradients' entries, up
    to float rounding.

    :meth:`grouped` also keeps separate sums for groups of rows of one batch (when :attr:`whole` is
    empty), so that examples of several batches can share a length-sorted piece while each batch keeps
    its own gradient sum (:func:`gradients`).

    A tap reads a ``Linear``'s input and output with the batch's examples first. A ``Linear`` whose
    forward never runs in a pass (unused, or its weight used by another module, as
    ``nn.MultiheadAttention`` uses its ``out_proj``) or whose input is not ``[batch, ...]``
    (sequence-first, tokens flattened) moves to plain autograd for good, and that pass is recomputed.
    Not told apart: a sequence-first input whose length equals the batch's, and a weight used both by
    its module and directly elsewhere; no supported family does either.

    Args:
        model: the backbone (its ``requires_grad`` flags are set for each call and restored).
        sel: the selected entries.
    """

    def __init__(self, model: Backbone, sel: ParamSelection) -> None:
        self.model, self.sel = model, sel
        owners: dict[int, int] = {}
        for module in model.modules():
            for p in module._parameters.values():
                if p is not None:
                    owners[id(p)] = owners.get(id(p), 0) + 1
        self.taps: dict[nn.Module, list[tuple[str, str, Tensor | None]]] = {}
        for name, module in model.named_modules():
            if not isinstance(module, nn.Linear):
                continue
            for attr in ("weight", "bias"):
                pname = f"{name}.{attr}" if name else attr
                p = getattr(module, attr)
                if pname not in sel.masks or owners.get(id(p), 0) != 1:
                    continue
                found = _structure(sel.masks[pname]) if attr == "weight" and not sel.full[pname] else None
                kind, idx = found if found else (attr, None)
                self.taps.setdefault(module, []).append((pname, kind, idx))
        tapped = {n for entries in self.taps.values() for n, _, _ in entries}
        self.whole = [n for n in sel.names if n not in tapped]
        self._dtype = {n: _acc_dtype(p) for n, p in model.named_parameters() if n in sel.masks}

    @property
    def slices(self) -> dict[str, tuple[str, Tensor]]:
        """``{weight: ("rows" | "cols", indices)}`` of the weights taken on their selected rows or columns."""
        return {n: (k, i) for entries in self.taps.values() for n, k, i in entries if i is not None}

    @property
    def groupable(self) -> bool:
        """Whether :meth:`grouped` may split a batch into several sums (every selected parameter tapped)."""
        return not self.whole

    def __call__(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        return self.grouped(batch, [(0, batch_size(batch), 0)])[0]

    def grouped(self, batch: dict[str, Tensor], segments: list[Segment]) -> dict[int, dict[str, Tensor]]:
        """``{group: gradient sums}`` of the groups of the batch's rows, in one forward and backward pass;
        ``segments`` (start, end, group) cover the rows. More than one group needs :attr:`groupable`."""
        if torch.is_inference_mode_enabled():
            raise RuntimeError("gradient sums need autograd: not under torch.inference_mode")
        groups = sorted({g for _, _, g in segments})
        if len(groups) > 1 and not self.groupable:
            raise ValueError(f"per-group sums need every selected parameter tapped; not: {self.whole[:3]}")
        params = dict(self.model.named_parameters())
        flags = {n: p.requires_grad for n, p in params.items()}
        sums: dict[int, dict[str, Tensor]] = {g: {} for g in groups}
        leaves: list[Tensor] = []
        fired: set[nn.Module] = set()
        odd: set[nn.Module] = set()
        rows = max(end for _, end, _ in segments)
        hooks = [
            module.register_forward_hook(functools.partial(self._tap, entries=entries, segments=segments,
                                                           sums=sums, leaves=leaves, fired=fired, odd=odd,
                                                           rows=rows))
            for module, entries in self.taps.items()
        ]  # fmt: skip
        try:
            for n, p in params.items():
                p.requires_grad_(n in self.whole)
            with torch.enable_grad():
                loss = per_example_loss(self.model(batch), batch, self.model.task).sum()
                inputs = [params[n] for n in self.whole] + leaves
                grads = torch.autograd.grad(loss, inputs, allow_unused=True) if loss.requires_grad else ()
        finally:
            for hook in hooks:
                hook.remove()
            for n, p in params.items():
                p.requires_grad_(flags[n])
        if silent := [m for m in self.taps if m not in fired or m in odd]:
            # a Linear whose forward never ran (unused, or its weight used by another module, e.g.
            # nn.MultiheadAttention's out_proj) or whose input's first dimension is not the batch's
            # examples (sequence-first, flattened tokens): plain autograd gets each right, from now on
            for module in silent:
                self.whole += [n for n, _, _ in self.taps.pop(module)]
            if len(groups) > 1:
                raise RuntimeError(
                    f"{len(silent)} tapped Linear module(s) did not run; compute one group first "
                    "(_batch_sums does) so that their parameters fall back to autograd"
                )
            return self.grouped(batch, segments)
        for n, g in zip(self.whole, grads, strict=False):
            sums[groups[0]][n] = self.sel.take(n, torch.zeros_like(params[n]) if g is None else g)
        for group in sums.values():  # a parameter the loss does not reach (or a group without rows): zeros
            for n in self.sel.names:
                if n not in group:
                    group[n] = torch.zeros(int(self.sel.masks[n].sum()), dtype=self._dtype[n],
                                           device=params[n].device)  # fmt: skip
        return sums

    def _tap(
        self,
        module: nn.Module,
        inputs: tuple,
        output: Tensor,
        entries,
        segments,
        sums,
        leaves,
        fired,
        odd,
        rows,
    ) -> Tensor:
        """Forward hook: registers :meth:`_collect` on the output's gradient (the output becomes a leaf
        when nothing before it needs a gradient); marks the module ``odd`` when its input is not
        ``[rows, ...]`` with the batch's examples first."""
        fired.add(module)
        if not inputs or inputs[0].dim() < 2 or inputs[0].shape[0] != rows or output.shape[0] != rows:
            odd.add(module)
            return output
        if not output.requires_grad:
            output = output.detach().requires_grad_()
            leaves.append(output)
        x = inputs[0].detach()
        output.register_hook(
            functools.partial(self._collect, x=x, entries=entries, segments=segments, sums=sums)
        )
        return output

    def _collect(self, delta: Tensor, x: Tensor, entries, segments: list[Segment], sums) -> None:
        """Adds each group's selected weight and bias gradient entries, from the output's gradient."""
        rows = delta.shape[0]
        delta, x = delta.reshape(rows, -1, delta.shape[-1]), x.reshape(rows, -1, x.shape[-1])
        # under an autocast (a half-precision output gradient) the products run in that dtype, as
        # autograd's weight gradient would; they are accumulated in the parameter's (at least float32)
        low = delta.dtype if delta.dtype in (torch.float16, torch.bfloat16) else None
        for start, end, group in segments:
            for name, kind, idx in entries:
                dt = self._dtype[name]
                d = delta[start:end].reshape(-1, delta.shape[-1])
                if kind == "bias":
                    value = self.sel.take(name, d.to(dt).sum(0))
                    sums[group][name] = sums[group][name] + value if name in sums[group] else value
                    continue
                d, xs = d.to(low or dt), x[start:end].reshape(-1, x.shape[-1]).to(low or dt)
                if kind == "rows":
                    value = (d.index_select(1, idx).T @ xs).reshape(-1)
                elif kind == "cols":
                    value = (d.T @ xs.index_select(1, idx)).reshape(-1)
                else:
                    value = self.sel.take(name, d.T @ xs)
                value = value.to(dt)
                sums[group][name] = sums[group][name] + value if name in sums[group] else value


WINDOW_MEMORY_BYTES = 2**29  # per-batch gradient sums held at once when batches share pieces (CPU)
MAX_WINDOW = 64


def _shared_pieces(window: list[dict[str, Tensor]]) -> Iterator[tuple[dict[str, Tensor], list[Segment]]]:
    """The window's examples re-cut by length into pieces of its batch size (each trimmed to its longest),
    each piece's rows ordered by the batch they came from, with its segments; nothing when the batches
    cannot be re-cut (not right-padded text)."""
    pieces, order = sort_by_length(window)
    if all(p is b for p, b in zip(pieces, window, strict=True)):
        return
    sizes = torch.tensor([batch_size(b) for b in window])
    owner = torch.repeat_interleave(torch.arange(len(window)), sizes)[order]
    start = 0
    for piece in pieces:
        n = batch_size(piece)
        groups, perm = torch.sort(owner[start : start + n], stable=True)
        piece = {k: v[perm.to(v.device)] for k, v in piece.items()}
        ids, counts = torch.unique_consecutive(groups, return_counts=True)
        ends = counts.cumsum(0)
        yield piece, [(int(e - c), int(e), int(g)) for g, c, e in zip(ids, counts, ends, strict=True)]
        start += n


def _batch_sums(
    model: Backbone, batches: Iterable[dict[str, Tensor]], sel: ParamSelection, device: torch.device
) -> Iterator[tuple[dict[str, Tensor], int]]:
    """One gradient sum per batch. On a CPU, padded text batches are computed in length-sorted pieces
    without their padding: when every selected parameter is tapped (:class:`SlicedGradient`), pieces of
    a window of batches shared by their examples (each batch's sum kept apart; not under an autocast),
    else pieces of each batch (:func:`~unlearn_lit.data.buckets.length_parts`)."""
    fn = SlicedGradient(model, sel)
    split = device.type == "cpu"
    batches = iter(batches)
    first = next(batches, None)
    if first is None:
        return
    # the first batch alone settles which Linear modules run (SlicedGradient.grouped)
    yield _alone(fn, to_device(first, device), split)
    size = 1
    # under an autocast, each batch alone, as the data-parallel pass (SOStatistics) computes it: shared
    # pieces round differently at bfloat16's precision (0.5% of a tiny BERT's per-batch Fisher)
    if split and fn.groupable and not torch.is_autocast_enabled(device.type):
        per_batch = sum(int(m.sum()) * torch.finfo(fn._dtype[n]).bits // 8 for n, m in sel.masks.items())
        size = int(min(max(WINDOW_MEMORY_BYTES // max(per_batch, 1), 1), MAX_WINDOW))
    while window := [to_device(b, device) for b in itertools.islice(batches, size)]:
        shared = list(_shared_pieces(window)) if len(window) > 1 else []
        if shared:
            totals: list[dict[str, Tensor]] = [{} for _ in window]
            for piece, segments in shared:
                for group, grads in fn.grouped(piece, segments).items():
                    for k, g in grads.items():
                        totals[group][k] = totals[group][k] + g if k in totals[group] else g
            yield from zip(totals, (batch_size(b) for b in window), strict=True)
            continue
        yield from (_alone(fn, batch, split) for batch in window)


def _alone(fn: SlicedGradient, batch: dict[str, Tensor], split: bool) -> tuple[dict[str, Tensor], int]:
    """One batch's gradient sum over its own length-sorted pieces (:func:`~unlearn_lit.data.buckets.length_parts`)."""
    total: dict[str, Tensor] = {}
    for part in length_parts(batch, None, split=split):
        grads = {k: g.to(_acc_dtype(g)) for k, g in fn(part).items()}
        total = {k: total[k] + g if k in total else g for k, g in grads.items()}
    return total, batch_size(batch)


def gradients(
    model: Backbone,
    batches: Iterable[dict[str, Tensor]],
    sel: ParamSelection,
    chunk: int | None,
    desc: str,
    progress: bool = True,
) -> Iterator[tuple[dict[str, Tensor], int]]:
    """Yields ``({name: compact gradient}, n)``: per example ``[n, k]`` when ``chunk`` is set, else the
    batch sum ``[k]`` (one per batch, in order); computed in eval mode for the selected parameters only.

    Padded text is computed without most of its padding, with the same per-example gradients and batch
    sums up to the summation order: per-example chunks are length-sorted pieces of each batch
    (:func:`~unlearn_lit.data.buckets.length_parts`); batch sums, on a CPU, share length-sorted pieces
    across a window of batches (:func:`_batch_sums`). A GPU keeps one launch per batch (padding is
    nearly free there; not measured)."""
    device = next(model.parameters()).device
    bar = tqdm(batches, desc=desc, leave=False, disable=None if progress else True)
    was_training = model.training
    model.eval()
    try:
        if not chunk:  # the selected entries directly (SlicedGradient)
            yield from _batch_sums(model, bar, sel, device)
            return
        # per example: vmap(grad) of the selected parameters, then their selected entries
        chosen, rest = _split(model, sel)
        per_example = vmap(grad(_example_loss(model, rest)), in_dims=(None, 0))
        for batch in bar:
            for part in length_parts(to_device(batch, device), chunk, split=device.type == "cpu"):
                # the math SDPA kernel has vmap batching rules; the fused CPU/CUDA kernels fall back to loops
                with sdpa_kernel(SDPBackend.MATH):
                    grads = per_example(chosen, part) if sel.names else {}
                yield (
                    {k: sel.take(k, g, batched=True).to(_acc_dtype(g)) for k, g in grads.items()},
                    batch_size(part),
                )
    finally:
        model.train(was_training)


def zeros(model: Backbone, sel: ParamSelection) -> dict[str, Tensor]:
    params = dict(model.named_parameters())
    return {
        n: torch.zeros(int(m.sum()), dtype=_acc_dtype(params[n]), device=params[n].device)
        for n, m in sel.masks.items()
    }


CHUNK_MEMORY_BYTES = 4 * 2**30  # per-example gradients held at once on a CPU
MAX_CHUNK = 64


def auto_chunk(model: Backbone, sel: ParamSelection) -> int:
    """Examples whose per-example gradients fit at once: 4 GiB on a CPU, a quarter of the free memory
    on a GPU, over the size of the parameters gradients are taken for; between 1 and 64.

    Measured on the digits ViT (1 thread): 256 per-example gradients took 2.1 s in chunks of 8 and 0.95 s
    in chunks of 32 (vmap's per-call overhead); larger chunks changed nothing more.
    """
    params = dict(model.named_parameters())
    per_example = sum(params[n].numel() * params[n].element_size() for n in sel.names)
    device = next(model.parameters()).device
    budget = torch.cuda.mem_get_info(device)[0] // 4 if device.type == "cuda" else CHUNK_MEMORY_BYTES
    return int(min(max(budget // max(per_example, 1), 1), MAX_CHUNK))


def retain_fisher(
    model: Backbone,
    batches: Iterable[dict[str, Tensor]],
    sel: ParamSelection,
    mode: str = "per_example",
    chunk_size: int | None = None,
    desc: str = "fisher",
) -> Fisher:
    """Sums of squared gradients over the selected entries (F̂_r of METHOD.md §5 when given D_r).

    Args:
        model: the backbone (θ at which the Fisher is taken).
        batches: batches of the set (D_r, or a seeded subsample of it).
        sel: which entries; gradients are taken only for ``sel.names``.
        mode: ``per_example`` (exact, ``vmap(grad)`` over chunks) or ``per_batch`` (squared batch sums).
        chunk_size: examples whose per-example gradients are held at once (None: :func:`auto_chunk`).
        desc: progress bar label.
    """
    if mode not in FISHER_MODES:
        raise ValueError(f"unknown fisher mode {mode!r}; valid choices: {', '.join(FISHER_MODES)}")
    if chunk_size is not None and chunk_size < 1:
        raise ValueError(f"chunk_size must be None or >= 1, got {chunk_size}")
    chunk_size = chunk_size or auto_chunk(model, sel)
    sumsq, count = zeros(model, sel), 0
    per_example = mode == "per_example"
    for grads, n in gradients(model, batches, sel, chunk_size if per_example else None, desc):
        for k, g in grads.items():  # [n, k] per example (summed after squaring) or [k] batch sum
            sumsq[k] += g.pow(2).sum(0) if per_example else g.pow(2)
        count += n
    return Fisher(sumsq, count)


def forget_gradient_sum(
    model: Backbone, batches: Iterable[dict[str, Tensor]], sel: ParamSelection, desc: str = "forget grad"
) -> tuple[dict[str, Tensor], int]:
    """``Σ_x ∇θ ℓ(θ; x)`` over the selected entries (compact vectors) and the number of examples."""
    total, count = zeros(model, sel), 0
    for grads, n in gradients(model, batches, sel, None, desc):
        for k, g in grads.items():
            total[k] += g
        count += n
    return total, count
