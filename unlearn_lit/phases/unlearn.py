"""Phase 2 for fine-tuning methods: train only the entries of selected units, with a hard freeze.

METHOD.md §5 ("Masked fine-tuning methods"). Masking gradients is not enough: AdamW's decoupled
weight decay and SGD's momentum and coupled weight decay still move entries whose gradient is zero.
:class:`MaskedUnlearning` therefore enforces the mask as a hard constraint:

- a parameter with no updated entry gets ``requires_grad=False`` and never reaches the optimizer;
- a parameter with some updated entries is trained, and before every optimizer step the gradient of
  its frozen entries is zeroed; after the step its frozen entries are written back bit for bit from
  their values at the start of the phase (θ* for a fresh copy of the original) and every optimizer
  state tensor shaped like it (``exp_avg``, ``exp_avg_sq``, ``momentum_buffer``) is zeroed there.

The objective is any ``loss_fn(model, forget, retain, original, progress) -> scalar`` (see
:mod:`unlearn_lit.methods.losses`); when it is an ``nn.Module`` with parameters (SURE's domain
classifier) those are trained too, without a mask, at the objective's ``lr`` attribute if it has one.
Further loaders of the combined batch (besides ``forget`` and ``retain``) reach the objective as
keyword arguments of the same name.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable

import lightning as L
import torch
from torch import Tensor, nn

from unlearn_lit.config.finetune import OPTIMIZERS, SCHEDULES, OptimConfig  # noqa: F401  (re-exported)
from unlearn_lit.errors import UnlearningFailed
from unlearn_lit.models.base import Backbone

log = logging.getLogger(__name__)

Objective = Callable[[Backbone, dict | None, dict | None, Backbone | None, float], Tensor]


class MaskedUnlearning(L.LightningModule):
    """Trains ``model`` on forget/retain batches, changing exactly the entries where the mask is True.

    Args:
        model: the backbone to unlearn (a copy of θ*; it is modified in place).
        original: θ*, for objectives that need a reference (NPO); a frozen copy is kept, so θ* itself
            never moves device. None when the objective does not use it.
        trainable_masks: ``{param name: Bool tensor}`` of entries that may change; parameters missing
            from it are frozen. None trains every parameter (full-parameter methods).
        loss_fn: the objective, ``loss_fn(model, forget, retain, original, progress)``.
        optim: optimizer, learning rate and schedule.

    Raises:
        UnlearningFailed: (during ``fit``) on a non-finite loss or parameter.
        optim: optimizer, learning rate and schedule.

    Batches are dicts ``{"forget": batch, "retain": batch}`` (either key may be missing), e.g. from a
    Lightning ``CombinedLoader``.
    """

    def __init__(
        self,
        model: Backbone,
        original: Backbone | None,
        trainable_masks: dict[str, Tensor] | None,
        loss_fn: Objective,
        optim: OptimConfig,
    ) -> None:
        super().__init__()
        if optim.lr is None:
            raise ValueError("MaskedUnlearning needs a learning rate: optim.lr is None (resolve it first)")
        self.model = model
        # optimizer steps taken: part of the module's state, so spawned processes hand it back too
        self.register_buffer("steps_done", torch.zeros((), dtype=torch.long))
        # a frozen copy of θ*, kept out of the module tree (no state_dict entry, no train/eval switching)
        self._reference = [] if original is None else [copy.deepcopy(original).eval().requires_grad_(False)]
        self.loss_fn = loss_fn  # an nn.Module objective is registered as a submodule (and trained)
        self.optim = optim
        self.frozen: dict[str, Tensor] = {}  # name -> Bool frozen entries of partially trained params
        self.anchor: dict[str, Tensor] = {}  # name -> values of those entries at the start, flattened
        self._requires_grad = {n: p.requires_grad for n, p in model.named_parameters()}
        for name, p in model.named_parameters():
            mask = None if trainable_masks is None else trainable_masks.get(name)
            if mask is not None and mask.shape != p.shape:
                raise ValueError(
                    f"mask of {name} has shape {list(mask.shape)}, the parameter {list(p.shape)}"
                )
            train = trainable_masks is None or (mask is not None and bool(mask.any()))
            p.requires_grad_(train)
            if train and mask is not None and not bool(mask.all()):
                self.frozen[name] = ~mask.to(device=p.device, dtype=torch.bool)
                self.anchor[name] = p.detach()[self.frozen[name]].clone()
        n_train = sum(int(p.numel()) for p in self.trainable_parameters().values())
        self.num_updated = n_train - sum(int(m.sum()) for m in self.frozen.values())
        n_all = sum(int(p.numel()) for p in model.parameters())
        log.info("masked unlearning: %d of %d entries updated", self.num_updated, n_all)

    @property
    def reference(self) -> Backbone | None:
        """The frozen copy of θ* given to the objective (None when not asked for)."""
        return self._reference[0] if self._reference else None

    def on_fit_start(self) -> None:
        # the reference, masks and anchors are outside the module tree: follow the model to its device
        if self._reference:
            self._reference[0].to(self.device)
        self.frozen = {n: m.to(self.device) for n, m in self.frozen.items()}
        self.anchor = {n: a.to(self.device) for n, a in self.anchor.items()}

    def trainable_parameters(self) -> dict[str, nn.Parameter]:
        """The model's parameters that have at least one updated entry."""
        return {n: p for n, p in self.model.named_parameters() if p.requires_grad}

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        return self.model(batch)

    def training_step(self, batch: dict[str, dict], batch_idx: int) -> Tensor:
        total = max(int(self.trainer.estimated_stepping_batches), 1)
        progress = min(self.global_step / total, 1.0)
        extra = {k: v for k, v in batch.items() if k not in ("forget", "retain")}
        loss = self.loss_fn(
            self.model, batch.get("forget"), batch.get("retain"), self.reference, progress, **extra
        )
        if not torch.isfinite(loss):
            raise UnlearningFailed(
                f"unlearning loss is {loss.item()} at step {self.global_step}: the method diverged "
                "(lower the learning rate or shorten the run); θ* is untouched"
            )
        self.log("unlearn/train/loss", loss.detach(), prog_bar=True, batch_size=1)
        return loss

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        params = self.trainable_parameters()
        for name, frozen in self.frozen.items():
            if (grad := params[name].grad) is not None:
                grad.masked_fill_(frozen, 0)

    def optimizer_step(self, epoch, batch_idx, optimizer, optimizer_closure=None) -> None:  # noqa: D102
        super().optimizer_step(epoch, batch_idx, optimizer, optimizer_closure)
        self.enforce_freeze(optimizer)
        self.steps_done += 1

    @torch.no_grad()
    def enforce_freeze(self, optimizer: torch.optim.Optimizer | None = None) -> None:
        """Writes frozen entries back to their start values and zeroes their optimizer state."""
        params = self.trainable_parameters()
        for name, frozen in self.frozen.items():
            p = params[name]
            p.masked_scatter_(frozen, self.anchor[name])
            state = {} if optimizer is None else optimizer.state.get(p, {})
            for value in state.values():
                if torch.is_tensor(value) and value.shape == p.shape:
                    value.masked_fill_(frozen, 0)
        finite = torch.stack([torch.isfinite(p).all() for p in params.values()])  # one device sync
        if params and not bool(finite.all()):
            name = list(params)[int((~finite).nonzero()[0])]
            raise UnlearningFailed(
                f"parameter {name} is not finite after step {self.global_step}: the update diverged"
            )

    def configure_optimizers(self):
        groups = [{"params": list(self.trainable_parameters().values())}]
        if isinstance(self.loss_fn, nn.Module) and any(True for _ in self.loss_fn.parameters()):
            lr = getattr(self.loss_fn, "lr", None) or self.optim.lr
            groups.append({"params": list(self.loss_fn.parameters()), "lr": lr})
        o = self.optim
        if o.optimizer == "adamw":
            opt = torch.optim.AdamW(groups, lr=o.lr, weight_decay=o.weight_decay, betas=o.betas)
        else:
            opt = torch.optim.SGD(groups, lr=o.lr, weight_decay=o.weight_decay, momentum=o.momentum)
        if o.schedule == "constant":
            return opt
        total = max(int(self.trainer.estimated_stepping_batches), 1)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: max(0.0, 1.0 - step / total))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def teardown(self, stage: str) -> None:
        for name, p in self.model.named_parameters():  # hand the model back as it came
            p.requires_grad_(self._requires_grad[name])
