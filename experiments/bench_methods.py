"""Benchmark: cost and closeness to RT of every method on the offline suite, over forget-split seeds.

For each setup and each seed s (forget split, method and mask seeds all s, as in the other experiment
scripts; θ* and RT come from ``--cache-dir`` and are trained there on first use) this runs the whole
comparison with :func:`unlearn_lit.run.run` and prints, as mean ± sample std over the seeds:

1. wall time of each method relative to RT's training time (target: MAPE-SO, phase 1 + search +
   Fisher + selection included, <= 0.1 x RT), with the SO-type methods' time broken down into
   phase 1 + search, parameter Fisher, forget gradient sum, (τ, c) selection and the rest;
2. MAPE-SO vs SO: time of the update, and memory of the update's own buffers (Fisher, forget gradient
   sum, step; their bytes, from the method info) -- target <= 0.67 x SO's, the paper's ratio. On a GPU
   the paper's number is the peak allocated memory; the pipeline runs on the CPU and reports the bytes;
3. Avg.Gap of each method to RT under RT-free selection (target: every method below the original's
   gap on every seed), and paired per-seed Avg.Gap differences of MAPE-SO against SO and against the
   random-unit mask (``random_so``).

Setups: ``vit_digits`` (``configs/quickstart/vit_digits.yaml``: tiny ViT on digits, |D_f| = 128 random,
all of its methods) and ``minilm_tweets`` (``configs/quickstart/minilm_tweets.yaml``: all-MiniLM-L6-v2
on 4,000 bundled tweets, |D_f| = 128 random, RT, the SO family, GA and MAPE-GA; about 15 minutes per
seed on 2 CPU cores). ``--threads`` (default 1) replaces the configs' own.

Outputs under ``--out``: one run directory per setup and seed (``runs/<setup>-seed<s>``),
``bench_methods_runs.csv`` (every derived number of every run and method), ``bench_methods.csv``
(mean, std and count per setup and method) and ``bench_methods.md`` (the printed tables, the command and
the machine).

    python experiments/bench_methods.py --seeds 0 1 2 --out runs/bench_methods
    python experiments/bench_methods.py --setups minilm_tweets --seeds 0 --out runs/bench_methods_minilm
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import platform
import shlex
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import common

log = logging.getLogger("experiments.bench_methods")

# Each setup: a YAML config (flat RunConfig fields) and overrides merged into it.
SETUPS: dict[str, tuple[str, dict[str, Any]]] = {
    "vit_digits": ("configs/quickstart/vit_digits.yaml", {}),
    "minilm_tweets": (  # the quickstart (|D| = 4,000, per-batch Fisher): the SO family and GA / MAPE-GA
        "configs/quickstart/minilm_tweets.yaml",
        {"methods": ["rt", "so", "mape_so", "random_so", "ga", "mape_ga"]},
    ),
}
METRICS = ("ua", "mia", "ra", "ta", "avg_gap", "time_s", "time_rel", "updated")
# The SO-type cost breakdown: key of a run row -> table header.
BREAKDOWN = {
    "phase1_s": "phase 1 + search (s)",
    "fisher_s": "Fisher (s)",
    "forget_grad_s": "forget grad (s)",
    "selection_s": "selection (s)",
    "rest_s": "rest (s)",
    "time_s": "total (s)",
}
BUFFERS = ("fisher", "grad", "step", "total")
UNIT_EXAMPLES = 1000  # U = one plain forward + backward pass over this many training examples
UNIT_PARTS = ("phase1_s", "fisher_s", "forget_grad_s", "selection_s", "update_s", "steps_s", "repair_s")
TIME_TARGET = 0.1  # MAPE-SO time / RT time
UNIT_TARGET = 1.0  # MAPE-SO's whole cost in units U (issue 14)
STEPS_TARGET = 0.25  # a fine-tuning method's selection time / its optimizer steps' time
MEMORY_TARGET = 0.67  # MAPE-SO update memory / SO's (the paper's 663.8 / 995.7 MB on BERT-base)
COMPARISONS = {  # label -> (key, "ratio" or "diff", other method), each of mape_so against the other
    "update time without phase 1 / SO's": ("update_s", "ratio", "so"),
    "total time with phase 1 / SO's": ("time_s", "ratio", "so"),
    "update buffers / SO's": ("buf_total", "ratio", "so"),
    "Avg.Gap − SO's (points)": ("avg_gap", "diff", "so"),
    "Avg.Gap − random_so's (points)": ("avg_gap", "diff", "random_so"),
}


# ----------------------------------------------------------------------------------- derived numbers


def run_rows(summary: Mapping[str, Any], unit_s: float | None = None, **labels: Any) -> list[dict[str, Any]]:
    """Derived numbers of one run, one row per method (``original`` and ``rt`` included).

    Args:
        summary: the ``metrics.json`` content returned by :func:`unlearn_lit.run.run`.
        unit_s: U in seconds (:func:`unit_cost`); with it, every part of each method's ``cost`` is
            also given in units U (``U_<part>``, and ``U_total`` = the method's cost without the
            headroom analysis).
        **labels: columns added to every row (setup, seed).

    Returns:
        Rows of :func:`common.metric_row` (UA/MIA/RA/TA fractions, Avg.Gap in points, time, updated
        share) plus ``time_rel`` = time / RT's training time (RT's row: its training time, ratio 1; the
        original has no time), ``below_original`` (1.0 if the Avg.Gap is strictly below the original's),
        ``unchanged`` (1.0 if no parameter changed: the RT-free rule kept θ*), and for SO-type methods the
        time breakdown (``phase1_s``, counted only for MAPE-masked methods, ``fisher_s``,
        ``forget_grad_s``, ``selection_s``, ``rest_s``, ``update_s`` = time without phase 1) and the
        update buffers in bytes (``buf_fisher``, ``buf_grad``, ``buf_step``, ``buf_total``).
    """
    methods = summary["methods"]
    rt_s = float(summary["times_s"]["rt"])
    phase1 = float(summary["times_s"].get("phase1_and_search", 0.0))
    original_gap = 100.0 * methods["original"]["avg_gap"]
    rows = []
    for name, result in methods.items():
        row = {**labels, "method": name, **common.metric_row(result)}
        if name == "original":  # not an unlearning method: no time of its own
            row["time_s"] = math.nan
        row["time_rel"] = row["time_s"] / rt_s if rt_s > 0 else math.nan
        if name not in ("original", "rt"):
            row["below_original"] = float(row["avg_gap"] < original_gap)
            row["unchanged"] = float(result["params_updated"] == 0)
        info = summary.get("hparams", {}).get(name, {}).get("info") or {}
        if "buffer_bytes" in info:
            row["phase1_s"] = phase1 if name.startswith("mape_") else 0.0
            row["fisher_s"] = float(info["time_fisher_s"])
            row["forget_grad_s"] = float(info["time_forget_grad_s"])
            row["selection_s"] = float(info["time_selection_s"])
            row["update_s"] = row["time_s"] - row["phase1_s"]
            row["rest_s"] = row["update_s"] - row["fisher_s"] - row["forget_grad_s"] - row["selection_s"]
            row.update({f"buf_{k}": float(info["buffer_bytes"][k]) for k in BUFFERS})
        cost = result.get("cost")
        if unit_s and cost:
            row.update({f"U_{k}": float(cost.get(k, 0.0)) / unit_s for k in UNIT_PARTS})
            row["U_total"] = sum(float(v) for k, v in cost.items() if k != "headroom_s") / unit_s
            if name.startswith("mape_") and float(cost.get("phase1_s", 0.0)) > 0:
                row["selection_per_phase1"] = float(cost.get("selection_s", 0.0)) / float(cost["phase1_s"])
            if float(cost.get("steps_s", 0.0)) > 0:
                row["selection_per_steps"] = float(cost.get("selection_s", 0.0)) / float(cost["steps_s"])
        rows.append(row)
    rows += [{**labels, "method": name, "failed": why} for name, why in summary.get("failed", {}).items()]
    return rows


def comparison_rows(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per-seed MAPE-SO comparisons (:data:`COMPARISONS`) from :func:`run_rows` rows of several seeds:
    ratios to SO (time, buffers) and Avg.Gap differences in points (negative = MAPE-SO closer to RT).
    Seeds where either method is missing are skipped."""
    by_seed: dict[Any, dict[str, Mapping[str, Any]]] = {}
    for row in rows:
        by_seed.setdefault(row.get("seed"), {})[row["method"]] = row
    out = []
    for seed, methods in by_seed.items():
        for label, (key, op, other) in COMPARISONS.items():
            a, b = methods.get("mape_so", {}), methods.get(other, {})
            if key in a and key in b:
                x, y = a[key], b[key]
                value = (x / y if y else math.nan) if op == "ratio" else x - y
                out.append({"seed": seed, "comparison": label, "value": value})
    return out


# ------------------------------------------------------------------------------------------ rendering


def render_setup(name: str, rows: Sequence[Mapping[str, Any]], seeds: Sequence[int]) -> str:
    """The markdown section of one setup: closeness and cost of every method, the SO-type breakdown,
    the paired MAPE-SO comparisons and the targets.

    Args:
        name: setup name (the section title).
        rows: :func:`run_rows` rows of every seed of this setup.
        seeds: the seeds asked for (a method with fewer results is marked ``(n=k)``).
    """
    ok = [r for r in rows if not r.get("failed")]
    keys = list(dict.fromkeys(k for r in ok for k in r if isinstance(r[k], float)))
    agg = {a["method"]: _finite(a) for a in common.aggregate(ok, ["method"], keys)}
    for a in agg.values():
        if "below_original" in a:
            a["gap < original's"] = f"{round(a['below_original'] * a['n'])}/{a['n']}"
        if a["n"] < len(seeds):
            a["method"] += f" (n={a['n']})"
    rt_time = agg.get("rt", {})
    parts = [
        f"### {name}: seeds {', '.join(map(str, seeds))} (mean ± sample std)",
        "",
        f"RT training time {common.fmt(rt_time.get('time_s'), rt_time.get('time_s_std'), digits=1)} s. "
        "UA/RA/TA in %, MIA as a fraction (the paper's convention), Avg.Gap in points; time in seconds "
        "(RT: its training time; MAPE methods include phase 1 + search).",
        "",
        common.markdown_table(list(agg.values()), ["method"], [*METRICS, "gap < original's"]),
    ]
    so_type = [a for a in agg.values() if "fisher_s" in a]
    if so_type:
        kib = {f"buf_{b}": f"{b} (KiB)" for b in BUFFERS}
        shown = [_rename(a, {**BREAKDOWN, **kib}, scale={k: 1 / 1024 for k in kib}) for a in so_type]
        parts += [
            "SO-type methods: time breakdown and the update's own buffers (Fisher, forget gradient sum, step):",
            "",
            common.markdown_table(shown, ["method"], [*BREAKDOWN.values(), *kib.values()]),
        ]
    in_units = [a for a in agg.values() if "U_total" in a]
    if in_units:
        unit = agg.get("original", {}).get("unit_s") or next(iter(in_units)).get("unit_s")
        headers = {f"U_{k}": k.removesuffix("_s") for k in UNIT_PARTS}
        headers |= {"U_total": "total", "selection_per_phase1": "selection / phase 1",
                    "selection_per_steps": "selection / steps"}  # fmt: skip
        shown = [_rename(a, headers, digits=3) for a in in_units]
        parts += [
            f"Each method's `cost` (metrics.json) in units U = one plain forward + backward pass over "
            f"{UNIT_EXAMPLES} training examples, measured in this process (U = {common.fmt(unit, digits=2)} s; "
            "total without the headroom analysis against RT):",
            "",
            common.markdown_table(shown, ["method"], list(headers.values())),
        ]
    comp = comparison_rows(ok)
    if comp:
        stats = common.aggregate(comp, ["comparison"], ["value"])
        for s in stats:
            values = [c["value"] for c in comp if c["comparison"] == s["comparison"]]
            s["per seed"] = ", ".join(f"{v:.3f}" for v in values)
            if "Avg.Gap" in s["comparison"]:
                s["MAPE-SO closer to RT"] = f"{sum(v < 0 for v in values)}/{len(values)} seeds"
        parts += [
            "MAPE-SO paired with SO and with the random-unit mask, seed by seed:",
            "",
            common.markdown_table(
                [_rename(s, {"value": "MAPE-SO: mean ± std"}, digits=3) for s in stats],
                ["comparison"],
                ["MAPE-SO: mean ± std", "per seed", "MAPE-SO closer to RT"],
            ),
        ]
    failed = [f"{r['method']} (seed {r.get('seed')}: {r['failed'][:80]})" for r in rows if r.get("failed")]
    if failed:
        parts += ["Failed: " + "; ".join(failed), ""]
    return "\n".join(parts + targets(agg, comp))


def targets(agg: Mapping[str, Mapping[str, Any]], comp: Sequence[Mapping[str, Any]]) -> list[str]:
    """One line per target (issues 6 and 14): the measured value and whether it is met."""
    lines = []
    mape = agg.get("mape_so")
    if mape is not None and math.isfinite(mape.get("time_rel", math.nan)):
        value = common.fmt(mape["time_rel"], mape.get("time_rel_std"), digits=3)
        lines.append(
            f"- MAPE-SO time / RT ≤ {TIME_TARGET}: {value} — {_met(mape['time_rel'] <= TIME_TARGET)}"
        )
    if mape is not None and "U_total" in mape:
        lines.append(f"- MAPE-SO total ≤ {UNIT_TARGET} U: {common.fmt(mape['U_total'], mape.get('U_total_std'), digits=3)}"
                     f" — {_met(mape['U_total'] <= UNIT_TARGET)}")  # fmt: skip
    if mape is not None and "selection_per_phase1" in mape:
        ratio = mape["selection_per_phase1"]
        lines.append(f"- MAPE-SO selection ≤ 1 × phase 1: {common.fmt(ratio, mape.get('selection_per_phase1_std'), digits=3)}"
                     f" — {_met(ratio <= 1.0)}")  # fmt: skip
    for name, a in agg.items():
        if "selection_per_steps" in a and name in ("ga", "mape_ga"):
            ratio = a["selection_per_steps"]
            lines.append(f"- {name} selection ≤ {STEPS_TARGET} × its steps: "
                         f"{common.fmt(ratio, a.get('selection_per_steps_std'), digits=3)} — {_met(ratio <= STEPS_TARGET)}")  # fmt: skip
    mem = [c["value"] for c in comp if c["comparison"] == "update buffers / SO's"]
    if mem:
        (stat,) = common.aggregate([{"v": v} for v in mem], [], ["v"])
        lines.append(
            f"- MAPE-SO update memory / SO's ≤ {MEMORY_TARGET}: {common.fmt(stat['v'], stat['v_std'], digits=3)}"
            f" — {_met(stat['v'] <= MEMORY_TARGET)} (CPU run: bytes of the update's Fisher, gradient-sum and"
            " step buffers; no GPU, so no peak allocated memory)"
        )
    below = {m: a for m, a in agg.items() if "below_original" in a}
    if below:
        failing = [f"{m} ({round((1 - a['below_original']) * a['n'])}/{a['n']} seeds)"
                   for m, a in below.items() if a["below_original"] < 1]  # fmt: skip
        verdict = _met(True) if not failing else f"{_met(False)}: not below on " + ", ".join(failing)
        lines.append("- every method's Avg.Gap below the original's on every seed: " + verdict)
    kept = [f"{m} ({round(a['unchanged'] * a['n'])}/{a['n']} seeds)"
            for m, a in agg.items() if a.get("unchanged", 0) > 0]  # fmt: skip
    if kept:
        lines.append("- the RT-free rule kept θ* unchanged (nothing updated) for " + ", ".join(kept))
    return lines


def _finite(row: Mapping[str, Any]) -> dict[str, Any]:
    """``row`` without NaN entries (keys a method does not have, e.g. the breakdown of non-SO methods)."""
    return {k: v for k, v in row.items() if not (isinstance(v, float) and math.isnan(v))}


def _met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def _rename(
    row: Mapping[str, Any],
    names: Mapping[str, str],
    scale: Mapping[str, float] | None = None,
    digits: int = 2,
) -> dict[str, Any]:
    """A copy of an aggregated row with ``key``/``key_std`` renamed to table headers and scaled; the
    values are pre-formatted (``mean ± std`` strings) so the table shows ``digits`` decimals."""
    out = {k: v for k, v in row.items() if k not in names}
    for key, header in names.items():
        if key in row:
            s = (scale or {}).get(key, 1.0)
            out[header] = common.fmt(row[key], row.get(f"{key}_std"), scale=s, digits=digits)
    return out


# ----------------------------------------------------------------------------------------- running


def run_fields(setup: str, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    """RunConfig fields of ``setup`` for one seed, with the benchmark's cache, threads and methods."""
    import yaml

    config, overrides = SETUPS[setup]
    fields = yaml.safe_load((common.ROOT / config).read_text())
    fields = common.merge(common.merge(fields, overrides), common.seed_overrides(seed))
    if args.methods:
        fields["methods"] = list(args.methods)
    for override in args.overrides:
        fields = common.merge(fields, override)
    cache = args.cache_dir or args.out / "cache"
    bench = {
        "cache_dir": str(cache),
        "threads": args.threads,
        "trainer": {"progress_bar": args.progress},
        "save_models": False,
    }
    return {**fields, **bench, "logger": "csv", "table": f"bench_methods_{setup}"}


def unit_cost(fields: Mapping[str, Any], n: int = UNIT_EXAMPLES, repeats: int = 3) -> float:
    """U: seconds of one plain forward + backward pass over ``n`` training examples of the setup
    (a bare PyTorch loop: the backbone's own loss, ``backward``, no optimizer, no Lightning), measured
    in this process with its thread count; the minimum over ``repeats`` passes (the first warms up)."""
    from unlearn_lit.config import RunConfig, from_dict
    from unlearn_lit.run import prepare

    cfg = from_dict(RunConfig, dict(fields))
    dm, factory, _ = prepare(cfg)
    model = factory()
    dm.bind(model)
    return common.plain_pass_seconds(model, dm, n, repeats)


def run_dir(args: argparse.Namespace, setup: str, seed: int) -> Path:
    """The run directory of one setup and seed."""
    return args.out / "runs" / f"{setup}-seed{seed}"


def run_one(setup: str, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    """Runs (or, with ``--reuse``, reads) one setup and seed; returns its ``metrics.json`` content."""
    target = run_dir(args, setup, seed)
    if (target / "metrics.json").is_file():  # only with --reuse (checked up front)
        return json.loads((target / "metrics.json").read_text())
    from unlearn_lit.config import RunConfig, from_dict
    from unlearn_lit.run import run

    cfg = from_dict(RunConfig, run_fields(setup, seed, args))
    t0 = time.perf_counter()
    summary = run(cfg, target)
    log.warning("%s seed %d done in %.0f s", setup, seed, time.perf_counter() - t0)
    return summary


def machine() -> str:
    """The machine the numbers were measured on (CPU model, cores, torch threads, GPU or not)."""
    import torch

    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
    except OSError:
        cpuinfo = ""
    cpu = next((ln.split(":", 1)[1].strip() for ln in cpuinfo.splitlines() if "model name" in ln), None)
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (
        f"{cpu or platform.processor() or 'unknown CPU'}, {os.cpu_count()} cores, torch {torch.__version__} "
        f"with {torch.get_num_threads()} intra-op thread(s), {gpu}"
    )


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line (see ``--help``); refuses existing run directories unless ``--reuse``."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="\n\n".join(__doc__.split("\n\n")[1:]),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--setups", nargs="+", choices=list(SETUPS), default=["vit_digits"],
                        help="setups to run (default: vit_digits)")  # fmt: skip
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2],
                        help="forget-split, method and mask seeds, one run per seed (default: 0 1 2)")  # fmt: skip
    parser.add_argument("--methods", nargs="+", default=None,
                        help="replace the setups' method lists (e.g. rt so mape_so random_so)")  # fmt: skip
    parser.add_argument("--out", type=Path, default=Path("runs/bench_methods"),
                        help="output directory (default: runs/bench_methods)")  # fmt: skip
    parser.add_argument("--cache-dir", type=Path, default=None,
                        help="θ*/RT cache (default: OUT/cache, so that RT's recorded training time was measured "
                        "under the benchmark's own conditions: this machine, --threads)")  # fmt: skip
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default: 1)")
    parser.add_argument("--set", dest="overrides", type=common.override, action="append", default=[],
                        metavar="KEY=YAML", help="a run-config field over every setup's config, e.g. "
                        "--set method_options.so.fisher_examples=256 (repeatable)")  # fmt: skip
    parser.add_argument("--reuse", action="store_true",
                        help="read finished OUT/runs/<setup>-seed<s> directories instead of refusing them")  # fmt: skip
    parser.add_argument("--progress", action="store_true", help="show progress bars")
    parser.add_argument("-v", "--verbose", action="store_true", help="log the pipeline at INFO level")
    args = parser.parse_args(argv)
    if args.threads < 1:
        parser.error("--threads must be >= 1")
    existing = [run_dir(args, s, seed) for s in args.setups for seed in args.seeds]
    existing = [p for p in existing if p.exists()]
    if existing and not args.reuse:
        parser.error(f"run directories exist: {', '.join(map(str, existing))}; pass --reuse to aggregate "
                     "them, or choose another --out (results are never overwritten)")  # fmt: skip
    unfinished = [str(p) for p in existing if not (p / "metrics.json").is_file()]
    if unfinished:
        parser.error(f"no metrics.json in {', '.join(unfinished)}; remove them or choose another --out")
    if args.methods:
        from unlearn_lit.methods import parse_method

        try:
            [parse_method(m) for m in args.methods if m not in ("rt", "original")]
        except (KeyError, ValueError) as err:
            parser.error(str(err))
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the benchmark, writes the CSVs and the markdown, prints the markdown."""
    args = parse_args(argv)
    level = logging.INFO if args.verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    import torch

    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    load_before, t0 = os.getloadavg(), time.perf_counter()
    rows: dict[str, list[dict[str, Any]]] = {}
    for s in args.setups:
        summaries = {seed: run_one(s, seed, args) for seed in args.seeds}
        unit_s = unit_cost(run_fields(s, args.seeds[0], args))  # after the runs: same threads, warm caches
        log.warning("%s: U = %.3f s (plain forward + backward over %d examples)", s, unit_s, UNIT_EXAMPLES)
        rows[s] = [{**r, "unit_s": unit_s} for seed, summary in summaries.items()
                   for r in run_rows(summary, unit_s, setup=s, seed=seed)]  # fmt: skip
    wall, load_after = time.perf_counter() - t0, os.getloadavg()
    argv_shown = [os.path.relpath(sys.argv[0], common.ROOT), *(sys.argv[1:] if argv is None else argv)]
    header = (
        f"Command: `python {shlex.join(argv_shown)}`\n\n"
        f"Machine: {machine()}. Load average (1 min) {load_before[0]:.2f} at the start, "
        f"{load_after[0]:.2f} at the end; benchmark wall time {wall:.0f} s"
        + (" (finished run directories reused)" if args.reuse else "")
        + "."
    )
    text = "\n\n".join([header, *(render_setup(s, rows[s], args.seeds) for s in args.setups)]) + "\n"
    everything = [r for s in args.setups for r in rows[s]]
    ok = [r for r in everything if not r.get("failed")]
    keys = list(dict.fromkeys(k for r in ok for k in r if isinstance(r[k], float)))
    common.write_csv(everything, args.out / "bench_methods_runs.csv")
    common.write_csv(common.aggregate(ok, ["setup", "method"], keys), args.out / "bench_methods.csv")
    (args.out / "bench_methods.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
