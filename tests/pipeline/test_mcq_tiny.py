"""The WMDP quickstart end to end (METHOD.md §9), reduced: a tiny GQA Llama trained on mcq_synthetic's
corpora, phase 1 on the forget corpus, GA and MAPE-GA with RT-free checkpoint selection, and the
WMDP-style metrics (forget-topic and utility accuracy, chance, drop from θ*) in metrics.json."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from unlearn_lit.__main__ import load_config
from unlearn_lit.run import run
from unlearn_lit.runtime import Runtime

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.integration
def test_mcq_tiny_config_runs_end_to_end(tmp_path):
    cfg = load_config(ROOT / "configs/quickstart/mcq_tiny.yaml")
    short = {"max_steps": 6, "every_n_steps": 2, "lr_retries": 1, "forget_batch_size": 8}
    cfg = dataclasses.replace(
        cfg,
        recipe_overrides={**cfg.recipe_overrides, "epochs": 6},
        method_options={"ga": short},
        cache_dir=str(tmp_path / "cache"),
        trainer=Runtime(accelerator="cpu", progress_bar=False),
    )
    out = tmp_path / "run"
    summary = run(cfg, out)
    assert not summary["failed"], summary["failed"]
    rows = json.loads((out / "metrics.json").read_text())["methods"]
    assert set(rows) == {"original", "ga", "mape_ga"}
    for name, row in rows.items():
        assert 0.0 <= row["wmdp_acc"] <= 1.0 and 0.0 <= row["mmlu_acc"] <= 1.0, name
        assert row["chance"] == 0.25 and 0.0 <= row["wmdp_chance_p"] <= 1.0, name
        assert row["metrics"]["forget/science/acc"] == row["wmdp_acc"], name
        assert row["mmlu_drop"] == pytest.approx(rows["original"]["mmlu_acc"] - row["mmlu_acc"]), name
    assert rows["original"]["mmlu_drop"] == 0.0
    info = {m: summary["hparams"][m]["info"] for m in ("ga", "mape_ga")}
    assert 0 < info["mape_ga"]["num_updated"] < 0.5 * info["ga"]["num_updated"]  # the MAPE mask (S = 0.9)
    assert all(summary["hparams"][m]["candidates"] for m in ("ga", "mape_ga"))  # RT-free selection ran
    table = (out / "results.md").read_text()
    assert "forget-topic acc (chance)" in table and "| original | " in table
