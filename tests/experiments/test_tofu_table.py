"""experiments/tofu_table.py: TOFU rows from a run summary and the table with the paper's numbers."""

from __future__ import annotations

import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "experiments"))

import tofu_table  # noqa: E402


def row(rouge, fq, mu, t=10.0, updated=100):
    return {"forget_rouge": rouge, "forget_quality": fq, "model_utility": mu, "time_s": t,
            "params_updated": updated, "params_total": 1000, "unlearned": True}  # fmt: skip


def test_rows_and_table_beside_the_paper():
    summary = {"methods": {"rt": row(0.4, 1.0, 0.6), "mape_ga": row(0.2, 0.3, 0.5, updated=50)},
               "failed": {"ga": "FloatingPointError: nan"}}  # fmt: skip
    rows = tofu_table.lm_rows(summary, split="forget10", seed=0)
    assert {r["method"] for r in rows} == {"rt", "mape_ga", "ga"}
    ga = next(r for r in rows if r["method"] == "ga")
    assert math.isnan(ga["model_utility"]) and ga["failed"].startswith("FloatingPointError")
    text = tofu_table.table(rows, "forget10", "t")
    line = next(x for x in text.splitlines() if "MLR-GA" in x)
    assert "| 0.200 |" in line and "5.0%" in line and "0.22 / 0.34 / 0.51 / 589 |" in line  # paper Forget10
