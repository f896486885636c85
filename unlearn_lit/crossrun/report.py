"""``python -m unlearn_lit report RUN_DIR [RUN_DIR ...] --out DIR``: what several runs unlearned, compared.

Writes into ``DIR`` (atomically: a temporary directory renamed when everything is written):

- ``figures/mask_<run>.png``: every run's mask figure (:mod:`unlearn_lit.viz.masks`), redrawn from the
  saved artifact;
- ``figures/overlap.png`` and the overlap table: mask stability, pairwise Jaccard overlap of the selected
  units per kind against two random masks of the same sparsity (:mod:`unlearn_lit.masks.overlap`);
- ``figures/tradeoff.png`` (and ``figures/sparsity.png`` when the runs differ in sparsity): the
  trade-off plots of :mod:`unlearn_lit.viz.tradeoff`, mean ± 95% CI over seeds;
- ``report.md`` and a self-contained ``report.html`` (figures embedded, tables, every run's config and
  versions, links to the saved models); ``runs.csv`` (one row per run and method).

The run directory's own outputs (``metrics.json``, ``results.md``) are :mod:`unlearn_lit.report`'s.
"""

from __future__ import annotations

import csv
import logging
import math
import os
import re
import shutil
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from unlearn_lit.crossrun.document import Details, Document, Figure, Table, to_html, to_markdown
from unlearn_lit.crossrun.runs import Run, aggregate, is_masked, load_runs, mean_ci, method_rows
from unlearn_lit.masks.overlap import overlap_matrices
from unlearn_lit.viz import save_png
from unlearn_lit.viz.masks import mask_figure
from unlearn_lit.viz.overlap import overlap_figure
from unlearn_lit.viz.tradeoff import sparsity_figure, tradeoff_figure

log = logging.getLogger(__name__)
KINDS = ("head", "filter")
# metric -> (header, scale, digits): accuracies in percent, MIA as a fraction, gaps in points
COLUMNS = {"ua": ("UA %", 100, 2), "ra": ("RA %", 100, 2), "ta": ("TA %", 100, 2), "mia": ("MIA", 1, 4),
           "avg_gap": ("Avg.Gap", 1, 2), "ua_gap": ("UA gap", 1, 2), "ra_ta_gap": ("RA/TA gap", 1, 2),
           "time_s": ("time (s)", 1, 1), "updated": ("updated %", 100, 2)}  # fmt: skip


