"""The run's loggers: curves of every Lightning phase and the final metrics, in CSV and optionally W&B.

One :class:`RunLoggers` per run. Each phase with a Trainer (θ*/RT training, the fine-tuning methods)
gets :meth:`RunLoggers.phase`: a CSV logger writing ``logs/<phase>/metrics.csv`` and, with W&B, the
run's single W&B run seen through :class:`PrefixLogger`, so every curve lands in one W&B run under
``<phase>/...`` (training loss, the selection candidates' measurements). :meth:`RunLoggers.final`
logs the final metrics and the config once (``logs/metrics.csv`` and the same W&B run).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import CSVLogger, Logger
from lightning.pytorch.utilities import rank_zero_only

from unlearn_lit.config.names import LOGGERS  # noqa: F401  (re-exported)


class PrefixLogger(Logger):
    """Another logger's view that prefixes every metric with ``prefix/`` and leaves its life cycle alone
    (hyperparameters are logged once per run; finalizing is the run's business)."""

    def __init__(self, inner: Logger, prefix: str) -> None:
        super().__init__()
        self.inner, self.prefix = inner, prefix

    @property
    def name(self) -> str | None:
        return self.inner.name

    @property
    def version(self) -> int | str | None:
        return self.inner.version

    @property
    def save_dir(self) -> str | None:
        return self.inner.save_dir

    @rank_zero_only
    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        self.inner.log_metrics({f"{self.prefix}/{k}": v for k, v in metrics.items()}, step=step)

    @rank_zero_only
    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        """Nothing: the run logs its whole config once (:meth:`RunLoggers.final`)."""

    def finalize(self, status: str) -> None:
        """Nothing: the run finalizes the inner logger once."""


class RunLoggers:
    """CSV always; W&B too when ``kind == "wandb"`` (``WANDB_MODE=offline`` needs no key).

    Args:
        directory: the run directory (``logs/`` and W&B's files go there).
        kind: ``csv`` or ``wandb``.
        project: W&B project.
        group: W&B group (the config's table name).
        name: the W&B run's name: the run directory's final name (``directory`` is the partial one).
    """

    def __init__(
        self,
        directory: Path,
        kind: str = "csv",
        project: str = "unlearn_lit",
        group: str = "",
        name: str | None = None,
    ) -> None:
        if kind not in LOGGERS:
            raise ValueError(f"unknown logger {kind!r}; valid choices: {', '.join(LOGGERS)}")
        self.directory, self.kind, self.project, self.group = Path(directory), kind, project, group
        self.name = name or self.directory.name
        self._wandb: Logger | None = None

    @property
    def wandb(self) -> Logger | None:
        """The run's W&B logger (created on first use; None without W&B)."""
        if self.kind != "wandb":
            return None
        if self._wandb is None:
            import wandb
            from lightning.pytorch.loggers import WandbLogger

            # offline, W&B would print a `wandb sync` path inside the partial directory, gone after the
            # rename: it is kept quiet and the run prints the right path (:func:`offline_runs`)
            offline = os.environ.get("WANDB_MODE") in ("offline", "dryrun")
            self._wandb = WandbLogger(
                project=self.project, group=self.group, save_dir=str(self.directory), name=self.name,
                settings=wandb.Settings(silent=offline),
            )  # fmt: skip
        return self._wandb

    def phase(self, name: str) -> list[Logger]:
        """The loggers of one Lightning phase: ``logs/<name>/metrics.csv`` and the prefixed W&B run."""
        loggers: list[Logger] = [CSVLogger(save_dir=str(self.directory), name="logs", version=name)]
        if self.wandb is not None:
            loggers.append(PrefixLogger(self.wandb, name))
        return loggers

    def final(self, metrics: dict[str, float], config: dict[str, Any]) -> None:
        """Logs the config and the final metrics once (``logs/metrics.csv`` and W&B), then finishes the
        W&B run (before the run directory is renamed)."""
        loggers: list[Logger] = [CSVLogger(save_dir=str(self.directory), name="logs", version="")]
        if self.wandb is not None:
            loggers.append(self.wandb)
        with warnings.catch_warnings():
            # logs/ holds the phases' folders: Lightning warns that "previous log files" (only its own
            # metrics.csv and hparams.yaml, which do not exist yet) would be replaced
            warnings.filterwarnings("ignore", message=".*exists and is not empty.*")
            for lg in loggers:
                lg.log_hyperparams(config)
                lg.log_metrics(metrics)
                lg.finalize("success")
        if self._wandb is not None:
            # now, inside the partial directory: at interpreter exit W&B would write into the renamed
            # directory's old path and recreate it (a stray directory)
            self._wandb.experiment.finish()
            self._wandb = None


def offline_runs(directory: str | Path) -> list[Path]:
    """The offline W&B runs saved in a finished run directory (what ``wandb sync`` uploads)."""
    return sorted(Path(directory).glob("wandb/offline-run-*"))
