"""Successive unlearning: R deletion requests arriving one after another (METHOD.md §5).

D_f is split into R seeded parts; request t removes part t. Parts not yet requested are still training
data, so the retain set at request t is D_r ∪ (parts t+1..R) and |D_r^(t)| = |D_r| + |future parts|.

- **memory-free**: at request t recompute the mask (``mask_fn`` on θ^{t-1}), the retain Fisher and the
  forget gradient of part t on θ^{t-1}, and apply the (MAPE-)SO update of eq. θ_u = θ + η M ∘ (F̂ + λ)^{-1} g.
- **memory-aided**: always start from θ*. Statistics are taken once at θ*: squared-gradient sums over the
  retain subsample S and over every part, so N · F̂_all with N = |S| + |D_f|; request t uses the downdated
  Fisher F̂^(t) = (N · F̂_all − Σ_{removed} g²) / (N − |removed|) (the Fisher of S ∪ future parts) and the
  forget gradients accumulated over requests 1..t.

These are functions the pipeline calls, not a registered method.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import ConcatDataset, DataLoader, Dataset, Subset

from unlearn_lit.config.names import SUCCESSIVE_MODES  # noqa: F401  (re-exported)
from unlearn_lit.data.splits import rng
from unlearn_lit.methods.base import UnlearnInputs
from unlearn_lit.methods.fisher import Fisher, ParamSelection, forget_gradient_sum, retain_fisher
from unlearn_lit.methods.so import SOConfig, apply_so
from unlearn_lit.models.base import Backbone
from unlearn_lit.selection import SelectionSets, first_examples

log = logging.getLogger(__name__)

MaskFn = Callable[[Backbone, DataLoader, DataLoader], "dict[str, Tensor] | None"]
Hook = Callable[[int, Backbone, "RequestResult"], "dict[str, Any] | None"]


@dataclass
class RequestResult:
    """One request: which forget examples it removed, θ^t (if kept), the SO choice and the hook's metrics."""

    t: int
    forget_positions: np.ndarray
    model: Backbone | None
    hparams: dict[str, Any] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)


def split_requests(n_forget: int, num_requests: int, seed: int) -> list[np.ndarray]:
    """Seeded split of positions ``0..n_forget-1`` into ``num_requests`` sorted, disjoint parts."""
    if not 1 <= num_requests <= n_forget:
        raise ValueError(
            f"num_requests must lie in [1, {n_forget}] (the forget set size), got {num_requests}"
        )
    perm = rng(seed, "successive_requests").permutation(n_forget)
    return [np.sort(p) for p in np.array_split(perm, num_requests)]


class RequestData:
    """The request parts of ``datamodule.forget``, the retain subsample S and the selection sets."""

    def __init__(self, inputs: UnlearnInputs, cfg: SOConfig, num_requests: int) -> None:
        dm = inputs.datamodule
        self.dm, self.cfg, self.collate = dm, cfg, inputs.original.collate
        self.parts = split_requests(len(dm.forget), num_requests, inputs.seed)
        self.retain_sub = dm.retain_dataloader(subsample=cfg.fisher_examples, seed=inputs.seed).dataset
        self.device = next(inputs.original.parameters()).device
        self.slice = first_examples(
            dm.retain_dataloader(subsample=cfg.selection_retain, seed=inputs.seed), device=self.device
        )
        self.val = first_examples(dm.val_dataloader(), cfg.selection_val, self.device)
        spec = getattr(dm, "forget_spec", None)
        self.exclude = tuple(spec.classes) if getattr(spec, "policy", None) == "class" else ()
        self.autocast = inputs.selection_dtype

    def loader(self, data: Dataset) -> DataLoader:
        return DataLoader(data, batch_size=self.cfg.batch_size, collate_fn=self.collate)

    def forget(self, ts: Sequence[int]) -> Dataset:
        """Forget examples of requests ``ts`` (1-based)."""
        return Subset(self.dm.forget, np.concatenate([self.parts[t - 1] for t in ts]).tolist())

    def retain(self, t: int) -> tuple[Dataset, int]:
        """The retain subsample plus the parts after request t, and |D_r^(t)|."""
        future = list(range(t + 1, len(self.parts) + 1))
        n_future = sum(len(self.parts[s - 1]) for s in future)
        data = ConcatDataset([self.retain_sub, self.forget(future)]) if future else self.retain_sub
        return data, len(self.dm.retain) + n_future

    def sets(self, model: Backbone, ts: Sequence[int]) -> SelectionSets:
        forget = first_examples(self.loader(self.forget(ts)), device=self.device)
        return SelectionSets(model, self.slice, forget, self.val, self.exclude, self.autocast)


def memory_free(
    inputs: UnlearnInputs,
    cfg: SOConfig,
    num_requests: int,
    mask_fn: MaskFn | None = None,
    on_request: Hook | None = None,
    keep_models: bool = False,
) -> list[RequestResult]:
    """Request t: mask, Fisher and forget gradient on θ^{t-1}, then the SO update from θ^{t-1}.

    Args:
        inputs: θ*, the data (the forget set is split into requests), ``param_mask`` used when
            ``mask_fn`` is None (None = full-parameter SO) and seed.
        cfg: the SO config (selection per request; the forget set of the selection is part t).
        num_requests: R.
        mask_fn: ``(model, forget_loader, retain_loader) -> param_mask | None`` recomputing the mask.
        on_request: ``(t, θ^t, result) -> metrics`` called after each request.
        keep_models: keep θ^t of every request (else only the last).
    """
    data, model, results = RequestData(inputs, cfg, num_requests), inputs.original, []
    for t in range(1, num_requests + 1):
        retain, n_retain = data.retain(t)
        forget_loader, retain_loader = data.loader(data.forget([t])), data.loader(retain)
        mask = mask_fn(model, forget_loader, retain_loader) if mask_fn else inputs.param_mask
        sel = ParamSelection(model, _trainable(model, mask))
        fisher = retain_fisher(model, retain_loader, sel, cfg.fisher, cfg.chunk_size, desc=f"fisher t={t}")
        grad_sum, _ = forget_gradient_sum(model, forget_loader, sel, desc=f"forget grad t={t}")
        sets = data.sets(model, [t])
        res = apply_so(model, sel, fisher, grad_sum, n_retain, cfg, sets, _target(inputs, cfg))
        model = res.model
        results.append(_record(t, data, res, on_request, keep_models, results))
    return results


