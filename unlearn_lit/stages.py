"""The pipeline's stages as commands (``python -m unlearn_lit train|mask|unlearn|evaluate|compare``).

Each stage takes the one :class:`~unlearn_lit.config.RunConfig` and reads what the previous one wrote:

- ``train``: θ* (or RT with ``--retain_only``) → ``DIR/model`` in its native format (``--original``);
- ``mask``: phase 1 + greedy search on θ* → the mask artifact in ``DIR`` (``--mask_file``);
- ``unlearn``: the methods on θ* → ``DIR/models/<method>/`` with their records (no RT);
- ``evaluate``: saved models on the splits → ``DIR/metrics.json`` (Avg.Gap against ``--rt``);
- ``compare``: the whole comparison (:func:`unlearn_lit.run.run`).

The split is a function of the config (seeded): the same ``data`` fields give the same forget set in
every stage, and ``evaluate`` checks it against each unlearned model's record. Every stage writes its
directory as a run does (partial, then renamed; never overwritten).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Any

from unlearn_lit.config import RunConfig
from unlearn_lit.eval.metrics import evaluate as evaluate_model
from unlearn_lit.loggers import RunLoggers, offline_runs
from unlearn_lit.models.save import save_backbone
from unlearn_lit.phases.mask_learning import learn_mask
from unlearn_lit.phases.train import load_original
from unlearn_lit.report import atomic_write, environment, log_metrics, write_report
from unlearn_lit.run import (
    built,
    changed_entries,
    forget_digest,
    model_of,
    prepare,
    run,
    table_row,
)
from unlearn_lit.rundir import open_run

log = logging.getLogger(__name__)


def compare(cfg: RunConfig, args: Any) -> int:
    """The whole comparison into ``--out`` (``--resume`` continues an interrupted one)."""
    run(cfg, args.out, resume=args.resume)
    return 0


def train(cfg: RunConfig, args: Any) -> int:
    """θ* trained on D (RT on D_r with ``--retain_only``) with the config's recipe, saved natively in
    ``DIR/model`` with its metrics in ``DIR/metrics.json``; θ*/RT come from the cache when it has them."""
    which = "retrain" if args.retain_only else "original"
    if cfg.original is not None:
        raise ValueError("train makes θ* (or RT); --original is what later stages load: drop it here")
    dm, factory, _ = prepare(cfg)
    with open_run(args.out, dataclasses.asdict(cfg)) as rundir:
        dm.write_split(rundir.path)
        loggers = RunLoggers(rundir.path, cfg.logger, cfg.wandb_project, cfg.table, name=rundir.out.name)
        model = model_of(cfg, which, dm, factory, loggers)
        save_backbone(model, rundir.path / "model")
        metrics = evaluate_model(model, dm, retain_subsample=cfg.eval_retain_subsample, seed=cfg.seed)
        record = {"which": which, "metrics": metrics, "train_info": model.train_info,
                  "forget_ids_sha256": forget_digest(dm), "environment": environment(cfg.seed, cfg.trainer, model)}  # fmt: skip
        atomic_write(rundir.path / "metrics.json", json.dumps(record, indent=2, default=str))
        loggers.final({f"{which}/{k}": v for k, v in metrics.items()}, dataclasses.asdict(cfg))
    _sync_hint(args.out)
    log.info("%s saved in %s (load it with --original %s)", which, args.out, Path(args.out) / "model")
    return 0


def mask(cfg: RunConfig, args: Any) -> int:
    """Phase 1 and the greedy search on θ* (``original``, else trained or cached): the mask artifact."""
    dm, factory, _ = prepare(cfg)
    with open_run(args.out, dataclasses.asdict(cfg)) as rundir:
        dm.write_split(rundir.path)
        loggers = RunLoggers(rundir.path, cfg.logger, cfg.wandb_project, cfg.table, name=rundir.out.name)
        original = model_of(cfg, "original", dm, factory, loggers)
        artifact = learn_mask(
            original, cfg.mask, dm.forget, dm.retain, out_dir=rundir.path, **cfg.trainer.trainer_kwargs()
        )
        counts = {f"mask/{k}/selected": float(v.sum()) for k, v in artifact.masks.items()}
        loggers.final(counts, dataclasses.asdict(cfg))
    _sync_hint(args.out)
    log.info("mask saved in %s (use it with --mask_file %s)", args.out, args.out)
    return 0


def unlearn(cfg: RunConfig, args: Any) -> int:
    """The methods on θ*; every unlearned model saved in ``DIR/models/<method>/`` with its record."""
    if "rt" in cfg.methods:
        raise ValueError(
            "unlearn runs unlearning methods; RT is `train --retain_only` (drop rt from --methods)"
        )
    run(dataclasses.replace(cfg, save_models=True), args.out, resume=args.resume)
    return 0


def evaluate(cfg: RunConfig, args: Any) -> int:
    """Every model of ``--models`` (and θ* when ``original`` is set) on the splits, against ``--rt``."""
    dm, factory, _ = prepare(cfg)
    digest = forget_digest(dm)
    paths = [Path(p) for p in args.models]
    names = [_label(p) for p in paths]
    if len(set(names)) < len(names):
        names = [str(p) for p in paths]
    records = {}  # an unlearned model records its forget set: it must be this config's
    for path in paths:
        if (path / "unlearning_record.json").is_file():
            records[str(path)] = json.loads((path / "unlearning_record.json").read_text())
            if records[str(path)]["forget_ids_sha256"] != digest:
                raise ValueError(
                    f"{path} was unlearned on another forget set than this config's data fields give"
                )
    ev = dict(retain_subsample=cfg.eval_retain_subsample, seed=cfg.seed)

    def load(path: str) -> Any:
        model = load_original(built(cfg, factory), path)  # in eval mode
        dm.bind(model)
        return model

    with open_run(args.out, dataclasses.asdict(cfg)) as rundir:
        dm.write_split(rundir.path)
        loggers = RunLoggers(rundir.path, cfg.logger, cfg.wandb_project, cfg.table, name=rundir.out.name)
        rt = load(args.rt) if args.rt else None  # first: every row's Avg.Gap is to RT
        rt_metrics = evaluate_model(rt, dm, **ev) if rt is not None else None
        original = load(cfg.original) if cfg.original else None  # parameters changed are counted from θ*
        listed = [("original", cfg.original, original)] if original is not None else []
        listed += [("rt", args.rt, rt)] if rt is not None else []
        listed += [(name, str(path), None) for name, path in zip(names, paths, strict=True)]
        rows = {}
        for name, path, model in listed:
            model = model if model is not None else load(path)
            metrics = rt_metrics if model is rt else evaluate_model(model, dm, **ev)
            total = sum(p.numel() for p in model.parameters())
            # counted from θ* when given, else as recorded where the model was unlearned
            recorded = records.get(path, {}).get("metrics", {}).get("params_updated", total)
            updated = changed_entries(original, model) if original is not None else recorded
            rows[name] = {**table_row(metrics, rt_metrics, 0.0, updated, total), "path": path}
        summary = {"methods": rows, "failed": {}, "config": dataclasses.asdict(cfg),
                   "environment": environment(cfg.seed, cfg.trainer)}  # fmt: skip
        write_report(rundir.path, summary, title=f"{cfg.table}: evaluation")
        log_metrics(rundir.path, summary, cfg.logger, cfg.wandb_project, cfg.table, loggers)
    _sync_hint(args.out)
    return 0


def _sync_hint(out: str | Path) -> None:
    for path in offline_runs(out):
        log.info("W&B offline run saved; upload it with: wandb sync %s", path)


def _label(path: Path) -> str:
    """A model's row name: the method of ``.../models/<method>``, else the directory or file name."""
    return path.name if path.is_dir() or path.suffix != ".safetensors" else path.stem
