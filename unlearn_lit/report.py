"""Run-directory outputs: metrics.json, results.csv, a markdown table, the resolved config, environment.

Every file is written atomically (temporary file, then ``os.replace``).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import lightning
import torch
import transformers
import yaml

log = logging.getLogger(__name__)
COLUMNS = (
    "forget_acc",
    "retain_acc",
    "test_acc",
    "mia",
    "avg_gap",
    "oracle_avg_gap",
    "unlearned",
    "time_s",
    "peak_mem_mb",
    "params_updated",
    "params_total",
)


def atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def environment(seed: int, runtime: Any = None, model: Any = None) -> dict[str, Any]:
    """Git commit, versions, seed, and where the run computed: the runtime's processes, precision and
    device (``runtime``: the run's :class:`~unlearn_lit.runtime.Runtime`; None: the default one) and
    the dtype of θ*'s weights (``model``; None: the runtime's, else torch's default)."""
    from unlearn_lit.runtime import Runtime

    runtime = runtime or Runtime()
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True,
                                cwd=Path(__file__).parent).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    return {
        "git_commit": commit,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "lightning": lightning.__version__,
        "transformers": transformers.__version__,
        "seed": seed,
        "world_size": runtime.world_size,
        # None: the training recipe's precision for θ*/RT, 32-true in every other phase
        "precision": runtime.precision,
        "dtype": str(
            next(model.parameters()).dtype
            if model is not None
            else runtime.dtype or torch.get_default_dtype()
        ).removeprefix("torch."),
        "device": runtime.device().type,
    }


LM_COLUMNS = ("forget_rouge", "forget_quality", "model_utility")


def lm_markdown_table(rows: dict[str, dict[str, Any]], failed: dict[str, str]) -> str:
    """TOFU rows (METHOD.md §9): forget ROUGE-L, forget quality, model utility, time, params updated."""

    def cells(r: dict[str, Any]) -> list[str]:
        fq = "–" if r.get("forget_quality") is None else f"{r['forget_quality']:.3g}"
        return [f"{r['forget_rouge']:.3f}", fq, f"{r['model_utility']:.3f}"]

    return _llm_table(rows, failed, ("forget ROUGE", "forget quality", "model utility"), cells)


MCQ_COLUMNS = ("wmdp_acc", "chance", "wmdp_chance_p", "mmlu_acc", "mmlu_drop")


def mcq_markdown_table(rows: dict[str, dict[str, Any]], failed: dict[str, str]) -> str:
    """WMDP rows (METHOD.md §9, no RT): forget-topic accuracy vs chance, utility accuracy and its drop."""

    def cells(r: dict[str, Any]) -> list[str]:
        drop = "–" if r.get("mmlu_drop") is None else f"{r['mmlu_drop']:+.3f}"
        return [
            f"{r['wmdp_acc']:.3f} ({r['chance']:.2f})",
            f"{r['wmdp_chance_p']:.2g}",
            f"{r['mmlu_acc']:.3f}",
            drop,
        ]

    header = ("forget-topic acc (chance)", "p at chance", "utility acc", "utility drop vs θ*")
    return _llm_table(rows, failed, header, cells)


def _llm_table(
    rows: dict[str, dict[str, Any]], failed: dict[str, str], header: tuple[str, ...], cells: Any
) -> str:
    """A markdown table of LLM rows: the method, ``cells(row)`` under ``header``, time, params updated."""
    columns = ("method", *header, "time (s)", "params updated")
    head = f"| {' | '.join(columns)} |\n|{'---|' * len(columns)}\n"
    lines, notes = [], []
    for name, r in rows.items():
        frac = r["params_updated"] / max(r["params_total"], 1)
        label = name
        if r.get("unlearned") is False:
            label = f"{name} (did not unlearn)"
            notes.append(f"- {name} did not unlearn: {r.get('unlearn_note', '')}")
        values = [label, *cells(r), f"{r['time_s']:.1f}", f"{r['params_updated']} ({100 * frac:.1f}%)"]
        lines.append(f"| {' | '.join(values)} |")
    lines += [f"| {name} | failed: {why[:80]} |{' |' * (len(columns) - 2)}" for name, why in failed.items()]
    table = head + "".join(line + "\n" for line in lines)
    return table + ("\n" + "\n".join(notes) + "\n" if notes else "")


