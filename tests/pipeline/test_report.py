"""Run-directory report files and the loggers (CSV always, W&B offline without a key)."""

from __future__ import annotations

import csv
import json

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
