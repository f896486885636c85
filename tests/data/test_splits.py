"""Split contract (METHOD.md §1): D_f, D_r, D_v, D_t disjoint, sized, seeded, validated early."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from unlearn_lit.data import ForgetSpec, build_datamodule
from unlearn_lit.data.splits import rng
from unlearn_lit.registry import UnknownNameError


def index_collate(examples):
    return {
        "index": torch.tensor([e["index"] for e in examples]),
        "labels": torch.tensor([e["label"] for e in examples]),
    }


def digits(**kw):
    kw.setdefault("collate_fn", index_collate)
    return build_datamodule("digits", **kw)


def test_generator_is_pinned():
    # numpy's PCG64 stream is platform independent; a change here changes every published split
    assert rng(0, "forget").permutation(10).tolist() == [9, 8, 2, 5, 4, 3, 7, 0, 1, 6]


def test_random_split_is_disjoint_and_sized():
    dm = digits(forget_size=100, val_size=150, seed=3)
    n = len(dm.train)
    assert len(dm.forget) == 100 and len(dm.retain) == n - 100 and len(dm.val) == 150
    assert n + 150 == 1437 and len(dm.test) == 360
    f, r = set(dm.forget_indices.tolist()), set(dm.retain_indices.tolist())
    assert not f & r and f | r == set(range(n))
    assert np.all(np.diff(dm.forget_indices) > 0)  # sorted
    # D and D_v are disjoint parts of the training pool; D_t is another pool
    assert not set(dm.train.positions.tolist()) & set(dm.val.positions.tolist())
    assert dm.val.base is dm.dataset.train and dm.test.base is dm.dataset.test
    # views carry the index into D, so per-example bookkeeping works
    i = 7
    assert dm.forget[i]["index"] == dm.forget_indices[i]
    assert torch.equal(dm.forget[i]["image"], dm.train[int(dm.forget_indices[i])]["image"])
    assert [dm.val[j]["index"] for j in range(3)] == [0, 1, 2]


def test_same_seed_same_split_other_seed_other_split():
    a, b, c = digits(seed=1), digits(seed=1), digits(seed=2)
    assert np.array_equal(a.forget_indices, b.forget_indices)
    assert np.array_equal(a.val.positions, b.val.positions)
    assert not np.array_equal(a.forget_indices, c.forget_indices)
    # the forget seed does not move D, so one original model serves every forget seed
    assert np.array_equal(a.train.positions, c.train.positions)
    assert a.identity(False) == c.identity(False) and a.identity(True) != c.identity(True)
    d = digits(seed=1, data_seed=5)
    assert not np.array_equal(a.val.positions, d.val.positions)


def test_class_forgetting_removes_exactly_that_class():
    dm = digits(forget="class", forget_classes=[3, 7])
    labels = dm.train.labels()
    assert set(labels[dm.forget_indices].tolist()) == {3, 7}
    assert not np.isin(labels[dm.retain_indices], [3, 7]).any()
    assert len(dm.forget) == int(np.isin(labels, [3, 7]).sum())


def test_mia_shadow_sets():
    dm = digits(max_test=50)
    assert len(dm.mia_members) == len(dm.mia_nonmembers) == 50
    assert [dm.mia_members[i]["index"] for i in range(50)] == dm.retain_indices[:50].tolist()
    assert [dm.mia_nonmembers[i]["index"] for i in range(50)] == list(range(50))


def test_caps_and_retain_subsample():
    dm = digits(max_train=300, max_test=40, forget_size=10)
    assert len(dm.train) == 300 and len(dm.test) == 40
    a = torch.cat([b["index"] for b in dm.retain_dataloader(subsample=50, seed=4)])
    b = torch.cat([b["index"] for b in dm.retain_dataloader(subsample=50, seed=4)])
    assert torch.equal(a, b) and len(a) == 50 and set(a.tolist()) <= set(dm.retain_indices.tolist())


def test_train_loader_follows_mode():
    dm = digits(forget_size=50)
    seen = torch.cat([b["index"] for b in dm.train_dataloader()])
    assert sorted(seen.tolist()) == list(range(len(dm.train)))
    assert not torch.equal(seen, torch.arange(len(dm.train)))  # shuffled
    dm.mode = "retrain"
    seen = torch.cat([b["index"] for b in dm.train_dataloader()])
    assert sorted(seen.tolist()) == dm.retain_indices.tolist()
    with pytest.raises(ValueError, match="original, retrain"):
        dm.mode = "unlearn"
    with pytest.raises(ValueError, match="valid choices: train, forget"):
        dm.loader("dev")


def test_indices_files_and_write_split_roundtrip(tmp_path):
    dm = digits(seed=9)
    path = dm.write_split(tmp_path / "run")
    assert path.name == "forget_indices.json" and list(path.parent.iterdir()) == [path]  # no temp left
    saved = json.loads(path.read_text())
    assert saved["forget_indices"] == dm.forget_indices.tolist() and saved["seed"] == 9
    again = digits(forget="indices", forget_indices=str(path))
    assert np.array_equal(again.forget_indices, dm.forget_indices)
    (tmp_path / "lines.txt").write_text("5\n3\n\n11\n")
    assert digits(forget="indices", forget_indices=str(tmp_path / "lines.txt")).forget_indices.tolist() == [
        3,
        5,
        11,
    ]
    (tmp_path / "list.json").write_text("[4, 2]")
    assert digits(forget="indices", forget_indices=str(tmp_path / "list.json")).forget_indices.tolist() == [
        2,
        4,
    ]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(forget="class", forget_classes=[10]), r"do not exist; valid classes: 0\.\.9"),
        (dict(forget="class", forget_classes=list(range(10))), "all .* training examples"),
        (dict(forget="class", forget_classes=[]), "at least one class"),
        (dict(forget="random", forget_size=0), "size >= 1"),
        (dict(forget="random", forget_size=5000), "choose size <"),
        (dict(forget="shuffle"), "valid choices: random, class, indices"),
        (dict(val_size=1437), "val_size must be"),
        (dict(forget="indices"), "needs `indices_file`"),
    ],
)
def test_bad_forget_configs_raise_early(kwargs, match):
    with pytest.raises(ValueError, match=match):
        digits(**kwargs)


@pytest.mark.parametrize(
    "content, match",
    [
        ("", "empty"),
        ("[1, 1, 2]", "duplicate forget indices: \\[1\\]"),
        ("[0, 99999]", "out of range"),
        ("[-1]", "out of range"),
        ('["a"]', "must be integers"),
    ],
)
def test_bad_indices_files(tmp_path, content, match):
    (tmp_path / "f.json").write_text(content)
    with pytest.raises(ValueError, match=match):
        digits(forget="indices", forget_indices=str(tmp_path / "f.json"))


def test_missing_indices_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        digits(forget="indices", forget_indices=str(tmp_path / "missing.json"))


def test_unknown_dataset_lists_choices():
    with pytest.raises(
        UnknownNameError, match="valid choices: cifar10, csv, digits, fashion_mnist, hf, imagefolder"
    ):
        build_datamodule("imagenet")


def test_bind_checks_backbone_and_collate_is_required():
    dm = build_datamodule("digits")
    with pytest.raises(RuntimeError, match="bind"):
        dm.test_dataloader()
    with pytest.raises(ValueError, match="needs classification with 10"):
        dm.bind(SimpleNamespace(task="classification", num_labels=3, name="x", collate=index_collate))
    dm.bind(SimpleNamespace(task="classification", num_labels=10, name="x", collate=index_collate))
    assert len(next(iter(dm.test_dataloader()))["index"]) == dm.eval_batch_size


def test_forget_spec_normalizes_classes():
    assert ForgetSpec("class", classes=[1, 2]).classes == (1, 2)
