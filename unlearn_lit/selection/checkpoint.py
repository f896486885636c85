"""Checkpoint selection and early stopping for fine-tuning methods, without RT (METHOD.md §5).

Fine-tuning methods over- or under-forget depending on the number of steps and the learning rate.
:class:`CheckpointSelection` measures the selection sets (:class:`~unlearn_lit.selection.sets.SelectionSets`)
at step 0 (θ* itself) and every k optimizer steps, keeps the candidate table, stops once the forget set
has passed its target plus ``patience`` evaluations, and restores the chosen weights exactly when
training ends. With a :class:`~unlearn_lit.selection.headroom.Headroom`, every candidate is also scored
against RT (analysis).

**Screen, then confirm** (selection within budget): with ``screen`` sets (a few examples of each
selection set; the fine-tuning methods spread them through each set), every checkpoint is measured on
the screen only, and the rule's order on the screen
(:meth:`~unlearn_lit.selection.rule.SelectionRule.rank`) keeps the ``confirm_top`` best checkpoints
after step 0. When training ends, those, step 0 (measured in full when training starts) and the last
checkpoint are measured on the full sets, and the unchanged rule chooses among them: at most
``confirm_top + 2`` full evaluations per run instead of one per checkpoint (``confirm_top + 1`` when
training starts from θ*, whose row the sets already hold). The rule's order is a fixed
key per row, so a checkpoint that left the running top k never returns to it, and only the kept
checkpoints' weights are held. Without a screen, every checkpoint is measured in full and only the
rule's current choice is held (the rule is an argmin: it never moves back to an earlier candidate).

Weights are held in CPU memory, and only the entries the phase may change (the updated entries of a
masked parameter; the hard freeze guarantees the others never change). Under a data-parallel strategy
every process measures the same (unsharded) selection sets on identical weights, so every process
chooses and restores the same candidate; with spawned processes, rank 0 writes the table to
``state_file`` for the main process.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch import Tensor, nn

from unlearn_lit.selection.headroom import Headroom, best_scored
from unlearn_lit.selection.rule import TARGETS, Choice, SelectionRule
from unlearn_lit.selection.sets import MEASURES, SelectionSets

log = logging.getLogger(__name__)


class CheckpointSelection(L.Callback):
    """Evaluates candidates during training and restores the one the RT-free rule chooses.

    Args:
        sets: the selection sets (anything with ``measure(model, stop=None) -> dict`` and a reference
            row ``ref``; ``stop`` may end a measurement early, see :meth:`SelectionSets.measure`).
        rule: the RT-free rule.
        target: ``val_loss`` (random forgetting) or ``class`` (class forgetting).
        every_n_steps: optimizer steps between two evaluations.
        patience: evaluations to continue after the forget set first passed its target (None = never
            stop early).
        class_target: forget accuracy that counts as forgotten for ``class`` (a never-seen class: 0).
        headroom: scores every candidate against RT (benchmarks only; never used to choose).
        screen: the screen sets every checkpoint is measured on (e.g. ``sets.subset(64)``; same
            interface); None measures every checkpoint on ``sets``.
        confirm_top: with a screen, the checkpoints after step 0 that the screen keeps for the full sets.
        start_row: with a screen, the full sets' row of the start model when it is already known (θ*'s
            reference row, ``sets.ref``, when training starts from θ*): step 0 is then not measured again,
            on the full sets or on the screen (whose reference row is then the start model's too).

    The table holds one row per checkpoint: ``step``, the full sets' measurements (NaN where a
    screened checkpoint was not confirmed) and, with a screen, ``screen/<measure>``.
    """

    def __init__(
        self,
        sets: SelectionSets,
        rule: SelectionRule,
        target: str,
        every_n_steps: int = 10,
        patience: int | None = 2,
        class_target: float = 0.0,
        headroom: Headroom | None = None,
        screen: SelectionSets | None = None,
        confirm_top: int = 3,
        start_row: dict[str, float] | None = None,
    ) -> None:
        if target not in TARGETS:
            raise ValueError(f"unknown selection target {target!r}; valid choices: {', '.join(TARGETS)}")
        if every_n_steps < 1 or (patience is not None and patience < 0) or confirm_top < 1:
            raise ValueError(
                "need every_n_steps >= 1, patience >= 0 and confirm_top >= 1, "
                f"got {every_n_steps}, {patience}, {confirm_top}"
            )
        self.sets, self.rule, self.target, self.every_n_steps = sets, rule, target, every_n_steps
        self.patience, self.class_target, self.headroom = patience, class_target, headroom
        self.screen, self.confirm_top, self.start_row = screen, confirm_top, start_row
        self.table: list[dict[str, float]] = []
        self.choice: Choice | None = None
        self.state_file: str | None = None  # rank 0 writes the state here (spawned processes)
        self.passed_at: int | None = None  # evaluation at which the forget set first passed its target
        self.stopped_early = False
        self.evaluations = {"screen": 0, "full": 0}  # measurements of the screen and of the full sets
        self._weights: dict[int, dict[str, Tensor]] = {}  # table index -> changed entries, on CPU
        self.selection_s = 0.0  # measuring and choosing candidates
        self.headroom_s = 0.0  # scoring them against RT (analysis)

    @property
    def chosen_step(self) -> int | None:
        return None if self.choice is None else int(self.table[self.choice.index]["step"])

    @property
    def trajectory(self) -> tuple[list[dict[str, float]], dict[str, float]]:
        """Every checkpoint's row as it was measured during training (the screen's, without the
        ``screen/`` prefix, or the full rows without a screen) and the matching reference row."""
        if self.screen is None:
            return self.table, self.sets.ref
        rows = [
            {"step": r["step"], **{k[7:]: v for k, v in r.items() if k.startswith("screen/")}}
            for r in self.table
        ]
        return rows, self.screen.ref

    # ---------------------------------------------------------------------------------- hooks
    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        for sets in (self.sets, self.screen):
            if hasattr(sets, "to"):
                sets.to(pl_module.device)
        self._evaluate(trainer, pl_module)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = trainer.global_step
        if step % self.every_n_steps == 0 and step != self.table[-1]["step"]:
            self._evaluate(trainer, pl_module)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.global_step != self.table[-1]["step"]:  # the last state is a candidate too
            self._evaluate(trainer, pl_module)
        if self.screen is not None:
            self._confirm(pl_module)
        _restore(pl_module, self._weights[self.choice.index])
        self._weights.clear()
        if self.state_file is not None and trainer.global_rank == 0:  # spawned: the main process reads it
            Path(self.state_file).write_text(json.dumps(self.state_dict()))
        log.info(
            "checkpoint selection: step %s of %d (%s)",
            self.chosen_step,
            trainer.global_step,
            self.choice.reason,
        )

    # ------------------------------------------------------------------------------- internals
    def _measure(self, model: nn.Module, stage: str, stop: Any = None) -> dict[str, float]:
        self.evaluations[stage] += 1
        return (self.sets if stage == "full" else self.screen).measure(model, stop=stop)

    def _stop(self, measured: list[dict[str, float]]) -> Any:
        """A confirmed checkpoint may stop being measured once it fails the guard when a row already
        measured in full for the final choice is within it (:meth:`SelectionRule.outside`; a row not
        measured yet is NaN, never within): the rule then chooses among rows within the guard, measured
        whole. Checkpoints are never pruned during training: early stopping and the learning-rate
        retries read every measured row."""
        ref = self.sets.ref
        return self.rule.stop(ref, self.target) if any(self.rule.within(r, ref) for r in measured) else None

    def _evaluate(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        model = getattr(pl_module, "model", pl_module)
        t0 = time.perf_counter()
        if self.screen is None:
            row = {"step": trainer.global_step, **self._measure(model, "full")}
            logged = {f"select/{k}": v for k, v in row.items() if k != "step"}
        else:
            if not self.table and self.start_row is not None:  # the start model is the sets' reference:
                screened = {k: self.screen.ref[k] for k in MEASURES}  # its screen row is theirs, sliced
            else:
                screened = self._measure(model, "screen")
            row = {"step": trainer.global_step, **dict.fromkeys(MEASURES, math.nan)}
            row.update({f"screen/{k}": v for k, v in screened.items()})
            logged = {f"select/screen/{k}": v for k, v in screened.items()}
            if not self.table:  # step 0 in full now: it needs no weights to be confirmed later
                known = self.start_row is not None
                row.update(
                    {k: self.start_row[k] for k in MEASURES} if known else self._measure(model, "full")
                )
                logged.update({f"select/{k}": row[k] for k in MEASURES})
        t1 = time.perf_counter()
        if self.headroom is not None:  # analysis, not selection: timed apart
            row.update(self.headroom(model, best_scored(self.table)))
        t2 = time.perf_counter()
        self.headroom_s += t2 - t1
        self.table.append(row)
        keep = self._keep()
        if len(self.table) - 1 in keep:
            self._weights[len(self.table) - 1] = _snapshot(pl_module)
        for index in set(self._weights) - keep:
            del self._weights[index]
        if missing := keep - set(self._weights):  # the rule's order is a fixed key: cannot happen
            raise RuntimeError(f"selection kept candidates {sorted(missing)}, whose weights were not kept")
        self.selection_s += t1 - t0 + time.perf_counter() - t2
        for lg in trainer.loggers:
            lg.log_metrics({k: float(v) for k, v in logged.items()}, step=trainer.global_step)
        rows, _ = self.trajectory
        if self.passed_at is None and self.rule.passed(rows[-1], self.target, self.class_target):
            self.passed_at = len(self.table) - 1
        if self.patience is not None and self.passed_at is not None:
            if len(self.table) - 1 - self.passed_at >= self.patience and not trainer.should_stop:
                trainer.should_stop = self.stopped_early = True
                log.info(
                    "forget set passed its target at step %d; stopping", self.table[self.passed_at]["step"]
                )

    def _keep(self) -> set[int]:
        """The table indices whose weights are held: the rule's current choice (no screen), or step 0
        and the screen's ``confirm_top`` best checkpoints after it."""
        if self.screen is None:
            self.choice = self.rule.choose(self.table, self.sets.ref, self.target)
            return {self.choice.index}
        rows, ref = self.trajectory
        return {0, *(i + 1 for i in self.rule.rank(rows[1:], ref, self.target, self.confirm_top))}

    def _confirm(self, pl_module: L.LightningModule) -> None:
        """Measures the kept checkpoints and the last one on the full sets; the rule chooses among
        them and step 0."""
        t0 = time.perf_counter()
        model = getattr(pl_module, "model", pl_module)
        last = len(self.table) - 1
        if last not in self._weights:
            self._weights[last] = _snapshot(pl_module)
        confirmed = sorted(self._weights)
        for index in (last, *[i for i in confirmed if i not in (0, last)]):  # the last first: in place
            if index != last:
                _restore(pl_module, self._weights[index])
            if index:
                stop = self._stop([self.table[i] for i in confirmed if i != index])  # unmeasured: NaN
                self.table[index].update(self._measure(model, "full", stop))
        rows = [self.table[i] for i in confirmed]
        choice = self.rule.choose(rows, self.sets.ref, self.target)
        self.choice = Choice(
            confirmed[choice.index],
            f"{choice.reason}; {len(confirmed)} of {len(self.table)} checkpoints confirmed on the full "
            "sets after the screen",
        )
        self.selection_s += time.perf_counter() - t0

    def state_dict(self) -> dict[str, Any]:
        return {
            "table": [dict(r) for r in self.table],
            "choice": None if self.choice is None else dataclasses.asdict(self.choice),
            "passed_at": self.passed_at,
            "stopped_early": self.stopped_early,
            "evaluations": dict(self.evaluations),
            "selection_s": self.selection_s,
            "headroom_s": self.headroom_s,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.table = [dict(r) for r in state_dict["table"]]
        self.choice = None if state_dict["choice"] is None else Choice(**state_dict["choice"])
        self.passed_at, self.stopped_early = state_dict["passed_at"], state_dict["stopped_early"]
        self.evaluations = dict(state_dict.get("evaluations", self.evaluations))
        self.selection_s = state_dict.get("selection_s", 0.0)
        self.headroom_s = state_dict.get("headroom_s", 0.0)


def _trainable(pl_module: L.LightningModule) -> dict[str, nn.Parameter]:
    """The parameters the phase may change (``trainable_parameters()`` when the module has it)."""
    if hasattr(pl_module, "trainable_parameters"):
        return pl_module.trainable_parameters()
    model = getattr(pl_module, "model", pl_module)
    return {n: p for n, p in model.named_parameters() if p.requires_grad}


def _snapshot(pl_module: L.LightningModule) -> dict[str, Tensor]:
    """The entries the phase may change, copied to CPU (``[n_updated]`` for a masked parameter)."""
    frozen = getattr(pl_module, "frozen", {})  # MaskedUnlearning: name -> Bool frozen entries
    return {
        name: (p.detach()[~frozen[name]] if name in frozen else p.detach()).to("cpu", copy=True)
        for name, p in _trainable(pl_module).items()
    }


@torch.no_grad()
def _restore(pl_module: L.LightningModule, weights: dict[str, Tensor]) -> None:
    """Writes a :func:`_snapshot` back (bit-exact)."""
    frozen, params = getattr(pl_module, "frozen", {}), _trainable(pl_module)
    for name, value in weights.items():
        p = params[name]
        if name in frozen:
            p.masked_scatter_(~frozen[name], value.to(p.device))
        else:
            p.copy_(value)
