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
