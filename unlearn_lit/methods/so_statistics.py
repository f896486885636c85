"""The SO-type statistics as a Lightning pass: data-parallel with the result of one process (METHOD.md §5).

:class:`SOStatistics` computes what :func:`~unlearn_lit.methods.fisher.retain_fisher` and
:func:`~unlearn_lit.methods.fisher.forget_gradient_sum` compute -- the squared-gradient sums of the
retain subsample and the forget gradient sum over the selected entries -- in a ``trainer.validate``
loop. Examples are sharded by position (:class:`~unlearn_lit.phases.mask_learning.ShardSampler`) and
the sums are all-reduced, so with ``mode="per_example"`` the Fisher, the gradient sum and everything the
step search chooses from them are those of one process up to the summation order. ``per_batch`` squares
batch sums, which depend on how examples are batched: exact across processes only for batches of one.

Used by the SO-type methods when the run's runtime is distributed (``--trainer.devices 2
--trainer.strategy ddp_spawn``); the step search then runs in the main process on the gathered
statistics. Spawned processes return them through ``out_dir``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import lightning as L
import torch
from safetensors.torch import load_file, save_file
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from unlearn_lit.data.buckets import positions_by_length
from unlearn_lit.methods.fisher import FISHER_MODES, Fisher, ParamSelection, auto_chunk, gradients, zeros
from unlearn_lit.models.base import Backbone
from unlearn_lit.phases.mask_learning import ShardSampler
from unlearn_lit.runtime import Runtime, check_weights

RESULT_FILE = "so_statistics.safetensors"


class SOStatistics(L.LightningModule):
    """Retain Fisher sums and the forget gradient sum, sharded and all-reduced.

    Args:
        backbone: θ (its weights are never changed).
        masks: ``{param name: Bool tensor}`` of the selected entries (all True for SO).
        retain: the retain dataset; ``retain_positions`` the examples of the Fisher.
        forget: the forget dataset (every example).
        mode: ``per_example`` or ``per_batch`` (see the module docstring).
        chunk_size: examples whose per-example gradients are held at once (None: automatic).
        batch_size: examples per batch and process.
        out_dir: where rank 0 writes the result (spawned processes return it this way;
            :func:`so_statistics` sets it).
    """

    def __init__(
        self,
        backbone: Backbone,
        masks: dict[str, Tensor],
        retain: Dataset,
        retain_positions: Tensor,
        forget: Dataset,
        mode: str = "per_example",
        chunk_size: int | None = None,
        batch_size: int = 32,
        out_dir: str | Path | None = None,
    ) -> None:
        super().__init__()
        if mode not in FISHER_MODES:
            raise ValueError(f"unknown fisher mode {mode!r}; valid choices: {', '.join(FISHER_MODES)}")
        if len(forget) == 0 or len(retain_positions) == 0:
            raise ValueError("the SO statistics need at least one forget and one retain example")
        self.backbone, self.masks, self.retain, self.forget = backbone, masks, retain, forget
        self.retain_positions, self.mode, self.chunk_size = retain_positions, mode, chunk_size
        self.batch_size, self.out_dir = batch_size, out_dir
        self.fisher: Fisher | None = None
        self.grad_sum: dict[str, Tensor] | None = None

    def _loader(self, data: Dataset, positions: Tensor) -> DataLoader:
        world, rank = (self.trainer.world_size, self.trainer.global_rank) if self._trainer else (1, 0)
        sampler = ShardSampler(positions, world, rank)
        return DataLoader(data, self.batch_size, sampler=sampler, collate_fn=self.backbone.collate)

    def val_dataloader(self) -> list[DataLoader]:
        # sums over examples: batches of similar length (text) change nothing but the padding; a
        # per-batch Fisher squares batch gradients, so its batches stay as sampled
        collate, retain = self.backbone.collate, self.retain_positions
        if self.mode == "per_example":
            retain = positions_by_length(self.retain, retain, collate)
        forget = positions_by_length(self.forget, torch.arange(len(self.forget)), collate)
        return [self._loader(self.retain, retain), self._loader(self.forget, forget)]

    def on_validation_start(self) -> None:
        self.sel = ParamSelection(self.backbone, self.masks)  # on the device Lightning chose
        self._sums = {"fisher": zeros(self.backbone, self.sel), "grad": zeros(self.backbone, self.sel)}
        self._counts = {"fisher": 0, "grad": 0}

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int, dataloader_idx: int = 0) -> None:
        which = "fisher" if dataloader_idx == 0 else "grad"
        per_example = which == "fisher" and self.mode == "per_example"
        chunk = (self.chunk_size or auto_chunk(self.backbone, self.sel)) if per_example else None
        for grads, n in gradients(self.backbone, [batch], self.sel, chunk, which, progress=False):
            for k, g in grads.items():
                if which == "grad":
                    self._sums["grad"][k] += g
                else:  # [n, k] per example (summed after squaring) or [k] batch sum
                    self._sums["fisher"][k] += g.pow(2).sum(0) if per_example else g.pow(2)
            self._counts[which] += n

    def on_validation_epoch_end(self) -> None:
        sums = {f"{w}.{k}": self._reduce(v) for w, d in self._sums.items() for k, v in d.items()}
        counts = self._reduce(
            torch.tensor([self._counts["fisher"], self._counts["grad"]], dtype=torch.float64)
        )
        self.fisher, self.grad_sum = unpack(sums, counts)
        if self.out_dir is not None and self.trainer.global_rank == 0:
            out = {k: v.detach().cpu().contiguous() for k, v in sums.items()}
            Path(self.out_dir).mkdir(parents=True, exist_ok=True)
            save_file({**out, "counts": counts.cpu()}, str(Path(self.out_dir) / RESULT_FILE))

    def _reduce(self, t: Tensor) -> Tensor:
        if self.trainer.world_size == 1:
            return t
        return self.trainer.strategy.reduce(t.to(self.device), reduce_op="sum")


def unpack(sums: dict[str, Tensor], counts: Tensor) -> tuple[Fisher, dict[str, Tensor]]:
    """``{"fisher.<param>": ..., "grad.<param>": ...}`` and the counts -> (Fisher, gradient sum)."""
    split = {
        w: {k.split(".", 1)[1]: v for k, v in sums.items() if k.startswith(f"{w}.")}
        for w in ("fisher", "grad")
    }
    return Fisher(split["fisher"], int(counts[0])), split["grad"]


def so_statistics(
    module: SOStatistics, runtime: Runtime | None = None, **trainer_kwargs: Any
) -> tuple[Fisher, dict[str, Tensor]]:
    """Runs the pass under ``runtime`` (data-parallel when it is) and returns the Fisher sums and the
    forget gradient sum on the device the backbone was on."""
    runtime = runtime or Runtime(progress_bar=False)
    model = module.backbone
    device = next(model.parameters()).device
    with tempfile.TemporaryDirectory(prefix="so_statistics_") as tmp:
        module.out_dir = tmp
        kwargs = {**runtime.trainer_kwargs(), "enable_checkpointing": False, "enable_model_summary": False}
        kwargs.update(trainer_kwargs, inference_mode=False, use_distributed_sampler=False)
        check_weights(model, kwargs.get("precision"))  # a *-true precision would convert θ* in place
        L.Trainer(**kwargs).validate(module, verbose=False)
        fisher, grad_sum = module.fisher, module.grad_sum
        if fisher is None:  # spawned: rank 0 wrote the result
            saved = load_file(str(Path(tmp) / RESULT_FILE))
            fisher, grad_sum = unpack(saved, saved.pop("counts"))
    model.to(device)  # Lightning leaves the module on the CPU at teardown
    return Fisher({k: v.to(device) for k, v in fisher.sumsq.items()}, fisher.count), {
        k: v.to(device) for k, v in grad_sum.items()
    }
