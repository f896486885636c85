"""Shared helpers of the paper-reproduction scripts (METHOD.md §7–§8).

Every script under ``experiments/`` follows the same shape: parse :func:`base_parser` arguments, run one
config (``configs/paper/...`` online, ``configs/offline/...`` with ``--offline``) under a few overrides
per setting with :func:`run_config` -- each run a fresh run directory of the pipeline -- flatten the
results into rows (:func:`summary_rows`), average over seeds (:func:`aggregate`) and write
``<name>.csv``, ``<name>.md`` (the paper's numbers beside ours, :data:`PAPER`) and ``<name>.png``.

The successive requests and the relearning attack are sections of the same pipeline config
(``successive``, ``relearn``), so every number comes from :func:`unlearn_lit.run.run`.
"""

from __future__ import annotations

import argparse
import copy
import csv
import json
import logging
import math
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

# Before unlearn_lit (imported lazily) loads transformers: offline runs must never reach the network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "disabled")

from unlearn_lit.crossrun.report import fmt  # noqa: E402  (no torch, no transformers)

ROOT = Path(__file__).resolve().parents[1]
PAPER_CONFIG = ROOT / "configs/paper/glue_bert_base_mnli.yaml"
log = logging.getLogger("experiments")

# METHOD.md §8 (the SPE version's GLUE table, |D_f| = 128 random): UA, MIA, RA, TA as fractions, time in s.
_MNLI = {
    "bert_base": {
        "rt": (85.16, 0.7500, 97.95, 84.78, 8880),
        "ft": (92.19, 0.8594, 99.16, 84.63, 5651),
        "gd": (90.62, 0.8437, 99.13, 84.20, 5690),
        "sa": (89.84, 0.8437, 92.77, 82.05, 4845),
        "so": (85.94, 0.8047, 94.07, 84.60, 1160),
        "mape_so": (85.94, 0.7969, 94.15, 84.62, 1274),
    },
    "distilbert_base": {
        "rt": (82.81, 0.7266, 96.61, 82.47, 4989),
        "ft": (94.53, 0.8906, 98.94, 81.63, 2434),
        "gd": (91.41, 0.8750, 98.72, 81.37, 2498),
        "sa": (90.62, 0.8750, 96.49, 81.23, 2399),
        "so": (89.06, 0.8516, 96.37, 81.29, 587),
        "mape_so": (88.28, 0.8359, 96.47, 81.62, 643),
    },
    "roberta_large": {
        "rt": (90.62, 0.8125, 98.79, 90.02, 62068),
        "ft": (97.66, 0.9766, 99.50, 90.02, 18004),
        "gd": (95.31, 0.8906, 99.64, 89.57, 18176),
        "sa": (92.97, 0.8906, 96.86, 87.08, 14634),
        "so": (92.97, 0.8906, 94.32, 88.99, 3575),
        "mape_so": (92.19, 0.8906, 95.75, 89.52, 3642),
    },
}
_OTHER = {
    ("bert_base", "sst2"): {
        "rt": (93.75, 0.9297, 99.06, 93.00, math.nan),
        "so": (94.53, 0.9141, 98.96, 92.89, math.nan),
        "mape_so": (94.53, 0.8984, 98.93, 93.35, math.nan),
    },
    ("bert_base", "qqp"): {
        "rt": (92.97, 0.875, 98.48, 91.38, math.nan),
        "so": (92.97, 0.9063, 97.69, 90.65, math.nan),
        "mape_so": (92.19, 0.8906, 98.03, 90.72, math.nan),
    },
}
METRICS = ("ua", "mia", "ra", "ta")
PAPER: dict[tuple[str, str], dict[str, dict[str, float]]] = {
    key: {
        method: {"ua": ua / 100, "mia": mia, "ra": ra / 100, "ta": ta / 100, "time_s": t}
        for method, (ua, mia, ra, ta, t) in table.items()
    }
    for key, table in {**{(m, "mnli"): t for m, t in _MNLI.items()}, **_OTHER}.items()
}
FINDINGS = {
    "sparsity": "utility holds up to 90% sparsity and falls beyond it",
    "kinds": "filters-only masks are the most stable",
}


