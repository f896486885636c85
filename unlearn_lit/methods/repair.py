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

The learning rate is the full-parameter fine-tuning default of the model size (:func:`auto_lr`) also
under a unit mask. Masked *unlearning* takes 20× larger steps (the paper's 2e-4 vs 1e-5): few coordinates
must move θ* far enough to forget. The repair descends on D_r from a point near a good solution, where
the stable step is set by the curvature of the coordinates it moves, which a mask does not change.
Measured on Fashion-MNIST class 7, MAPE-SO seed 0 (experiments/README.md, "Retain repair"): at 20× the
repair's retain accuracy oscillated between 83% and 88% over its 340 steps and ended 3.5 points below RT;
at 1× it rose to 92% within 34 steps (Avg.Gap 1.36 → 0.29).
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from torch import Tensor, nn

from unlearn_lit.config.finetune import WHEN, RepairConfig  # noqa: F401  (WHEN: re-exported)
from unlearn_lit.methods.base import MethodResult, UnlearnInputs
from unlearn_lit.methods.finetune import FinetuneConfig, auto_lr, finetune, selection_sets
from unlearn_lit.methods.losses import repair_loss

log = logging.getLogger(__name__)


def repair(inputs: UnlearnInputs, result: MethodResult, cfg: RepairConfig, rule: Any) -> MethodResult:
    """Fine-tunes ``result.model`` on D_r within the method's update mask; the RT-free rule (against
    θ*'s selection row) chooses the step, 0 = no repair. Returns the method's result with the repaired
    model, ``hparams["repair_steps"]`` and the repair's table and times in ``info["repair"]``."""
    lr = cfg.lr if cfg.lr is not None else auto_lr(sum(p.numel() for p in result.model.parameters()))
    ft = FinetuneConfig(
        optim=dataclasses.replace(FinetuneConfig().optim, lr=lr),
        masked_lr=lr,  # the same rate with or without a unit mask (module docstring)
        epochs=cfg.epochs,
        retain_batch_size=cfg.retain_batch_size,
        rule=rule,
        candidates=cfg.candidates,
        lr_retries=0,  # the unlearned model already meets the forget target: no retry signal applies
        patience=None,  # nor early stopping on it
    )
    sets = selection_sets(inputs, ft, None)  # θ*'s, shared with the method: θ*'s row is the reference
    start = dataclasses.replace(inputs, original=result.model, selection_sets=sets)
    trainable = changed_masks(inputs.original, result.model)
    repaired = finetune(start, ft, repair_loss, uses=("forget", "retain"), trainable=trainable)
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
