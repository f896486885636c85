"""Multiple-choice accuracy by choice log-likelihood (WMDP, Li et al. 2024; MMLU as utility; METHOD.md §9).

As lm-evaluation-harness scores WMDP and MMLU: the question and its lettered choices form the prompt
(``{question}\\nA. ...\\nB. ...\\nC. ...\\nD. ...\\nAnswer:``, inside the chat template when the
tokenizer has one), each letter is a continuation, and the prediction is the letter of highest
log-likelihood (format ``letter``). With four choices chance is 25%. Examples: ``{"question": str,
"choices": [str, ...], "answer": int}`` (the index of the correct choice, as in ``cais/wmdp`` and
``cais/mmlu``).

Format ``cloze`` (lm-evaluation-harness's ``acc_norm`` of cloze tasks, and the MMLU-cloze format small
models are reported with): the question alone is the prompt, each choice's text is a continuation, and
the prediction is the choice of highest log-likelihood per character. Measured here: SmolLM2-135M-Instruct
answers lettered questions at chance (it picks "A" for 60 of mcq_synthetic's 72 questions, README) but
knows most of the facts in cloze.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from scipy import stats

from unlearn_lit.config.names import MCQ_FORMATS
from unlearn_lit.models.base import Backbone

LETTERS = "ABCDEFGHIJ"
FORMATS = MCQ_FORMATS
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
    backbone: Backbone, examples: Sequence[dict[str, Any]], batch_size: int = 32, fmt: str = "letter"
) -> list[np.ndarray]:
    """Per example, the log-likelihood of each choice after the prompt (summed over its tokens): the
    choice's letter after :func:`mcq_prompt` (``letter``) or its text after the question (``cloze``)."""
    from unlearn_lit.models.qa import end_token_id

    if fmt not in FORMATS:
        raise ValueError(f"unknown multiple-choice format {fmt!r}; valid choices: {', '.join(FORMATS)}")

    collate = backbone.collate
    end = end_token_id(collate.tokenizer)
    device = next(backbone.parameters()).device
    rows: list[tuple[int, int, list[int], list[int]]] = []  # (example, choice, prompt ids, letter ids)
    for i, e in enumerate(examples):
        prompt = collate.prompt_ids(mcq_prompt(e) if fmt == "letter" else e["question"])
        for j, choice in enumerate(e["choices"]):
            cont = collate.answer_ids(LETTERS[j] if fmt == "letter" else str(choice))
            rows.append((i, j, prompt, cont[:-1] if cont and cont[-1] == end else cont))
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


def predicted(scores: np.ndarray, example: dict[str, Any], fmt: str = "letter") -> int:
    """The chosen index: the highest log-likelihood (``letter``), per character of the choice (``cloze``)."""
    if fmt == "cloze":
        scores = scores / np.asarray([max(len(str(c)), 1) for c in example["choices"]])
    return int(np.argmax(scores))


def correct(
    backbone: Backbone, examples: Sequence[dict[str, Any]], batch_size: int = 32, fmt: str = "letter"
) -> np.ndarray:
    """``[N]`` bool: whether each example's predicted choice is the correct one."""
    scores = choice_logliks(backbone, examples, batch_size, fmt)
    return np.asarray(
        [predicted(s, e, fmt) == int(e["answer"]) for s, e in zip(scores, examples, strict=True)]
    )


def mcq_accuracy(
    backbone: Backbone, examples: Sequence[dict[str, Any]], batch_size: int = 32, fmt: str = "letter"
) -> float:
    """Fraction of examples whose predicted choice is the correct one."""
    return float(correct(backbone, examples, batch_size, fmt).mean())


def chance_p_value(correct: int, total: int, num_choices: int = 4) -> float:
    """One-sided binomial p-value of ``correct`` of ``total`` right or more at chance (1 / ``num_choices``):
    small = the model still answers above chance; large = indistinguishable from guessing."""
    return float(stats.binomtest(int(correct), int(total), 1.0 / num_choices, alternative="greater").pvalue)


class McqEvaluator:
    """Scores a model on a WMDP-like dataset's multiple-choice sets (``DatasetSpec.eval_sets``).

    ``model -> {metric: float}`` with, for ``forget`` (the ``forget_mcq`` set: WMDP's questions) and
    ``retain`` (``retain_mcq``: MMLU or the retain topics): ``{set}/acc``, ``{set}/{topic}/acc``,
    ``{set}/chance`` (the mean 1 / number of choices: 0.25 with four) and ``{set}/chance_p``
    (:func:`chance_p_value`). Set :attr:`reference` to θ*'s metrics and later calls also report
    ``{set}/acc_drop`` (θ*'s accuracy minus this one's): the verdict without RT (METHOD.md §9) is forget
    accuracy near chance with the retain drop near 0.
    """

    SETS = {"forget": "forget_mcq", "retain": "retain_mcq"}

    def __init__(
        self, eval_sets: dict[str, Sequence[dict[str, Any]]], batch_size: int = 32, fmt: str = "letter"
    ) -> None:
        if fmt not in FORMATS:
            raise ValueError(f"unknown multiple-choice format {fmt!r}; valid choices: {', '.join(FORMATS)}")
        missing = [s for s in self.SETS.values() if s not in eval_sets]
        if missing:
            raise ValueError(
                f"multiple-choice evaluation needs the sets {missing}; the dataset has {sorted(eval_sets)}"
            )
        self.sets, self.batch_size, self.fmt = eval_sets, batch_size, fmt
        self.reference: dict[str, float] | None = None

    def __call__(self, model: Backbone) -> dict[str, float]:
        metrics: dict[str, float] = {}
        for name, key in self.SETS.items():
            rows = self.sets[key]
            right = correct(model, rows, self.batch_size, self.fmt)
            metrics[f"{name}/acc"] = float(right.mean())
            metrics[f"{name}/chance"] = float(np.mean([1.0 / len(e["choices"]) for e in rows]))
            metrics[f"{name}/chance_p"] = chance_p_value(
                right.sum(), len(right), round(1 / metrics[f"{name}/chance"])
            )
            topics = np.asarray([str(e.get("topic", "all")) for e in rows])
            for topic in dict.fromkeys(topics):
                metrics[f"{name}/{topic}/acc"] = float(right[topics == topic].mean())
            if self.reference is not None:
                metrics[f"{name}/acc_drop"] = self.reference[f"{name}/acc"] - metrics[f"{name}/acc"]
        return metrics
