"""Offline check of the rule's distance scale (``SelectionRule.scale``) on finished benchmark runs.

The question (issue 10, MiniLM): FT ended farther from RT than θ* on 2 of 5 seeds. Its chosen
checkpoints did not bring D_f closer to unseen data -- fine-tuning on D_r lowered the retain loss, and
the rule's distance, |forget − validation loss| divided by the candidate's *own* generalization gap
(validation − retain loss), shrank with it. Dividing by θ*'s gap instead (``scale: reference``) does not
reward that. This script re-applies both scales to the candidate tables of `bench_selection.py` run
directories (SO-type: the full-set rows; fine-tuning: every fully measured checkpoint, all learning-rate
attempts pooled) and prints, per run and method, the chosen candidate and its Avg.Gap to RT where the
run scored it (``headroom``), then the means per method.

    python experiments/bench_selection.py --setups digits_random --seeds 0 1 2 3 4 \\
        --methods ga mape_ga gd npo ft salun --out runs/sel_ft
    python experiments/offline_scale.py runs/sel_ft
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from unlearn_lit.selection.rule import SelectionRule  # noqa: E402

SCALES = ("candidate", "reference")
ORACLE = "oracle/avg_gap"


def measured(cands: list[dict]) -> list[dict]:
    """The rows the rule compares: fully measured (finite losses); SO's screen rows left out."""
    keys = ("forget_loss", "val_loss", "retain_loss", "val_keep_loss")
    return [
        r
        for r in cands
        if r.get("stage", "full") == "full" and all(math.isfinite(r.get(k, math.nan)) for k in keys)
    ]


def label(row: dict) -> str:
    return f"step {row['step']}" if "step" in row else f"c {row.get('c')} value {row.get('value', 0):.3g}"


def choices(metrics: dict) -> list[tuple[str, dict[str, dict]]]:
    """``(method, {scale: chosen row})`` for every random-forgetting selection table of one run."""
    out = []
    for method, h in metrics["hparams"].items():
        ref = (h.get("info") or {}).get("selection_ref")
        rows = measured(h.get("candidates") or [])
        if ref is None or not rows:
            continue
        out.append(
            (method, {s: rows[SelectionRule(scale=s).choose(rows, ref, "val_loss").index] for s in SCALES})
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, nargs="+", help="bench_selection.py --out directories")
    args = parser.parse_args()
    gaps: dict[str, dict[str, list[float]]] = {}
    print("| run | method | candidate scale | Avg.Gap | reference scale | Avg.Gap |")
    print("|---|---|---|---|---|---|")
    for out in args.out:
        for path in sorted(out.glob("runs/*/metrics.json")):
            for method, chosen in choices(json.loads(path.read_text())):
                scored = {s: 100 * chosen[s].get(ORACLE, math.nan) for s in SCALES}
                cells = " | ".join(f"{label(chosen[s])} | {scored[s]:.2f}" for s in SCALES)
                print(f"| {path.parent.name} | {method} | {cells} |")
                for s in SCALES:
                    gaps.setdefault(method, {}).setdefault(s, []).append(scored[s])
    if not gaps:
        raise SystemExit(f"no selection tables under {', '.join(map(str, args.out))}")
    print("\n| method | runs | mean Avg.Gap, candidate scale | mean Avg.Gap, reference scale |")
    print("|---|---|---|---|")
    for method, by in gaps.items():
        means = [statistics.mean(by[s]) for s in SCALES]
        print(f"| {method} | {len(by['candidate'])} | {means[0]:.2f} | {means[1]:.2f} |")


if __name__ == "__main__":
    main()
