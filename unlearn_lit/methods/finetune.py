"""The shared driver of the fine-tuning methods (METHOD.md §5, masked fine-tuning; §6 baselines).

Each fine-tuning method (``ga``, ``gd``, ``npo``, ``ft``, ``rl``, ``sa``, ``salun``, ``sure``) is an
objective plus a choice of loaders; :func:`finetune` does the rest: copy θ*, build the forget/retain
loaders from the datamodule contract, train with :class:`~unlearn_lit.phases.unlearn.MaskedUnlearning`
(hard freeze) in a real ``lightning.Trainer``, pick the checkpoint with
:class:`~unlearn_lit.selection.checkpoint.CheckpointSelection`, and return a ``MethodResult``.

Defaults that move a model of any size **[choice]**: the learning rate is the paper's 1e-5 at BERT-base
size (110M parameters) scaled by sqrt(110M / |θ|) (smaller models need larger steps), masked runs use
20× it (the paper's 2e-4 vs 1e-5), and the checkpoint spacing gives about ``candidates`` checkpoints
over the run whatever the data size.

Method configs subclass :class:`FinetuneConfig` (configs only; methods share code through functions).
"""

from __future__ import annotations

import gc
import json
import logging
import math
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.utilities import CombinedLoader
from torch import Tensor
from torch.utils.data import DataLoader

from unlearn_lit.config.finetune import FinetuneConfig
from unlearn_lit.methods.base import MethodResult, UnlearnInputs
from unlearn_lit.phases.unlearn import MaskedUnlearning, Objective
from unlearn_lit.selection import CheckpointSelection, SelectionSets, first_examples
from unlearn_lit.selection.headroom import oracle_summary

log = logging.getLogger(__name__)

LOADERS = ("forget", "retain")
REFERENCE_LR, REFERENCE_PARAMS, MASKED_LR_FACTOR = 1e-5, 110e6, 20.0


def auto_lr(num_params: int) -> float:
    """The paper's 1e-5 at BERT-base size, scaled by sqrt(110M / |θ|) (clamped to [1e-6, 1e-3])."""
    return min(max(REFERENCE_LR * math.sqrt(REFERENCE_PARAMS / max(num_params, 1)), 1e-6), 1e-3)


