"""GreedyMaskSearch: turns phase-1 statistics into the mask artifact when phase 1 ends (METHOD.md §4).

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
from unlearn_lit.masks.search import greedy_search, warm_start
from unlearn_lit.phases.mask_learning import MaskLearning
from unlearn_lit.runtime import Runtime
from unlearn_lit.units.layout import KINDS

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
        if not isinstance(pl_module, MaskLearning) or pl_module.statistics is None:
            return
        phase1_s = time.perf_counter() - self._start
        t0 = time.perf_counter()
        self.artifact = build_artifact(pl_module)
        self.artifact.summary["time_s"] = {"phase1": phase1_s, "search": time.perf_counter() - t0}
        self.artifact.summary["world_size"] = trainer.world_size
        if self.out_dir is not None and trainer.is_global_zero:
            self.artifact.save(self.out_dir)
            save_statistics(pl_module.statistics, Path(self.out_dir) / STATISTICS_FILE)

    def state_dict(self) -> dict[str, Any]:
        if self.artifact is None:
            return {}
        a = self.artifact
        return {"head": a.head, "filter": a.filter, "scores": a.scores, "summary": a.summary}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if state_dict:
            self.artifact = MaskArtifact(**state_dict)


def build_artifact(module: MaskLearning) -> MaskArtifact:
    """Warm start + greedy search from the statistics of a finished :class:`MaskLearning` pass."""
    cfg, stats, layout = module.config, module.statistics, module.layout
    options: dict[str, Any] = {"alpha": cfg.alpha}
    if cfg.objective in ("mlr", "mlf"):
        options["fisher_scale"] = cfg.fisher_scale
        options["num_retain" if cfg.objective == "mlr" else "num_forget"] = stats[
            "num_retain" if cfg.objective == "mlr" else "num_forget"
        ]
    if cfg.objective == "random":
        options = {"shapes": {k: layout.shape(k) for k in module.kinds}, "seed": cfg.seed}
    elif cfg.objective == "norm":
        options = {}
    masks, scores = warm_start(
        cfg.objective,
        stats,
        cfg.sparsity,
        budget=cfg.budget,
        select=cfg.select,
        kinds=module.kinds,
        **options,
    )
    summary: dict[str, Any] = {
        "objective": cfg.objective,
        "sparsity": cfg.sparsity,
        "kinds": list(module.kinds),
        "budget": cfg.budget,
        "alpha": cfg.alpha,
        "fisher_scale": cfg.fisher_scale,
        "data": {"num_forget": stats["num_forget"], "num_retain": stats["num_retain"], "seed": cfg.seed},
    }
    if cfg.search and cfg.objective == "mlr" and "G" in stats:
        # J uses the mean-scale Fisher (1/N)||sum G||^2; the 'sum' scale multiplies it by |D_r|.
        alpha = cfg.alpha * (stats["num_retain"] if cfg.fisher_scale == "sum" else 1.0)
        g_f = {k: stats["forget_grad_sum"][k] for k in module.kinds}
        masks, info = greedy_search(masks, g_f, stats["G"], alpha, scores)
        summary["search"] = info["kinds"]
        summary["data"]["search_rows"] = int(next(iter(stats["G"].values())).shape[0])
    else:
        summary["search"] = (
            f"skipped (search={cfg.search}, objective={cfg.objective}: only MLR has a block objective)"
        )
    full = {k: masks.get(k, torch.zeros(layout.shape(k), dtype=torch.bool)) for k in KINDS}
    return MaskArtifact(head=full["head"], filter=full["filter"], scores=scores, summary=summary)


def learn_mask(
    backbone: Any,
    config: Any,
    forget: Any,
    retain: Any,
    out_dir: str | Path | None = None,
    **trainer_kwargs: Any,
) -> MaskArtifact:
    """Phase 1 + search with a Lightning Trainer; returns the mask artifact.

    ``trainer_kwargs`` go to ``lightning.Trainer`` over the defaults of
    :meth:`Runtime.trainer_kwargs() <unlearn_lit.runtime.Runtime.trainer_kwargs>` (a GPU when present;
    the pipeline passes the run's runtime). ``strategy="ddp_spawn", devices=2`` runs data-parallel; the
    artifact then comes back through ``out_dir``, which spawn strategies require. ``callbacks`` are
    added to the search callback.
    """
    search = GreedyMaskSearch(out_dir)
    kwargs = {**Runtime().trainer_kwargs(), "enable_checkpointing": False, "enable_model_summary": False}
    kwargs.update(trainer_kwargs)
    # Mask gradients need autograd inside the validation loop; ShardSampler does the sharding.
    callbacks = [search, *kwargs.get("callbacks", [])]
    kwargs.update(inference_mode=False, use_distributed_sampler=False, callbacks=callbacks)
    if "spawn" in str(kwargs.get("strategy", "")) and out_dir is None:
        raise ValueError("spawned processes return the mask through out_dir; pass out_dir")
    trainer = L.Trainer(**kwargs)
    trainer.validate(MaskLearning(backbone, config, forget, retain), verbose=False)
    if search.artifact is None:  # spawned: the artifact was written by rank 0
        return MaskArtifact.load(out_dir)
    return search.artifact
