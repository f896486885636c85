"""Run-directory report files and the loggers (CSV always, W&B offline without a key)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from unlearn_lit.report import COLUMNS, log_metrics, markdown_table, write_report


def summary() -> dict:
    row = {c: 0.5 for c in COLUMNS} | {
        "params_updated": 10,
        "params_total": 100,
        "metrics": {"forget/acc": 0.25},
    }
    return {
        "methods": {"original": dict(row), "so": dict(row, forget_acc=0.125)},
        "failed": {"npo": "UnlearningFailed: non-finite loss at step 3"},
        "config": {"backbone": "vit_digits", "mask": {"sparsity": 0.9}},
    }


def test_report_files_and_table(tmp_path, capsys):
    write_report(tmp_path, summary(), title="t")
    assert json.loads((tmp_path / "metrics.json").read_text())["failed"]["npo"].startswith("UnlearningFailed")
    rows = list(csv.DictReader((tmp_path / "results.csv").open()))
    assert [r["method"] for r in rows] == ["original", "so"] and float(rows[1]["forget_acc"]) == 0.125
    md = (tmp_path / "results.md").read_text()
    assert "| so | 12.50 | 50.00 |" in md and "| npo | failed: UnlearningFailed" in md
    assert "| so | 12.50" in capsys.readouterr().out  # the table is printed
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temporaries
    assert markdown_table({}, {}).count("\n") == 2


def test_csv_and_wandb_offline_loggers(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    log_metrics(tmp_path, summary(), logger="wandb", project="unlearn_lit_test", group="table1")
    rows = list(csv.DictReader((tmp_path / "logs" / "metrics.csv").open()))
    assert float(rows[0]["so/forget/acc"]) == 0.25  # keys are phase/split/metric
    assert float(rows[0]["so/cost/avg_gap"]) == 0.5
    assert (tmp_path / "logs" / "hparams.yaml").is_file()  # config logged once
    assert list((tmp_path / "wandb").glob("offline-run-*")), "W&B offline run directory missing"


@pytest.mark.integration
@pytest.mark.timeout(300)
def test_wandb_offline_run_named_after_the_run_directory_and_sync_path_exists(tmp_path, monkeypatch, caplog):
    """The W&B run is named like ``--out`` (not the partial directory), the ``wandb sync`` path printed
    after the rename exists, and nothing is left beside the run directory or in the working directory."""
    pytest.importorskip("wandb")
    import logging

    from tests.toys import quick_run_fields
    from unlearn_lit.config import DataConfig, RunConfig
    from unlearn_lit.loggers import RunLoggers
    from unlearn_lit.run import run

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.chdir(tmp_path)  # a stray ./wandb would show up here
    loggers = RunLoggers(tmp_path / "named" / ".x.partial-1", "wandb", "unlearn_lit_test", name="x")
    (tmp_path / "named" / ".x.partial-1").mkdir(parents=True)
    assert loggers.wandb.experiment.name == "x"
    loggers.final({"a": 1.0}, {})
    cfg = RunConfig(backbone="vit_digits", backbone_options={"embed_dim": 32, "depth": 2},
                    data=DataConfig(forget_size=16, max_train=120, max_test=60, val_size=32),
                    recipe_overrides={"epochs": 1}, methods=["ga"], logger="wandb",
                    **quick_run_fields(tmp_path))  # fmt: skip
    with caplog.at_level(logging.INFO, logger="unlearn_lit.run"):
        run(cfg, tmp_path / "run")
    hints = [r.getMessage() for r in caplog.records if "wandb sync" in r.getMessage()]
    assert len(hints) == 1
    synced = Path(hints[0].rsplit(" ", 1)[1])
    assert synced.is_dir() and synced.parent.parent == tmp_path / "run" and list(synced.glob("*.wandb"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "named", "run"]