def finetune(
    inputs: UnlearnInputs,
    cfg: FinetuneConfig,
    objective: Objective,
    uses: Sequence[str] = LOADERS,
    trainable: dict[str, Tensor] | None = None,
    reference: bool = False,
    extra_loaders: dict[str, DataLoader] | None = None,
    val_loader: DataLoader | None = None,
    lrs: Sequence[float] | None = None,
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
        lrs: learning rates to run, each from θ* (replaces the configured rate and its retries); the
            rule chooses among their chosen checkpoints as among retries.

    ``inputs.logger`` (a Lightning logger) receives the training and selection curves, and
    ``inputs.callbacks`` are added to the Trainer. The result's ``hparams["steps"]`` is the chosen step,
    ``candidates`` the selection table and ``info`` the rule's reason, the steps run, the number of
    updated entries and, with ``inputs.headroom``, the oracle's Avg.Gap.

    Raises:
        UnlearningFailed: on a non-finite loss or parameter (θ* is untouched: training runs on a copy).
    """
    # a finished fine-tuning's Trainer <-> LightningModule reference cycles keep its model copies and
    # optimizer states (~4x the model) until the cyclic collector runs: measured on SmolLM2-135M, each
    # method of a run left ~3 GB more resident than the last
    gc.collect()
    masks = trainable if trainable is not None else inputs.param_mask
    planned = list(lrs or [])
    lr = planned[0] if planned else learning_rate(cfg, inputs.original, masked=inputs.param_mask is not None)
    t_sets = time.perf_counter()
    sets = selection_sets(inputs, cfg, val_loader) if cfg.selection else None
    screen = screen_sets(sets, cfg.selection_screen)
    times = {"steps": 0.0, "selection": time.perf_counter() - t_sets, "headroom": 0.0}
    attempts: list[dict[str, Any]] = []
    runs: list[tuple[Any, MaskedUnlearning, int, CheckpointSelection | None, int]] = []
    attempt, doublings = 0, 0  # doublings: of this attempt's length (the rule chose its last checkpoint)
    while attempt < (len(planned) or cfg.lr_retries + 1):
        lr = planned[attempt] if planned else lr
        length = 2**doublings
        L.seed_everything(inputs.seed, workers=True, verbose=False)
        model = inputs.fresh_model()
        module = MaskedUnlearning(
            model, inputs.original if reference else None, masks, objective, replace(cfg.optim, lr=lr)
        )
        if module.num_updated == 0:
            log.warning("the update mask selects no parameter entry: the model is returned unchanged")
            module.teardown("fit")
            info = {
                "num_updated": 0,
                "steps_run": 0,
                "kept_original": True,
                "reason": "the mask selects no entry",
            }
            return MethodResult(model, hparams={"lr": lr, "steps": 0}, info=info)
        loaders = {name: _loader(inputs, cfg, name) for name in uses}
        loaders.update(extra_loaders or {})
        if not loaders:
            raise ValueError(
                f"a fine-tuning method needs at least one training loader of {', '.join(LOADERS)}"
            )
        world = inputs.runtime.world_size
        total = length * (cfg.max_steps or cfg.epochs * max(len(dl) for dl in loaders.values()) // world)
        every = cfg.every_n_steps or max(1, round(total / cfg.candidates))
        selector = None
        if sets is not None:
            selector = CheckpointSelection(
                sets,
                cfg.rule,
                cfg.rule.resolve(inputs.datamodule),
                every,
                cfg.patience,
                headroom=inputs.headroom,
                screen=screen,
                confirm_top=cfg.confirm_top,
                # sets built here are θ*'s, and training starts from a copy of θ*: step 0 is their reference
                start_row=sets.ref if inputs.selection_sets is None else None,
            )
        trainer = L.Trainer(
            **inputs.runtime.trainer_kwargs(
                logger=inputs.logger,
                callbacks=([selector] if selector else []) + list(inputs.callbacks),
            ),
            max_epochs=length * cfg.epochs if cfg.max_steps is None else -1,
            max_steps=length * cfg.max_steps if cfg.max_steps is not None else -1,
            gradient_clip_val=cfg.grad_clip,
            enable_checkpointing=False,
            enable_model_summary=False,
            log_every_n_steps=1,  # unlearning runs are short: every step's loss is a point of the curve
            num_sanity_val_steps=0,
            limit_val_batches=0,
        )
        with tempfile.TemporaryDirectory(prefix="selection_") as tmp:
            if selector is not None and world > 1:
                selector.state_file = str(Path(tmp) / "selection.json")
            t_fit = time.perf_counter()
            trainer.fit(module, train_dataloaders=CombinedLoader(loaders, mode="max_size_cycle"))
            fit_s = time.perf_counter() - t_fit
            if selector is not None and selector.choice is None:  # spawned processes selected
                selector.load_state_dict(json.loads(Path(selector.state_file).read_text()))
        measured = (selector.selection_s, selector.headroom_s) if selector is not None else (0.0, 0.0)
        times["steps"] += fit_s - sum(measured)  # the optimizer steps (and data loading)
        times["selection"] += measured[0]
        times["headroom"] += measured[1]
        steps_run = int(module.steps_done)  # also right in the main process of a spawned run
        chosen = selector.chosen_step if selector is not None else steps_run
        if at_edge(selector, steps_run) and doublings < cfg.extend:
            log.info(
                "lr %.3g: the rule chose the last of %d steps; rerunning at twice the length", lr, steps_run
            )
            doublings += 1
            continue
        attempts.append({"lr": lr, "chosen_step": chosen, "reason": selector.choice.reason if selector else "",
                         "length": length})  # fmt: skip
        runs.append((model.cpu(), module, steps_run, selector, every))
        attempt, doublings = attempt + 1, 0
        if planned:
            continue
        factor = lr_retry_factor(selector, attempts, cfg.candidates) if attempt <= cfg.lr_retries else None
        if factor is None:
            break
        log.info("lr %.3g: %s; retrying at lr %.3g", lr, attempts[-1]["reason"], lr * factor)
        lr *= factor
    best = _best_attempt(runs)
    model, module, steps_run, selector, every = runs[best]
    hparams: dict[str, Any] = {"lr": attempts[best]["lr"], "steps": steps_run, "every_n_steps": every}
    info: dict[str, Any] = {"num_updated": module.num_updated, "steps_run": steps_run}
    info.update(kept_original=steps_run == 0, lr_attempts=attempts, lr_attempt_chosen=best)
    info.update({f"time_{k}_s": v for k, v in times.items()})  # every attempt's, summed
    if selector is not None:
        hparams["steps"] = selector.chosen_step
        info.update(
            choice=selector.choice.reason,
            reason=selector.choice.reason,
            stopped_early=selector.stopped_early,
            kept_original=selector.chosen_step == 0,
            target=selector.target,
            guard=cfg.rule.guard,
            selection_ref=dict(selector.sets.ref),  # θ*'s row: re-apply any guard offline
            selection_screen=None if screen is None else max(screen.sizes().values()),
            selection_evaluations={
                k: sum(s.evaluations[k] for _, _, _, s, _ in runs if s is not None)
                for k in ("screen", "full")
            },
            **oracle_summary([r for _, _, _, s, _ in runs if s is not None for r in s.table]),
        )
    candidates = [
        {**r, "lr": a["lr"]} for a, (_, _, _, s, _) in zip(attempts, runs, strict=True) if s for r in s.table
    ]
    return MethodResult(model, hparams=hparams, candidates=candidates, info=info)


def at_edge(selector: CheckpointSelection | None, steps_run: int) -> bool:
    """Whether the rule chose the run's last checkpoint (and the run was not stopped early): the run
    ended before the rule's target was reached, so a longer run may hold a better checkpoint."""
    return (
        selector is not None
        and steps_run > 0
        and selector.chosen_step == steps_run
        and not selector.stopped_early
    )


def _best_attempt(runs: list[tuple[Any, Any, Any, CheckpointSelection | None, int]]) -> int:
    """Among the learning-rate attempts, the one whose chosen checkpoint the rule prefers (the last
    attempt when there is no selection)."""
    selectors = [r[3] for r in runs]
    if any(s is None for s in selectors) or len(runs) == 1:
        return len(runs) - 1
    rows = [s.table[s.choice.index] for s in selectors]
    return selectors[0].rule.choose(rows, selectors[0].sets.ref, selectors[0].target).index


def lr_retry_factor(
    selector: CheckpointSelection | None, attempts: list[dict[str, Any]], candidates: int = 20
) -> float | None:
    """Whether to rerun at another learning rate, and by which factor (None: keep this run).

    0.1 when the step is too large to resolve: the first checkpoint already broke the guard while the
    rule kept θ*, or the forget set passed its target within the first quarter of the planned
    checkpoints (the trajectory is too coarse near the target). 10 when it is too small: the rule kept
    θ* although every checkpoint kept the guard. The learning rate only moves one way within a run; the
    rule then chooses among the attempts' chosen checkpoints. The checkpoints are judged as measured
    during training (on the screen, when there is one: :attr:`CheckpointSelection.trajectory`).
    """
    if selector is None or len(selector.table) < 2:
        return None
    (table, ref), rule = selector.trajectory, selector.rule  # as measured during training
    early = selector.passed_at is not None and selector.passed_at <= max(2, candidates // 4)
    if selector.chosen_step == 0 and not rule.within(table[1], ref) or early:
        factor = 0.1
    elif selector.chosen_step == 0 and all(rule.within(r, ref) for r in table):
        factor = 10.0
    else:
        return None
    previous = [b["lr"] / a["lr"] for a, b in zip(attempts, attempts[1:], strict=False)]
    if previous and (previous[-1] > 1) != (factor > 1):
        return None
    return factor


def _loader(inputs: UnlearnInputs, cfg: FinetuneConfig, name: str) -> DataLoader:
    dm = inputs.datamodule
    if name == "forget":
        return dm.forget_dataloader(batch_size=cfg.forget_batch_size)
    if name == "retain":
        return dm.retain_dataloader(shuffle=True, seed=inputs.seed, batch_size=cfg.retain_batch_size)
    raise ValueError(f"unknown training loader {name!r}; valid choices: {', '.join(LOADERS)}")


def learning_rate(cfg: FinetuneConfig, model: Any, masked: bool) -> float:
    """The run's learning rate: the configured one, or :func:`auto_lr` (× 20 for masked runs)."""
    full = cfg.optim.lr if cfg.optim.lr is not None else auto_lr(sum(p.numel() for p in model.parameters()))
    if not masked:
        return full
    return cfg.masked_lr if cfg.masked_lr is not None else MASKED_LR_FACTOR * full


def screen_sets(sets: SelectionSets | None, n: int | None) -> SelectionSets | None:
    """``n`` examples evenly spread through each selection set, or None (no screen) when ``n`` is None
    or 0 or the screen would hold every example of every set."""
    if sets is None or not n or n >= max(sets.sizes().values()):
        return None
    return sets.subset(n, spread=True)


def selection_sets(
    inputs: UnlearnInputs, cfg: FinetuneConfig, val_loader: DataLoader | None
) -> SelectionSets:
    """The selection sets (built once per method; shared by the learning-rate retries)."""
    if val_loader is None:  # θ*'s sets, shared by the run's methods
        return inputs.sets(cfg.selection_retain, cfg.selection_val)
    if inputs.selection_sets is not None:
        return inputs.selection_sets
    dm = inputs.datamodule
    spec = getattr(dm, "forget_spec", None)
    return SelectionSets(
        inputs.original,
        dm.retain_dataloader(subsample=cfg.selection_retain, seed=inputs.seed),
        dm.forget_dataloader(),
        first_examples(val_loader if val_loader is not None else dm.val_dataloader(), cfg.selection_val),
        exclude_labels=tuple(spec.classes) if getattr(spec, "policy", None) == "class" else (),
        autocast=inputs.selection_dtype,
    )