def paper_row(backbone: str, task: str, method: str) -> dict[str, float] | None:
    """The paper's UA/MIA/RA/TA (fractions), time and Avg.Gap (points) for one cell, None if absent."""
    table = PAPER.get((backbone, task), {})
    if method not in table or "rt" not in table:
        return None
    row, rt = table[method], table["rt"]
    return {**row, "avg_gap": 100 * float(np.mean([abs(row[k] - rt[k]) for k in METRICS]))}


# ------------------------------------------------------------------ command line and run directories
def base_parser(
    description: str,
    offline_config: str,
    online_config: Path | None = PAPER_CONFIG,
    offline_seeds: Sequence[int] = (0, 1, 2),
) -> argparse.ArgumentParser:
    """The arguments every experiment script shares.

    Args:
        description: the script's ``--help`` text (what it reproduces).
        offline_config: config under ``configs/offline/`` used with ``--offline``.
        online_config: config of the paper setting (the default); None when the script picks several.
        offline_seeds: default seeds of the offline variant (online: seed 0).
    """
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--offline",
        action="store_true",
        help=f"run the offline variant (configs/offline/{offline_config}) on this machine",
    )
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        help="run this config instead of the default: "
        + (
            str(online_config.relative_to(ROOT))
            if online_config
            else "configs/paper/glue_<model>_<task>.yaml"
        )
        + f", or configs/offline/{offline_config} with --offline",
    )
    seeds = " ".join(map(str, offline_seeds))
    parser.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=None,
        help=f"seeds (forget split, method and mask seeds together); default {seeds} offline, 0 online",
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="output directory (default runs/experiments/NAME)"
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="reuse the finished run directories under --out instead of refusing an existing --out",
    )
    parser.set_defaults(
        _offline_config=ROOT / "configs/offline" / offline_config,
        _online_config=online_config,
        _offline_seeds=list(offline_seeds),
    )
    return parser


def resolve(args: argparse.Namespace, name: str) -> tuple[Path, list[int], Path]:
    """(config, seeds, output directory) from :func:`base_parser` arguments; sets up logging.

    Raises:
        SystemExit: when the output directory holds anything and ``--resume`` was not given (an empty
            one, e.g. left by a run that failed before its first result, is reused).
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = args.config or (args._offline_config if args.offline else args._online_config)
    seeds = args.seeds or (args._offline_seeds if args.offline else [0])
    out = args.out or ROOT / "runs/experiments" / (f"{name}_offline" if args.offline else name)
    if out.exists() and any(out.iterdir()) and not args.resume:
        raise SystemExit(f"{out} exists: pass --resume to reuse its finished runs, or choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    log.info("%s: config %s, seeds %s, output %s", name, config, seeds, out)
    return config, seeds, out


def seed_overrides(seed: int) -> dict[str, Any]:
    """One seed for everything stochastic: the forget split, the methods and the mask subsamples."""
    return {"seed": seed, "data": {"seed": seed}, "mask": {"seed": seed}}


def override(text: str) -> dict[str, Any]:
    """``a.b=VALUE`` (VALUE parsed as YAML) as the nested dict ``{"a": {"b": VALUE}}``."""
    import yaml

    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    out: dict[str, Any] = {}
    node = out
    *parents, leaf = key.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = yaml.safe_load(value)
    return out


def merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Recursive dict merge; ``override`` wins, nested dicts are merged key by key."""
    out = copy.deepcopy(dict(base))
    for key, value in override.items():
        out[key] = (
            merge(out[key], value)
            if isinstance(value, Mapping) and isinstance(out.get(key), Mapping)
            else value
        )
    return out


def load_config(path: Path, overrides: Mapping[str, Any] | None = None) -> Any:
    """A :class:`~unlearn_lit.config.RunConfig` from a YAML file plus overrides, parsed and validated
    exactly as ``python -m unlearn_lit run --config`` does (the merged YAML goes through the CLI parser).

    """
    import tempfile

    import yaml

    from unlearn_lit.__main__ import command_parser
    from unlearn_lit.__main__ import run_config as parsed_config

    fields = merge(yaml.safe_load(Path(path).read_text()) or {}, overrides or {})
    parser = command_parser("compare")
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
        yaml.safe_dump(fields, f, sort_keys=False)
        f.flush()
        return parsed_config(parser, parser.parse_args(["--config", f.name, "--out", "unused"]))


