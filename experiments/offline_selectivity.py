"""Offline check of a candidate rule change for random forgetting, on finished benchmark runs.

The question (issue 10, MiniLM): GA's chosen checkpoint forgot nothing (forget accuracy unchanged) and
cost retain accuracy, because the loss-ratio target still preferred it to θ*. Would a selectivity
requirement help -- keep a fine-tuning method's choice only if it shrank the gap between forget and
validation accuracy on the selection sets (θ*'s gap is the reference), else fall back to θ* (reported
as not unlearned)? It re-applies that requirement to the candidate tables of `bench_selection.py` run
directories (every checkpoint scored against RT: the ``oracle/avg_gap`` column) and prints, per run
and method, the Avg.Gap of the rule's choice and of θ*, and the means with and without the requirement.

    python experiments/bench_selection.py --setups digits_random --seeds 0 1 2 3 4 \\
        --methods ga mape_ga gd npo ft salun --out runs/sel_ft
    python experiments/offline_selectivity.py runs/sel_ft
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from pathlib import Path


def chosen_row(cands: list[dict], selected: dict) -> dict:
    """The candidate the rule chose: its step (and learning rate, where attempts differ)."""
    same_step = [r for r in cands if r.get("step") == selected.get("steps")]
    same_lr = [
        r for r in same_step if math.isclose(r.get("lr") or 0.0, selected.get("lr") or 0.0, rel_tol=1e-6)
    ]
    return (same_lr or same_step)[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="a bench_selection.py --out directory")
    args = parser.parse_args()
    rows = []
    for path in sorted(args.out.glob("runs/*/metrics.json")):
        metrics = json.loads(path.read_text())
        for method, h in metrics["hparams"].items():
            cands = h.get("candidates") or []
            if not cands or "step" not in cands[0]:  # fine-tuning methods only
                continue
            ref, choice = h["info"]["selection_ref"], chosen_row(cands, h["selected"])
            start = next(r for r in cands if r.get("step") == 0)
            shrank = choice["forget_acc"] - choice["val_acc"] < ref["forget_acc"] - ref["val_acc"]
            gap = lambda r: 100 * r.get("oracle/avg_gap", math.nan)  # noqa: E731
            rows.append((path.parent.name, method, gap(choice), gap(start), shrank))
    if not rows:
        raise SystemExit(f"no fine-tuning candidate tables under {args.out}/runs")
    print("| run | method | Avg.Gap, rule | Avg.Gap, θ* | forget–val accuracy gap shrank |")
    print("|---|---|---|---|---|")
    for run, method, rule, start, shrank in rows:
        print(f"| {run} | {method} | {rule:.2f} | {start:.2f} | {'yes' if shrank else 'no'} |")
    with_req = [rule if shrank else start for _, _, rule, start, shrank in rows]
    replaced = [r for r in rows if not r[4]]
    print(
        f"\nmean Avg.Gap: rule {statistics.mean(r[2] for r in rows):.2f}, with the requirement "
        f"{statistics.mean(with_req):.2f}; replaced by θ* {len(replaced)} of {len(rows)}, "
        f"of which worse than the rule's choice {sum(r[3] > r[2] for r in replaced)}"
    )


if __name__ == "__main__":
    main()
