"""SO and MAPE-SO: one second-order step, no training loop (METHOD.md §5).

    θ_u = θ* + η · M ∘ (F̂_r + λ)^{-1} · Σ_{x∈D_f} ∇θ ℓ(θ*; x),   η = τ / |D_r|,   λ = c · mean(F̂_r)

M expands the unit mask to parameter shape (``inputs.param_mask``; None = plain SO over every
parameter). λ is relative to the mean Fisher over the updated entries by default (c = 0.1), or absolute.
(τ, c) are selected without RT: the direction u_c = M ∘ (F̂_r + λ_c)^{-1} g^f is computed once per c and
every candidate θ* + (τ/|D_r|) · u_c is measured in inference mode on the selection sets (a retain slice,
D_f, D_v) by the rule of :mod:`unlearn_lit.methods.selection`. To keep the selection about as cheap as
phase 1, the coarse log grid (τ × c) is screened on the first ``screen`` examples of each selection set
and extended by a decade while the choice sits on the edge the rule points past; the screen's choice
and ``refine`` rounds of log-τ bisection towards the rule's target (a larger step while the forget loss
is below the validation loss and the damage bound holds, a smaller one otherwise) are measured on the
full sets, and the final choice is made among those. Every candidate is kept in the table (``stage``). ``select="oracle"`` picks the candidate closest to RT
(analysis only, labelled ORACLE); ``select="fixed"`` applies ``tau``/``c``. The ``paper`` preset keeps
the paper's form: absolute η on a grid, absolute λ, and × |θ|/|θ_updated| for masked versions.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor

from unlearn_lit.masks.stats import batch_size
from unlearn_lit.methods.base import MethodResult, UnlearningFailed, UnlearnInputs, register
from unlearn_lit.methods.fisher import (
    FISHER_MODES,
    Fisher,
    ParamSelection,
    check_finite,
    forget_gradient_sum,
    nbytes,
    retain_fisher,
    to_device,
)
from unlearn_lit.methods.selection import Choice, SelectionSets, choose, choose_oracle
from unlearn_lit.models.base import Backbone

log = logging.getLogger(__name__)

PRESETS = ("default", "paper")
SELECTS = ("rule", "oracle", "fixed")
DAMPINGS = ("relative", "absolute")
TARGETS = ("auto", "val_loss", "class")
NAN_ROW = ("damage", "forget_loss", "val_loss", "forget_acc", "val_acc")


@dataclass
class SOConfig:
    """Hyperparameters of SO / MAPE-SO.

    Attributes:
        preset: ``default`` (η = τ/|D_r|, relative λ) or ``paper`` (absolute η grid ``etas``, absolute
            ``lam``, η × |θ|/|θ_updated| for masked versions).
        select: ``rule`` (RT-free), ``oracle`` (closest to RT, analysis only; needs
            ``inputs.extra["rt_metrics"]`` and ``inputs.extra["evaluate"]``) or ``fixed``.
        tau: τ for ``select="fixed"``.
        c: relative damping for ``select="fixed"``.
        damping: ``relative`` (λ = c · mean F̂_r over the updated entries) or ``absolute`` (λ = ``lam``).
        lam: absolute λ (``damping="absolute"`` and the paper preset).
        taus: coarse log grid of τ.
        cs: relative damping grid.
        screen: examples of each selection set the coarse grid is measured on (None = all); the choice
            and the refinement are measured on the full selection sets.
        refine: rounds of log-τ bisection between the choice and its neighbour on the side the rule
            points to (both sides in oracle mode).
        max_extend: decades added beyond an edge of the τ grid when the rule points past it.
        etas: the paper preset's η grid.
        eta: the paper preset's η for ``select="fixed"``.
        eps: damage bound of the rule (mean KL on the retain slice, nats).
        target: ``val_loss`` (random forgetting), ``class`` (class forgetting) or ``auto`` (from the
            datamodule's forget policy).
        fisher: ``per_example`` or ``per_batch``.
        fisher_examples: seeded subsample of D_r for the Fisher (None = all of D_r).
        chunk_size: examples whose per-example gradients are held at once.
        batch_size: batch size of the Fisher and forget-gradient loaders.
        selection_retain: examples of the retain slice of the selection sets.
        selection_val: examples of D_v in the selection sets.
    """

    preset: str = "default"
    select: str = "rule"
    tau: float = 0.01
    c: float = 0.1
    damping: str = "relative"
    lam: float = 1e-8
    taus: tuple[float, ...] = (1e-4, 1e-3, 1e-2, 1e-1)
    cs: tuple[float, ...] = (0.01, 0.1, 1.0)
    screen: int | None = 64
    refine: int = 2
    max_extend: int = 2
    etas: tuple[float, ...] = (1e-7, 2e-7, 5e-7, 1e-6)
    eta: float = 1e-6
    eps: float = 0.02
    target: str = "auto"
    fisher: str = "per_example"
    fisher_examples: int | None = 1024
    chunk_size: int = 8
    batch_size: int = 32
    selection_retain: int = 512
    selection_val: int = 512

    def __post_init__(self) -> None:
        for name, value, choices in (
            ("preset", self.preset, PRESETS),
            ("select", self.select, SELECTS),
            ("damping", self.damping, DAMPINGS),
            ("target", self.target, TARGETS),
            ("fisher", self.fisher, FISHER_MODES),
        ):
            if value not in choices:
                raise ValueError(f"unknown {name} {value!r}; valid choices: {', '.join(choices)}")
        grids = {"taus": self.taus, "cs": self.cs, "etas": self.etas}
        for name, grid in grids.items():
            if not grid or any(v <= 0 for v in grid):
                raise ValueError(f"{name} must be a non-empty tuple of positive numbers, got {grid}")
        if min(self.tau, self.c, self.eta, self.eps) <= 0 or self.lam < 0:
            raise ValueError("tau, c, eta and eps must be positive and lam non-negative")
        for name in ("fisher_examples", "screen"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"{name} must be None or >= 1, got {getattr(self, name)}")
        if self.refine < 0 or self.max_extend < 0:
            raise ValueError(f"refine and max_extend must be >= 0, got {self.refine}, {self.max_extend}")


@register("so", SOConfig, finetunes=False)
def run(inputs: UnlearnInputs, cfg: SOConfig) -> MethodResult:
    """SO (``param_mask`` None) or MAPE-SO (``param_mask`` from the phase-1 mask) on θ*."""
    dm, model = inputs.datamodule, inputs.original
    sel = ParamSelection(model, inputs.trainable(model))
    n_retain = len(dm.retain)
    t0 = time.perf_counter()
    fisher = retain_fisher(
        model,
        dm.retain_dataloader(subsample=cfg.fisher_examples, seed=inputs.seed, batch_size=cfg.batch_size),
        sel,
        mode=cfg.fisher,
        chunk_size=cfg.chunk_size,
    )
    t1 = time.perf_counter()
    grad_sum, _ = forget_gradient_sum(model, dm.forget_dataloader(batch_size=cfg.batch_size), sel)
    t2 = time.perf_counter()
    sets = inputs.extra.get("selection_sets") or selection_sets(
        model, dm, cfg.selection_retain, cfg.selection_val, inputs.seed
    )
    t3 = time.perf_counter()
    result = apply_so(model, sel, fisher, grad_sum, n_retain, cfg, sets, target_for(cfg, dm), inputs.extra)
    result.info["time_selection_s"] += t3 - t2  # building the selection sets counts as selection
    result.info.update(
        time_fisher_s=t1 - t0,
        time_forget_grad_s=t2 - t1,
        fisher_examples=fisher.count,
        config=asdict(cfg),
    )
    _log_cost(result.info, inputs.extra.get("phase1_time_s"))
    return result


def _log_cost(info: dict, phase1_s: float | None) -> None:
    """Logs the time split; selection should cost no more than phase 1 (METHOD.md §5)."""
    budget = phase1_s if phase1_s is not None else info["time_fisher_s"] + info["time_forget_grad_s"]
    info["selection_over_budget"] = info["time_selection_s"] / max(budget, 1e-9)
    log.info(
        "SO cost: fisher %.2fs, forget grad %.2fs, selection %.2fs over %d candidates (%.2fx of %s)",
        info["time_fisher_s"],
        info["time_forget_grad_s"],
        info["time_selection_s"],
        info["num_candidates"],
        info["selection_over_budget"],
        "phase 1" if phase1_s is not None else "the statistics",
    )
    if info["selection_over_budget"] > 1.0:
        log.warning(
            "SO selection cost %.2fx its budget; shrink the grid or the selection sets",
            info["selection_over_budget"],
        )


def target_for(cfg: SOConfig, datamodule: Any) -> str:
    """The selection target: ``class`` for class forgetting, else ``val_loss`` (``auto`` reads the policy)."""
    if cfg.target != "auto":
        return cfg.target
    policy = getattr(getattr(datamodule, "forget_spec", None), "policy", "random")
    return "class" if policy == "class" else "val_loss"


def selection_sets(model: Backbone, datamodule: Any, n_retain: int, n_val: int, seed: int) -> SelectionSets:
    """A seeded retain slice, D_f and the first ``n_val`` examples of D_v, on the model's device, with
    θ*'s reference predictions."""
    device = next(model.parameters()).device
    return SelectionSets(
        model,
        first_examples(datamodule.retain_dataloader(subsample=n_retain, seed=seed), device=device),
        first_examples(datamodule.forget_dataloader(), device=device),
        first_examples(datamodule.val_dataloader(), n_val, device),
    )


def first_examples(
    batches: Iterable[dict[str, Tensor]], n: int | None = None, device: torch.device | None = None
) -> list[dict[str, Tensor]]:
    """Batches holding the first ``n`` examples (all when None; the last one trimmed), moved to ``device``."""
    out, seen = [], 0
    for batch in batches:
        if n is not None and seen >= n:
            break
        keep = batch_size(batch) if n is None else min(batch_size(batch), n - seen)
        batch = {k: v[:keep] if isinstance(v, Tensor) else v for k, v in batch.items()}
        out.append(to_device(batch, device) if device is not None else batch)
        seen += keep
    return out


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
    extra: Mapping[str, Any] | None = None,
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
        extra: ``rt_metrics`` and ``evaluate`` for the oracle mode.

    Raises:
        UnlearningFailed: NaN/inf statistics or update, or every candidate diverged; ``original`` is untouched.
    """
    check_finite(grad_sum, "forget gradient sum")
    check_finite(fisher.sumsq, "retain Fisher")
    if cfg.select == "oracle":
        _oracle(extra)
    if sets is None and cfg.select != "fixed":
        raise ValueError(f'select="{cfg.select}" needs selection sets; only select="fixed" runs without them')
    t0 = time.perf_counter()
    paper = cfg.preset == "paper"
    scale = sel.total / max(sel.numel, 1) if paper else 1.0 / n_retain  # η = grid value × scale
    search = _Search(original, _Step(original, sel, fisher, grad_sum, scale), cfg, sets, target, extra)
    step, rows = search.step, search.rows
    cs: list[float | None] = [None] if paper or cfg.damping == "absolute" else list(cfg.cs)
    if not sel.names:
        rows.append({"stage": "none", "c": None, "value": 0.0, "eta": 0.0, "lambda": 0.0})
        choice = Choice(0, "nothing to update: the mask selects no entry")
    elif cfg.select == "fixed":
        search.evaluate(None if cs == [None] else cfg.c, cfg.eta if paper else cfg.tau, "full")
        choice = Choice(0, "fixed hyperparameters (no selection)")
    else:
        choice = search.run(cs, cfg.etas if paper else cfg.taus, refine=not paper)
    best = rows[choice.index]
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
        "target": target,
        "num_candidates": len(rows),
        "time_selection_s": time.perf_counter() - t0,
        "buffer_bytes": {**buffers, "total": sum(buffers.values())},
        "params_updated": sel.numel,
        "params_total": sel.total,
        "params_with_selected_entries": len(sel.names),
        "n_retain": n_retain,
        "mean_fisher": step.mean_fisher,
    }
    return MethodResult(step.model, hparams, rows, info)


class _Search:
    """The candidate table: a coarse grid screened on a subset of the selection sets, extended past an
    edge the choice lands on, then the choice and a local bisection measured on the full sets."""

    def __init__(self, original: Backbone, step: _Step, cfg: SOConfig, sets, target: str, extra) -> None:
        self.step, self.cfg, self.target, self.extra = step, cfg, target, extra
        self.sets = {"full": sets, "screen": _subsets(original, sets, cfg.screen)}
        self.rows: list[dict[str, Any]] = []

    def evaluate(self, c: float | None, value: float, stage: str) -> None:
        if any(r["stage"] == stage and r["c"] == c and math.isclose(r["value"], value) for r in self.rows):
            return
        finite = self.step.load(c, self.cfg.lam, value)
        lam = self.step.damping(c, self.cfg.lam)
        row = {"stage": stage, "c": c, "value": value, "eta": value * self.step.scale, "lambda": lam}
        if self.sets[stage] is not None:
            row.update(
                self.sets[stage].measure(self.step.model) if finite else dict.fromkeys(NAN_ROW, math.nan)
            )
        if self.cfg.select == "oracle" and finite:
            row.update({f"eval/{k}": v for k, v in _oracle(self.extra)[1](self.step.model).items()})
        self.rows.append(row)

    def choose(self, stage: str) -> Choice:
        idx = [i for i, r in enumerate(self.rows) if r["stage"] == stage]
        choice = _choose([self.rows[i] for i in idx], self.cfg, self.target, self.extra)
        return Choice(idx[choice.index], choice.reason, choice.oracle)

    def run(self, cs: list[float | None], grid: tuple[float, ...], refine: bool) -> Choice:
        for c in cs:
            for value in grid:
                self.evaluate(c, value, "screen")
        choice = self.choose("screen")
        for _ in range(self.cfg.max_extend):  # a decade past the edge the rule points beyond
            row = self.rows[choice.index]
            values = sorted(r["value"] for r in self.rows if r["c"] == row["c"])
            way = self.direction(row)
            if way >= 0 and row["value"] == values[-1]:
                self.evaluate(row["c"], row["value"] * 10, "screen")
            elif way <= 0 and row["value"] == values[0]:
                self.evaluate(row["c"], row["value"] / 10, "screen")
            else:
                break
            choice = self.choose("screen")
        row = self.rows[choice.index]
        self.evaluate(row["c"], row["value"], "full")
        choice = self.choose("full")
        for _ in range(self.cfg.refine if refine else 0):  # bisect in log τ towards the rule's target
            row = self.rows[choice.index]
            values = sorted({r["value"] for r in self.rows if r["c"] == row["c"]})
            below = [v for v in values if v < row["value"]]
            above = [v for v in values if v > row["value"]]
            way = self.direction(row)
            if way >= 0:
                self.evaluate(
                    row["c"], math.sqrt(row["value"] * (above[0] if above else row["value"] * 10)), "full"
                )
            if way <= 0:
                self.evaluate(
                    row["c"], math.sqrt(row["value"] * (below[-1] if below else row["value"] / 10)), "full"
                )
            choice = self.choose("full")
        return choice

    def direction(self, row: dict[str, Any]) -> int:
        """+1 if a larger step should be closer to the rule's target, -1 if a smaller one, 0 if unknown."""
        if self.cfg.select == "oracle":
            return 0
        if not row["damage"] <= self.cfg.eps:
            return -1
        if self.target == "class":
            return 1
        return 1 if row["forget_loss"] < row["val_loss"] else -1


def _subsets(original: Backbone, sets: SelectionSets | None, n: int | None) -> SelectionSets | None:
    """The first ``n`` examples of each selection set (the coarse screen), or ``sets`` itself."""
    if sets is None or n is None:
        return sets
    return SelectionSets(
        original, *(first_examples(getattr(sets, k), n) for k in ("retain", "forget", "val"))
    )


def _choose(rows: list[dict[str, Any]], cfg: SOConfig, target: str, extra) -> Choice:
    try:
        if cfg.select == "oracle":
            rt, _ = _oracle(extra)
            return choose_oracle(rows, lambda r: _gap(r, rt))
        return choose(rows, eps=cfg.eps, target=target)
    except ValueError as err:
        raise UnlearningFailed(f"SO selection failed: {err}") from err


def _oracle(extra: Mapping[str, Any] | None) -> tuple[dict[str, float], Any]:
    extra = extra or {}
    if "rt_metrics" not in extra or not callable(extra.get("evaluate")):
        raise ValueError(
            'select="oracle" needs inputs.extra["rt_metrics"] (dict) and inputs.extra["evaluate"] (model -> dict)'
        )
    return extra["rt_metrics"], extra["evaluate"]


def _gap(row: Mapping[str, Any], rt: Mapping[str, float]) -> float:
    """Mean absolute difference to RT over the metrics both report (ORACLE, analysis only)."""
    diffs = [abs(row[f"eval/{k}"] - v) for k, v in rt.items() if f"eval/{k}" in row]
    return sum(diffs) / len(diffs) if diffs else math.nan
