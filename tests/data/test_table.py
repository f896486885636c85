"""Dataset ``csv``: your own table file (CSV/TSV/JSONL/Parquet) through the whole pipeline, no code."""

from __future__ import annotations

import csv
import json

import pytest

from tests.toys import quick_run_fields
from unlearn_lit.config import DataConfig, RunConfig
from unlearn_lit.data import build_dataset
from unlearn_lit.phases.mask_learning import MaskConfig
from unlearn_lit.run import run

WORDS = "great awful fine film plot actors boring lovely slow music ending".split()


def rows(n: int) -> list[dict]:
    """Texts whose label follows their words (learnable), string labels."""
    out = []
    for i in range(n):
        words = [WORDS[(i * 3 + k) % len(WORDS)] for k in range(3 + i % 4)]
        label = "pos" if ("great" in words or "lovely" in words) else "neg"
        out.append({"review": " ".join(words), "stars": label, "id": i})
    return out


def write_csv(path, data, delimiter=","):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(data[0]), delimiter=delimiter)
        w.writeheader()
        w.writerows(data)


def test_formats_labels_and_errors(tmp_path):
    data = rows(40)
    write_csv(tmp_path / "a.csv", data)
    write_csv(tmp_path / "a.tsv", data, delimiter="\t")
    (tmp_path / "a.jsonl").write_text("".join(json.dumps(r) + "\n" for r in data))
    specs = [build_dataset("csv", path=str(tmp_path / f"a.{ext}"), text="review", label="stars")
             for ext in ("csv", "tsv", "jsonl")]  # fmt: skip
    for spec in specs:  # the same examples whatever the format; string labels mapped in sorted order
        assert spec.label_names == ("neg", "pos") and spec.num_labels == 2 and spec.task == "classification"
        assert len(spec.train) == 32 and len(spec.test) == 8
        assert spec.train == specs[0].train and set(spec.train[0]) == {"text", "label"}
    by_text = {r["review"]: r["stars"] for r in data}
    assert all(("neg", "pos")[e["label"]] == by_text[e["text"]] for e in specs[0].train)
    regression = [{"text": f"t {i}", "label": i / 3} for i in range(10)]
    (tmp_path / "r.jsonl").write_text("".join(json.dumps(r) + "\n" for r in regression))
    spec = build_dataset("csv", path=str(tmp_path / "r.jsonl"))
    assert spec.task == "regression" and spec.num_labels == 1
    with pytest.raises(ValueError, match=r"lacks columns \['text'\]; found: review, stars, id"):
        build_dataset("csv", path=str(tmp_path / "a.csv"), label="stars")
    (tmp_path / "a.txt").write_text("text,label\n")
    with pytest.raises(ValueError, match="valid extensions are .csv, .tsv"):
        build_dataset("csv", path=str(tmp_path / "a.txt"))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        build_dataset("csv", path=str(tmp_path / "missing.csv"))


def csv_run_fields(tmp_path, n: int) -> dict:
    """RunConfig fields of a tiny-BERT run on a CSV of ``n`` reviews written into ``tmp_path``."""
    write_csv(tmp_path / "reviews.csv", rows(n))
    options = {"path": str(tmp_path / "reviews.csv"), "text": "review", "label": "stars"}
    return dict(
        backbone="tiny_bert",
        data=DataConfig(name="csv", options=options, forget_size=16, val_size=16, batch_size=16),
        recipe="vit_small",
        recipe_overrides={"epochs": 2},
        mask=MaskConfig(sparsity=0.5, search_rows=32, retain_subsample=64, batch_size=16),
        **quick_run_fields(tmp_path),
    )  # fmt: skip


@pytest.mark.integration
@pytest.mark.timeout(300)
def test_a_csv_runs_through_the_pipeline(tmp_path):
    summary = run(
        RunConfig(methods=["rt", "mape_so", "ga"], **csv_run_fields(tmp_path, 160)), tmp_path / "run"
    )
    assert not summary["failed"] and {"original", "rt", "mape_so", "ga"} <= summary["methods"].keys()
    assert summary["config"]["data"]["options"]["text"] == "review"


@pytest.mark.integration
@pytest.mark.timeout(300)
def test_own_model_without_rt_trains_nothing(tmp_path):
    """``original: PATH`` loads θ* (no training) and a run without ``rt`` trains no RT: Avg.Gap absent."""
    base = csv_run_fields(tmp_path, 120)
    first = run(RunConfig(methods=["ga"], **base), tmp_path / "first")  # trains θ* only
    cached = sorted(p.name for p in (tmp_path / "cache").glob("*.safetensors"))
    assert len(cached) == 1 and cached[0].startswith("original-")  # no RT without `rt`
    assert "rt" not in first["methods"] and first["methods"]["ga"]["avg_gap"] is None
    assert "–" in (tmp_path / "first" / "results.md").read_text()  # shown as absent, not 0
    mine = tmp_path / "cache" / cached[0]
    second = run(RunConfig(methods=["ga"], original=str(mine), **base), tmp_path / "second")
    assert sorted(p.name for p in (tmp_path / "cache").glob("*.safetensors")) == cached  # nothing trained
    a, b = first["methods"]["original"], second["methods"]["original"]
    assert b["forget_acc"] == pytest.approx(a["forget_acc"]) and b["test_acc"] == pytest.approx(a["test_acc"])


def test_load_original_formats_and_mismatch(tmp_path):
    import torch

    from unlearn_lit.models import build_backbone
    from unlearn_lit.phases.train import load_original

    trained = build_backbone("tiny_bert", num_labels=2, seed=1)
    trained.net.save_pretrained(tmp_path / "hf")  # an HF directory (HF key names)
    torch.save(
        {"state_dict": {f"backbone.{k}": v for k, v in trained.state_dict().items()}}, tmp_path / "m.ckpt"
    )
    for source in (tmp_path / "hf", tmp_path / "m.ckpt"):
        fresh = load_original(build_backbone("tiny_bert", num_labels=2, seed=0), source)
        for (n, p), q in zip(fresh.state_dict().items(), trained.state_dict().values(), strict=True):
            assert torch.equal(p, q), (source.name, n)
    with pytest.raises(ValueError, match="does not fit backbone"):
        load_original(build_backbone("tiny_bert", num_labels=3), tmp_path / "hf")
    with pytest.raises(FileNotFoundError, match="Lightning .ckpt"):
        load_original(build_backbone("tiny_bert", num_labels=2), tmp_path / "nothing")