def fmt(value: Any, spread: Any = None, scale: float = 1.0, digits: int = 2) -> str:
    """``12.34 ± 0.56`` (the spread only when finite); ``–`` for a missing value."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if not isinstance(value, (int, float)):
        return str(value)
    text = f"{scale * value:.{digits}f}"
    if isinstance(spread, (int, float)) and math.isfinite(spread):
        text += f" ± {scale * spread:.{digits}f}"
    return text


def write_report(paths: Iterable[str | Path], out: str | Path, title: str | None = None,
                 force: bool = False) -> Path:  # fmt: skip
    """Compares the runs under ``paths`` (run directories or folders of them) into ``out``.

    Raises:
        FileExistsError: ``out`` exists and ``force`` is False.
        ValueError: a path is not a run directory.
    """
    out = Path(out)
    if out.exists() and not force:
        raise FileExistsError(f"{out} exists; choose another --out or pass --force to replace it")
    runs = load_runs(paths)
    tmp = out.with_name(f".{out.name}.partial-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "figures").mkdir(parents=True)
    try:
        doc = _document(runs, tmp, out, title or f"Cross-run report: {len(runs)} runs")
        (tmp / "report.md").write_text(to_markdown(doc, tmp))
        (tmp / "report.html").write_text(to_html(doc))
        _write_csv(method_rows(runs), tmp / "runs.csv")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    log.info("report of %d runs: %s", len(runs), out / "report.html")
    return out


def _document(runs: Sequence[Run], tmp: Path, out: Path, title: str) -> Document:
    doc = Document(title)
    rows = method_rows(runs)
    groups = aggregate(rows)
    doc.blocks.append(
        "Accuracies (UA on D_f, RA on D_r, TA on D_t) in percent, MIA as a fraction, gaps to RT of the "
        "same run in points (Avg.Gap: mean |Δ| over UA, MIA, RA, TA). Runs that differ only in their "
        "seeds form one setting; means ± 95% Student-t CI over its runs."
    )
    doc.heading("Runs")
    doc.blocks.append(_runs_table(runs, out))
    labelled = {r.setting: r.setting_description for r in runs if r.setting != r.setting_description}
    if labelled:
        doc.blocks.append("Settings (the config fields in which the runs differ, seeds aside):")
        doc.blocks.append(Table(["setting", "config"], [[k, v] for k, v in labelled.items()]))
    doc.heading("Results per setting (mean ± 95% CI over seeds)")
    metrics = ("ua", "ra", "ta", "mia", "avg_gap", "time_s", "updated")
    doc.blocks.append(Table(["setting", "method", "n", *(COLUMNS[m][0] for m in metrics)],
                            [[g["setting"], g["method"], str(g["n"]),
                              *(fmt(g[m], g[f"{m}_ci"], *COLUMNS[m][1:]) for m in metrics)]
                             for g in groups]))  # fmt: skip
    _tradeoffs(doc, rows, groups, tmp)
    _stability(doc, runs, tmp)
    doc.heading("Masks")
    for run in runs:
        if run.mask is not None:
            path = save_png(mask_figure(run.mask, run.mask_summary or {}, title=run.name),
                            tmp / "figures" / f"mask_{_slug(run.name)}.png")  # fmt: skip
            doc.blocks.append(Figure(path, f"{run.name}: scores with the selected units, selected units per "
                                     "layer, and the units the greedy search swapped"))  # fmt: skip
    doc.heading("Results per run")
    cols = ("ua", "ra", "ta", "mia", "avg_gap", "ua_gap", "ra_ta_gap", "time_s", "updated")
    doc.blocks.append(Table(["run", "method", *(COLUMNS[m][0] for m in cols), "note"],
                            [[r["run"], r["method"], *(fmt(r[m], None, *COLUMNS[m][1:]) for m in cols),
                              _note(r)] for r in rows]))  # fmt: skip
    doc.heading("Configs and versions")
    for run in runs:
        text = yaml.safe_dump({"path": str(run.path.resolve()), "environment": run.metrics.get("environment"),
                               "config": run.config}, sort_keys=False)  # fmt: skip
        doc.blocks.append(Details(run.name, text))
    return doc


def _note(row: Mapping[str, Any]) -> str:
    if row.get("failed"):
        return f"failed: {row['failed'][:80]}"
    return "did not unlearn" if row.get("unlearned") is False else ""


def _runs_table(runs: Sequence[Run], out: Path) -> Table:
    rows = []
    for run in runs:
        c, env, data = run.config, run.metrics.get("environment", {}), run.config.get("data", {})
        forget = data.get("forget")
        forget = (
            f"{forget} {data.get('forget_size')}"
            if forget == "random"
            else f"{forget} {data.get('forget_classes', '')}"
        )
        mask = "–" if run.mask_summary is None else f"{run.mask_summary.get('objective')} S={run.sparsity}"
        models = ", ".join(run.models()) or "–"
        link = os.path.relpath(run.path.resolve() / "models", out.resolve())
        rows.append([run.name, run.setting, str(run.seed), str(c.get("backbone")), f"{data.get('name')}, {forget}",
                     mask, str(env.get("git_commit", "?"))[:10], str(env.get("torch")), str(env.get("lightning")),
                     str(env.get("transformers")), str(env.get("device")),
                     (models, link) if run.models() else models])  # fmt: skip
    header = ["run", "setting", "seed", "backbone", "data, forget", "mask", "commit", "torch", "lightning",
              "transformers", "device", "saved models"]  # fmt: skip
    return Table(header, rows)


def _tradeoffs(doc: Document, rows: list[dict[str, Any]], groups: list[dict[str, Any]], tmp: Path) -> None:
    doc.heading("Trade-offs")
    if not any(math.isfinite(g["avg_gap"]) for g in groups):
        doc.blocks.append("No run has RT: no Avg.Gap, no trade-off plot (add `rt` to the methods).")
    else:
        path = save_png(tradeoff_figure(groups), tmp / "figures" / "tradeoff.png")
        doc.blocks.append(Figure(path, "Avg.Gap to RT vs time and vs share of parameters updated; UA gap vs "
                                 "mean RA/TA gap to RT (error bars: 95% CI over seeds)"))  # fmt: skip
    sparsities = {g["sparsity"] for g in groups if g["sparsity"] is not None}
    if len(sparsities) > 1:
        references = {}
        for method in dict.fromkeys(r["method"] for r in rows if not is_masked(r["method"])):
            members = [r for r in rows if r["method"] == method]
            references[method] = {m: mean_ci(r[m] for r in members)[0] for m in ("ta", "ra", "ua", "avg_gap")}
        path = save_png(sparsity_figure(groups, references), tmp / "figures" / "sparsity.png")
        doc.blocks.append(Figure(path, "Masked methods vs sparsity (error bars: 95% CI over seeds); dashed: "
                                 "methods without a unit mask, mean over all runs"))  # fmt: skip


def _stability(doc: Document, runs: Sequence[Run], tmp: Path) -> None:
    doc.heading("Mask stability")
    masked = [r for r in runs if r.mask is not None]
    if len(masked) < 2:
        doc.blocks.append(f"{len(masked)} run(s) with a mask: nothing to compare.")
        return
    kinds = [k for k in KINDS if any(k in (r.mask_summary or {}).get("kinds", KINDS) for r in masked)]
    matrices = overlap_matrices([r.mask for r in masked], kinds)
    path = save_png(overlap_figure(matrices, [r.name for r in masked]), tmp / "figures" / "overlap.png")
    doc.blocks.append(Figure(path, "Jaccard overlap of the selected units of every pair of runs, per kind; "
                             "in brackets: the expected overlap of two random masks with the same numbers "
                             "of selected units"))  # fmt: skip
    table = []
    for kind, (observed, expected) in matrices.items():
        for i in range(len(masked)):
            for j in range(i + 1, len(masked)):
                if math.isfinite(observed[i, j]):
                    a, b = masked[i].mask[kind], masked[j].mask[kind]
                    ratio = observed[i, j] / expected[i, j] if expected[i, j] > 0 else math.nan
                    table.append([kind, masked[i].name, masked[j].name, fmt(observed[i, j], digits=3),
                                  fmt(expected[i, j], digits=3), fmt(ratio, digits=1), str(int(a.sum())),
                                  str(int(b.sum())), str(a.size)])  # fmt: skip
    doc.blocks.append(Table(["kind", "run A", "run B", "Jaccard", "random E[J]", "J / E[J]", "selected A",
                             "selected B", "units"], table))  # fmt: skip


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_")


def _write_csv(rows: Sequence[Mapping[str, Any]], path: Path) -> None:
    keys = list(dict.fromkeys(k for row in rows for k in row))
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)
