"""run(cfg, out): the whole comparison, top to bottom like a recipe (METHOD.md §1–§7).

original θ* (trained or cached) → RT (trained or cached) → phase 1 + greedy search (when a method uses
the MAPE mask) → phase 2 per method → evaluation → report. Everything is written into a partial
directory that is renamed to ``out`` only when the run succeeds; an existing ``out`` is never
overwritten (:mod:`unlearn_lit.rundir`). Phase 1, each method and each successive-unlearning row are
recorded the moment they finish, so an interrupted or failed run resumes without recomputing them
(the relearning attack reads finished methods' models back from ``models/``). A method that fails (NaN,
divergence, bad option) is recorded as failed; the others go on.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import math
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

from unlearn_lit.config import RunConfig
from unlearn_lit.eval.cost import CostTracker
from unlearn_lit.eval.mcq import McqEvaluator
from unlearn_lit.eval.metrics import avg_gap, evaluate
from unlearn_lit.eval.relearn import plot_relearn, relearn_curves
from unlearn_lit.eval.tofu import TofuEvaluator
from unlearn_lit.loggers import RunLoggers, offline_runs
from unlearn_lit.masks.artifact import MaskArtifact
from unlearn_lit.masks.objectives import maskable_kinds, random_scores, select_units
from unlearn_lit.methods import METHODS, UnlearnInputs, parse_method
from unlearn_lit.methods.repair import repair
from unlearn_lit.methods.salun import salun_mask
from unlearn_lit.methods.successive import run_successive
from unlearn_lit.models import build_backbone
from unlearn_lit.models.save import save_backbone
from unlearn_lit.phases.mask_learning import MaskConfig, learn_mask
from unlearn_lit.phases.train import load_original, train_or_load
from unlearn_lit.report import environment, log_metrics, write_report
from unlearn_lit.rundir import RunDirectory, open_run
from unlearn_lit.runtime import true_dtype
from unlearn_lit.selection import Headroom, SelectionRule, selection_dtype, verdict
from unlearn_lit.units import unit_layout

log = logging.getLogger(__name__)
PRETRAINED = "pretrained"  # ``original: pretrained``: θ* is the backbone's own (pretrained) weights


def run(
    cfg: RunConfig, out: str | Path, callbacks: Sequence[Any] = (), resume: bool = False
) -> dict[str, Any]:
    """Runs the comparison described by ``cfg``; returns the ``metrics.json`` content.

    ``callbacks`` (Lightning callbacks) are given to every Trainer of the run: θ*/RT training, phase 1
    and the fine-tuning methods. ``resume`` continues the failed or interrupted run of ``out`` (same
    config): phase 1 and the methods that finished there are read back, not recomputed.

    Raises:
        RunInterrupted: Ctrl-C; the finished steps are kept (the message names the directory).
    """
    out = Path(out)
    if out.exists():
        raise FileExistsError(f"run directory {out} exists; choose another --out or remove it")
    prepared = prepare(cfg)  # data, backbone and saved mask load before anything is written
    with open_run(out, dataclasses.asdict(cfg), resume=resume) as rundir:
        result = _run(cfg, rundir, *prepared, callbacks=list(callbacks))
    log.info("run directory: %s", out)
    for path in offline_runs(out):
        log.info("W&B offline run saved; upload it with: wandb sync %s", path)
    return result


def prepare(cfg: RunConfig) -> tuple[Any, Any, MaskArtifact | None]:
    """Fails early: builds the data and one backbone (offline errors surface here), loads a saved mask;
    returns the datamodule, the backbone factory and the saved mask (None without ``mask_file``)."""
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    for what, path in (("original", cfg.original), ("mask_file", cfg.mask_file)):
        if path is not None and path != PRETRAINED and not Path(path).expanduser().exists():
            raise FileNotFoundError(f"{what} {path} does not exist")
    dm = cfg.data.build()
    if dm.dataset.task == "lm" and cfg.relearn is not None:
        raise ValueError(
            f"dataset {cfg.data.name!r} is question answering with a causal LM: the relearning attack scores "
            "classifiers (forget accuracy) and is not available for it; set relearn to null"
        )

    def factory():
        return build_backbone(cfg.backbone, num_labels=dm.dataset.num_labels, **cfg.backbone_options)

    probe = unit_layout(factory())
    saved = None
    if cfg.mask_file is not None:
        saved = MaskArtifact.load(cfg.mask_file, expected_shapes={k: probe.shape(k) for k in probe.kinds})
        # the random-unit control and the record use cfg.mask: a different saved mask would be silently
        # compared with a control of another sparsity or kinds
        wanted = {"sparsity": cfg.mask.sparsity, "objective": cfg.mask.objective,
                  "kinds": list(maskable_kinds(cfg.mask.kinds))}  # fmt: skip
        differs = {k: (saved.summary[k], v) for k, v in wanted.items()
                   if k in saved.summary and saved.summary[k] != v}  # fmt: skip
        if differs:
            detail = ", ".join(f"{k}: file {a!r} vs the config's {b!r}" for k, (a, b) in differs.items())
            raise ValueError(f"mask_file {cfg.mask_file} was learnt with other settings ({detail}); set "
                             "the same mask.* options (the random control and the record use them)")  # fmt: skip
    return dm, factory, saved


def weights_dtype(cfg: RunConfig) -> Any:
    """The dtype of θ*, RT and every model the run loads: a ``*-true`` precision's (the runtime's, else the
    training recipe's, which θ* and RT are trained in); None keeps the backbone's own."""
    return cfg.trainer.dtype or true_dtype(cfg.train_recipe().precision)


def built(cfg: RunConfig, factory: Any) -> Any:
    """A fresh backbone on the runtime's device and in the run's weights dtype, to load a saved model into
    (a float64 file is never read through float32 weights)."""
    return cfg.trainer.place(factory(), weights_dtype(cfg))


def model_of(
    cfg: RunConfig, which: str, dm: Any, factory: Any, loggers: RunLoggers, callbacks: Sequence[Any] = ()
):
    """θ* (``which="original"``: loaded from ``cfg.original``, the backbone as built when it is
    ``pretrained`` -- WMDP's θ* is the pretrained chat model, METHOD.md §9 -- else trained or cached)
    or RT (``"retrain"``: trained on D_r or cached), in eval mode on the runtime's device and in
    :func:`weights_dtype` (placed once, here: every later phase sees the same weights); binds ``dm``."""
    if which == "original" and cfg.original == PRETRAINED:
        model = built(cfg, factory)
        model.train_info = {"pretrained": True, "seconds": 0.0}
        dm.bind(model)
    elif which == "original" and cfg.original is not None:  # the user's own θ*: loaded, never trained
        model = load_original(built(cfg, factory), cfg.original)
        dm.bind(model)
    else:  # trained in, or loaded into, the recipe's *-true dtype (the runtime's when it sets one)
        model = train_or_load(factory, dm, cfg.train_recipe(), which, cache_dir=cfg.cache_dir, runtime=cfg.trainer,
                              logger=loggers.phase("rt" if which == "retrain" else which), callbacks=callbacks,
                              force=cfg.retrain, retrain_corrupt=cfg.retrain_corrupt)  # fmt: skip
    return cfg.trainer.place(model.eval(), weights_dtype(cfg))


def _run(
    cfg: RunConfig,
    rundir: RunDirectory,
    dm: Any,
    factory: Any,
    saved: MaskArtifact | None,
    callbacks: list[Any],
) -> dict[str, Any]:
    tmp = rundir.path
    dm.write_split(tmp)
    runtime = cfg.trainer
    loggers = RunLoggers(tmp, cfg.logger, cfg.wandb_project, cfg.table, name=rundir.out.name)
    device = runtime.device()  # Lightning returns modules on the CPU: put them back each time
    log.info("runtime: %s (one-process phases on %s)", runtime, device)
    original = model_of(cfg, "original", dm, factory, loggers, callbacks)
    retrain = None  # RT only when requested: without it there is no Avg.Gap (reported absent, not 0)
    if "rt" in cfg.methods:
        retrain = model_of(cfg, "retrain", dm, factory, loggers, callbacks)
    # training time, also when the weights came from the cache (recorded when they were trained)
    times = {w: float(m.train_info.get("seconds", math.nan))
             for w, m in (("original", original), ("rt", retrain)) if m is not None}  # fmt: skip
    dm.bind(original)
    ev = dict(retain_subsample=cfg.eval_retain_subsample, seed=cfg.seed)
    lm = dm.dataset.task == "lm"  # a causal LM: TOFU's or WMDP's metrics (METHOD.md §9)
    score, row = scorer(cfg, dm) if lm else (functools.partial(evaluate, datamodule=dm, **ev), table_row)
    rt_metrics = score(retrain) if retrain is not None else None
    if isinstance(score, TofuEvaluator) and retrain is not None:  # forget quality: forget TRs vs RT's
        score.reference = score.last_truth_ratios
        rt_metrics["forget/quality"] = 1.0
    layout = unit_layout(original)
    params = dict(original.named_parameters())
    total = sum(p.numel() for p in params.values())
    rows: dict[str, dict[str, Any]] = {}
    original_metrics = score(original)
    if isinstance(score, McqEvaluator):  # no RT in WMDP: every later row reports its drop from θ*
        score.reference = original_metrics
        original_metrics = {**original_metrics, "forget/acc_drop": 0.0, "retain/acc_drop": 0.0}
    rows["original"] = row(original_metrics, rt_metrics, 0.0, 0, total)
    if retrain is not None:
        rows["rt"] = row(rt_metrics, rt_metrics, times["rt"], total, total)

    masks: dict[str, Any] = {}
    artifact: MaskArtifact | None = None
    phase1_s = 0.0
    sources = {parse_method(m)[1] for m in cfg.methods if m not in ("rt", "original")}
    if "mape" in sources and saved is not None:  # a saved mask skips phase 1
        artifact = saved
        artifact.save(tmp / "mask", overwrite=rundir.resumed_from is not None)
        masks["mape"] = layout.param_masks(artifact.masks, params)
    elif "mape" in sources and rundir.done("phase1") is not None:  # resumed: learnt before
        artifact, phase1_s = MaskArtifact.load(tmp / "mask"), rundir.done("phase1")["seconds"]
        masks["mape"] = layout.param_masks(artifact.masks, params)
    elif "mape" in sources:
        rundir.clear("mask")
        t0 = time.perf_counter()
        artifact = learn_mask(original, cfg.mask, dm.forget, dm.retain, out_dir=tmp / "mask",
                              **runtime.trainer_kwargs(callbacks=callbacks))  # fmt: skip
        original.to(device)
        # the cost is phase 1 + search as the phase timed them; writing the artifact (its figure
        # renders in matplotlib: 0.3-1 s) is the run's reporting, logged apart
        timed = artifact.summary.get("time_s", {})
        phase1_s = float(timed.get("phase1", math.nan)) + float(timed.get("search", math.nan))
        wall_s = time.perf_counter() - t0
        if not math.isfinite(phase1_s):
            phase1_s = wall_s
        log.info("phase 1 + search: %.2f s (%.2f s with the Trainer and writing the mask artifact)",
                 phase1_s, wall_s)  # fmt: skip
        rundir.record("phase1", {"seconds": phase1_s, "wall_s": wall_s})
        masks["mape"] = layout.param_masks(artifact.masks, params)
    if "random" in sources or (cfg.successive and parse_method(cfg.successive.method)[1] == "random"):
        masks["random"] = _random_mask(layout, params, cfg.mask, cfg.seed)
    if "salun" in sources:
        masks["salun"] = salun_mask(original, dm.forget_dataloader(), fraction=1 - cfg.mask.sparsity)

    if cfg.train_outside_units:  # parameters no unit owns become trainable under unit masks
        outside = {
            n: torch.ones_like(p, dtype=torch.bool)
            for n, p in params.items()
            if n not in set(layout.unit_param_names())
        }
        masks = {k: {**outside, **m} if k != "salun" else m for k, m in masks.items()}
    cost = CostTracker(device="cuda" if device.type == "cuda" else None)
    models: dict[str, Any] = {}  # unlearned models kept for the relearning attack
    shared_sets: dict[Any, Any] = {}  # θ*'s selection sets, built once for every method
    sel_dtype = selection_dtype(cfg.selection_precision, runtime.precision)
    failed: dict[str, str] = {}
    hparams: dict[str, Any] = {}
    for name in cfg.methods:
        if name in ("rt", "original"):
            continue
        base, source = parse_method(name)
        done = rundir.done(name)
        if done is not None:  # finished before the run was interrupted: read back
            rows[name], hparams[name] = done["row"], done["hparams"]
            if cfg.relearn is not None:
                models[name] = _saved_model(cfg, factory, tmp, name)
            continue
        rundir.clear(f"models/{name}", f"logs/{name}")  # leftovers of an interrupted attempt
        method = METHODS.get(base)
        # picklable (spawned fine-tuning processes carry it in the selection callback)
        headroom = (
            Headroom(rt_metrics, functools.partial(evaluate, datamodule=dm, **ev), prune=cfg.headroom_prune)
            if cfg.headroom and rt_metrics is not None and not lm  # Avg.Gap is not a TOFU metric
            else None
        )
        inputs = UnlearnInputs(original, dm, layout, masks.get(source), seed=cfg.seed, headroom=headroom,
                               phase1_time_s=phase1_s if source == "mape" and saved is None else None,
                               runtime=runtime, callbacks=callbacks, logger=loggers.phase(name),
                               shared_sets=shared_sets, selection_dtype=sel_dtype)  # fmt: skip
        try:
            mcfg = cfg.method_options.resolve(name)
            with cost.phase(name) as record:
                result = method.run(inputs, mcfg)
                rule = getattr(mcfg, "rule", None) or SelectionRule()
                unrepaired = None
                if cfg.repair.applies(dm, result, rule):
                    unrepaired, result = result.model, repair(inputs, result, cfg.repair, rule)
            result.model.to(device)
            # the method's time: phase 1 counts for MAPE methods; scoring candidates against RT (headroom,
            # analysis only) does not
            parts = _cost(result.info, phase1_s if source == "mape" else 0.0)
            seconds = record["seconds"] - parts["headroom_s"] + parts["phase1_s"]
            metrics = score(result.model)
            bad = [k for k, v in metrics.items() if not math.isfinite(v) and "class" not in k]
            if bad:
                raise FloatingPointError(f"non-finite metrics after unlearning: {bad}")
        except Exception as err:  # noqa: BLE001 - recorded, the comparison goes on
            log.exception("method %s failed", name)
            failed[name] = f"{type(err).__name__}: {err}"
            continue
        updated = changed_entries(original, result.model)
        rows[name] = row(metrics, rt_metrics, seconds, updated, total, record["peak_memory_bytes"])
        rows[name]["cost"] = parts
        did, why = verdict(updated, metrics, original_metrics, result.info)
        rows[name].update(unlearned=did, unlearn_note=why, oracle_avg_gap=result.info.get("oracle_avg_gap"))
        if unrepaired is not None:  # the method alone, for comparison (evaluated outside its time)
            alone = row(score(unrepaired.to(device)), rt_metrics, 0.0, 0, total)
            rows[name]["before_repair"] = {k: alone[k] for k in ("forget_acc", "retain_acc", "test_acc", "mia",
                                                                 "avg_gap")}  # fmt: skip
            rows[name]["repair_steps"] = result.hparams["repair_steps"]
        if cfg.save_models:
            _save_unlearned(result, rows[name], name, cfg, dm, tmp, artifact if source == "mape" else None)
        if not did:
            log.warning("%s did not unlearn: %s", name, why)
        hparams[name] = {"selected": result.hparams, "candidates": result.candidates, "info": result.info}
        # persisted now; the summary holds what a resumed run reads back, so both write the same metrics
        kept = rundir.record(name, {"row": rows[name], "hparams": hparams[name]})
        rows[name], hparams[name] = kept["row"], kept["hparams"]
        if cfg.relearn is not None:
            models[name] = result.model

    if cfg.successive is not None:
        for name, rec, model in _successive(cfg, rundir, original, dm, layout, masks, callbacks, sel_dtype):
            if isinstance(rec, str):
                failed[name] = rec
                continue
            if model is None:  # finished before the run was interrupted: read back
                rows[name], hparams[name] = rec["row"], rec["hparams"]
                continue
            metrics = score(model)
            done = row(metrics, rt_metrics, rec["seconds"], changed_entries(original, model), total)
            kept = rundir.record(name, {"row": done, "hparams": {"requests": rec["requests"]}})
            rows[name], hparams[name] = kept["row"], kept["hparams"]
    relearn = None
    if cfg.relearn is not None:
        references = {"original": original, **({"rt": retrain} if retrain is not None else {})}
        relearn = relearn_curves({**references, **models}, dm.forget, cfg.relearn)
        plot_relearn(
            relearn, tmp / "relearn.png", "forget_acc", title="relearning attack: forget accuracy per step"
        )

    summary = {
        "methods": rows,
        "failed": failed,
        "hparams": hparams,
        "times_s": {**times, "phase1_and_search": phase1_s},
        "relearn": relearn,
        "config": dataclasses.asdict(cfg),
        "environment": {
            **environment(cfg.seed, cfg.trainer, original),
            # the selection's forward passes: an autocast dtype, or None for the weights' own
            "selection_autocast": None if sel_dtype is None else str(sel_dtype).removeprefix("torch."),
        },
    }
    write_report(tmp, summary, title=cfg.table)
    log_metrics(tmp, summary, cfg.logger, cfg.wandb_project, cfg.table, loggers)
    return summary


def _successive(
    cfg: RunConfig,
    rundir: RunDirectory,
    original,
    dm,
    layout,
    masks: dict[str, Any],
    callbacks: list[Any],
    sel_dtype: Any = None,
) -> Iterator[tuple[str, Any, Any]]:
    """Runs each (mode, R) of ``cfg.successive`` in turn, yielding ``(row name, record | error, final
    model)``; a row the run directory recorded before is yielded as ``(name, its record, None)``."""
    sc = cfg.successive
    base, source = parse_method(sc.method)
    so_cfg = cfg.method_options.resolve(sc.method)

    def mape_mask(model, forget_loader, retain_loader):  # phase 1 again, on the current model
        art = learn_mask(model, cfg.mask, forget_loader.dataset, retain_loader.dataset,
                         **cfg.trainer.trainer_kwargs(callbacks=callbacks))  # fmt: skip
        model.to(cfg.trainer.device())
        return layout.param_masks(art.masks, dict(model.named_parameters()))

    for mode in sc.modes:
        for r in sc.requests:
            name = f"{sc.method}@{r}req_{mode}"
            if rundir.done(name) is not None:
                yield name, rundir.done(name), None
                continue
            fixed = None if source == "mape" else masks.get(source)
            inputs = UnlearnInputs(original, dm, layout, fixed, seed=cfg.seed, runtime=cfg.trainer,
                                   selection_dtype=sel_dtype)  # fmt: skip
            t0 = time.perf_counter()
            try:
                res = run_successive(mode, inputs, so_cfg, r, mask_fn=mape_mask if source == "mape" else None)
            except Exception as err:  # noqa: BLE001 - recorded, the comparison goes on
                log.exception("successive %s failed", name)
                yield name, f"{type(err).__name__}: {err}", None
                continue
            requests = [{"t": q.t, "size": len(q.forget_positions), **q.hparams} for q in res]
            yield name, {"seconds": time.perf_counter() - t0, "requests": requests}, res[-1].model


COST_PARTS = (
    "phase1_s", "fisher_s", "forget_grad_s", "selection_s", "update_s", "steps_s", "repair_s", "headroom_s"
)  # fmt: skip


def _cost(info: dict[str, Any], phase1_s: float) -> dict[str, float]:
    """A method's time by part (zeros where a part does not apply); ``headroom_s`` is the analysis
    against RT, not part of the method's cost. ``phase1_s`` (MAPE) is phase 1 + search as the phase
    timed them, without writing the mask artifact and its figure."""
    parts = {k: float(info.get(f"time_{k}", 0.0) or 0.0) for k in COST_PARTS}
    parts["phase1_s"] = phase1_s
    rep = info.get("repair") or {}
    parts["repair_s"] = float(rep.get("time_steps_s", 0.0) + rep.get("time_selection_s", 0.0))
    parts["headroom_s"] += float(rep.get("time_headroom_s", 0.0))
    return parts


def _save_unlearned(result, row, name: str, cfg: RunConfig, dm, tmp: Path, artifact) -> None:
    """``models/<name>/``: the model in its native format and ``unlearning_record.json`` beside it."""
    directory = save_backbone(result.model, tmp / "models" / name)
    forget = forget_ids(dm)
    record = {
        "method": name,
        "forget_ids": forget,  # indices into the training pool D (forget_indices.json of the run)
        "forget_ids_sha256": forget_digest(dm),
        "data": {"name": cfg.data.name, "options": cfg.data.options, "forget": cfg.data.forget},
        "backbone": cfg.backbone,
        "original": cfg.original,
        "selected": result.hparams,
        "selection": {k: result.info.get(k) for k in ("reason", "kept_original", "target", "guard")},
        "mask": None
        if artifact is None
        else {k: artifact.summary.get(k) for k in ("objective", "sparsity", "kinds")},
        "metrics": {k: v for k, v in row.items() if k != "metrics"},
        "environment": environment(cfg.seed, cfg.trainer, result.model),
    }
    (directory / "unlearning_record.json").write_text(json.dumps(record, indent=1, default=str))


def forget_ids(dm: Any) -> list[int]:
    """The forget set as sorted indices into the training pool D (``forget_indices.json``)."""
    return sorted(int(i) for i in dm.forget_indices)


def forget_digest(dm: Any) -> str:
    """SHA-256 of :func:`forget_ids`: an unlearned model's record names the forget set it was made for."""
    return hashlib.sha256(json.dumps(forget_ids(dm)).encode()).hexdigest()


def _saved_model(cfg: RunConfig, factory: Any, tmp: Path, name: str) -> Any:
    """A finished method's unlearned model, read back from ``models/<name>`` (the relearning attack needs it)."""
    if not (tmp / "models" / name).is_dir():
        raise FileNotFoundError(
            f"resuming with relearn needs the finished methods' models: {tmp / 'models' / name} is missing "
            "(run with save_models: true)"
        )
    return load_original(built(cfg, factory), tmp / "models" / name)


def _random_mask(layout, params: dict[str, Any], mask: MaskConfig, seed: int) -> dict[str, Any]:
    """The control: random units at the phase-1 mask's sparsity, kinds and budget, in parameter shape."""
    scores = random_scores({k: layout.shape(k) for k in layout.kinds}, seed=seed)
    selected = select_units(scores, mask.sparsity, budget=mask.budget, kinds=maskable_kinds(mask.kinds))
    return layout.param_masks(selected, params)


def table_row(
    metrics: dict[str, float],
    rt: dict[str, float] | None,
    seconds: float,
    updated: int,
    total: int,
    peak_bytes: int = 0,
) -> dict[str, Any]:
    score = "spearman" if "test/spearman" in metrics else "acc"
    return {
        "forget_acc": metrics[f"forget/{score}"],
        "retain_acc": metrics[f"retain/{score}"],
        "test_acc": metrics[f"test/{score}"],
        "mia": metrics["forget/mia"],
        "mia_efficacy": metrics["forget/mia_efficacy"],
        "loss_auc": metrics["forget/loss_auc"],
        "avg_gap": avg_gap(metrics, rt) / 100.0 if rt is not None else None,  # absent without RT
        "time_s": seconds,
        "unlearned": None,  # set for unlearning methods (False: kept θ* or changed no metric)
        "oracle_avg_gap": None,  # the best candidate's Avg.Gap to RT (analysis; needs RT)
        "peak_mem_mb": peak_bytes / 2**20,
        "params_updated": updated,
        "params_total": total,
        "metrics": metrics,
    }


def _tofu_columns(metrics: dict[str, float]) -> dict[str, Any]:
    """TOFU (METHOD.md §9): forget ROUGE, forget quality (needs RT), model utility."""
    return {
        "forget_rouge": metrics["forget/rouge"],
        "forget_quality": metrics.get("forget/quality"),  # absent without RT
        "model_utility": metrics["model_utility"],
    }


def _mcq_columns(metrics: dict[str, float]) -> dict[str, Any]:
    """WMDP (METHOD.md §9, no RT): forget-topic accuracy against chance (and the binomial p-value of
    doing that well by guessing), utility (MMLU) accuracy and its drop from θ*."""
    return {
        "wmdp_acc": metrics["forget/acc"],
        "chance": metrics["forget/chance"],
        "wmdp_chance_p": metrics["forget/chance_p"],
        "mmlu_acc": metrics["retain/acc"],
        "mmlu_drop": metrics.get("retain/acc_drop"),  # θ* minus this model (absent for RT)
    }


def _llm_row(
    columns: Any,
    metrics: dict[str, float],
    rt: dict[str, float] | None,
    seconds: float,
    updated: int,
    total: int,
    peak_bytes: int = 0,
) -> dict[str, Any]:
    """An LLM row (as :func:`table_row`, after ``columns``): the benchmark's ``columns(metrics)``, the
    classification columns empty, and the cost."""
    return {
        **{k: None for k in ("forget_acc", "retain_acc", "test_acc", "mia", "mia_efficacy", "avg_gap")},
        **columns(metrics),
        "time_s": seconds,
        "unlearned": None,
        "oracle_avg_gap": None,
        "peak_mem_mb": peak_bytes / 2**20,
        "params_updated": updated,
        "params_total": total,
        "metrics": metrics,
    }


def scorer(cfg: RunConfig, dm: Any) -> tuple[Any, Any]:
    """The evaluator and row builder of a causal-LM dataset: multiple choice when it has WMDP-like
    question sets (``forget_mcq``), else TOFU's question answering."""
    if "forget_mcq" in dm.dataset.eval_sets:
        ev = McqEvaluator(dm.dataset.eval_sets, cfg.tofu_eval.batch_size, cfg.tofu_eval.mcq_format)
        return ev, functools.partial(_llm_row, _mcq_columns)
    return TofuEvaluator(dm.dataset.eval_sets, cfg.tofu_eval), functools.partial(_llm_row, _tofu_columns)


def changed_entries(original: torch.nn.Module, model: torch.nn.Module) -> int:
    after = dict(model.named_parameters())
    return int(sum((p != after[n]).sum().item() for n, p in original.named_parameters()))
