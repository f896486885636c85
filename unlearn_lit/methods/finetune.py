"""The shared driver of the fine-tuning methods (METHOD.md §5, masked fine-tuning; §6 baselines).

Each fine-tuning method (``ga``, ``gd``, ``npo``, ``ft``, ``rl``, ``sa``, ``salun``, ``sure``) is an
objective plus a choice of loaders; :func:`finetune` does the rest: copy θ*, build the forget/retain
loaders from the datamodule contract, train with :class:`~unlearn_lit.phases.unlearn.MaskedUnlearning`
(hard freeze) in a real ``lightning.Trainer``, pick the checkpoint with
:class:`~unlearn_lit.callbacks.selection.CheckpointSelection`, and return a ``MethodResult``.

Method configs subclass :class:`FinetuneConfig` (configs only; methods share code through functions).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import lightning as L
from lightning.pytorch.utilities import CombinedLoader
from torch import Tensor
from torch.utils.data import DataLoader

from unlearn_lit.callbacks.selection import CheckpointSelection
from unlearn_lit.methods.base import MethodResult, UnlearnInputs
from unlearn_lit.methods.selection import TARGETS, SelectionSets
from unlearn_lit.phases.unlearn import MaskedUnlearning, Objective, OptimConfig

log = logging.getLogger(__name__)

LOADERS = ("forget", "retain")


@dataclass
class FinetuneConfig:
    """Hyperparameters shared by the fine-tuning methods (paper settings: AdamW, weight decay 0.01).

    Attributes:
        optim: optimizer, full-parameter learning rate (paper: 1e-5), weight decay and schedule.
        masked_lr: learning rate when a mask source restricts the update (``inputs.param_mask``; paper:
            2e-4 to 3e-4); None = optim.lr.
        epochs: passes over the longest training loader (paper: 5 for LLMs, 3 on GLUE).
        max_steps: optimizer steps; overrides ``epochs`` when set.
        forget_batch_size: forget examples per step.
        retain_batch_size: retain examples per step.
        grad_clip: gradient-norm clipping (None = off).
        selection: pick the checkpoint with the RT-free rule (False = keep the last step).
        every_n_steps: optimizer steps between two candidate checkpoints.
        eps: damage bound of the rule (mean KL from θ* on the retain slice, nats).
        target: ``val_loss`` or ``class``; None infers it from the datamodule's forget policy.
        patience: evaluations to continue once the forget set passed its target (None = no early stop).
        selection_retain: size of the retain slice of the selection sets.
        accelerator: Lightning accelerator (``cpu``, ``gpu``, ``auto``).
        progress_bar: show Lightning's progress bar.
    """

    optim: OptimConfig = field(default_factory=OptimConfig)
    masked_lr: float | None = 2e-4
    epochs: int = 5
    max_steps: int | None = None
    forget_batch_size: int = 32
    retain_batch_size: int = 32
    grad_clip: float | None = None
    selection: bool = True
    every_n_steps: int = 10
    eps: float = 0.02
    target: str | None = None
    patience: int | None = 2
    selection_retain: int = 512
    accelerator: str = "cpu"
    progress_bar: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.optim, dict):  # plain YAML / JSON overrides
            self.optim = OptimConfig(**self.optim)
        if self.target is not None and self.target not in TARGETS:
            raise ValueError(f"unknown selection target {self.target!r}; valid choices: {', '.join(TARGETS)}")
        if self.epochs < 1 or (self.max_steps is not None and self.max_steps < 1) or self.every_n_steps < 1:
            raise ValueError("epochs, max_steps and every_n_steps must be positive")


def finetune(
    inputs: UnlearnInputs,
    cfg: FinetuneConfig,
    objective: Objective,
    uses: Sequence[str] = LOADERS,
    trainable: dict[str, Tensor] | None = None,
    reference: bool = False,
    extra_loaders: dict[str, DataLoader] | None = None,
    val_loader: DataLoader | None = None,
) -> MethodResult:
    """Runs one fine-tuning method on a copy of θ*.

    Args:
        inputs: θ*, data, layout and update mask.
        cfg: the method's config.
        objective: ``loss(model, forget, retain, original, progress, **extra batches)``.
        uses: which of the forget/retain loaders the objective reads.
        trainable: parameter-shaped update masks; default ``inputs.param_mask`` (None = full).
        reference: give the objective θ* (NPO).
        extra_loaders: further training loaders, passed to the objective by name (SURE's unseen set).
        val_loader: the validation set of the selection rule (default: the datamodule's D_v).

    ``inputs.extra`` may carry ``logger`` (a Lightning logger; default none) and ``callbacks`` (more
    Lightning callbacks). The result's ``hparams["steps"]`` is the chosen step, ``candidates`` the
    selection table and ``info`` the rule's reason, the steps run and the number of updated entries.

    Raises:
        UnlearningFailed: on a non-finite loss or parameter (θ* is untouched: training runs on a copy).
    """
    L.seed_everything(inputs.seed, workers=True, verbose=False)
    model = inputs.fresh_model()
    masks = trainable if trainable is not None else inputs.param_mask
    lr = cfg.masked_lr if inputs.param_mask is not None and cfg.masked_lr is not None else cfg.optim.lr
    module = MaskedUnlearning(
        model, inputs.original if reference else None, masks, objective, replace(cfg.optim, lr=lr)
    )
    if module.num_updated == 0:
        log.warning("the update mask selects no parameter entry: the model is returned unchanged")
        module.teardown("fit")
        return MethodResult(model, hparams={"lr": lr, "steps": 0}, info={"num_updated": 0, "steps_run": 0})
    loaders = {name: _loader(inputs, cfg, name) for name in uses}
    loaders.update(extra_loaders or {})
    if not loaders:
        raise ValueError(f"a fine-tuning method needs at least one training loader of {', '.join(LOADERS)}")
    callbacks: list[L.Callback] = list(inputs.extra.get("callbacks", []))
    selector = _selector(inputs, cfg, val_loader) if cfg.selection else None
    trainer = L.Trainer(
        accelerator=cfg.accelerator,
        devices=1,
        max_epochs=cfg.epochs if cfg.max_steps is None else -1,
        max_steps=cfg.max_steps if cfg.max_steps is not None else -1,
        gradient_clip_val=cfg.grad_clip,
        callbacks=([selector] if selector else []) + callbacks,
        logger=inputs.extra.get("logger", False),
        enable_checkpointing=False,
        enable_progress_bar=cfg.progress_bar,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
    )
    trainer.fit(module, train_dataloaders=CombinedLoader(loaders, mode="max_size_cycle"))
    hparams: dict[str, Any] = {"lr": lr, "steps": trainer.global_step}
    info: dict[str, Any] = {"num_updated": module.num_updated, "steps_run": trainer.global_step}
    if selector is not None:
        hparams["steps"] = selector.chosen_step
        info.update(choice=selector.choice.reason, stopped_early=selector.stopped_early)
    return MethodResult(
        model.cpu(), hparams=hparams, candidates=selector.table if selector else [], info=info
    )


def _loader(inputs: UnlearnInputs, cfg: FinetuneConfig, name: str) -> DataLoader:
    dm = inputs.datamodule
    if name == "forget":
        return dm.forget_dataloader(batch_size=cfg.forget_batch_size)
    if name == "retain":
        return dm.retain_dataloader(shuffle=True, seed=inputs.seed, batch_size=cfg.retain_batch_size)
    raise ValueError(f"unknown training loader {name!r}; valid choices: {', '.join(LOADERS)}")


def _selector(
    inputs: UnlearnInputs, cfg: FinetuneConfig, val_loader: DataLoader | None
) -> CheckpointSelection:
    dm = inputs.datamodule
    sets = SelectionSets(
        inputs.original,
        dm.retain_dataloader(subsample=cfg.selection_retain, seed=inputs.seed),
        dm.forget_dataloader(),
        val_loader if val_loader is not None else dm.val_dataloader(),
    )
    target = cfg.target or selection_target(dm)
    return CheckpointSelection(sets, cfg.every_n_steps, cfg.eps, target, cfg.patience)


def selection_target(datamodule: Any) -> str:
    """``class`` when the datamodule forgets whole classes, else ``val_loss``."""
    spec = getattr(datamodule, "forget_spec", None)
    return "class" if getattr(spec, "policy", None) == "class" else "val_loss"
