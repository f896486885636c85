"""GreedyMaskSearch: turns phase-1 statistics into the mask artifact when phase 1 ends (METHOD.md §4).

The artifact itself is :func:`unlearn_lit.masks.build.build_artifact`, a pure function of the
statistics; the phase-1 entry point is :func:`unlearn_lit.phases.mask_learning.learn_mask`.

Warm start (top-k by score, global across layers, per kind or joint), then -- for MLR -- the one-pass
greedy block search with the block-diagonal Fisher. The result lives in the callback's state
(``state_dict``/``load_state_dict``), so phase 2 receives the mask without phase 1 knowing about it,
and is saved as ``mask.safetensors`` + ``mask.json`` + ``mask.png`` when ``out_dir`` is given.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from safetensors.torch import save_file

from unlearn_lit.masks.artifact import MaskArtifact
from unlearn_lit.masks.build import build_artifact

STATISTICS_FILE = "mask_statistics.safetensors"


def save_statistics(stats: dict[str, Any], path: Path) -> None:
    """Writes the per-unit sums of phase 1 (not the G rows) atomically, for analysis and checks."""
    tensors = {
        f"{name}.{k}": v
        for name, per_kind in stats.items()
        if isinstance(per_kind, dict) and name != "G"
        for k, v in per_kind.items()
    }
    tensors["counts"] = torch.tensor([stats["num_forget"], stats["num_retain"]], dtype=torch.float64)
    tmp = path.with_name(path.name + ".tmp")
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp))
    os.replace(tmp, path)


class GreedyMaskSearch(L.Callback):
    """Runs the warm start and the greedy search at ``on_validation_end`` of a :class:`MaskLearning`.

    Args:
        out_dir: where rank 0 writes the mask artifact (None = keep it in memory only).
    """

    def __init__(self, out_dir: str | Path | None = None) -> None:
        self.out_dir = out_dir
        self.artifact: MaskArtifact | None = None

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = time.perf_counter()

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        statistics = getattr(pl_module, "statistics", None)  # a finished MaskLearning pass
        if statistics is None:
            return
        phase1_s = time.perf_counter() - self._start
        t0 = time.perf_counter()
        shapes = {k: pl_module.layout.shape(k) for k in pl_module.layout.kinds}
        self.artifact = build_artifact(statistics, pl_module.config, shapes, pl_module.kinds)
        self.artifact.summary["time_s"] = {"phase1": phase1_s, "search": time.perf_counter() - t0}
        self.artifact.summary["world_size"] = trainer.world_size
        if self.out_dir is not None and trainer.is_global_zero:
            self.artifact.save(self.out_dir)
            save_statistics(statistics, Path(self.out_dir) / STATISTICS_FILE)

    def state_dict(self) -> dict[str, Any]:
        if self.artifact is None:
            return {}
        a = self.artifact
        return {"head": a.head, "filter": a.filter, "scores": a.scores, "summary": a.summary,
                "warm_start": a.warm_start}  # fmt: skip

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if state_dict:
            self.artifact = MaskArtifact(**state_dict)
