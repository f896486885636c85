"""WMDP datasets (METHOD.md §9): the seeded offline analog ``mcq_synthetic`` and the real loader
(local files; offline it names the analog)."""

from __future__ import annotations

import json

import pytest

from unlearn_lit.data import build_datamodule, build_dataset
from unlearn_lit.data.mcq_synthetic import FACTS


def test_mcq_synthetic_is_deterministic_per_seed():
    a, b, c = (build_dataset("mcq_synthetic", seed=s) for s in (1, 1, 2))
    assert a.train == b.train and a.val == b.val and a.eval_sets == b.eval_sets
    assert a.eval_sets["forget_mcq"] != c.eval_sets["forget_mcq"]  # other answer positions
    assert [e["text"] for e in a.train] != [e["text"] for e in c.train]
    for q in (*a.eval_sets["forget_mcq"], *a.eval_sets["retain_mcq"]):
        assert len(q["choices"]) == 4 == len(set(q["choices"])) and 0 <= q["answer"] < 4


def test_mcq_synthetic_forget_and_retain_topics_are_disjoint():
    dm = build_datamodule("mcq_synthetic", forget="split", dataset_options={"seed": 0})
    forget_mcq, retain_mcq = dm.dataset.eval_sets["forget_mcq"], dm.dataset.eval_sets["retain_mcq"]
    assert {q["topic"] for q in forget_mcq} == {"science"}
    assert {q["topic"] for q in retain_mcq} == set(FACTS) - {"science"}
    texts = lambda view: {view[i]["text"] for i in range(len(view))}  # noqa: E731
    science = {t for q, a, _, s in FACTS["science"] for t in (s, f"{q} {a}.")}
    assert texts(dm.forget) == science and not texts(dm.retain) & science and not texts(dm.val) & science
    assert not texts(dm.val) & texts(dm.train)  # held-out retain facts, never trained on
    assert len(dm.forget) == 2 * len(FACTS["science"]) and len(dm.forget) + len(dm.retain) == len(dm.train)
    assert {q["question"] for q in forget_mcq} == {f[0] for f in FACTS["science"]}


def test_mcq_synthetic_bad_topics_name_the_valid_ones():
    with pytest.raises(ValueError, match="science, geography, culture"):
        build_dataset("mcq_synthetic", forget_topics=["chemistry"])
    with pytest.raises(ValueError, match="leave no retain topic"):
        build_dataset("mcq_synthetic", forget_topics=list(FACTS))


def test_wmdp_unknown_subset_names_bio_and_cyber():
    with pytest.raises(ValueError, match="unknown WMDP subset 'wmdp-chem'; valid choices: bio, cyber"):
        build_dataset("wmdp", subsets=["bio", "wmdp-chem"])


def test_wmdp_offline_fails_in_one_line_naming_the_offline_analog(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ConnectionError) as err:
        build_dataset("wmdp", subsets="cyber", path=str(tmp_path))  # an empty copy: every file from the hub
    message = str(err.value)
    assert "mcq_synthetic" in message and "wmdp-cyber.jsonl" in message and "\n" not in message


def _write(folder, stem, rows):
    (folder / f"{stem}.jsonl").write_text("\n".join(json.dumps(r) for r in rows))


def test_wmdp_loader_on_local_files(tmp_path):
    mcq = lambda i, topic: {"question": f"{topic} q{i}?", "choices": ["a", "b", "c", "d"], "answer": i % 4}  # noqa: E731
    _write(tmp_path, "wmdp-bio", [mcq(i, "bio") for i in range(6)])
    _write(
        tmp_path, "bio-forget-corpus", [{"title": "t", "text": f"bio document {i} " * 8} for i in range(5)]
    )
    _write(tmp_path, "wikitext", [{"text": ""}, {"text": " = Heading = "}] + [{"text": f"wiki passage {i} " * 8}
                                                                            for i in range(12)])  # fmt: skip
    _write(tmp_path, "mmlu", [{**mcq(i, "mmlu"), "subject": "anatomy"} for i in range(8)])
    dm = build_datamodule("wmdp", forget="split",
                          dataset_options={"subsets": "wmdp-bio", "path": str(tmp_path), "val_size": 4, "mmlu_size": 5})  # fmt: skip
    forget = [dm.forget[i]["text"] for i in range(len(dm.forget))]
    assert forget == [(f"bio document {i} " * 8).strip() for i in range(5)]
    assert all(dm.retain[i]["text"].startswith("wiki passage") for i in range(len(dm.retain)))
    assert len(dm.retain) == 8 and len(dm.val) == 4  # blank lines and headings dropped
    assert [q["topic"] for q in dm.dataset.eval_sets["forget_mcq"]] == ["bio"] * 6
    assert [q["topic"] for q in dm.dataset.eval_sets["retain_mcq"]] == ["anatomy"] * 5
    _write(tmp_path, "wmdp-bio", [{"question": "q?", "choices": ["a", "b"]}])
    with pytest.raises(ValueError, match=r"lacks the fields \['answer'\]"):
        build_dataset("wmdp", subsets="bio", path=str(tmp_path))
