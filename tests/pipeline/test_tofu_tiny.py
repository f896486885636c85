"""The TOFU quickstart end to end (METHOD.md §9), reduced: a tiny GQA Llama on synthetic TOFU, θ* and
RT trained, phase 1 on the answer-only loss, masked and full unlearning with RT-free checkpoint
selection, TOFU's metrics in metrics.json and the LLM table in results.md."""

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
def test_tofu_tiny_config_runs_end_to_end(tmp_path):
    cfg = load_config(ROOT / "configs/quickstart/tofu_tiny.yaml")
    short = {
        "max_steps": 6,
        "every_n_steps": 2,
        "lr_retries": 1,
        "forget_batch_size": 5,
        "retain_batch_size": 5,
    }
    cfg = dataclasses.replace(
        cfg,
        data=dataclasses.replace(cfg.data, options={**cfg.data.options, "num_authors": 10, "questions_per_author": 4,
                                                    "heldout_authors": 2}),
        recipe_overrides={**cfg.recipe_overrides, "epochs": 20},
        methods=["rt", "ga", "mape_gd"],  # NPO: tests/methods/test_llm_methods.py
        method_options={"ga": short, "gd": short},
        tofu_eval={"max_new_tokens": 8},
        cache_dir=str(tmp_path / "cache"),
        trainer=Runtime(accelerator="cpu", progress_bar=False),
    )  # fmt: skip
    out = tmp_path / "run"
    summary = run(cfg, out)
    assert not summary["failed"], summary["failed"]
    rows = json.loads((out / "metrics.json").read_text())["methods"]
    assert set(rows) == {"original", "rt", "ga", "mape_gd"}
    for name, row in rows.items():
        assert 0.0 <= row["forget_rouge"] <= 1.0 and 0.0 <= row["model_utility"] <= 1.0, name
        assert 0.0 <= row["forget_quality"] <= 1.0, name
    assert rows["rt"]["forget_quality"] == 1.0
    # θ* learnt the forget authors, RT never saw them: its forget answers are far less likely
    assert rows["original"]["metrics"]["forget/prob"] > 1.5 * rows["rt"]["metrics"]["forget/prob"]
    info = {m: summary["hparams"][m]["info"] for m in ("ga", "mape_gd")}
    assert 0 < info["mape_gd"]["num_updated"] < 0.5 * info["ga"]["num_updated"]  # the MAPE mask (S = 0.9)
    assert rows["mape_gd"]["params_updated"] <= info["mape_gd"]["num_updated"]
    assert all(summary["hparams"][m]["candidates"] for m in ("ga", "mape_gd"))  # RT-free selection ran
    assert any(rows[m]["unlearned"] for m in ("ga", "mape_gd"))
    table = (out / "results.md").read_text()
    assert (
        "forget quality" in table
        and "model utility" in table
        and "| mape_gd |" in table.replace(" (did not unlearn)", "")
    )


def test_relearning_attack_is_refused_for_qa_data(tmp_path):
    from unlearn_lit.eval.relearn import RelearnConfig

    cfg = dataclasses.replace(
        load_config(ROOT / "configs/quickstart/tofu_tiny.yaml"), relearn=RelearnConfig(steps=2)
    )
    with pytest.raises(ValueError, match="relearning attack .* not available"):
        run(cfg, tmp_path / "run")
    assert not (tmp_path / "run").exists()
