"""Successive unlearning (METHOD.md §5): D_f removed in R ∈ {1, 4, 8, 10} requests arriving one after
another, memory-free vs memory-aided, for SO and MAPE-SO (the pipeline's ``successive`` section).

- memory-free: request t recomputes the mask (MAPE: phase 1 + search on θ^{t-1}), the retain Fisher and
  the forget gradient on θ^{t-1} and applies the update from θ^{t-1};
- memory-aided: every request starts from θ*, with the retain Fisher downdated by the removed examples
  and the forget gradients accumulated (MAPE: the mask is recomputed on θ* from the examples removed
  so far).

After the last request all of D_f is removed, so every final model is compared with the same RT
(Avg.Gap over UA, MIA, RA, TA). R = 1 is one ordinary request (both modes coincide with the one-shot
method). Each request selects its own step (τ, c) without RT. The paper reports no numbers for this
figure in METHOD.md §8.

Online (the default; network and GPU) it runs ``configs/paper/glue_bert_base_mnli.yaml``;
``--offline`` runs ``configs/offline/vit_digits.yaml`` (tiny ViT on digits; one forget seed by default,
about 5 minutes on 2 CPU cores; ``--seeds 0 1 2`` for the spread).

    python experiments/successive.py --offline
    python experiments/successive.py --offline --requests 1 10 --methods mape_so

Writes ``successive.{md,csv,png}`` and ``successive_runs.csv`` under ``--out``.
"""

from __future__ import annotations

import re

import common

REQUESTS = (1, 4, 8, 10)
MODES = ("memory_free", "memory_aided")
METHODS = ("so", "mape_so")
METRICS = ("ua", "mia", "ra", "ta", "avg_gap", "time_s")
ROW = re.compile(r"^(?P<method>\w+?)@(?P<requests>\d+)req_(?P<mode>\w+)$")  # the pipeline's row names


def label(row: dict) -> dict:
    """Splits a pipeline row name ``mape_so@4req_memory_free`` into method, requests and mode; the
    one-shot rows (original, rt, the method itself) get ``requests = 0`` and mode ``–``."""
    m = ROW.match(row["method"])
    if m is None:
        return {**row, "mode": "–", "requests": 0}
    return {**row, "method": m["method"], "mode": m["mode"], "requests": int(m["requests"])}


def main() -> None:
    parser = common.base_parser(__doc__, "vit_digits.yaml", offline_seeds=(0,))
    parser.add_argument(
        "--requests", type=int, nargs="+", default=list(REQUESTS), help="numbers of requests R"
    )
    parser.add_argument(
        "--methods", nargs="+", default=list(METHODS), help="SO-type methods (so, mape_so, random_so)"
    )
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES, help="successive modes")
    args = parser.parse_args()
    config, seeds, out = common.resolve(args, "successive")
    settings = [
        (
            config,
            {"run": m},
            {
                "methods": ["rt", m],
                "successive": {"method": m, "requests": args.requests, "modes": args.modes},
            },
        )
        for m in args.methods
    ]
    raw = [label(r) for r in common.sweep(settings, seeds, out)]
    rows = common.aggregate([r for r in raw if r["requests"] > 0], ("method", "mode", "requests"), METRICS)
    first = args.methods[0]  # original and RT are the same in every run of a seed
    one_shot = common.aggregate(
        [
            {**r, "mode": "one-shot" if r["method"] == r["run"] else "–"}
            for r in raw
            if r["requests"] == 0 and (r["method"] == r["run"] or r["run"] == first)
        ],
        ("method", "mode", "requests"),
        METRICS,
    )
    notes = (
        f"Mean ± std over seeds {seeds}; the final model after R requests against RT on all of D_f. UA/RA/TA "
        "in percent, MIA as a fraction, Avg.Gap in points; time = all R requests (statistics, masks, "
        "selection). `one-shot` rows are the ordinary method on all of D_f in the same run. The paper gives "
        "no numbers for this figure in METHOD.md §8."
    )
    table = common.markdown_table(rows + one_shot, ("method", "mode", "requests"), METRICS)
    common.write_report(
        out, "successive", "Successive unlearning requests", notes, table, rows + one_shot, raw
    )
    common.plot_panels(
        [{**r, "line": f"{r['method']} {r['mode']}"} for r in rows],
        "requests",
        ("avg_gap", "ua", "ta", "time_s"),
        "line",
        out / "successive.png",
        title="Successive requests: final model vs RT (dashed: one run on all of D_f)",
        xlabel="requests R",
        xticks=args.requests,
        reference={r["method"]: r for r in one_shot},
    )


if __name__ == "__main__":
    main()
