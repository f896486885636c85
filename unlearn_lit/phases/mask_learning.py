"""Phase 1: accumulate mask statistics over D_f and D_r without changing any weight (METHOD.md §3–§4).

``MaskLearning`` runs as a Lightning *validation* pass (model in eval mode, ``inference_mode=False``
so mask gradients can be taken): one pass over the forget set and one over the retain set (or a
seeded subsample of it). Each batch costs one forward and one backward pass, through the batched
``[B, L, n]`` mask trick. Under data parallelism each process takes a disjoint, unpadded shard
(:class:`ShardSampler`), sums are all-reduced and G rows gathered by example index, so the
statistics -- and hence the mask -- do not depend on the number of processes.

The :class:`~unlearn_lit.callbacks.greedy_search.GreedyMaskSearch` callback turns the statistics
into a mask when the pass ends.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from unlearn_lit.callbacks.greedy_search import GreedyMaskSearch
from unlearn_lit.config.phases import MaskConfig
from unlearn_lit.data.buckets import positions_by_length
from unlearn_lit.masks.artifact import MaskArtifact
from unlearn_lit.masks.objectives import OBJECTIVES, maskable_kinds
from unlearn_lit.masks.stats import MaskStatistics, per_example_mask_grads
from unlearn_lit.models.base import Backbone
from unlearn_lit.runtime import Runtime, check_weights
from unlearn_lit.units import unit_layout

log = logging.getLogger(__name__)


class ShardSampler(DistributedSampler):
    """Disjoint, unpadded, ordered shards: process r takes positions[r::world] (no duplicates)."""

    def __init__(self, positions: Tensor, num_replicas: int, rank: int) -> None:
        self.positions = positions.tolist()
        self.num_replicas, self.rank = num_replicas, rank

    def __iter__(self):
        return iter(self.positions[self.rank :: self.num_replicas])

    def __len__(self) -> int:
        return len(self.positions[self.rank :: self.num_replicas])


def clamp_subsample(size: int | None, available: int, name: str) -> int:
    """``size`` clamped to ``available`` with a warning (None = all)."""
    if size is None or size >= available:
        if size is not None and size > available:
            log.warning("%s=%d exceeds the %d retain examples; using all of them", name, size, available)
        return available
    if size < 0:
        raise ValueError(f"{name} must be >= 0; got {size}")
    return size


class MaskLearning(L.LightningModule):
    """Phase-1 system. Run with ``trainer.validate(module)``; the statistics land in ``self.statistics``.

    Args:
        backbone: θ* (its weights are never changed).
        config: phase-1 options.
        forget: dataset of raw forget examples (each with an ``index`` into D).
        retain: dataset of raw retain examples.
    """

    def __init__(self, backbone: Backbone, config: MaskConfig, forget: Dataset, retain: Dataset) -> None:
        super().__init__()
        if len(forget) == 0:
            raise ValueError("the forget set is empty: phase 1 needs at least one forget example")
        self.backbone, self.config, self.forget, self.retain = backbone, config, forget, retain
        self.layout = unit_layout(backbone)
        self.kinds = maskable_kinds(config.kinds)
        g = torch.Generator().manual_seed(config.seed)
        n_retain = clamp_subsample(config.retain_subsample, len(retain), "retain_subsample")
        self.retain_positions = torch.randperm(len(retain), generator=g)[:n_retain].sort().values
        needs_rows = config.search and OBJECTIVES.get(config.objective).block_search
        n_rows = clamp_subsample(config.search_rows, n_retain, "search_rows") if needs_rows else 0
        picked = self.retain_positions[torch.randperm(n_retain, generator=g)[:n_rows]]
        self.row_indices = torch.tensor([int(retain[int(p)]["index"]) for p in picked], dtype=torch.long)
        self.statistics: dict[str, object] | None = None

    def _loader(self, data: Dataset, positions: Tensor) -> DataLoader:
        world, rank = (self.trainer.world_size, self.trainer.global_rank) if self._trainer else (1, 0)
        sampler = ShardSampler(positions, world, rank)
        return DataLoader(data, self.config.batch_size, sampler=sampler, collate_fn=self.backbone.collate)

    def val_dataloader(self) -> list[DataLoader]:
        forget, retain = torch.arange(len(self.forget)), self.retain_positions
        if self.config.granularity == "example":  # sums and rows by example index: order is free
            forget = positions_by_length(self.forget, forget, self.backbone.collate)
            retain = positions_by_length(self.retain, retain, self.backbone.collate)
        return [self._loader(self.forget, forget), self._loader(self.retain, retain)]

    def on_validation_start(self) -> None:
        self._grad_flags = [p.requires_grad for p in self.backbone.parameters()]
        for p in self.backbone.parameters():  # only mask gradients are needed
            p.requires_grad_(False)
        shapes = {k: self.layout.shape(k) for k in self.kinds}
        self._stats = MaskStatistics(shapes, self.row_indices, self.config.granularity)

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int, dataloader_idx: int = 0) -> None:
        grads = per_example_mask_grads(self.backbone, self.layout, batch, self.kinds)
        self._stats.update("forget" if dataloader_idx == 0 else "retain", grads, batch["index"])

    def on_validation_epoch_end(self) -> None:
        self._stats.reduce(self._all_sum, self._gather_rows)
        self.statistics = self._stats.result()
        for p, flag in zip(self.backbone.parameters(), self._grad_flags, strict=True):
            p.requires_grad_(flag)

    def _all_sum(self, t: Tensor) -> Tensor:
        if self.trainer.world_size == 1:
            return t
        return self.trainer.strategy.reduce(t.to(self.device), reduce_op="sum").cpu()

    def _gather_rows(self, t: Tensor) -> Tensor:
        """All-gather tensors whose first dim differs between processes."""
        if self.trainer.world_size == 1:
            return t
        n = torch.tensor([t.shape[0]], device=self.device)
        sizes = self.all_gather(n).view(-1).tolist()
        padded = torch.zeros(max(sizes), *t.shape[1:], dtype=t.dtype, device=self.device)
        padded[: t.shape[0]] = t
        gathered = self.all_gather(padded).cpu()  # [world, max, ...]
        return torch.cat([gathered[r, :s] for r, s in enumerate(sizes)])


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
    check_weights(backbone, kwargs.get("precision"))  # a *-true precision would convert θ* in place
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