def run_config(config: Path, overrides: Mapping[str, Any], run_dir: Path) -> dict[str, Any]:
    """Runs the pipeline into ``run_dir`` (a fresh directory) and returns its ``metrics.json`` content.

    A ``run_dir`` that already holds ``metrics.json`` (``--resume``) is read instead of run again.
    """
    from unlearn_lit.run import run

    if (run_dir / "metrics.json").is_file():
        log.info("reusing %s", run_dir)
        return json.loads((run_dir / "metrics.json").read_text())
    cfg = load_config(config, overrides)
    log.info("running %s -> %s (methods %s)", config.name, run_dir, ", ".join(cfg.methods))
    t0 = time.perf_counter()
    summary = run(cfg, run_dir)
    log.info("finished %s in %.0f s", run_dir.name, time.perf_counter() - t0)
    return summary


def sweep(
    settings: Sequence[tuple[Path, Mapping[str, Any], Mapping[str, Any]]], seeds: Sequence[int], out: Path
) -> list[dict[str, Any]]:
    """Runs every ``(config, labels, overrides)`` setting for every seed; returns the rows of all runs.

    Run directories are ``out/runs/<label values>-seed<s>``; rows carry the labels and ``seed``. Seeds
    are the outer loop, so an interrupted sweep (``--resume``) has complete seeds first.
    """
    rows: list[dict[str, Any]] = []
    total, done = len(settings) * len(seeds), 0
    for seed in seeds:
        for config, labels, overrides in settings:
            name = "-".join(str(v) for v in labels.values()) or Path(config).stem
            done += 1
            log.info("[%d/%d] %s seed %d", done, total, name, seed)
            summary = run_config(
                config, merge(overrides, seed_overrides(seed)), out / "runs" / f"{name}-seed{seed}"
            )
            rows += summary_rows(summary, **labels, seed=seed)
    return rows


# ------------------------------------------------------------------ rows, tables, plots
def metric_row(row: Mapping[str, Any]) -> dict[str, float]:
    """One pipeline result row -> UA/MIA/RA/TA (fractions), Avg.Gap (points), time, updated share."""
    return {
        "ua": row["forget_acc"],
        "mia": row["mia"],
        "ra": row["retain_acc"],
        "ta": row["test_acc"],
        "avg_gap": 100 * row["avg_gap"],
        "time_s": row["time_s"],
        "updated": row["params_updated"] / max(row["params_total"], 1),
    }


def summary_rows(
    summary: Mapping[str, Any], methods: Iterable[str] | None = None, **labels: Any
) -> list[dict[str, Any]]:
    """Rows ``{**labels, method, ua, mia, ra, ta, avg_gap, time_s, updated}`` of one run; failed methods
    get a row with NaN metrics and the error in ``failed``."""
    keep = set(methods) if methods is not None else None
    rows = [
        {**labels, "method": name, **metric_row(row), "failed": ""}
        for name, row in summary["methods"].items()
        if keep is None or name in keep
    ]
    nan = dict.fromkeys(("ua", "mia", "ra", "ta", "avg_gap", "time_s", "updated"), math.nan)
    rows += [
        {**labels, "method": name, **nan, "failed": why}
        for name, why in summary.get("failed", {}).items()
        if keep is None or name in keep
    ]
    return rows


