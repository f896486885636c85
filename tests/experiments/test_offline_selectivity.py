"""experiments/offline_selectivity.py on a hand-written candidate table: the requirement falls back to θ*
exactly when the chosen checkpoint did not shrink the forget–validation accuracy gap."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "experiments"))
import offline_selectivity  # noqa: E402


def table(forget_acc: float, val_acc: float, gap: float) -> dict:
    ref = {"forget_acc": 0.9, "val_acc": 0.8}  # θ*'s gap: 0.1
    cands = [
        {"step": 0, "lr": 0.0, "forget_acc": 0.9, "val_acc": 0.8, "oracle/avg_gap": 0.06},
        {"step": 4, "lr": 1e-4, "forget_acc": forget_acc, "val_acc": val_acc, "oracle/avg_gap": gap},
    ]
    return {"selected": {"lr": 1e-4, "steps": 4}, "info": {"selection_ref": ref}, "candidates": cands}


def test_falls_back_to_theta_star_only_when_the_gap_did_not_shrink(tmp_path, monkeypatch, capsys):
    for run, (fa, va, gap) in {"a-seed0": (0.85, 0.8, 0.02), "b-seed0": (0.9, 0.78, 0.08)}.items():
        (tmp_path / "runs" / run).mkdir(parents=True)
        so = {"selected": {}, "info": {}, "candidates": [{"value": 0.0}]}  # an SO table: skipped
        hparams = {"ga": table(fa, va, gap), "so": so}
        (tmp_path / "runs" / run / "metrics.json").write_text(json.dumps({"hparams": hparams}))
    monkeypatch.setattr(sys, "argv", ["offline_selectivity.py", str(tmp_path)])
    offline_selectivity.main()
    out = capsys.readouterr().out
    assert "| a-seed0 | ga | 2.00 | 6.00 | yes |" in out and "| b-seed0 | ga | 8.00 | 6.00 | no |" in out
    # rule: (2 + 8) / 2; with the requirement b falls back to θ*: (2 + 6) / 2
    assert (
        "rule 5.00, with the requirement 4.00; replaced by θ* 1 of 2, of which worse than the rule's choice 0"
        in out
    )
    assert "so" not in out.split("\n")[2]


def test_no_tables_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["offline_selectivity.py", str(tmp_path)])
    with pytest.raises(SystemExit, match="no fine-tuning candidate tables"):
        offline_selectivity.main()
