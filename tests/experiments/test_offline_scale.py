"""experiments/offline_scale.py on a hand-written FT-like table: the two distance scales choose
different checkpoints, and the script reports each choice's Avg.Gap and the means."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "experiments"))
import offline_scale  # noqa: E402

REF = {"retain_loss": 0.353, "val_loss": 0.609, "val_keep_loss": 0.609, "val_keep_loss_se": 0.0414}


def cand(step, forget_loss, retain_loss, val_loss, gap):
    return {"step": step, "forget_loss": forget_loss, "retain_loss": retain_loss, "val_loss": val_loss,
            "val_keep_loss": val_loss, "oracle/avg_gap": gap}  # fmt: skip


def test_scales_choose_and_report(tmp_path, monkeypatch, capsys):
    ft = {
        "info": {"selection_ref": REF},
        "candidates": [
            cand(0, 0.314, 0.353, 0.609, 0.0884),  # θ*
            cand(36, 0.297, 0.291, 0.632, 0.0989),  # retain loss fell: closer only by its own gap
            cand(45, 0.340, 0.200, 0.700, 0.20),  # outside the two-sided guard (retain fell 0.15)
        ],
    }
    (tmp_path / "runs" / "minilm-seed2").mkdir(parents=True)
    (tmp_path / "runs" / "minilm-seed2" / "metrics.json").write_text(json.dumps({"hparams": {"ft": ft}}))
    monkeypatch.setattr(sys, "argv", ["offline_scale.py", str(tmp_path)])
    offline_scale.main()
    out = capsys.readouterr().out
    assert "| minilm-seed2 | ft | step 36 | 9.89 | step 0 | 8.84 |" in out
    assert "| ft | 1 | 9.89 | 8.84 |" in out