def aggregate(
    rows: Sequence[Mapping[str, Any]], by: Sequence[str], values: Sequence[str]
) -> list[dict[str, Any]]:
    """Mean, sample std and count of ``values`` per group ``by`` (first-seen order); NaNs are skipped."""
    groups: dict[tuple, list[Mapping[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(row[k] for k in by), []).append(row)
    out = []
    for key, members in groups.items():
        agg: dict[str, Any] = dict(zip(by, key, strict=True))
        for v in values:
            xs = np.array([m[v] for m in members if v in m and m[v] is not None], dtype=float)
            xs = xs[np.isfinite(xs)]
            agg[v] = float(xs.mean()) if xs.size else math.nan
            agg[f"{v}_std"] = float(xs.std(ddof=1)) if xs.size > 1 else math.nan
        agg["n"] = len(members)
        agg["failed"] = "; ".join(sorted({m["failed"] for m in members if m.get("failed")}))
        out.append(agg)
    return out


def reference_rows(
    raw: Sequence[Mapping[str, Any]], names: Iterable[str], label: str, first: Any, values: Sequence[str]
) -> list[dict[str, Any]]:
    """Aggregated rows of methods that do not depend on the swept ``label`` (the original, RT, ...):
    taken from the runs where ``label == first`` only (one per seed), shown with ``label`` "–"."""
    names = set(names)
    picked = [{**r, label: "–"} for r in raw if r["method"] in names and r[label] == first]
    return aggregate(picked, ("method", label), values)


def paired(
    raw: Sequence[Mapping[str, Any]], a: str, b: str, by: str, value: str = "avg_gap"
) -> list[dict[str, Any]]:
    """Seed-by-seed ``value`` of method ``a`` minus method ``b`` per ``by`` group: mean ± std of the
    difference and on how many seeds ``a`` is lower (closer to RT, for Avg.Gap)."""
    cell = {(r["method"], r[by], r["seed"]): r[value] for r in raw}
    out = []
    for key in dict.fromkeys(r[by] for r in raw if r["method"] == a):
        seeds = [s for (m, k, s) in cell if m == a and k == key and (b, key, s) in cell]
        diffs = np.array([cell[(a, key, s)] - cell[(b, key, s)] for s in seeds], dtype=float)
        diffs = diffs[np.isfinite(diffs)]
        out.append(
            {
                by: key,
                "comparison": f"{a} − {b}",
                value: float(diffs.mean()) if diffs.size else math.nan,
                f"{value}_std": float(diffs.std(ddof=1)) if diffs.size > 1 else math.nan,
                "lower": f"{int((diffs < 0).sum())}/{diffs.size}",
            }
        )
    return out


def write_csv(rows: Sequence[Mapping[str, Any]], path: Path) -> Path:
    """Writes ``rows`` (union of their keys, first-seen order) as CSV, atomically."""
    keys = list(dict.fromkeys(k for row in rows for k in row))
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)
    return path


# key -> (header, scale, digits): accuracies in percent, MIA as the paper's fraction.
COLUMNS = {
    "ua": ("UA %", 100.0, 2),
    "mia": ("MIA", 1.0, 4),
    "ra": ("RA %", 100.0, 2),
    "ta": ("TA %", 100.0, 2),
    "avg_gap": ("Avg.Gap", 1.0, 2),
    "time_s": ("time (s)", 1.0, 1),
    "updated": ("updated %", 100.0, 1),
    "time_rel": ("time / RT", 1.0, 3),
    "forget_acc": ("D_f acc %", 100.0, 1),
    "heldout_acc": ("held-out D_f acc %", 100.0, 1),
    "attack_acc": ("attacked D_f acc %", 100.0, 1),
    "lower": ("lower on seeds", 1.0, 0),
}


def markdown_table(
    rows: Sequence[Mapping[str, Any]],
    labels: Sequence[str],
    metrics: Sequence[str],
    paper: Sequence[str] = (),
    spec: Mapping[str, tuple[str, float, int]] | None = None,
) -> str:
    """A markdown table: label columns, ``metrics`` (mean ± std when a ``_std`` is present) and, for
    each of ``paper``, a ``paper <metric>`` column read from ``paper_<metric>`` (``–`` where absent).
    ``spec`` adds (header, scale, digits) of columns that :data:`COLUMNS` does not know."""
    known = {**COLUMNS, **(spec or {})}
    spec = {m: known.get(m, (m, 1.0, 2)) for m in (*metrics, *paper)}
    head = [*labels, *(spec[m][0] for m in metrics), *(f"paper {spec[m][0]}" for m in paper)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        cells = [str(row.get(k, "")) for k in labels]
        cells += [fmt(row.get(m), row.get(f"{m}_std"), spec[m][1], spec[m][2]) for m in metrics]
        cells += [fmt(row.get(f"paper_{m}"), None, spec[m][1], spec[m][2]) for m in paper]
        if row.get("failed"):
            cells[-1] += f" (failed: {row['failed'][:60]})"
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_report(
    out: Path,
    name: str,
    title: str,
    notes: str,
    table: str,
    rows: Sequence[Mapping[str, Any]],
    raw: Sequence[Mapping[str, Any]],
) -> None:
    """Writes ``NAME.md`` (title, notes, table), ``NAME.csv`` (the aggregated rows) and
    ``NAME_runs.csv`` (one row per run and method) into ``out``, and prints the table."""
    write_csv(rows, out / f"{name}.csv")
    write_csv(raw, out / f"{name}_runs.csv")
    text = f"# {title}\n\n{notes.strip()}\n\n{table}"
    tmp = out / f".{name}.md.tmp"
    tmp.write_text(text)
    os.replace(tmp, out / f"{name}.md")
    print(text)
    log.info("wrote %s.{md,csv,png}, %s_runs.csv in %s", name, name, out)


def cross_run_report(out: Path, title: str) -> Path:
    """``python -m unlearn_lit report`` on every run under ``out/runs``: mask figures, mask overlap against
    random masks, trade-off plots (mean ± 95% CI over seeds), ``report.md`` and a self-contained
    ``report.html`` in ``out/report/`` (redrawn on ``--resume``)."""
    from unlearn_lit.crossrun.report import write_report

    return write_report([out / "runs"], out / "report", title=title, force=True)


def plot_panels(
    rows: Sequence[Mapping[str, Any]],
    x: str,
    ys: Sequence[str],
    group: str,
    path: Path,
    title: str = "",
    xlabel: str | None = None,
    logx: bool = False,
    xticks: Sequence[float] | None = None,
    reference: Mapping[str, Mapping[str, float]] | None = None,
) -> Path:
    """One panel per metric in ``ys``, one line per value of ``group`` (error bars = ``_std``), written
    atomically with the Agg backend. ``reference`` draws horizontal lines ``{label: {metric: value}}``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(3.3 * len(ys), 3.2), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(ys), squeeze=False)[0]
    names = list(dict.fromkeys(r[group] for r in rows))
    for ax, y in zip(axes, ys, strict=True):
        header, scale, _ = COLUMNS.get(y, (y, 1.0, 2))
        for name in names:
            pts = sorted((r[x], r[y], r.get(f"{y}_std", math.nan)) for r in rows if r[group] == name)
            xs, ms, ss = (np.array(v, dtype=float) for v in zip(*pts, strict=True))
            ax.errorbar(
                xs,
                scale * ms,
                yerr=_yerr(scale * ss),
                marker="o",
                ms=3,
                capsize=2,
                label=str(name),
            )
        for i, (label, values) in enumerate((reference or {}).items()):
            if y in values and math.isfinite(values[y]):
                ax.axhline(scale * values[y], color=f"C{len(names) + i}", ls="--", lw=1, label=label)
        if logx:
            ax.set_xscale("log")
        if xticks is not None:
            ax.set_xticks(list(xticks), [f"{t:g}" for t in xticks])
        ax.set_xlabel(xlabel or x)
        ax.set_ylabel(header)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def plot_bars(
    rows: Sequence[Mapping[str, Any]],
    category: str,
    ys: Sequence[str],
    path: Path,
    group: Callable[[Mapping[str, Any]], str],
    paper_label: str | None = None,
    title: str = "",
) -> Path:
    """Grouped bars, one panel per metric in ``ys``: ``category`` values on the x axis, one bar per
    ``group(row)`` (error bars = ``_std``), plus hatched bars of the rows' ``paper_<metric>`` when
    ``paper_label`` is given (a format string of ``{group}``, e.g. ``"paper ({group})"``)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    cats = list(dict.fromkeys(r[category] for r in rows))
    groups = list(dict.fromkeys(group(r) for r in rows))
    series = [(g, g, "") for g in groups]  # (group, legend label, hatch)
    if paper_label is not None:
        series += [(g, paper_label.format(group=g), "//") for g in groups]
    fig = Figure(figsize=(max(4.0, 0.25 * len(cats) * len(series)) * len(ys), 3.4), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(ys), squeeze=False)[0]
    width = 0.8 / len(series)
    for ax, y in zip(axes, ys, strict=True):
        header, scale, _ = COLUMNS.get(y, (y, 1.0, 2))
        low: list[float] = []
        high: list[float] = []
        for i, (g, label, hatch) in enumerate(series):
            key = f"paper_{y}" if hatch else y
            cells = [next((r for r in rows if r[category] == c and group(r) == g), {}) for c in cats]
            ms = np.array([_num(c.get(key)) for c in cells])
            ss = np.array([math.nan if hatch else _num(c.get(f"{y}_std")) for c in cells])
            if scale == 100.0:  # accuracy panels may zoom in (see _zoom)
                low += list(scale * (ms - np.nan_to_num(ss)))
                high += list(scale * (ms + np.nan_to_num(ss)))
            xs = np.arange(len(cats)) + (i - (len(series) - 1) / 2) * width
            ax.bar(
                xs,
                scale * ms,
                width,
                yerr=_yerr(scale * ss),
                hatch=hatch,
                color=f"C{groups.index(g)}",
                alpha=0.5 if hatch else 0.9,
                capsize=2,
                label=label,
            )
        _zoom(ax, low, high)
        ax.set_xticks(np.arange(len(cats)), cats, rotation=45, ha="right", fontsize=8)
        ax.set_ylabel(header)
        ax.grid(alpha=0.3, axis="y")
    axes[0].legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def _zoom(ax: Any, low: list[float], high: list[float]) -> None:
    """Starts the y axis of an accuracy panel near its bars (and error bars) when all lie high, e.g. at
    90-100%; other panels keep zero as the baseline."""
    lo, hi = np.nanmin(low, initial=np.inf), np.nanmax(high, initial=-np.inf)
    if np.isfinite(lo) and np.isfinite(hi) and lo > 50.0:
        pad = max(0.5, 0.1 * (hi - lo))
        ax.set_ylim(lo - pad, min(100.0, hi) + pad)


def _num(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) else math.nan


def _yerr(std: np.ndarray) -> np.ndarray | None:
    """Error bars where the std is finite (none at all for single-seed results)."""
    return np.where(np.isfinite(std), std, 0.0) if np.isfinite(std).any() else None


def _save(fig: Any, path: Path) -> Path:
    tmp = path.with_name(f".{path.stem}.tmp.png")
    fig.savefig(tmp, dpi=120)
    os.replace(tmp, path)
    log.info("wrote %s", path)
    return path


def plain_pass_seconds(model: Any, dm: Any, n: int = 1000, repeats: int = 3) -> float:
    """U: seconds of one plain forward + backward pass of ``model`` over ``n`` training examples of ``dm``
    (a bare PyTorch loop: the backbone's own loss, ``backward``, no optimizer, no Lightning), in this
    process with its thread count; the minimum over ``repeats`` passes (the first warms up). Leaves the
    model in train mode without gradients."""
    batches = []
    for batch in dm.train_dataloader(seed=0):
        batches.append(batch)
        if sum(len(b["labels"]) for b in batches) >= n:
            break
    seen = sum(len(b["labels"]) for b in batches)
    model.train()
    best = math.inf
    for _ in range(repeats + 1):
        t0 = time.perf_counter()
        for batch in batches:
            model.per_example_loss(batch).mean().backward()
        best = min(best, time.perf_counter() - t0)
        model.zero_grad(set_to_none=True)
    return best * n / seen


def timed(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """``(median seconds of repeats calls of fn, the last call's result)``."""
    import statistics

    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def minilm_tweets(threads: int) -> tuple[Any, Any]:
    """``(model, datamodule)`` of the MiniLM quickstart's data (all-MiniLM-L6-v2 with a new 3-class head,
    4,000 bundled tweets, 512 validation, 1,000 test), with ``threads`` torch threads; the model in eval
    mode."""
    import torch

    from unlearn_lit.data import UnlearnDataModule, build_dataset
    from unlearn_lit.models import build_backbone

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = build_backbone("minilm", num_labels=3, max_length=64).eval()
    dm = UnlearnDataModule(
        build_dataset("tweets"), max_train=4000, max_test=1000, val_size=512, batch_size=32
    )
    return model, dm.bind(model)
