"""Sparsity sweep (METHOD.md §8 findings): utility and closeness to RT of MAPE-SO and of the random-unit
mask at S ∈ {0.5, 0.7, 0.8, 0.9, 0.95, 0.99}, with full-parameter SO, RT and the original as references.

The paper's finding to reproduce: utility holds up to 90% sparsity and falls beyond it. Every run
selects the step (τ, c) without RT, per sparsity, so a sparser mask gets its own step size.

Online (the default; network and GPU) it sweeps ``configs/paper/glue_bert_base_mnli.yaml``;
``--offline`` sweeps ``configs/offline/vit_digits.yaml`` (tiny ViT on digits, 3 forget seeds).

    python experiments/sparsity_sweep.py --offline
    python experiments/sparsity_sweep.py --sparsities 0.9 0.99 --methods mape_so mape_ga

Writes ``sparsity_sweep.{md,csv,png}`` and ``sparsity_sweep_runs.csv`` under ``--out``, and the
cross-run report of all runs (``python -m unlearn_lit report``) under ``--out/report/``: mask stability
across seeds and sparsities, trade-off plots, mask figures. ``sparsity_sweep.png`` is the report's
utility-vs-sparsity figure (mean ± 95% CI over seeds).
"""

from __future__ import annotations

import shutil

import common

SPARSITIES = (0.5, 0.7, 0.8, 0.9, 0.95, 0.99)
METHODS = ("mape_so", "random_so")
REFERENCES = ("original", "rt", "so")  # independent of the sparsity: run once per seed
METRICS = ("ua", "mia", "ra", "ta", "avg_gap", "time_s", "updated")


def main() -> None:
    parser = common.base_parser(__doc__, "vit_digits.yaml")
    parser.add_argument("--sparsities", type=float, nargs="+", default=list(SPARSITIES), help="S values")
    parser.add_argument(
        "--methods",
        nargs="+",
        default=list(METHODS),
        help="masked methods swept over S (names as in configs: mape_so, random_so, mape_ga, ...)",
    )
    args = parser.parse_args()
    config, seeds, out = common.resolve(args, "sparsity_sweep")
    settings = [
        (
            config,
            {"sparsity": s},
            {"mask": {"sparsity": s}, "methods": ["rt", *args.methods, *(["so"] if i == 0 else [])]},
        )
        for i, s in enumerate(args.sparsities)
    ]
    raw = common.sweep(settings, seeds, out)
    swept = [r for r in raw if r["method"] in args.methods]
    rows = common.aggregate(swept, ("method", "sparsity"), METRICS)
    ref_rows = common.reference_rows(raw, REFERENCES, "sparsity", args.sparsities[0], METRICS)
    notes = (
        f"Mean ± std over seeds {seeds}. UA/RA/TA in percent, MIA as a fraction, Avg.Gap to RT in points; "
        "`updated %` = share of parameters the method changed. S = fraction of frozen units per kind "
        "(heads and filters). References (independent of S) at the bottom.\n\n"
        f"Paper's finding: {common.FINDINGS['sparsity']} (no per-S numbers are given in METHOD.md §8)."
    )
    table = common.markdown_table(rows + ref_rows, ("method", "sparsity"), METRICS)
    if {"mape_so", "random_so"} <= set(args.methods):
        pairs = common.paired(raw, "mape_so", "random_so", "sparsity")
        table += (
            "\nPaired by seed: Avg.Gap of MAPE-SO minus the random-unit mask's (negative = MAPE-SO closer to "
            "RT), and on how many seeds MAPE-SO is closer.\n\n"
            + common.markdown_table(pairs, ("sparsity", "comparison"), ("avg_gap", "lower"))
        )
    common.write_report(
        out,
        "sparsity_sweep",
        "Sparsity sweep (MAPE-SO vs random-unit mask)",
        notes,
        table,
        rows + ref_rows,
        raw,
    )
    report = common.cross_run_report(out, f"Sparsity sweep, seeds {seeds}: MAPE-SO vs the random-unit mask")
    shutil.copyfile(report / "figures" / "sparsity.png", out / "sparsity_sweep.png")


if __name__ == "__main__":
    main()
