"""Retain repair after class forgetting: a short fine-tuning on D_r of the units the method updated.

Removing a class with one step (SO-type) or by ascent (GA, NPO) also damages the neighbouring classes:
measured on the ViT class-forgetting setups, the candidates that forget the class (UA ≤ 6%) kept 3–10
points less retain accuracy than RT, and the methods' own candidate tables rarely held one within 2
points (experiments/README.md, "Retain repair"). The repair is the second half of the impair–repair
recipe (UNSIR, Tarun et al. 2023): fine-tune the unlearned model on D_r, updating only the entries the
method changed (within its unit mask for MAPE and the random control, SalUn's saliency mask, SSD's
dampened entries; the hard freeze keeps every other entry θ*'s), and let the same RT-free rule
choose the checkpoint, step 0 -- the method's own choice -- included. D_r holds no example of the
forgotten classes, so the repair pushes their logits down further; the rule's class-forgetting
criterion (:func:`~unlearn_lit.selection.rule.class_gap`, measured against θ*'s row) prefers a repaired
checkpoint only where the estimated accuracy gap shrinks.

``when="class"`` (default) repairs class-forgetting runs only: for random forgetting the rule's noise
guard already keeps retain utility (and RT fits D_r as θ* does, so more fitting moves away from it).

The learning rate: the full-parameter fine-tuning default of the model size (:func:`auto_lr`); under a
unit mask the repair also runs at masked unlearning's 20× of it, from the same start, and the rule chooses
among both runs' checkpoints (as among fine-tuning's learning-rate retries). Neither rate suits every
setup: measured on Fashion-MNIST class 7 (MAPE-SO, seed 0; experiments/README.md, "Retain repair") the
20× repair's retain accuracy oscillated between 83% and 88% and ended 3.5 points below RT, while 1× reached
92% within 34 steps (Avg.Gap 1.36 → 0.29); on digits class 3, 1× was still improving after its 74 steps
and the random-unit control ended farther from RT at 1× than at 20× (0.90 vs 0.40).

The length: 2 epochs of D_r, doubled once (``extend``) when the rule chooses the last checkpoint -- the
repair was still improving when it ended, as the SO grid is extended past the edge its choice sits on.
Measured on digits class 3 (MAPE-SO, 5 seeds; experiments/README.md, "Retain repair"): the 2-epoch
repair chose its last checkpoint on 4/5 seeds.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from torch import Tensor, nn

from unlearn_lit.config.finetune import WHEN, RepairConfig  # noqa: F401  (WHEN: re-exported)
from unlearn_lit.methods.base import MethodResult, UnlearnInputs
from unlearn_lit.methods.finetune import MASKED_LR_FACTOR, FinetuneConfig, auto_lr, finetune, selection_sets
from unlearn_lit.methods.losses import repair_loss

log = logging.getLogger(__name__)


def repair(inputs: UnlearnInputs, result: MethodResult, cfg: RepairConfig, rule: Any) -> MethodResult:
    """Fine-tunes ``result.model`` on D_r within the method's update mask; the RT-free rule (against
    θ*'s selection row) chooses the step, 0 = no repair. Returns the method's result with the repaired
    model, ``hparams["repair_steps"]`` and the repair's table and times in ``info["repair"]``."""
    lrs = repair_lrs(cfg, result.model, masked=inputs.param_mask is not None)
    ft = FinetuneConfig(
        epochs=cfg.epochs,
        retain_batch_size=cfg.retain_batch_size,
        rule=rule,
        candidates=cfg.candidates,
        lr_retries=0,  # the unlearned model already meets the forget target: no retry signal applies
        patience=None,  # nor early stopping on it
        extend=cfg.extend,
    )
    sets = selection_sets(inputs, ft, None)  # θ*'s, shared with the method: θ*'s row is the reference
    start = dataclasses.replace(inputs, original=result.model, selection_sets=sets)
    trainable = changed_masks(inputs.original, result.model)
    repaired = finetune(start, ft, repair_loss, uses=("forget", "retain"), trainable=trainable, lrs=lrs)
    info = repaired.info
    steps = int(repaired.hparams["steps"])
    log.info("retain repair: step %d of %d (%s)", steps, info["steps_run"], info.get("reason", ""))
    hparams = {**result.hparams, "repair_steps": steps, "repair_lr": repaired.hparams["lr"]}
    merged = dict(result.info)
    merged["repair"] = {
        "steps": steps,
        "steps_run": info["steps_run"],
        "lr": repaired.hparams["lr"],
        "reason": info.get("reason"),
        "table": repaired.candidates,
        **{k: info[k] for k in info if k.startswith("time_")},
    }
    oracles = [v for v in (result.info.get("oracle_avg_gap"), info.get("oracle_avg_gap")) if v is not None]
    if oracles:  # the best candidate evaluated, repair included (analysis)
        merged["oracle_avg_gap"] = min(oracles)
    candidates = result.candidates + [{**r, "stage": "repair"} for r in repaired.candidates]
    return MethodResult(repaired.model, hparams=hparams, candidates=candidates, info=merged)


def repair_lrs(cfg: RepairConfig, model: nn.Module, masked: bool) -> list[float]:
    """The repair's learning rates: the configured one; else the full-parameter default of the model size
    (:func:`auto_lr`), and under a unit mask also masked unlearning's 20× of it (module docstring)."""
    if cfg.lr is not None:
        return [cfg.lr]
    full = auto_lr(sum(p.numel() for p in model.parameters()))
    return [full, MASKED_LR_FACTOR * full] if masked else [full]


def changed_masks(original: nn.Module, model: nn.Module) -> dict[str, Tensor]:
    """Bool masks of the entries ``model`` changed from ``original`` (parameters it left alone are
    omitted: they stay frozen)."""
    before = dict(original.named_parameters())
    out = {}
    for name, p in model.named_parameters():
        diff = p.detach() != before[name].detach().to(p.device)
        if diff.any():
            out[name] = diff
    return out
