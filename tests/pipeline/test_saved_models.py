"""Saved unlearned models (issue: outputs that last): native format, reloadable with the stock library
alone, reproducing the forget accuracy recorded in the run."""

from __future__ import annotations

import json

import pytest
import torch
import yaml

from tests.data.test_table import csv_run_fields
from tests.pipeline.test_runtime import SMALL
from unlearn_lit.__main__ import load_config
from unlearn_lit.config import DataConfig, RunConfig
from unlearn_lit.run import run


def record_of(run_dir, method):
    directory = run_dir / "models" / method
    return directory, json.loads((directory / "unlearning_record.json").read_text())


def check_record(record, run_dir, method):
    forget = json.loads((run_dir / "forget_indices.json").read_text())["forget_indices"]
    assert record["method"] == method and record["forget_ids"] == sorted(forget)
    assert len(record["forget_ids_sha256"]) == 64 and record["environment"]["git_commit"] is not None


@pytest.mark.integration
@pytest.mark.timeout(300)
def test_hf_model_reloads_with_transformers_alone(tmp_path):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    fields = csv_run_fields(tmp_path, 120)
    summary = run(RunConfig(methods=["ga"], **fields), tmp_path / "run")
    directory, record = record_of(tmp_path / "run", "ga")
    check_record(record, tmp_path / "run", "ga")
    model = AutoModelForSequenceClassification.from_pretrained(directory).eval()
    tokenizer = AutoTokenizer.from_pretrained(directory)
    dm = fields["data"].build()  # the same split: seeded
    forget = list(dm.forget)
    enc = tokenizer([e["text"] for e in forget], padding=True, truncation=True, return_tensors="pt")
    with torch.no_grad():
        pred = model(**enc).logits.argmax(-1)
    acc = (pred == torch.tensor([e["label"] for e in forget])).double().mean().item()
    assert acc == pytest.approx(summary["methods"]["ga"]["forget_acc"], abs=1e-9)
    assert record["metrics"]["forget_acc"] == summary["methods"]["ga"]["forget_acc"]


@pytest.mark.integration
@pytest.mark.timeout(300)
def test_vit_model_reloads_with_timm_alone(tmp_path):
    from timm.models.vision_transformer import VisionTransformer

    config = tmp_path / "small.yaml"
    config.write_text(yaml.safe_dump({**SMALL, "methods": ["mape_ga"], "cache_dir": str(tmp_path / "cache")}))
    cfg = load_config(config, "--trainer.accelerator", "cpu", "--trainer.progress_bar", "false")
    summary = run(cfg, tmp_path / "run")
    directory, record = record_of(tmp_path / "run", "mape_ga")
    check_record(record, tmp_path / "run", "mape_ga")
    assert record["mask"]["objective"] == "mlr" and record["mask"]["sparsity"] == 0.9
    saved = json.loads((directory / "config.json").read_text())
    net = VisionTransformer(**saved["kwargs"]).eval()
    from safetensors.torch import load_file

    net.load_state_dict(load_file(str(directory / "model.safetensors")))
    forget = list(DataConfig(**SMALL["data"]).build().forget)
    x = torch.stack([e["image"] for e in forget])  # digits are 8x8 already: normalize only
    with torch.no_grad():
        pred = net((x - saved["mean"]) / saved["std"]).argmax(-1)
    acc = (pred == torch.tensor([e["label"] for e in forget])).double().mean().item()
    assert acc == pytest.approx(summary["methods"]["mape_ga"]["forget_acc"], abs=1e-9)