class AidedStatistics:
    """Memory-aided statistics, all at θ*: N · F̂_all once, then per request the removed part's squared
    gradients (downdate) and forget gradients (accumulated). Holds three buffers of the selection's size.

    Args:
        original: θ*.
        sel: the entries statistics are kept for (the support of every request's mask).
        data: the request views.
        cfg: Fisher mode and chunk size.
    """

    def __init__(self, original: Backbone, sel: ParamSelection, data: RequestData, cfg: SOConfig) -> None:
        self.original, self.sel, self.data = original, sel, data
        self.opts = {"mode": cfg.fisher, "chunk_size": cfg.chunk_size}
        every = data.loader(ConcatDataset([data.retain_sub, data.dm.forget]))
        self.all = retain_fisher(original, every, sel, desc="fisher S + D_f", **self.opts)  # N · F̂_all
        self.removed = Fisher({n: torch.zeros_like(s) for n, s in self.all.sumsq.items()}, 0)
        self.grads = {n: torch.zeros_like(s) for n, s in self.all.sumsq.items()}
        self.t = 0

    def advance(self) -> None:
        """Removes the next request's part: downdate sums and accumulate its forget gradients."""
        self.t += 1
        part = self.data.loader(self.data.forget([self.t]))
        self.removed = self.removed + retain_fisher(
            self.original, part, self.sel, desc=f"removed t={self.t}", **self.opts
        )
        grads, _ = forget_gradient_sum(self.original, part, self.sel, desc=f"forget grad t={self.t}")
        self.grads = {n: g + grads[n] for n, g in self.grads.items()}

    def current(
        self, mask: dict[str, Tensor] | None = None
    ) -> tuple[ParamSelection, Fisher, dict[str, Tensor]]:
        """The selection, downdated Fisher and accumulated forget gradient sum after :meth:`advance`."""
        fisher = self.all.downdate(self.removed)
        if mask is None:
            return self.sel, fisher, self.grads
        sub, sel = self.sel.within(mask), ParamSelection(self.original, mask)
        return (
            sel,
            Fisher({n: fisher.sumsq[n][sub[n]] for n in sel.names}, fisher.count),
            {n: self.grads[n][sub[n]] for n in sel.names},
        )


def memory_aided(
    inputs: UnlearnInputs,
    cfg: SOConfig,
    num_requests: int,
    mask_fn: MaskFn | None = None,
    on_request: Hook | None = None,
    keep_models: bool = False,
) -> list[RequestResult]:
    """Request t: the SO update from θ* with the downdated retain Fisher and accumulated forget gradients.

    Statistics are kept for ``inputs.param_mask`` (None = every parameter); a ``mask_fn`` (called on θ*
    with the examples removed so far) must select entries inside it. Arguments as :func:`memory_free`.
    """
    data, original = RequestData(inputs, cfg, num_requests), inputs.original
    stats = AidedStatistics(original, ParamSelection(original, inputs.trainable(original)), data, cfg)
    results: list[RequestResult] = []
    for t in _ts(data):
        retain, n_retain = data.retain(t)
        removed = list(range(1, t + 1))
        mask = mask_fn(original, data.loader(data.forget(removed)), data.loader(retain)) if mask_fn else None
        stats.advance()
        sel, fisher, grad_sum = stats.current(mask)
        sets = data.sets(original, removed)
        res = apply_so(original, sel, fisher, grad_sum, n_retain, cfg, sets, _target(inputs, cfg))
        results.append(_record(t, data, res, on_request, keep_models, results))
    return results


def run_successive(
    mode: str, inputs: UnlearnInputs, cfg: SOConfig, num_requests: int, **kw: Any
) -> list[RequestResult]:
    """Dispatches ``memory_free`` or ``memory_aided``; unknown modes list the valid ones."""
    if mode not in SUCCESSIVE_MODES:
        raise ValueError(f"unknown successive mode {mode!r}; valid choices: {', '.join(SUCCESSIVE_MODES)}")
    return (memory_free if mode == "memory_free" else memory_aided)(inputs, cfg, num_requests, **kw)


def _ts(data: RequestData) -> range:
    return range(1, len(data.parts) + 1)


def _trainable(model: Backbone, mask: dict[str, Tensor] | None) -> dict[str, Tensor]:
    return UnlearnInputs(model, None, None, param_mask=mask).trainable(model)


def _target(inputs: UnlearnInputs, cfg: SOConfig) -> str:
    return cfg.rule.resolve(inputs.datamodule)


def _record(t, data: RequestData, res, on_request: Hook | None, keep: bool, results: list) -> RequestResult:
    out = RequestResult(t, data.parts[t - 1], res.model, res.hparams, res.info)
    out.metrics = (on_request(t, res.model, out) if on_request else None) or {}
    if results and not keep:
        results[-1].model = None  # only the latest θ^t is kept unless asked
    log.info("request %d/%d: %s", t, len(data.parts), {k: res.hparams[k] for k in ("tau", "c", "eta")})
    return out
