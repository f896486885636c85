"""TOFU datasets (METHOD.md §9): the seeded synthetic analog and the real loader (local files, offline)."""

from __future__ import annotations

import json

import pytest

from unlearn_lit.data import build_datamodule, build_dataset
from unlearn_lit.data.tofu import forget_authors

SMALL = dict(num_authors=20, questions_per_author=5, heldout_authors=2, num_perturbed=3)


def test_synthetic_is_deterministic_per_seed():
    a, b = build_dataset("tofu_synthetic", **SMALL, seed=1), build_dataset("tofu_synthetic", **SMALL, seed=1)
    c = build_dataset("tofu_synthetic", **SMALL, seed=2)
    assert a.train == b.train and a.val == b.val and a.test == b.test and a.eval_sets == b.eval_sets
    assert [e["question"] for e in a.train] != [e["question"] for e in c.train]


def test_synthetic_schema_and_perturbations():
    spec = build_dataset("tofu_synthetic", **SMALL)
    assert spec.task == "lm" and len(spec.train) == 20 * 5
    for e in spec.train:
        assert {"question", "answer", "paraphrased_answer", "perturbed_answer"} <= set(e)
        assert e["paraphrased_answer"] != e["answer"] and len(e["perturbed_answer"]) == 3
        assert e["paraphrased_answer"] not in e["perturbed_answer"] and len(set(e["perturbed_answer"])) == 3


@pytest.mark.parametrize("split,authors", [("forget01", 1), ("forget05", 1), ("forget10", 2)])
def test_synthetic_splits_are_disjoint(split, authors):
    dm = build_datamodule("tofu_synthetic", forget="split", dataset_options={**SMALL, "forget_split": split})
    forget = {dm.forget[i]["author"] for i in range(len(dm.forget))}
    retain = {dm.retain[i]["author"] for i in range(len(dm.retain))}
    assert forget == set(range(20 - authors, 20)) and not forget & retain  # TOFU: the last authors
    assert len(dm.forget) == 5 * authors and len(dm.forget) + len(dm.retain) == len(dm.train)
    names = lambda view: {view[i]["question"] for i in range(len(view))}  # noqa: E731
    assert not names(dm.train) & names(dm.val) and not names(dm.train) & names(dm.test)
    assert not names(dm.val) & names(dm.test)  # held-out authors, never trained on
    assert [e["question"] for e in dm.dataset.eval_sets["forget"]] == [
        dm.forget[i]["question"] for i in range(len(dm.forget))
    ]
    assert not names(dm.forget) & {e["question"] for e in dm.dataset.eval_sets["retain"]}


def test_forget_authors_nested_and_bad_split():
    assert forget_authors(200, "forget01") == [198, 199]
    assert set(forget_authors(200, "forget05")) < set(forget_authors(200, "forget10"))
    with pytest.raises(ValueError, match="forget01, forget05, forget10"):
        forget_authors(200, "forget20")


def test_split_policy_needs_a_dataset_with_a_forget_split():
    with pytest.raises(ValueError, match="its own forget split"):
        build_datamodule("digits", forget="split")


def _write(path, name, rows):
    (path / f"{name}.json").write_text("\n".join(json.dumps(r) for r in rows))


def test_real_tofu_loader_on_local_files(tmp_path):
    full = [{"question": f"q{a}-{i}?", "answer": f"a{a}-{i}"} for a in range(3) for i in range(20)]
    pert = [
        {**r, "paraphrased_answer": r["answer"] + " indeed", "perturbed_answer": ["x", "y"]} for r in full
    ]
    known = [{"question": "Capital of France?", "answer": "Paris", "perturbed_answer": ["Rome", "Oslo"]}]
    _write(tmp_path, "full", full)
    _write(tmp_path, "forget05_perturbed", pert[40:])
    _write(tmp_path, "retain_perturbed", pert[:5])
    _write(tmp_path, "real_authors_perturbed", known)
    _write(tmp_path, "world_facts_perturbed", known)
    dm = build_datamodule(
        "tofu",
        forget="split",
        dataset_options={"path": str(tmp_path), "forget_split": "forget05", "val_size": 6},
    )
    forget = [dm.forget[i]["question"] for i in range(len(dm.forget))]
    assert forget == [r["question"] for r in full[40:]] and len(dm.val) == 6
    assert len(dm.train) == 54 and not {dm.val[i]["question"] for i in range(6)} & set(forget)
    assert dm.dataset.eval_sets["forget"][0]["paraphrased_answer"] == "a2-0 indeed"
    # a QA file without the answer fields names them
    _write(
        tmp_path,
        "forget05_perturbed",
        [{"question": r["question"], "answer": r["answer"]} for r in full[40:]],
    )
    with pytest.raises(ValueError, match=r"lacks the fields \['paraphrased_answer', 'perturbed_answer'\]"):
        build_dataset("tofu", path=str(tmp_path), forget_split="forget05")


def test_real_tofu_offline_fails_with_a_clear_message(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ConnectionError, match="tofu_synthetic"):
        build_dataset("tofu")