def markdown_table(rows: dict[str, dict[str, Any]], failed: dict[str, str]) -> str:
    """UA / RA / TA / MIA / Avg.Gap in percent, the oracle's Avg.Gap (headroom), time, parameters updated.

    Methods that did not unlearn are marked in the method column and explained below the table;
    failed methods are listed.
    """
    head = (
        "| method | UA | RA | TA | MIA | Avg.Gap | oracle Avg.Gap | time (s) | params updated |\n"
        "|---|---|---|---|---|---|---|---|---|\n"
    )
    if any("model_utility" in r for r in rows.values()):
        return lm_markdown_table(rows, failed)
    if any("wmdp_acc" in r for r in rows.values()):
        return mcq_markdown_table(rows, failed)
    lines, notes = [], []
    for name, r in rows.items():
        pct = [f"{100 * r[k]:.2f}" if r.get(k) is not None else "–"
               for k in ("forget_acc", "retain_acc", "test_acc", "mia", "avg_gap")]  # fmt: skip
        oracle = "" if r.get("oracle_avg_gap") is None else f"{100 * r['oracle_avg_gap']:.2f}"
        frac = r["params_updated"] / max(r["params_total"], 1)
        label = name
        if r.get("before_repair") is not None:  # class forgetting: the method, then its retain repair
            label = f"{name} + repair ({r['repair_steps']} steps)"
            b = r["before_repair"]
            alone = ", ".join(f"{k} {100 * b[v]:.2f}" for k, v in
                              (("UA", "forget_acc"), ("RA", "retain_acc"), ("TA", "test_acc"), ("Avg.Gap", "avg_gap"))
                              if b.get(v) is not None)  # fmt: skip
            notes.append(f"- {name} alone, before its retain repair: {alone}")
        if r.get("unlearned") is False:
            label = f"{label} (did not unlearn)"
            notes.append(f"- {name} did not unlearn: {r.get('unlearn_note', '')}")
        lines.append(
            f"| {label} | {' | '.join(pct)} | {oracle} | {r['time_s']:.1f} | "
            f"{r['params_updated']} ({100 * frac:.1f}%) |"
        )
    lines += [f"| {name} | failed: {why[:80]} | | | | | | | |" for name, why in failed.items()]
    table = head + "".join(line + "\n" for line in lines)
    if any(r.get("oracle_avg_gap") is not None for r in rows.values()):
        notes.append("- oracle Avg.Gap: the candidate closest to RT among those the method evaluated "
                     "(uses RT; analysis only, never used to choose).")  # fmt: skip
    return table + ("\n" + "\n".join(notes) + "\n" if notes else "")


def write_report(directory: Path, summary: dict[str, Any], title: str) -> None:
    """Writes metrics.json, results.csv, results.md and config.yaml into ``directory``; prints the table."""
    atomic_write(directory / "metrics.json", json.dumps(summary, indent=2, default=str))
    buf = io.StringIO()
    writer = csv.writer(buf)
    lm = any("model_utility" in r for r in summary["methods"].values())
    mcq = any("wmdp_acc" in r for r in summary["methods"].values())
    columns = (*LM_COLUMNS, *COLUMNS) if lm else (*MCQ_COLUMNS, *COLUMNS) if mcq else COLUMNS
    writer.writerow(("method", *columns))
    for name, r in summary["methods"].items():
        writer.writerow((name, *(r[c] for c in columns)))
    atomic_write(directory / "results.csv", buf.getvalue())
    table = markdown_table(summary["methods"], summary["failed"])
    note = ("Forget quality: KS-test p-value against RT's forget truth ratios; model utility: harmonic "
            "mean of nine (METHOD.md §9)." if lm else "All numbers in percent; Avg.Gap is to RT.")  # fmt: skip
    if mcq:
        note = ("Multiple choice by choice log-likelihood (METHOD.md §9, no RT): forget-topic (WMDP) accuracy "
                "should fall to chance -- 'p at chance' is the binomial p-value of scoring that well by "
                "guessing -- while the utility (MMLU) accuracy keeps θ*'s (drop = θ* minus the row).")  # fmt: skip
    atomic_write(directory / "results.md", f"# {title}\n\n{note}\n\n{table}")
    atomic_write(directory / "config.yaml", yaml.safe_dump(summary["config"], sort_keys=False))
    print(table)  # the product's main output: the comparison table


def log_metrics(
    directory: Path, summary: dict[str, Any], logger: str, project: str, group: str, loggers: Any = None
) -> None:
    """CSV always (``logs/``); W&B too when ``logger == "wandb"`` (``WANDB_MODE=offline`` needs no key).

    Keys are ``phase/split/metric`` with the method as the phase: ``mape_so/forget/acc``. ``loggers``:
    the run's :class:`~unlearn_lit.loggers.RunLoggers` (its W&B run holds the phases' curves too).
    """
    from unlearn_lit.loggers import RunLoggers

    loggers = loggers or RunLoggers(directory, logger, project, group)
    flat = {f"{method}/{key}": value for method, row in summary["methods"].items()
            for key, value in row["metrics"].items()}  # fmt: skip
    flat.update({f"{method}/cost/{k}": row[k] for method, row in summary["methods"].items()
                 for k in ("time_s", "peak_mem_mb", "params_updated", "avg_gap", "oracle_avg_gap")
                 if row.get(k) is not None})  # fmt: skip
    loggers.final(flat, summary["config"])  # the config, once
