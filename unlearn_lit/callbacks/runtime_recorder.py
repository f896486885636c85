"""RuntimeRecorder: which runtime each Lightning phase actually ran with (checks and GPU reports)."""

from __future__ import annotations

from typing import Any

import lightning as L


class RuntimeRecorder(L.Callback):
    """Records, for every Trainer it is given to, the phase's module and the Trainer's runtime.

    Pass it to :func:`unlearn_lit.run.run` (``callbacks=[recorder]``) to check that every phase received
    the run's runtime: ``recorder.seen`` holds one dict per Trainer (``phase`` = the LightningModule's
    class: ``TrainClassifier`` for θ*/RT, ``MaskLearning`` for phase 1, ``MaskedUnlearning`` for the
    fine-tuning methods).
    """

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self.seen.append(
            {
                "phase": type(pl_module).__name__,
                "precision": trainer.precision,
                "accelerator": type(trainer.accelerator).__name__,
                "device": str(trainer.strategy.root_device.type),
                "devices": trainer.num_devices,
                "strategy": type(trainer.strategy).__name__,
                "progress_bar": trainer.progress_bar_callback is not None,
            }
        )
