"""TOFU metrics (METHOD.md §9) against hand-computed values; batched greedy generation with a KV cache."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from unlearn_lit.eval.tofu import (
    TofuEvalConfig,
    TofuEvaluator,
    answer_nll,
    forget_quality,
    generate_answers,
    model_utility,
    normalized_probability,
    rouge_recall,
    truth_ratio,
    truth_ratio_summary,
)
from unlearn_lit.models import build_backbone


def test_truth_ratio_is_geometric_mean_of_perturbed_over_paraphrased():
    # p_perturbed = e^-0.5, e^-1.5 -> geometric mean e^-1; p_paraphrased = e^-0.2 -> TR = e^-0.8
    tr = truth_ratio(np.array([[0.5, 1.5], [1.0, 3.0]]), np.array([0.2, 2.0]))
    assert tr[0] == pytest.approx(math.sqrt(math.exp(-0.5) * math.exp(-1.5)) / math.exp(-0.2))
    assert tr[0] == pytest.approx(math.exp(-0.8)) and tr[1] == pytest.approx(1.0)


def test_truth_ratio_summaries():
    tr = np.array([0.5, 2.0, 1.0])
    assert truth_ratio_summary(tr, forget=True) == pytest.approx((0.5 + 0.5 + 1.0) / 3)  # min(TR, 1/TR)
    assert truth_ratio_summary(tr, forget=False) == pytest.approx((0.5 + 0.0 + 0.0) / 3)  # max(0, 1 - TR)


def test_normalized_probability():
    # p_true = 1/2, perturbed 1/4 + 1/4 -> 0.5 / (0.5 + 0.5); second question: 1/2 / (1/2 + 1/8 + 1/8)
    nll_true = np.log([2.0, 2.0])
    nll_wrong = np.log([[4.0, 4.0], [8.0, 8.0]])
    assert normalized_probability(nll_true, nll_wrong) == pytest.approx((0.5 + 0.5 / 0.75) / 2)


def test_forget_quality_is_the_ks_p_value():
    # fully separated samples of 4 and 4: D = 1, exact two-sided p = 2 / C(8, 4)
    assert forget_quality([1, 2, 3, 4], [5, 6, 7, 8]) == pytest.approx(2 / math.comb(8, 4))
    assert forget_quality([1, 2, 3], [1, 2, 3]) == pytest.approx(1.0)


def test_model_utility_is_the_harmonic_mean_and_zero_with_any_zero():
    assert model_utility([0.5] * 9) == pytest.approx(0.5)
    assert model_utility([1.0] * 8 + [0.25]) == pytest.approx(9 / (8 + 4))
    assert model_utility([1.0] * 8 + [0.0]) == 0.0


def test_rouge_l_recall_with_stemming():
    rec = rouge_recall(["the cat sat on the mat", "cats running"], ["the cat on mat", "cat run"])
    assert rec[0] == pytest.approx(4 / 6)  # LCS the-cat-on-mat over 6 reference tokens
    assert rec[1] == pytest.approx(1.0)  # Porter stemming: cats ~ cat, running ~ run


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return build_backbone("tiny_llama", tokenizer="chars", kv_heads=2, positions=258, seed=3).eval()


def test_batched_generation_equals_one_at_a_time(tiny):
    questions = ["Who?", "Where was Kalo Ren born?", "Name a book."]  # different lengths: left padding
    batched = generate_answers(tiny, questions, max_new_tokens=12, batch_size=3)
    alone = [generate_answers(tiny, [q], max_new_tokens=12, batch_size=1)[0] for q in questions]
    assert batched == alone and any(batched)


def test_evaluator_keys_and_forget_quality_against_itself(tiny):
    qa = {"question": "Who wrote X?", "answer": "Ann", "paraphrased_answer": "It was Ann",
          "perturbed_answer": ["Bob", "Cid"]}  # fmt: skip
    known = {"question": "Capital of France?", "answer": "Paris", "perturbed_answer": ["Rome", "Oslo"]}
    sets = {"forget": [qa, {**qa, "question": "Author of X?"}], "retain": [qa], "real_authors": [known],
            "world_facts": [known]}  # fmt: skip
    ev = TofuEvaluator(sets, TofuEvalConfig(max_new_tokens=4))
    first = ev(tiny)
    assert "forget/quality" not in first
    ev.reference = ev.last_truth_ratios
    second = ev(tiny)
    assert second["forget/quality"] == pytest.approx(1.0)
    nll = answer_nll(tiny, [("Who wrote X?", "Ann")])
    assert second["retain/prob"] == pytest.approx(math.exp(-nll[0]))
    nine = [
        second[f"{s}/{k}"]
        for s in ("retain", "real_authors", "world_facts")
        for k in ("prob", "rouge", "truth_ratio")
    ]
    assert second["model_utility"] == pytest.approx(model_utility(nine))
    with pytest.raises(ValueError, match="needs the sets"):
        TofuEvaluator({"forget": []})
