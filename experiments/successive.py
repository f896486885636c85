"""Successive unlearning (METHOD.md §5): D_f removed in R ∈ {1, 4, 8, 10} requests arriving one after
another, memory-free vs memory-aided, for SO and MAPE-SO.

- memory-free: request t recomputes the mask (MAPE: phase 1 + search on θ^{t-1}), the retain Fisher and
  the forget gradient on θ^{t-1} and applies the update from θ^{t-1};
- memory-aided: every request starts from θ*, with the retain Fisher downdated by the removed examples
  and the forget gradients accumulated (MAPE: the mask is recomputed on θ* from the examples removed
  so far; statistics are kept for every parameter so that any mask can be served).

After the last request all of D_f is removed, so every final model is compared with the same RT
(Avg.Gap over UA, MIA, RA, TA). R = 1 is one ordinary request (both modes coincide). Each request
selects its own step (τ, c) without RT. The paper reports no numbers for this figure in METHOD.md §8.

Online (the default; network and GPU) it runs ``configs/paper/glue_bert_base_mnli.yaml``;
``--offline`` runs ``configs/offline/vit_digits.yaml`` (tiny ViT on digits; one forget seed by default,
about 5 minutes on 2 CPU cores; ``--seeds 0 1 2`` for the spread).

    python experiments/successive.py --offline
    python experiments/successive.py --offline --requests 1 10 --methods mape_so

Writes ``successive.{md,csv,png}`` and ``successive_runs.csv`` under ``--out``.
"""

from __future__ import annotations

import math
import time

import common

REQUESTS = (1, 4, 8, 10)
METHODS = ("so", "mape_so")
METRICS = ("ua", "mia", "ra", "ta", "avg_gap", "time_s")


def successive_rows(setup: common.Setup, method: str, mode: str, requests: int) -> dict:
    """Runs ``requests`` successive requests of ``method`` in ``mode``; the final model's row."""
    from unlearn_lit.methods import parse_method
    from unlearn_lit.methods.successive import run_successive

    source = parse_method(method)[1]
    mask_fn = None
    if source == "mape":  # recomputed per request (on θ^{t-1} or on θ*), never taken from the full D_f

        def mask_fn(model, forget, retain):
            return setup.mape_mask(model, forget.dataset, retain.dataset)

    # memory-aided keeps statistics for the support of every mask; mape masks vary per request: all entries
    inputs = setup.inputs("none" if source == "mape" else source)
    common.log.info("%s, %s, R = %d", method, mode, requests)
    t0 = time.perf_counter()
    results = run_successive(mode, inputs, setup.method_config(method), requests, mask_fn=mask_fn)
    seconds = time.perf_counter() - t0
    common.log.info("%s, %s, R = %d: %.1f s", method, mode, requests, seconds)
    return setup.evaluate(results[-1].model, seconds, method=method, mode=mode, requests=requests)


def main() -> None:
    parser = common.base_parser(__doc__, "vit_digits.yaml", offline_seeds=(0,))  # ~5 min per seed offline
    parser.add_argument(
        "--requests", type=int, nargs="+", default=list(REQUESTS), help="numbers of requests R"
    )
    parser.add_argument(
        "--methods", nargs="+", default=list(METHODS), help="SO-type methods (so, mape_so, random_so)"
    )
    parser.add_argument(
        "--modes",
        nargs="+",
        default=["memory_free", "memory_aided"],
        choices=["memory_free", "memory_aided"],
        help="successive modes",
    )
    args = parser.parse_args()
    config, seeds, out = common.resolve(args, "successive")
    raw = []
    for seed in seeds:
        setup = common.Setup.build(
            common.load_config(
                config, common.merge({"methods": ["rt", *args.methods]}, common.seed_overrides(seed))
            )
        )
        rt_seconds = setup.retrain.train_info.get("seconds", math.nan)
        for name, model, seconds in (("original", setup.original, 0.0), ("rt", setup.retrain, rt_seconds)):
            raw.append(setup.evaluate(model, seconds, method=name, mode="–", requests=0, seed=seed))
        for method in args.methods:
            for mode in args.modes:
                for requests in args.requests:
                    raw.append({**successive_rows(setup, method, mode, requests), "seed": seed})
        common.write_csv(raw, out / "successive_runs.csv")  # progress survives an interruption
    rows = common.aggregate(raw, ("method", "mode", "requests"), METRICS)
    notes = (
        f"Mean ± std over seeds {seeds}; the final model after R requests against RT on all of D_f. UA/RA/TA "
        "in percent, MIA as a fraction, Avg.Gap in points; time = all R requests (statistics, masks, "
        "selection). The paper gives no numbers for this figure in METHOD.md §8."
    )
    table = common.markdown_table(rows, ("method", "mode", "requests"), METRICS)
    common.write_report(out, "successive", "Successive unlearning requests", notes, table, rows, raw)
    curves = [{**r, "line": f"{r['method']} {r['mode']}"} for r in rows if r["requests"] > 0]
    common.plot_panels(
        curves,
        "requests",
        ("avg_gap", "ua", "ta", "time_s"),
        "line",
        out / "successive.png",
        title="Successive requests: final model vs RT",
        xlabel="requests R",
        xticks=args.requests,
        reference={r["method"]: r for r in rows if r["requests"] == 0},
    )


if __name__ == "__main__":
    main()
