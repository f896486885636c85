"""Benchmark of the RT-free selection (METHOD.md §5): rule vs oracle, guard designs, did-not-unlearn rate.

For each setup and seed s this runs the whole comparison (:func:`unlearn_lit.run.run`) with the seed s
for everything stochastic **including θ* and RT** (``data_seed`` and the training recipe's seed: method
rankings can flip with the training seed, METHOD.md §5) and the default selection rule. Every
selection candidate is also evaluated against RT (``headroom``), so each method row carries

- ``avg_gap``: Avg.Gap (points) of the candidate the rule chose -- what a user without RT gets;
- ``oracle``: Avg.Gap of the best candidate the method evaluated -- the rule's headroom;
- ``unlearned``: whether the method changed the model at all (kept θ* = did not unlearn).

Because every candidate carries its measurements, θ*'s reference row and its Avg.Gap, the other guard
designs of :class:`~unlearn_lit.selection.SelectionRule` (``gap``, and the old fixed KL bound ``kl`` at
0.02 and 0.05 nats) are re-applied offline to the same candidate tables (full-stage candidates for the
SO family, every checkpoint for fine-tuning methods); their columns show what each guard would have
chosen among the same candidates (so these runs measure every candidate whole: ``rule.prune`` is off,
which changes no choice of the default rule, only its cost). Printed per setup and method: mean ± std over seeds of Avg.Gap under
each guard and under the oracle, the original's Avg.Gap, how often the method did not unlearn, and paired
bootstrap 95% confidence intervals of MAPE-SO − SO and MAPE-SO − random_so.

Setups (offline): ``digits_random`` (tiny ViT, digits, 128 random forget examples), ``digits_class``
(digits, class 3 forgotten), ``fmnist_class`` (ViT on Fashion-MNIST capped at 6,000 training examples,
class 7 "Sneaker" forgotten), ``minilm_random`` (all-MiniLM-L6-v2 on 2,000 bundled tweets, 128 random).

    python experiments/bench_selection.py --seeds 0 1 2 3 4 --out runs/bench_selection
    python experiments/bench_selection.py --setups minilm_random --seeds 0 --out runs/bench_selection

On CPU the headroom dominates a MiniLM run (every candidate is also evaluated on ~3,000 tweets; SO had not
finished after 13 minutes on 2 shared cores, against about 4 minutes without it): ``--set headroom=false`` drops the oracle and the
offline guard columns and keeps the rule's Avg.Gap and the did-not-unlearn count, and
``--set headroom_prune=true`` keeps the oracle exact for less (a candidate's scoring stops once its
Avg.Gap provably exceeds the best so far; a guard column is NaN where that guard chose a pruned
candidate). ``--compare BEFORE
AFTER`` pairs two runs' ``bench_selection.json`` seed by seed (e.g. a change and its parent commit).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import platform
import shlex
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import common
import numpy as np

log = logging.getLogger("experiments.bench_selection")

METHODS = ["rt", "so", "mape_so", "random_so", "ga", "mape_ga", "gd", "npo", "ft", "salun", "ssd"]
FINETUNING = ("ga", "gd", "npo", "ft", "salun")  # base methods of the fine-tuning methods above
VIT = {"backbone": "vit_digits", "recipe": "vit_small", "mask": {"objective": "mlr", "sparsity": 0.9}}
SETUPS: dict[str, dict[str, Any]] = {
    "digits_random": {**VIT, "data": {"name": "digits", "forget": "random", "forget_size": 128}},
    "digits_class": {**VIT, "data": {"name": "digits", "forget": "class", "forget_classes": [3]}},
    "fmnist_class": {
        **VIT,
        "backbone": "vit_fashion_mnist",
        "data": {
            "name": "fashion_mnist",
            "forget": "class",
            "forget_classes": [7],
            "max_train": 6000,
            "max_test": 2000,
        },
        "eval_retain_subsample": 1000,  # RA of every candidate (headroom) on 1,000 retain examples
    },  # fmt: skip
    "minilm_random": {
        "backbone": "minilm",
        "backbone_options": {"max_length": 64},
        "recipe": "minilm",
        "mask": {"objective": "mlr", "sparsity": 0.9},
        "data": {
            "name": "tweets",
            "forget": "random",
            "forget_size": 128,
            "max_train": 2000,
            "max_test": 1000,
        },
        "method_options": {"so": {"fisher": "per_batch"}},  # so, mape_so and random_so
    },
}
# Guards re-applied offline to the same candidates: column -> SelectionRule fields.
# Class forgetting: ``noise`` is the default rule (the class-forgetting ideal, no guard); the other columns
# apply their guard with the lowest forget accuracy among the guarded candidates (class_criterion=guard).
_GUARDED = {"class_criterion": "guard"}
GUARDS = {
    "noise": {},
    "noise_guard": {**_GUARDED},
    "noise_z1": {"z": 1.0, **_GUARDED},
    "noise_2s": {"two_sided": True, **_GUARDED},
    "gap": {"guard": "gap", **_GUARDED},
    "kl_0.02": {"guard": "kl", "eps": 0.02, **_GUARDED},
    "kl_0.05": {"guard": "kl", "eps": 0.05, **_GUARDED},
}


def setup_config(
    name: str, seed: int, threads: int, methods: Sequence[str] = METHODS, screen: int = 0
) -> dict[str, Any]:
    """The flat RunConfig fields of one setup and seed (θ* and RT trained with this seed too); the
    fine-tuning methods screen their checkpoints on ``screen`` examples (0: every checkpoint in full)."""
    cfg = common.merge(SETUPS[name], common.seed_overrides(seed))
    cfg = common.merge(cfg, {"data": {"data_seed": seed}, "recipe_overrides": {"seed": seed}})
    # default 0, every checkpoint in full: the guards re-applied offline need every checkpoint's full row
    # (a screen measures only the few it confirms; --screen 64 measures the default)
    cfg = common.merge(cfg, {"method_options": {m: {"selection_screen": screen} for m in FINETUNING}})
    # every candidate measured whole (no guard pruning): the guards re-applied offline read every row
    cfg = common.merge(cfg, {"method_options": {m: {"rule": {"prune": False}} for m in ("so", *FINETUNING)}})
    return {**cfg, "methods": ["rt", *[m for m in methods if m != "rt"]],
            "table": f"bench_selection_{name}", "threads": threads, "trainer": {"progress_bar": False}, "headroom": True,
            "save_models": False}  # fmt: skip


def reselect(
    rows: list[Mapping[str, Any]], ref: Mapping[str, Any], target: str, fields: Mapping[str, Any]
) -> float:
    """Avg.Gap (points) of the candidate a guard picks among ``rows`` (NaN when none is scored)."""
    from unlearn_lit.selection import ORACLE_KEY, SelectionRule

    rows = [r for r in rows if r.get("stage", "full") == "full" and ORACLE_KEY in r]
    if not rows or ref is None:
        return math.nan
    try:
        choice = SelectionRule(**fields).choose(rows, ref, target)
    except ValueError:
        return math.nan
    return 100 * rows[choice.index][ORACLE_KEY]


def method_rows(summary: Mapping[str, Any], setup: str, seed: int) -> list[dict[str, Any]]:
    """One row per method of one run: Avg.Gap under the rule, every guard offline, the oracle."""
    out = []
    original = 100 * summary["methods"]["original"]["avg_gap"]
    for name, row in summary["methods"].items():
        if name in ("original", "rt"):
            continue
        h = summary["hparams"].get(name, {})
        info, cands = h.get("info", {}), h.get("candidates", [])
        rec: dict[str, Any] = {"setup": setup, "seed": seed, "method": name, "original": original,
                               "avg_gap": 100 * row["avg_gap"], "unlearned": float(bool(row.get("unlearned"))),
                               "oracle": 100 * row["oracle_avg_gap"] if row.get("oracle_avg_gap") is not None
                               else math.nan,
                               "ua": 100 * row["forget_acc"], "ra": 100 * row["retain_acc"],
                               "ta": 100 * row["test_acc"]}  # fmt: skip
        for col, fields in GUARDS.items():
            rec[f"guard_{col}"] = reselect(
                cands, info.get("selection_ref"), info.get("target", "val_loss"), fields
            )
        rec.update(class_fields(row, info, summary["methods"]["rt"]))
        out.append(rec)
    for name, why in summary.get("failed", {}).items():
        out.append({"setup": setup, "seed": seed, "method": name, "original": original, "avg_gap": math.nan,
                    "unlearned": 0.0, "oracle": math.nan, "failed": why})  # fmt: skip
    rt = summary["methods"]["rt"]
    out.append({"setup": setup, "seed": seed, "method": "rt", "original": original, "avg_gap": 0.0,
                "ua": 100 * rt["forget_acc"], "ra": 100 * rt["retain_acc"], "ta": 100 * rt["test_acc"]})  # fmt: skip
    return out


def class_fields(row: Mapping[str, Any], info: Mapping[str, Any], rt: Mapping[str, Any]) -> dict[str, Any]:
    """Class forgetting: test accuracy on the kept classes, the gaps to RT that the issue's acceptance
    reads (UA ≤ 5%, RA and kept-class TA within 2 points of RT), and the method alone, before its
    retain repair (from ``before_repair``, or the repair table's step 0 as scored against RT)."""
    key = "test_retain_class/acc"
    if key not in row["metrics"] or key not in rt["metrics"]:
        return {}
    ta_keep = 100 * row["metrics"][key]
    d_ra, d_ta = 100 * (row["retain_acc"] - rt["retain_acc"]), ta_keep - 100 * rt["metrics"][key]
    ua = 100 * row["forget_acc"]
    out = {"ta_keep": ta_keep, "d_ra": d_ra, "d_ta_keep": d_ta,
           "meets": float(ua <= 5 and abs(d_ra) <= 2 and abs(d_ta) <= 2)}  # fmt: skip
    repair = info.get("repair")
    if repair:
        out["repair_steps"] = float(repair["steps"])
        before = (row.get("before_repair") or {}).get("avg_gap")
        step0 = repair["table"][0].get("oracle/avg_gap") if repair["table"] else None
        alone = before if before is not None else step0
        out["alone"] = 100 * alone if alone is not None else math.nan
    return out


def class_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """The class-forgetting acceptance per setup and method, with the method alone (before repair)."""
    rows = [r for r in rows if "meets" in r]
    if not rows:
        return ""
    cols = ["alone", "avg_gap", "repair_steps", "ua", "d_ra", "d_ta_keep", "meets"]
    agg = common.aggregate(rows, ("setup", "method"), cols)
    head = ("| setup | method | Avg.Gap alone | Avg.Gap + repair | repair steps | UA | RA − RT | TA(kept) − RT "
            "| UA ≤ 5 and RA, TA(kept) within 2 of RT |\n|" + "---|" * 9 + "\n")  # fmt: skip
    lines = []
    for a in agg:
        cells = [common.fmt(a[c], a[f"{c}_std"]) for c in cols[:-1]]
        lines.append(
            f"| {a['setup']} | {a['method']} | {' | '.join(cells)} | {round(a['n'] * a['meets'])}/{a['n']} |"
        )
    return head + "\n".join(lines) + "\n"


def bootstrap_ci(diffs: np.ndarray, n: int = 10_000, seed: int = 0) -> tuple[float, float]:
    """Paired bootstrap 95% confidence interval of the mean of ``diffs`` (percentile method)."""
    if diffs.size < 2:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    means = diffs[rng.integers(0, diffs.size, size=(n, diffs.size))].mean(1)
    return float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))


