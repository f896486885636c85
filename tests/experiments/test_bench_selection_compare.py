"""experiments/bench_selection.py --compare on hand-written rows: the paired differences, the bootstrap
interval's bounds and the counts of seeds lower and unchanged."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "experiments"))
import bench_selection  # noqa: E402


def rows(gaps: dict[str, list[float]]) -> list[dict]:
    out = [
        {"setup": "s", "method": m, "seed": i, "avg_gap": g}
        for m, gs in gaps.items()
        for i, g in enumerate(gs)
    ]
    return out + [{"setup": "s", "method": "rt", "seed": 0, "avg_gap": 0.0}]


def test_compare_pairs_seeds_and_counts_lower_and_same(tmp_path, capsys):
    before = rows({"so": [1.0, 2.0, 3.0], "ga": [4.0, 4.0]})
    after = rows({"so": [0.5, 2.0, 4.0], "ga": [4.0, 3.0]})
    after.append({"setup": "s", "method": "so", "seed": 7, "avg_gap": 0.0})  # no partner: left out
    for name, r in (("a.json", before), ("b.json", after)):
        (tmp_path / name).write_text(json.dumps(r))
    bench_selection.main(["--compare", str(tmp_path / "a.json"), str(tmp_path / "b.json")])
    lines = capsys.readouterr().out.splitlines()
    so = next(line for line in lines if "| so |" in line)
    d = np.array([-0.5, 0.0, 1.0])
    lo, hi = bench_selection.bootstrap_ci(d)
    assert lo <= d.mean() <= hi and lo >= d.min() and hi <= d.max()
    assert f"| {d.mean():+.2f} [{lo:+.2f}, {hi:+.2f}] | 1/3 | 1/3 |" in so
    assert "| 2.00 ± 1.00 |" in so  # before: mean ± sample std of 1, 2, 3
    ga = next(line for line in lines if "| ga |" in line)
    assert "| -0.50 [" in ga and "| 1/2 | 1/2 |" in ga
    assert not any("| rt |" in line for line in lines)
    # every pair of every method pooled: so's three and ga's two differences
    pooled = next(line for line in lines if "| all | all |" in line)
    d = np.array([-0.5, 0.0, 1.0, 0.0, -1.0])
    lo, hi = bench_selection.bootstrap_ci(d)
    assert f"| {d.mean():+.2f} [{lo:+.2f}, {hi:+.2f}] | 2/5 | 2/5 |" in pooled


def test_compare_of_one_method_has_no_pooled_row():
    table = bench_selection.compare_table(rows({"so": [1.0, 2.0]}), rows({"so": [1.5, 2.5]}))
    assert "| so |" in table and "| all |" not in table
