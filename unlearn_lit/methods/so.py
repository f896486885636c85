"""SO and MAPE-SO: one second-order step, no training loop (METHOD.md §5).

    θ_u = θ* + η · M ∘ (F̂_r + λ)^{-1} · Σ_{x∈D_f} ∇θ ℓ(θ*; x),   η = τ / |D_r|,   λ = c · mean(F̂_r)

M expands the unit mask to parameter shape (``inputs.param_mask``; None = plain SO over every
parameter). λ is relative to the mean Fisher over the updated entries by default (c = 0.1), or absolute.
(τ, c) are selected without RT: the direction u_c = M ∘ (F̂_r + λ_c)^{-1} g^f is computed once per c and
every candidate θ* + (τ/|D_r|) · u_c is measured in inference mode on the selection sets (a retain slice,
D_f, D_v) by the rule of :mod:`unlearn_lit.selection.rule`, searched by
:class:`~unlearn_lit.selection.grid.StepSearch` (a coarse τ × c grid screened on subsets, θ* itself,
then a local log-τ bisection on the full sets) so that selection stays about as cheap as phase 1.
``select="oracle"`` picks the candidate closest to RT (analysis only, labelled ORACLE; needs RT);
``select="fixed"`` applies ``tau``/``c``. The ``paper`` preset keeps the paper's form: absolute η on a
grid, absolute λ, and × |θ|/|θ_updated| for masked versions.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

import torch
from torch import Tensor

from unlearn_lit.config.methods import DAMPINGS, PRESETS, SELECTS, SOConfig  # noqa: F401  (re-exported)
from unlearn_lit.data.splits import subsample
from unlearn_lit.methods.base import MethodResult, UnlearningFailed, UnlearnInputs, register
from unlearn_lit.methods.fisher import (
    Fisher,
    ParamSelection,
    check_finite,
    forget_gradient_sum,
    nbytes,
    retain_fisher,
)
from unlearn_lit.methods.so_statistics import SOStatistics, so_statistics
from unlearn_lit.models.base import Backbone
from unlearn_lit.selection import Choice, Headroom, SelectionSets, StepSearch
from unlearn_lit.selection.headroom import oracle_summary

log = logging.getLogger(__name__)


@register("so", SOConfig, finetunes=False)
def run(inputs: UnlearnInputs, cfg: SOConfig) -> MethodResult:
    """SO (``param_mask`` None) or MAPE-SO (``param_mask`` from the phase-1 mask) on θ*."""
    dm, model = inputs.datamodule, inputs.original
    sel = ParamSelection(model, inputs.trainable(model))
    n_retain = len(dm.retain)
    fisher, grad_sum, (fisher_s, grad_s) = statistics(inputs, cfg, sel)
    t0 = time.perf_counter()
    sets = inputs.sets(cfg.selection_retain, cfg.selection_val)
    t1 = time.perf_counter()
    result = apply_so(
        model,
        sel,
        fisher,
        grad_sum,
        n_retain,
        cfg,
        sets,
        cfg.rule.resolve(dm),
        inputs.headroom,
        progress=inputs.runtime.progress_bar,
    )
    result.info["time_selection_s"] += t1 - t0  # building the selection sets counts as selection
    result.info.update(
        time_fisher_s=fisher_s,
        time_forget_grad_s=grad_s,
        fisher_examples=fisher.count,
        config=asdict(cfg),
    )
    _log_cost(result.info, inputs.phase1_time_s)
    return result


def statistics(
    inputs: UnlearnInputs, cfg: SOConfig, sel: ParamSelection
) -> tuple[Fisher, dict[str, Tensor], tuple[float, float]]:
    """The retain Fisher over ``cfg.fisher_examples`` and the forget gradient sum over ``sel``, with
    their times in seconds. A distributed runtime shards them over its processes and all-reduces (one
    pass, timed as the Fisher's); one process computes them here, under the autocast a ``*-mixed``
    precision would put the distributed pass under, so both give the same statistics."""
    dm, model = inputs.datamodule, inputs.original
    t0 = time.perf_counter()
    if inputs.runtime.distributed:
        n_retain = len(dm.retain)
        positions = torch.as_tensor(subsample(n_retain, cfg.fisher_examples, inputs.seed, "retain_subsample"))
        stats = SOStatistics(model, sel.masks, dm.retain, positions, dm.forget, cfg.fisher, cfg.chunk_size,
                             cfg.batch_size)  # fmt: skip
        fisher, grad_sum = so_statistics(stats, runtime=inputs.runtime, callbacks=list(inputs.callbacks))
        return fisher, grad_sum, (time.perf_counter() - t0, 0.0)
    with inputs.runtime.autocast():
        retain = dm.retain_dataloader(
            subsample=cfg.fisher_examples, seed=inputs.seed, batch_size=cfg.batch_size
        )
        fisher = retain_fisher(model, retain, sel, mode=cfg.fisher, chunk_size=cfg.chunk_size)
        t1 = time.perf_counter()
        grad_sum, _ = forget_gradient_sum(model, dm.forget_dataloader(batch_size=cfg.batch_size), sel)
    return fisher, grad_sum, (t1 - t0, time.perf_counter() - t1)


def _log_cost(info: dict, phase1_s: float | None) -> None:
    """Logs the time split; selection should cost no more than phase 1 (METHOD.md §5), when phase 1 ran."""
    budget = phase1_s if phase1_s else info["time_fisher_s"] + info["time_forget_grad_s"]
    info["selection_over_budget"] = info["time_selection_s"] / max(budget, 1e-9)
    log.info(
        "SO cost: fisher %.2fs, forget grad %.2fs, selection %.2fs over %d candidates (%.2fx of %s)",
        info["time_fisher_s"],
        info["time_forget_grad_s"],
        info["time_selection_s"],
        info["num_candidates"],
        info["selection_over_budget"],
        "phase 1" if phase1_s else "the statistics",
    )
    if phase1_s and info["selection_over_budget"] > 1.0:
        log.warning(
            "SO selection cost %.2fx its budget; shrink the grid or the selection sets",
            info["selection_over_budget"],
        )


class _Step:
    """θ + value · scale · u_c on a copy of θ, with u_c = M ∘ (F̂ + λ_c)^{-1} g^f (compact, one c at a time)."""

    def __init__(self, original: Backbone, sel: ParamSelection, fisher: Fisher, grad_sum, scale: float):
        self.sel, self.fisher, self.grad_sum, self.scale = sel, fisher, grad_sum, scale
        self.model = copy.deepcopy(original)
        self.base = {n: p.detach() for n, p in original.named_parameters() if n in sel.masks}
        self.params = {n: p for n, p in self.model.named_parameters() if n in sel.masks}
        total = sum(float(s.sum()) for s in fisher.sumsq.values())
        self.mean_fisher = total / fisher.count / max(sel.numel, 1)
        self.c: Any = "unset"
        self.u: dict[str, Tensor] = {}

    def damping(self, c: float | None, lam: float) -> float:
        """λ: ``c · mean F̂`` (relative) or ``lam`` when ``c`` is None (absolute)."""
        return lam if c is None else c * self.mean_fisher

    def load(self, c: float | None, lam: float, value: float) -> bool:
        """Writes the candidate into :attr:`model`; False if it has NaN/inf entries."""
        if c != self.c:  # u = g / (F̂ + λ) with F̂ = sumsq / N, without a second Fisher buffer
            n_fisher, lam = self.fisher.count, self.damping(c, lam)
            self.u = {
                n: self.grad_sum[n] * n_fisher / (self.fisher.sumsq[n] + lam * n_fisher)
                for n in self.sel.names
            }
            self.c = c
        with torch.no_grad():
            for n, p in self.params.items():
                new = self.sel.take(n, self.base[n]) + value * self.scale * self.u[n]
                p.copy_(self.sel.put(n, self.base[n], new))
        return all(bool(torch.isfinite(p).all()) for p in self.params.values())


def apply_so(
    original: Backbone,
    sel: ParamSelection,
    fisher: Fisher,
    grad_sum: Mapping[str, Tensor],
    n_retain: int,
    cfg: SOConfig,
    sets: SelectionSets | None,
    target: str = "val_loss",
    headroom: Headroom | None = None,
    progress: bool = False,
) -> MethodResult:
    """Selects the step on the selection sets and returns θ_u = θ + η · u as a new model.

    Args:
        original: the model the step starts from (θ*, or θ^{t-1} for memory-free successive requests).
        sel: the updated entries (M).
        fisher: retain Fisher statistics over ``sel``.
        grad_sum: compact forget gradient sums over ``sel``.
        n_retain: |D_r| of η = τ/|D_r|.
        cfg: the SO config.
        sets: selection sets (None only with ``select="fixed"``).
        target: ``val_loss`` or ``class``.
        headroom: scores every candidate against RT (the oracle's Avg.Gap; ``select="oracle"``).
        progress: show a progress bar over the evaluated candidates.

    Raises:
        UnlearningFailed: NaN/inf statistics or update, or every candidate diverged; ``original`` is untouched.
    """
    check_finite(grad_sum, "forget gradient sum")
    check_finite(fisher.sumsq, "retain Fisher")
    if sets is None and cfg.select != "fixed":
        raise ValueError(f'select="{cfg.select}" needs selection sets; only select="fixed" runs without them')
    t0 = time.perf_counter()
    paper = cfg.preset == "paper"
    scale = sel.total / max(sel.numel, 1) if paper else 1.0 / n_retain  # η = grid value × scale
    step = _Step(original, sel, fisher, grad_sum, scale)

    def describe(c: float | None, value: float) -> dict[str, float]:
        return {"eta": value * scale, "lambda": step.damping(c, cfg.lam)}

    search = StepSearch(
        step.model,
        lambda c, value: step.load(c, cfg.lam, value),
        describe,
        sets,
        cfg.rule,
        target,
        screen=cfg.screen,
        headroom=headroom,
        oracle=cfg.select == "oracle",
        progress=progress,
    )
    rows = search.rows
    cs: list[float | None] = [None] if paper or cfg.damping == "absolute" else list(cfg.cs)
    try:
        if not sel.names:
            rows.append({"stage": "none", "c": None, "value": 0.0, "eta": 0.0, "lambda": 0.0})
            choice = Choice(0, "nothing to update: the mask selects no entry")
        elif cfg.select == "fixed":
            search.evaluate(None if cs == [None] else cfg.c, cfg.eta if paper else cfg.tau, "full")
            choice = Choice(0, "fixed hyperparameters (no selection)")
        else:
            choice = search.run(cs, cfg.etas if paper else cfg.taus, refine=0 if paper else cfg.refine,
                                max_extend=cfg.max_extend)  # fmt: skip
    except ValueError as err:
        raise UnlearningFailed(f"SO selection failed: {err}") from err
    best = rows[choice.index]
    t_update = time.perf_counter()
    if sel.names and not step.load(best["c"], cfg.lam, best["value"]):
        raise UnlearningFailed(f"the SO update has NaN/inf entries (c={best['c']}, step={best['value']:g})")
    buffers = {"fisher": nbytes(fisher.sumsq), "grad": nbytes(dict(grad_sum)), "step": nbytes(step.u)}
    hparams = {
        "tau": None if paper else best["value"],
        "c": best["c"],
        "eta": best["eta"],
        "lambda": best["lambda"],
        "preset": cfg.preset,
        "select": cfg.select,
        "damping": "relative" if cs != [None] else "absolute",
        "fisher": cfg.fisher,
    }
    info = {
        "choice": choice.index,
        "reason": choice.reason,
        "oracle": choice.oracle,
        "kept_original": best["value"] == 0.0,
        "target": target,
        "guard": cfg.rule.guard,
        "num_candidates": len(rows),
        "num_pruned": sum("pruned" in r for r in rows),  # stopped once outside the guard (rule.prune)
        "num_completed": search.completed,  # pruned, then measured whole for the rule's fallback
        "time_selection_s": t_update - t0 - search.headroom_s,
        "time_update_s": time.perf_counter() - t_update,
        "time_headroom_s": search.headroom_s,
        "buffer_bytes": {**buffers, "total": sum(buffers.values())},
        "params_updated": sel.numel,
        "params_total": sel.total,
        "params_with_selected_entries": len(sel.names),
        "n_retain": n_retain,
        "mean_fisher": step.mean_fisher,
        "selection_ref": None if sets is None else dict(sets.ref),  # θ*'s row: re-apply any guard offline
        **oracle_summary(rows),
    }
    return MethodResult(step.model, hparams, rows, info)
