"""Training of the original model θ* on D and of the gold standard RT on D_r (METHOD.md §1).

RT uses exactly the recipe of θ*. Trained weights are cached as safetensors under a key hashed from the
backbone (name, architecture and initial weights, so every constructor option counts), the data (the
dataset, its options and the positions of D; for RT also the forget indices), and the recipe, so several
methods share one θ* and one RT. θ* does not depend on the forget split, so its key leaves it out.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import lightning as L
import torch
from safetensors.torch import load_model, save_model
from torch import Tensor
from torchmetrics import MeanMetric

from unlearn_lit.config.phases import OPTIMIZERS, PRESETS, SCHEDULES, TrainRecipe  # noqa: F401  (re-exported)
from unlearn_lit.data import UnlearnDataModule
from unlearn_lit.data.base import digest
from unlearn_lit.eval.cost import CostTracker
from unlearn_lit.models.base import Backbone, predictions
from unlearn_lit.runtime import Runtime, true_dtype

log = logging.getLogger(__name__)
WHICH = ("original", "retrain")
CACHE_VERSION = 1


def lr_lambda(schedule: str, warmup_steps: int, total_steps: int) -> Callable[[int], float]:
    """Multiplier of the peak learning rate at each optimizer step."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        if schedule == "constant":
            return 1.0
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return 1.0 - progress if schedule == "linear" else 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor


class TrainClassifier(L.LightningModule):
    """Minimizes the mean per-example loss of ``backbone`` on the training loader.

    Args:
        backbone: the model (classification or regression).
        recipe: optimizer, schedule and the rest.
    """

    def __init__(self, backbone: Backbone, recipe: TrainRecipe) -> None:
        super().__init__()
        self.backbone = backbone
        self.recipe = recipe
        self.val_acc = MeanMetric()

    def on_fit_start(self) -> None:
        self.backbone.train()  # HF from_pretrained returns eval mode: dropout would stay off

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        loss = self.backbone.per_example_loss(batch).mean()
        self.log("train/loss", loss, prog_bar=True, batch_size=len(batch["labels"]))
        return loss

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        logits = self.backbone(batch)
        loss = self.backbone.per_example_loss(batch, logits)
        self.log("val/loss", loss.mean(), batch_size=len(loss), sync_dist=True)
        if self.backbone.task == "classification":
            self.val_acc.update((predictions(logits, "classification") == batch["labels"]).float())
            self.log("val/acc", self.val_acc, prog_bar=True, batch_size=len(loss))

    def configure_optimizers(self) -> dict[str, Any]:
        r = self.recipe
        params = [p for p in self.backbone.parameters() if p.requires_grad]
        groups = [
            {"params": [p for p in params if p.ndim >= 2], "weight_decay": r.weight_decay},
            {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
        ]
        if r.optimizer == "adamw":
            optimizer = torch.optim.AdamW(groups, lr=r.lr)
        else:
            optimizer = torch.optim.SGD(groups, lr=r.lr, momentum=r.momentum)
        total = int(self.trainer.estimated_stepping_batches)
        warmup = int(r.warmup) if r.warmup >= 1 else int(r.warmup * total)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(r.schedule, warmup, total))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


