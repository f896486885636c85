"""Ablation of the maskable unit kinds (METHOD.md §8 findings): heads only, filters only, or both, at
the same sparsity (S = 0.9 of each maskable kind; the other kind stays frozen), for MAPE-SO (one step)
and MAPE-GA (masked fine-tuning).

The paper's finding to reproduce: filters-only masks are the most stable. "Stable" is read here as
the spread over forget seeds (the ± columns) of utility (RA, TA) and of Avg.Gap.

Online (the default; network and GPU) it runs ``configs/paper/glue_bert_base_mnli.yaml``;
``--offline`` runs ``configs/offline/vit_digits.yaml`` (tiny ViT on digits, 3 forget seeds).

    python experiments/ablation_kinds.py --offline
    python experiments/ablation_kinds.py --methods mape_so

Writes ``ablation_kinds.{md,csv,png}`` and ``ablation_kinds_runs.csv`` under ``--out``.
"""

from __future__ import annotations

import common

KINDS = ("heads", "filters", "both")
METHODS = ("mape_so", "mape_ga")
METRICS = ("ua", "mia", "ra", "ta", "avg_gap", "time_s", "updated")


def main() -> None:
    parser = common.base_parser(__doc__, "vit_digits.yaml")
    parser.add_argument(
        "--methods", nargs="+", default=list(METHODS), help="MAPE methods (mape_so, mape_ga, ...)"
    )
    parser.add_argument("--kinds", nargs="+", default=list(KINDS), choices=KINDS, help="maskable kinds")
    args = parser.parse_args()
    config, seeds, out = common.resolve(args, "ablation_kinds")
    settings = [
        (config, {"kinds": k}, {"mask": {"kinds": k}, "methods": ["rt", *args.methods]}) for k in args.kinds
    ]
    raw = common.sweep(settings, seeds, out)
    rows = common.aggregate([r for r in raw if r["method"] in args.methods], ("method", "kinds"), METRICS)
    original = common.reference_rows(raw, ["original"], "kinds", args.kinds[0], METRICS)
    notes = (
        f"Mean ± std over seeds {seeds} (the std is the stability the paper refers to). UA/RA/TA in percent, "
        "MIA as a fraction, Avg.Gap to RT in points; `updated %` = share of parameters changed.\n\n"
        f"Paper's finding: {common.FINDINGS['kinds']} (no numbers are given in METHOD.md §8)."
    )
    table = common.markdown_table(rows + original, ("method", "kinds"), METRICS)
    common.write_report(
        out, "ablation_kinds", "Maskable kinds: heads / filters / both", notes, table, rows + original, raw
    )
    common.plot_bars(
        rows,
        "kinds",
        ("avg_gap", "ra", "ta"),
        out / "ablation_kinds.png",
        group=lambda r: r["method"],
        title="Heads-only, filters-only and both (error bars: std over seeds)",
    )
    # mask stability across seeds and kinds, trade-offs, mask figures
    common.cross_run_report(out, f"Maskable kinds, seeds {seeds}: heads / filters / both")


if __name__ == "__main__":
    main()
