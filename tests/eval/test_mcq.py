"""Multiple-choice scoring by choice log-likelihood (WMDP / MMLU style) against a hand computation."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from unlearn_lit.eval.mcq import choice_logliks, mcq_accuracy, mcq_prompt
from unlearn_lit.models import build_backbone

QUESTIONS = [
    {"question": "What is the capital of France?", "choices": ["Paris", "Rome", "Oslo", "Lima"], "answer": 0},
    {"question": "2 + 2 = ?", "choices": ["3", "4", "5", "22"], "answer": 1},
]


def test_prompt_format_and_missing_fields():
    assert mcq_prompt(QUESTIONS[1]) == "2 + 2 = ?\nA. 3\nB. 4\nC. 5\nD. 22\nAnswer:"
    with pytest.raises(ValueError, match="question, choices, answer; missing"):
        mcq_prompt({"question": "?", "choices": ["a"]})


def test_choice_logliks_equal_the_letters_log_probability_and_accuracy():
    bb = build_backbone("tiny_llama", tokenizer="chars", kv_heads=2, positions=258).eval()
    scores = choice_logliks(bb, QUESTIONS, batch_size=3)  # batches cut across questions
    tok = bb.collate.tokenizer
    for e, s in zip(QUESTIONS, scores, strict=True):
        prompt = bb.collate.prompt_ids(mcq_prompt(e))
        for j, letter in enumerate("ABCD"):
            ids = torch.tensor([prompt + tok(" " + letter, add_special_tokens=False)["input_ids"]])
            with torch.no_grad():
                logp = F.log_softmax(bb.net(input_ids=ids).logits[0].double(), -1)
            expected = sum(logp[t - 1, ids[0, t]] for t in range(len(prompt), ids.shape[1]))
            assert s[j] == pytest.approx(float(expected), rel=1e-5)
    right = [int(s.argmax()) == e["answer"] for s, e in zip(scores, QUESTIONS, strict=True)]
    assert mcq_accuracy(bb, QUESTIONS) == pytest.approx(sum(right) / 2)


@pytest.mark.parametrize("fmt", ["letter", "cloze"])
def test_scorer_on_the_synthetic_items_equals_a_hand_loop_over_choices(fmt):
    from unlearn_lit.data import build_dataset
    from unlearn_lit.eval.mcq import predicted

    spec = build_dataset("mcq_synthetic", seed=3)
    items = [*spec.eval_sets["forget_mcq"][:2], *spec.eval_sets["retain_mcq"][:1]]
    bb = build_backbone("tiny_llama", tokenizer="chars", kv_heads=2, positions=258).eval()
    tok = bb.collate.tokenizer
    scores = choice_logliks(bb, items, batch_size=5, fmt=fmt)
    for e, s in zip(items, scores, strict=True):
        prompt = bb.collate.prompt_ids(mcq_prompt(e) if fmt == "letter" else e["question"])
        expected = []
        for j, choice in enumerate(e["choices"]):
            text = "ABCD"[j] if fmt == "letter" else choice
            ids = torch.tensor([prompt + tok(" " + text, add_special_tokens=False)["input_ids"]])
            with torch.no_grad():
                logp = F.log_softmax(bb.net(input_ids=ids).logits[0].double(), -1)
            expected.append(float(sum(logp[t - 1, ids[0, t]] for t in range(len(prompt), ids.shape[1]))))
        assert s == pytest.approx(expected, rel=1e-5)
        norm = [x / (len(c) if fmt == "cloze" else 1) for x, c in zip(expected, e["choices"], strict=True)]
        assert predicted(s, e, fmt) == max(range(4), key=norm.__getitem__)


def test_evaluator_metrics_chance_and_drop():
    from unlearn_lit.eval.mcq import McqEvaluator, chance_p_value

    assert chance_p_value(0, 10) == pytest.approx(1.0)
    assert chance_p_value(4, 4) == pytest.approx(0.25**4)
    bb = build_backbone("tiny_llama", tokenizer="chars", kv_heads=2, positions=258).eval()
    sets = {"forget_mcq": [{**q, "topic": "t"} for q in QUESTIONS], "retain_mcq": QUESTIONS[::-1]}
    ev = McqEvaluator(sets)
    first = ev(bb)
    assert first["forget/acc"] == mcq_accuracy(bb, QUESTIONS) == first["forget/t/acc"]
    assert first["forget/chance"] == 0.25 and "forget/acc_drop" not in first
    ev.reference = {**first, "retain/acc": first["retain/acc"] + 0.5}
    assert ev(bb)["retain/acc_drop"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="valid choices: letter, cloze"):
        McqEvaluator(sets, fmt="words")
    with pytest.raises(ValueError, match=r"needs the sets \['retain_mcq'\]"):
        McqEvaluator({"forget_mcq": QUESTIONS})