def weights_fingerprint(model: torch.nn.Module) -> str:
    """sha256 of every tensor of the state dict (name, dtype, shape, bytes), in name order."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        t = t.detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def cache_key(backbone: Backbone, datamodule: UnlearnDataModule, recipe: TrainRecipe, which: str) -> dict:
    """What determines the trained weights (hashed into the cache file name)."""
    return {
        "version": CACHE_VERSION,
        "which": which,
        "backbone": {
            "name": backbone.name,
            "task": backbone.task,
            "num_labels": backbone.num_labels,
            "architecture": digest(repr(backbone.net)),
            "init": weights_fingerprint(backbone),
        },
        "data": datamodule.identity(include_forget=which == "retrain"),
        "recipe": asdict(recipe),
    }


def train_or_load(
    backbone_factory: Callable[[], Backbone],
    datamodule: UnlearnDataModule,
    recipe: TrainRecipe,
    which: str = "original",
    cache_dir: str | Path = "~/.cache/unlearn_lit/models",
    *,
    runtime: Runtime | None = None,
    logger: Any = None,
    callbacks: Sequence[Any] = (),
    validate: bool = False,
    force: bool = False,
    retrain_corrupt: bool = True,
) -> Backbone:
    """θ* (``which="original"``: trained on D) or RT (``"retrain"``: D_r, same recipe), cached.

    Args:
        backbone_factory: returns a fresh, untrained backbone (the same initial weights every call).
        datamodule: the splits; bound to the backbone here.
        recipe: the training recipe (shared by θ* and RT).
        which: ``original`` or ``retrain``.
        cache_dir: where ``{which}-{key}.safetensors`` and its ``.json`` description live.
        runtime: accelerator, devices, strategy, precision and progress bars (default
            :class:`~unlearn_lit.runtime.Runtime`); its precision, when set, replaces the recipe's (and
            is part of the cache key).
        logger: a Lightning logger (None: no logging).
        callbacks: further Lightning callbacks.
        validate: evaluate on D_v after every epoch (logged as ``val/acc``, ``val/loss``).
        force: retrain even when the cache holds the weights (the old file is moved aside).
        retrain_corrupt: a cached file that fails its checksum or does not load is moved aside and
            retrained; False stops with the file's path instead.

    Returns:
        the trained backbone in eval mode, with ``train_info`` (key, path, seconds, cache hit).
    """
    if which not in WHICH:
        raise ValueError(f"unknown which {which!r}; valid choices: {', '.join(WHICH)}")
    runtime = runtime or Runtime()
    if runtime.precision is not None:
        recipe = replace(recipe, precision=runtime.precision)
    dtype = true_dtype(recipe.precision)  # a *-true precision: trained and loaded in its dtype
    backbone = backbone_factory()
    datamodule.bind(backbone)
    key = cache_key(backbone, datamodule, recipe, which)  # of the initial weights as built
    backbone.to(dtype=dtype)
    cache_dir = Path(cache_dir).expanduser()
    path = cache_dir / f"{which}-{digest(key)[:24]}.safetensors"
    if path.is_file() and force:
        _move_aside(path, "replaced")
    if path.is_file():
        problem = _check_cached(backbone, path)
        if problem is None:
            info = json.loads(path.with_suffix(".json").read_text())
            backbone.train_info = {**info.get("info", {}), "path": str(path), "cache_hit": True}
            log.info("%s model loaded from cache %s", which, path)
            return backbone.eval()
        if not retrain_corrupt:
            raise RuntimeError(f"cached {which} model {path} is unusable ({problem}); rerun with --retrain")
        aside = _move_aside(path, "corrupt")
        log.warning(
            "cached %s model %s is unusable (%s): moved to %s, retraining", which, path, problem, aside
        )
        backbone = backbone_factory().to(dtype=dtype)  # a partial load may have touched the weights
        datamodule.bind(backbone)

    L.seed_everything(recipe.seed, verbose=False)
    previous_mode, datamodule.mode = datamodule.mode, which
    try:
        loader = datamodule.train_dataloader(batch_size=recipe.batch_size, seed=recipe.seed)
    finally:
        datamodule.mode = previous_mode
    trainer = L.Trainer(
        **runtime.trainer_kwargs(precision=recipe.precision, logger=logger, callbacks=callbacks),
        max_epochs=recipe.epochs,
        max_steps=recipe.max_steps or -1,
        gradient_clip_val=recipe.gradient_clip_val,
        enable_checkpointing=False,
        enable_model_summary=False,
        log_every_n_steps=max(1, min(50, len(loader))),
        num_sanity_val_steps=0,
        limit_val_batches=1.0 if validate else 0,
        default_root_dir=str(cache_dir),
    )
    cost = CostTracker(device="cuda" if trainer.strategy.root_device.type == "cuda" else None)
    with cost.phase(which) as record:
        trainer.fit(
            TrainClassifier(backbone, recipe),
            train_dataloaders=loader,
            val_dataloaders=datamodule.val_dataloader() if validate else None,
        )
    if trainer.interrupted:  # Lightning turns SIGTERM/Ctrl-C into a normal return: never cache that
        raise RuntimeError(
            f"training of the {which} model was interrupted at step {trainer.global_step}; not cached"
        )
    info = {
        "which": which,
        "seconds": record["seconds"],
        "steps": trainer.global_step,
        "peak_memory_bytes": record["peak_memory_bytes"],
    }
    _atomic_save(backbone, path, {"key": key, "info": info})
    backbone.train_info = {**info, "path": str(path), "cache_hit": False}
    log.info(
        "%s model trained in %.1f s (%d steps), cached at %s", which, info["seconds"], info["steps"], path
    )
    return backbone.eval()


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _check_cached(backbone: Backbone, path: Path) -> str | None:
    """Loads a cached model into ``backbone``; returns what is wrong with the file, or None."""
    described = path.with_suffix(".json")
    if not described.is_file():
        return f"its description {described.name} is missing"
    try:
        expected = json.loads(described.read_text()).get("sha256")
    except json.JSONDecodeError:
        return f"its description {described.name} is not valid JSON"
    if expected is not None and _sha256(path) != expected:
        return "checksum mismatch (truncated or modified)"
    try:
        load_model(backbone, str(path))
    except Exception as err:  # noqa: BLE001 - safetensors raises its own error types; all mean unusable
        return f"{type(err).__name__}: {err}"
    return None


def _move_aside(path: Path, why: str) -> Path:
    """Renames a cached model and its description to ``<name>.<why>-<time>``; returns the new path."""
    stamp, n = time.strftime("%Y%m%d-%H%M%S"), 0
    aside = path.with_name(f"{path.name}.{why}-{stamp}")
    while aside.exists():  # never overwrite an earlier file kept aside
        n += 1
        aside = path.with_name(f"{path.name}.{why}-{stamp}-{n}")
    os.replace(path, aside)
    if path.with_suffix(".json").is_file():
        os.replace(path.with_suffix(".json"), aside.with_name(f"{aside.name}.json"))
    return aside


def _atomic_save(backbone: Backbone, path: Path, description: dict) -> None:
    """Writes weights and description (with the weights' SHA-256) to temporary names, then renames
    (readers never see half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    save_model(backbone, str(tmp))
    description = {**description, "sha256": _sha256(tmp)}
    tmp_json = path.with_name(f".{path.stem}.{os.getpid()}.json.tmp")
    tmp_json.write_text(json.dumps(description, indent=1, default=str))
    os.replace(tmp_json, path.with_suffix(".json"))
    os.replace(tmp, path)


def load_original(backbone: Backbone, path: str | Path) -> Backbone:
    """θ* from a saved model instead of training it (``original: PATH`` of the run config).

    ``path`` may be a ``.safetensors`` file written by this project (the θ*/RT cache format) or by HF,
    an HF ``save_pretrained`` directory (its ``model.safetensors``), or a Lightning checkpoint
    (``.ckpt`` of :class:`TrainClassifier`). The weights must fit ``backbone`` exactly (same
    architecture and label count); a mismatch names the missing and unexpected keys.
    """
    path = Path(path).expanduser()
    if (path / "model").is_dir():  # the directory a `train` command wrote
        path = path / "model"
    if path.is_dir():
        path = path / "model.safetensors"
    if not path.is_file():
        raise FileNotFoundError(
            f"original model {path} not found: give a .safetensors file, an HF save_pretrained directory "
            "or a Lightning .ckpt"
        )
    if path.suffix == ".ckpt":
        state = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
        state = {k.removeprefix("backbone."): v for k, v in state.items() if k.startswith("backbone.")}
    else:
        from safetensors.torch import load_file

        state = load_file(str(path))
    own = backbone.state_dict()
    target: torch.nn.Module = backbone
    if not own.keys() & state.keys() and hasattr(backbone, "net"):  # HF keys: the wrapped model's own
        target = backbone.net
    own = target.state_dict()
    missing, unexpected = sorted(own.keys() - state.keys()), sorted(state.keys() - own.keys())
    shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in own.keys() & state.keys()
              if state[k].shape != own[k].shape]  # fmt: skip
    if missing or unexpected or shapes:
        raise ValueError(
            f"original model {path} does not fit backbone {backbone.name!r}: missing {missing[:5]}, "
            f"unexpected {unexpected[:5]}, other shapes {shapes[:3]} (same architecture and num_labels needed)"
        )
    target.load_state_dict(state)
    backbone.train_info = {"path": str(path), "loaded": True, "seconds": 0.0}
    log.info("original model loaded from %s (not trained)", path)
    return backbone.eval()