def paired_table(rows: Sequence[Mapping[str, Any]]) -> str:
    lines = [
        "| setup | comparison | mean Δ Avg.Gap | 95% CI (paired bootstrap) | seeds lower |",
        "|---|---|---|---|---|",
    ]
    for setup in dict.fromkeys(r["setup"] for r in rows):
        cell = {(r["method"], r["seed"]): r["avg_gap"] for r in rows if r["setup"] == setup}
        for other in ("so", "random_so"):
            seeds = sorted(s for (m, s) in cell if m == "mape_so" and (other, s) in cell)
            d = np.array([cell[("mape_so", s)] - cell[(other, s)] for s in seeds], dtype=float)
            d = d[np.isfinite(d)]
            lo, hi = bootstrap_ci(d)
            lines.append(f"| {setup} | mape_so − {other} | {d.mean() if d.size else math.nan:+.2f} | "
                         f"[{lo:+.2f}, {hi:+.2f}] | {int((d < 0).sum())}/{d.size} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def compare_table(
    before: Sequence[Mapping[str, Any]],
    after: Sequence[Mapping[str, Any]],
    columns: Sequence[str] = ("avg_gap",),
) -> str:
    """Two runs of the same setups and seeds (e.g. a change and its parent commit), method by method:
    mean ± std of each run, the paired difference (after − before) with its bootstrap 95% CI, the seeds
    on which ``after`` is lower, and how many seeds gave the same Avg.Gap (the same choice); then every
    pair of every setup and method pooled (``all``). Only the seeds both runs have are paired."""
    key = ("setup", "method", "seed")
    a = {tuple(r[k] for k in key): r for r in before if r["method"] != "rt"}
    b = {tuple(r[k] for k in key): r for r in after if r["method"] != "rt"}
    head = "| setup | method | column | before | after | paired Δ (after − before), 95% CI | seeds lower | same |"
    lines = [head, "|---|---|---|---|---|---|---|---|"]
    pooled: dict[str, list[np.ndarray]] = {col: [] for col in columns}

    def line(setup: str, method: str, col: str, x: np.ndarray, y: np.ndarray) -> str:
        d = y - x
        lo, hi = bootstrap_ci(d)
        before_, after_ = (common.fmt(v.mean(), v.std(ddof=1) if v.size > 1 else 0.0) for v in (x, y))
        return (f"| {setup} | {method} | {col} | {before_} | {after_} | {d.mean():+.2f} [{lo:+.2f}, {hi:+.2f}] "
                f"| {int((d < 0).sum())}/{d.size} | {int(np.isclose(d, 0, atol=1e-9).sum())}/{d.size} |")  # fmt: skip

    groups = list(dict.fromkeys((s, m) for s, m, _ in a if any(k[:2] == (s, m) for k in b)))
    for setup, method in groups:
        seeds = sorted(k[2] for k in a if k[:2] == (setup, method) and k in b)
        for col in columns:
            x = np.array([a[(setup, method, s)].get(col, math.nan) for s in seeds], dtype=float)
            y = np.array([b[(setup, method, s)].get(col, math.nan) for s in seeds], dtype=float)
            ok = np.isfinite(x) & np.isfinite(y)
            if ok.any():
                lines.append(line(setup, method, col, x[ok], y[ok]))
                pooled[col].append(np.stack([x[ok], y[ok]]))
    if len(groups) > 1:
        for col, pairs in pooled.items():
            if pairs:
                x, y = np.concatenate(pairs, axis=1)
                lines.append(line("all", "all", col, x, y))
    return "\n".join(lines) + "\n"


