"""Multiple-choice accuracy by choice log-likelihood (WMDP, Li et al. 2024; MMLU as utility; METHOD.md §9).

As lm-evaluation-harness scores WMDP and MMLU: the question and its lettered choices form the prompt
(``{question}\\nA. ...\\nB. ...\\nC. ...\\nD. ...\\nAnswer:``, inside the chat template when the
tokenizer has one), each letter is a continuation, and the prediction is the letter of highest
log-likelihood. With four choices chance is 25%. Examples: ``{"question": str, "choices": [str, ...],
"answer": int}`` (the index of the correct choice, as in ``cais/wmdp`` and ``cais/mmlu``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from unlearn_lit.models.base import Backbone

LETTERS = "ABCDEFGHIJ"
REQUIRED = ("question", "choices", "answer")


def mcq_prompt(example: dict[str, Any]) -> str:
    """The question with its lettered choices, ending in ``Answer:``."""
    missing = [k for k in REQUIRED if k not in example]
    if missing:
        raise ValueError(f"multiple-choice examples need the fields {', '.join(REQUIRED)}; missing {missing}")
    lines = [example["question"], *(f"{LETTERS[i]}. {c}" for i, c in enumerate(example["choices"]))]
    return "\n".join(lines) + "\nAnswer:"


@torch.inference_mode()
def choice_logliks(
    backbone: Backbone, examples: Sequence[dict[str, Any]], batch_size: int = 32
) -> list[np.ndarray]:
    """Per example, the log-likelihood of each choice's letter after the prompt (summed over its tokens)."""
    from unlearn_lit.models.qa import end_token_id

    collate = backbone.collate
    end = end_token_id(collate.tokenizer)
    device = next(backbone.parameters()).device
    rows: list[tuple[int, int, list[int], list[int]]] = []  # (example, choice, prompt ids, letter ids)
    for i, e in enumerate(examples):
        prompt = collate.prompt_ids(mcq_prompt(e))
        for j in range(len(e["choices"])):
            letter = collate.answer_ids(LETTERS[j])
            rows.append((i, j, prompt, letter[:-1] if letter and letter[-1] == end else letter))
    out = [np.zeros(len(e["choices"])) for e in examples]
    was_training = backbone.training
    backbone.eval()
    try:
        for start in range(0, len(rows), batch_size):
            chunk = rows[start : start + batch_size]
            width = max(len(p) + len(a) for _, _, p, a in chunk)
            ids = torch.zeros(len(chunk), width, dtype=torch.long)
            mask = torch.zeros_like(ids)
            for b, (_, _, p, a) in enumerate(chunk):
                ids[b, : len(p) + len(a)] = torch.tensor(p + a)
                mask[b, : len(p) + len(a)] = 1
            logits = backbone({"input_ids": ids.to(device), "attention_mask": mask.to(device)})
            logp = F.log_softmax(logits.double(), -1).cpu()
            for b, (i, j, p, a) in enumerate(chunk):
                positions = range(len(p), len(p) + len(a))  # token t is predicted at t - 1
                out[i][j] = float(sum(logp[b, t - 1, ids[b, t]] for t in positions))
    finally:
        backbone.train(was_training)
    return out


def mcq_accuracy(backbone: Backbone, examples: Sequence[dict[str, Any]], batch_size: int = 32) -> float:
    """Fraction of examples whose highest-likelihood letter is the correct one."""
    scores = choice_logliks(backbone, examples, batch_size)
    return float(
        np.mean([int(np.argmax(s)) == int(e["answer"]) for s, e in zip(scores, examples, strict=True)])
    )
