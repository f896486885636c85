"""Checkpoint selection and early stopping for fine-tuning methods, without RT (METHOD.md §5).

Fine-tuning methods over- or under-forget depending on the number of steps and the learning rate.
:class:`CheckpointSelection` measures the selection sets (:class:`~unlearn_lit.selection.sets.SelectionSets`)
at step 0 (θ* itself) and every k optimizer steps, keeps the candidate table and, in CPU memory, the
weights of the best candidate so far under the RT-free rule
(:class:`~unlearn_lit.selection.rule.SelectionRule`), stops once the forget set has passed its target
plus ``patience`` evaluations, and restores the chosen weights exactly when training ends. With a
:class:`~unlearn_lit.selection.headroom.Headroom`, every candidate is also scored against RT (analysis).

Only trainable parameters are kept: the hard freeze guarantees the others never change. Under a
data-parallel strategy every process measures the same (unsharded) selection sets on identical weights,
so every process chooses and restores the same candidate; with spawned processes, rank 0 writes the
table to ``state_file`` for the main process.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch import Tensor, nn

from unlearn_lit.selection.headroom import Headroom
from unlearn_lit.selection.rule import TARGETS, Choice, SelectionRule
from unlearn_lit.selection.sets import SelectionSets

log = logging.getLogger(__name__)


class CheckpointSelection(L.Callback):
    """Evaluates candidates during training and restores the one the RT-free rule chooses.

    Args:
        sets: the selection sets (anything with ``measure(model) -> dict`` and a reference row ``ref``).
        rule: the RT-free rule.
        target: ``val_loss`` (random forgetting) or ``class`` (class forgetting).
        every_n_steps: optimizer steps between two evaluations.
        patience: evaluations to continue after the forget set first passed its target (None = never
            stop early).
        class_target: forget accuracy that counts as forgotten for ``class`` (a never-seen class: 0).
        headroom: scores every candidate against RT (benchmarks only; never used to choose).
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
    ) -> None:
        if target not in TARGETS:
            raise ValueError(f"unknown selection target {target!r}; valid choices: {', '.join(TARGETS)}")
        if every_n_steps < 1 or (patience is not None and patience < 0):
            raise ValueError(f"need every_n_steps >= 1 and patience >= 0, got {every_n_steps}, {patience}")
        self.sets, self.rule, self.target, self.every_n_steps = sets, rule, target, every_n_steps
        self.patience, self.class_target, self.headroom = patience, class_target, headroom
        self.table: list[dict[str, float]] = []
        self.choice: Choice | None = None
        self.state_file: str | None = None  # rank 0 writes the state here (spawned processes)
        self.passed_at: int | None = None  # evaluation at which the forget set first passed its target
        self.stopped_early = False
        self._best: dict[str, Tensor] = {}
        self.selection_s = 0.0  # measuring and choosing candidates
        self.headroom_s = 0.0  # scoring them against RT (analysis)

    @property
    def chosen_step(self) -> int | None:
        return None if self.choice is None else int(self.table[self.choice.index]["step"])

    # ---------------------------------------------------------------------------------- hooks
    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if hasattr(self.sets, "to"):
            self.sets.to(pl_module.device)
        self._evaluate(trainer, pl_module)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = trainer.global_step
        if step % self.every_n_steps == 0 and step != self.table[-1]["step"]:
            self._evaluate(trainer, pl_module)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.global_step != self.table[-1]["step"]:  # the last state is a candidate too
            self._evaluate(trainer, pl_module)
        params = _trainable(pl_module)
        with torch.no_grad():
            for name, value in self._best.items():
                params[name].copy_(value)
        if self.state_file is not None and trainer.global_rank == 0:  # spawned: the main process reads it
            Path(self.state_file).write_text(json.dumps(self.state_dict()))
        log.info(
            "checkpoint selection: step %s of %d (%s)",
            self.chosen_step,
            trainer.global_step,
            self.choice.reason,
        )

    # ------------------------------------------------------------------------------- internals
    def _evaluate(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        model = getattr(pl_module, "model", pl_module)
        t0 = time.perf_counter()
        row = {"step": trainer.global_step, **self.sets.measure(model)}
        t1 = time.perf_counter()
        if self.headroom is not None:  # analysis, not selection: timed apart
            row.update(self.headroom(model))
        self.headroom_s += time.perf_counter() - t1
        self.table.append(row)
        previous = self.choice
        self.choice = self.rule.choose(self.table, self.sets.ref, self.target)
        self.selection_s += t1 - t0
        if self.choice.index == len(self.table) - 1:
            self._best = {n: p.detach().to("cpu", copy=True) for n, p in _trainable(pl_module).items()}
        elif previous is None or self.choice.index != previous.index:  # the rule is an argmin: cannot happen
            raise RuntimeError(
                f"selection moved to candidate {self.choice.index}, whose weights were not kept"
            )
        metrics = {f"select/{k}": float(v) for k, v in row.items() if k != "step" and "/" not in k}
        for lg in trainer.loggers:
            lg.log_metrics(metrics, step=trainer.global_step)
        if self.passed_at is None and self.rule.passed(row, self.target, self.class_target):
            self.passed_at = len(self.table) - 1
        if self.patience is not None and self.passed_at is not None:
            if len(self.table) - 1 - self.passed_at >= self.patience and not trainer.should_stop:
                trainer.should_stop = self.stopped_early = True
                log.info(
                    "forget set passed its target at step %d; stopping", self.table[self.passed_at]["step"]
                )

    def state_dict(self) -> dict[str, Any]:
        return {
            "table": [dict(r) for r in self.table],
            "choice": None if self.choice is None else dataclasses.asdict(self.choice),
            "passed_at": self.passed_at,
            "stopped_early": self.stopped_early,
            "selection_s": self.selection_s,
            "headroom_s": self.headroom_s,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.table = [dict(r) for r in state_dict["table"]]
        self.choice = None if state_dict["choice"] is None else Choice(**state_dict["choice"])
        self.passed_at, self.stopped_early = state_dict["passed_at"], state_dict["stopped_early"]
        self.selection_s = state_dict.get("selection_s", 0.0)
        self.headroom_s = state_dict.get("headroom_s", 0.0)


def _trainable(pl_module: L.LightningModule) -> dict[str, nn.Parameter]:
    """The parameters the phase may change (``trainable_parameters()`` when the module has it)."""
    if hasattr(pl_module, "trainable_parameters"):
        return pl_module.trainable_parameters()
    model = getattr(pl_module, "model", pl_module)
    return {n: p for n, p in model.named_parameters() if p.requires_grad}