def main_table(rows: Sequence[Mapping[str, Any]]) -> str:
    cols = ["avg_gap", "oracle", *(f"guard_{g}" for g in GUARDS), "ua", "ra", "ta", "unlearned", "original"]
    agg = common.aggregate(rows, ("setup", "method"), cols)
    head = ("| setup | method | Avg.Gap (rule) | oracle | default (offline) | noise guard | noise z=1 | noise two-sided "
            "| gap | kl 0.02 | kl 0.05 | UA | RA | TA | did not unlearn | original |\n|" + "---|" * 16 + "\n")  # fmt: skip
    lines = []
    for a in agg:
        n = a["n"]
        dnu = "" if a["method"] == "rt" else f"{round(n * (1 - a['unlearned']))}/{n}"
        cells = [common.fmt(a[c], a[f"{c}_std"]) for c in cols[:-2]]
        lines.append(f"| {a['setup']} | {a['method']} | {' | '.join(cells)} | {dnu} | {a['original']:.2f} |")
    return head + "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--setups", nargs="+", default=list(SETUPS), choices=list(SETUPS))
    p.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2, 3, 4])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--methods", nargs="+", default=METHODS, help="methods to run (rt is always run)")
    p.add_argument("--out", type=Path, default=Path("runs/bench_selection"))
    p.add_argument("--merge", nargs="+", type=Path, default=[],
                   help="bench_selection.json files of earlier runs (other setups or methods) to tabulate with these")  # fmt: skip
    p.add_argument("--compare", nargs=2, type=Path, metavar=("BEFORE", "AFTER"),
                   help="print the paired comparison of two runs' bench_selection.json (same setups and "
                   "seeds) and exit")  # fmt: skip
    p.add_argument("--columns", nargs="+", default=["avg_gap"],
                   help="row columns --compare compares (e.g. avg_gap d_ta_keep meets)")  # fmt: skip
    p.add_argument("--screen", type=int, default=0,
                   help="fine-tuning methods' selection_screen (default 0: every checkpoint in full, for the "
                   "offline guard columns; 64 is the methods' own default)")  # fmt: skip
    p.add_argument("--set", dest="overrides", type=common.override, action="append", default=[], metavar="KEY=YAML",
                   help="a RunConfig field for every run, dotted keys allowed (e.g. repair.lr=1e-3); repeatable")  # fmt: skip
    args = p.parse_args(argv)
    if args.compare:
        before, after = (json.loads(path.read_text()) for path in args.compare)
        print(compare_table(before, after, args.columns))
        return
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    import torch
    import yaml

    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = [r for path in args.merge for r in json.loads(path.read_text())]
    if not args.seeds:  # tabulate the merged rows only
        args.setups = []
    for seed in args.seeds:
        for setup in args.setups:
            cfg_path = args.out / "configs" / f"{setup}-seed{seed}.yaml"
            cfg_path.parent.mkdir(parents=True, exist_ok=True)
            fields = setup_config(setup, seed, args.threads, args.methods, args.screen)
            for override in args.overrides:
                fields = common.merge(fields, override)
            cfg_path.write_text(yaml.safe_dump(fields, sort_keys=False))
            summary = common.run_config(cfg_path, {}, args.out / "runs" / f"{setup}-seed{seed}")
            rows += method_rows(summary, setup, seed)
            common.write_csv(rows, args.out / "bench_selection_runs.csv")
    latest = {(r["setup"], r["seed"], r["method"]): r for r in rows}  # a rerun replaces a merged row
    rows = list(latest.values())
    text = (
        f"# RT-free selection benchmark\n\n`{shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]])}` on "
        f"{platform.machine()}, {torch.get_num_threads()} thread(s); seeds {args.seeds}.\n\n"
        "Avg.Gap in points, mean ± std over seeds. `rule`: the default rule as run; `oracle`: the best "
        "candidate the method evaluated (uses RT); the other columns re-apply a rule offline to the same "
        "candidates: `default` the default rule, the others a guard (for class forgetting with the lowest "
        "forget accuracy among the guarded candidates, the previous class rule).\n\n"
        + main_table(rows)
        + "\n"
        + paired_table(rows)
        + ("\n" + class_table(rows) if class_table(rows) else "")
    )
    (args.out / "bench_selection.md").write_text(text)
    (args.out / "bench_selection.json").write_text(json.dumps(rows, indent=1, default=str))
    print(text)


if __name__ == "__main__":
    main()
