"""RuntimeRecorder: which runtime each Lightning phase actually ran with (checks and GPU reports)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import lightning as L


class RuntimeRecorder(L.Callback):
    """Records, for every Trainer it is given to, the phase's module and the Trainer's runtime.

    Pass it to :func:`unlearn_lit.run.run` (``callbacks=[recorder]``) to check that every phase received
    the run's runtime: ``recorder.seen`` holds one dict per Trainer (``phase`` = the LightningModule's
    class: ``TrainClassifier`` for θ*/RT, ``MaskLearning`` for phase 1, ``MaskedUnlearning`` for the
    fine-tuning methods, ``SOStatistics`` for the SO-type statistics under a distributed runtime).

    Spawned processes (``ddp_spawn``) run the hooks in copies of the callback: give ``path`` and every
    process appends its records there as JSON lines (:meth:`read` collects them).
    """

    def __init__(self, path: str | Path | None = None) -> None:
        self.seen: list[dict[str, Any]] = []
        self.path = None if path is None else str(path)

    def read(self) -> list[dict[str, Any]]:
        """The records of every process (``path``), or of this one."""
        if self.path is None or not Path(self.path).is_file():
            return list(self.seen)
        return [json.loads(line) for line in Path(self.path).read_text().splitlines()]

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        record = {
            "phase": type(pl_module).__name__,
            "precision": trainer.precision,
            "accelerator": type(trainer.accelerator).__name__,
            "device": str(trainer.strategy.root_device.type),
            "devices": trainer.num_devices,
            "strategy": type(trainer.strategy).__name__,
            "progress_bar": trainer.progress_bar_callback is not None,
            "rank": trainer.global_rank,
        }
        self.seen.append(record)
        if self.path is not None:
            with open(self.path, "a") as f:
                f.write(json.dumps(record) + "\n")
