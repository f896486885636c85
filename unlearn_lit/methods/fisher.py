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
``δ[:, R]ᵀ x`` or ``δᵀ x[:, C]``: :class:`SlicedGradient` takes it through a zero-valued side path of
that shape, so the backward pass never forms the weight's whole gradient (1.13x faster for MiniLM's
statistics at 90% sparsity, ``experiments/bench_fisher.py``; the weight gradients are about a third of
the pass's matrix products, which at tweet length on a CPU are not most of its time).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, grad, vmap
from torch.nn.attention import SDPBackend, sdpa_kernel
from tqdm.auto import tqdm

from unlearn_lit.config.names import FISHER_MODES  # noqa: F401  (re-exported)
from unlearn_lit.data.buckets import length_parts
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


def _side_path(module: nn.Module, inputs: tuple, output: Tensor, delta: Tensor, axis: str, idx: Tensor):
    """Forward hook: ``output`` plus the zero-valued slice ``delta`` of the weight (rows ``idx`` or
    columns ``idx``), whose gradient is the weight gradient's slice."""
    x = inputs[0]
    if axis == "rows":
        return output.index_add(-1, idx, F.linear(x, delta).to(output.dtype))
    return output + F.linear(x.index_select(-1, idx), delta).to(output.dtype)


class SlicedGradient:
    """``Σ_batch ∇θ ℓ`` over the selected entries of ``sel`` (compact vectors), computing a ``Linear``
    weight's gradient only on its selected rows or columns (:func:`_structure`) and every other selected
    parameter's whole (then :meth:`ParamSelection.take`). The same numbers as the whole gradients' entries,
    up to float rounding: ``δ[:, R]ᵀ x`` is what the whole ``δᵀ x`` holds in rows R.

    Args:
        model: the backbone (its ``requires_grad`` flags are set for each call and restored).
        sel: the selected entries.
    """

    def __init__(self, model: Backbone, sel: ParamSelection) -> None:
        self.model, self.sel = model, sel
        self.slices: dict[str, tuple[nn.Module, str, Tensor]] = {}
        for name, module in model.named_modules():
            weight = f"{name}.weight" if name else "weight"
            if isinstance(module, nn.Linear) and weight in sel.masks and not sel.full[weight]:
                found = _structure(sel.masks[weight])
                if found is not None:
                    self.slices[weight] = (module, *found)
        self.whole = [n for n in sel.names if n not in self.slices]

    def __call__(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        params = dict(self.model.named_parameters())
        flags = {n: p.requires_grad for n, p in params.items()}
        deltas, hooks = {}, []
        try:
            for n, p in params.items():
                p.requires_grad_(n in self.whole)
            for n, (module, axis, idx) in self.slices.items():
                w = params[n]
                shape = (len(idx), w.shape[1]) if axis == "rows" else (w.shape[0], len(idx))
                deltas[n] = torch.zeros(shape, dtype=w.dtype, device=w.device, requires_grad=True)
                hook = functools.partial(_side_path, delta=deltas[n], axis=axis, idx=idx)  # on w's device
                hooks.append(module.register_forward_hook(hook))
            with torch.enable_grad():
                loss = per_example_loss(self.model(batch), batch, self.model.task).sum()
                leaves = [params[n] for n in self.whole] + list(deltas.values())
                grads = torch.autograd.grad(loss, leaves, allow_unused=True)
        finally:
            for hook in hooks:
                hook.remove()
            for n, p in params.items():
                p.requires_grad_(flags[n])
        out = {}
        for n, leaf, g in zip([*self.whole, *deltas], leaves, grads, strict=True):
            g = torch.zeros_like(leaf) if g is None else g  # a parameter the loss does not reach
            out[n] = g.reshape(-1) if n in deltas else self.sel.take(n, g)
        return out


def gradients(
    model: Backbone,
    batches: Iterable[dict[str, Tensor]],
    sel: ParamSelection,
    chunk: int | None,
    desc: str,
    progress: bool = True,
) -> Iterator[tuple[dict[str, Tensor], int]]:
    """Yields ``({name: compact gradient}, n)``: per example ``[n, k]`` when ``chunk`` is set, else the
    batch sum ``[k]`` (one per batch); computed in eval mode for the selected parameters only.

    A padded text batch is computed in length-sorted pieces without their padding
    (:func:`~unlearn_lit.data.buckets.length_parts`): the same per-example gradients and batch sums up to
    the summation order. A batch sum is cut into pieces on a CPU only, where compute scales with the
    tokens; a GPU keeps it one launch per batch (padding is nearly free there; not measured)."""
    device = next(model.parameters()).device
    # per example: vmap(grad) of the selected parameters, then their selected entries; batch sums:
    # the selected entries directly (SlicedGradient)
    if chunk:
        chosen, rest = _split(model, sel)
        per_example = vmap(grad(_example_loss(model, rest)), in_dims=(None, 0))

        def fn(part: dict[str, Tensor]) -> dict[str, Tensor]:
            return {k: sel.take(k, g, batched=True) for k, g in per_example(chosen, part).items()}
    else:
        fn = SlicedGradient(model, sel)
    was_training = model.training
    model.eval()
    try:  # the math SDPA kernel has vmap batching rules; the fused CPU/CUDA kernels fall back to loops
        for batch in tqdm(batches, desc=desc, leave=False, disable=None if progress else True):
            total: dict[str, Tensor] = {}
            count = 0
            for part in length_parts(to_device(batch, device), chunk, split=device.type == "cpu"):
                n = batch_size(part)
                with sdpa_kernel(SDPBackend.MATH) if chunk else contextlib.nullcontext():
                    grads = fn(part) if sel.names else {}
                grads = {k: g.to(_acc_dtype(g)) for k, g in grads.items()}
                if chunk:
                    yield grads, n
                else:  # the batch's sum over its pieces
                    total = {k: total[k] + g if k in total else g for k, g in grads.items()}
                    count += n
            if not chunk:
                yield total, count
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
