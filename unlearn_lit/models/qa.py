"""Question-answer batches for causal LMs (METHOD.md §9): the prompt in the model's chat template, the
answer after it, and token labels that are the answer tokens only.

An example ``{"question": str, "answer": str}`` becomes ``prompt(question) + answer + <eos>``, where
``prompt`` is the tokenizer's chat template with one user turn and the generation prompt. A tokenizer
without a chat template (the tiny test models share BERT's) gets the plain format
``Question: {question}\\nAnswer:`` and a logged note. Labels are -100 on the prompt and on padding, so
:func:`~unlearn_lit.models.base.per_example_loss` is the mean NLL of the answer tokens. Prompt and
answer are tokenized separately and concatenated, so the boundary is exact (no re-tokenization across
it). Examples without ``question`` (plain text, ``{"text": ...}``) are language-modelled whole: their
labels are every non-padding token.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from unlearn_lit.models.base import IGNORE, TextCollate

log = logging.getLogger(__name__)
PLAIN_FORMAT = "Question: {question}\nAnswer:"
_noted: set[str] = set()


def has_chat_template(tokenizer: Any) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def prompt_text(tokenizer: Any, question: str) -> str:
    """The prompt before the answer: one user turn in the chat template, or :data:`PLAIN_FORMAT`."""
    if has_chat_template(tokenizer):
        messages = [{"role": "user", "content": question}]
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    name = getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__
    if name not in _noted:
        _noted.add(name)
        log.info("tokenizer %s has no chat template: using the plain prompt format %r", name, PLAIN_FORMAT)
    return PLAIN_FORMAT.format(question=question)


def end_token_id(tokenizer: Any) -> int | None:
    """The token that ends an answer: EOS, else SEP (BERT-style tokenizers), else none."""
    for attr in ("eos_token_id", "sep_token_id"):
        value = getattr(tokenizer, attr, None)
        if value is not None:
            return int(value)
    return None


class QACollate:
    """Collate of causal-LM backbones: question-answer examples with answer-only labels, or plain text.

    Returns ``input_ids``, ``attention_mask`` (right padding), ``labels`` ``[B, T]`` (-100 except on
    answer tokens) and ``index`` when the examples have one. A class so spawned processes can pickle it.

    Args:
        tokenizer: the backbone's tokenizer.
        max_length: tokens per sequence; longer ones lose prompt tokens from the left first, then
            answer tokens from the right.
    """

    def __init__(self, tokenizer: Any, max_length: int = 128) -> None:
        self.tokenizer, self.max_length = tokenizer, max_length
        self.text = TextCollate(tokenizer, max_length=max_length)

    def prompt_ids(self, question: str) -> list[int]:
        """Token ids of the prompt (BOS first when the tokenizer has one and no chat template adds it)."""
        tok = self.tokenizer
        ids = list(tok(prompt_text(tok, question), add_special_tokens=False)["input_ids"])
        bos = getattr(tok, "bos_token_id", None)
        if bos is not None and not has_chat_template(tok) and (not ids or ids[0] != bos):
            ids = [int(bos), *ids]
        return ids

    def answer_ids(self, answer: str) -> list[int]:
        """Token ids of the answer and the end token (after a plain prompt, the answer starts with a
        space, as it would in running text)."""
        tok = self.tokenizer
        if not has_chat_template(tok) and not answer.startswith(" "):
            answer = f" {answer}"
        end = end_token_id(tok)
        return list(tok(answer, add_special_tokens=False)["input_ids"]) + ([end] if end is not None else [])

    def encode(self, question: str, answer: str) -> tuple[list[int], list[int]]:
        """Token ids of the prompt and of the answer (with the end token)."""
        return self.prompt_ids(question), self.answer_ids(answer)

    def __call__(self, examples: Sequence[dict[str, Any]]) -> dict[str, Tensor]:
        if "question" not in examples[0]:  # plain text (WMDP's corpora): every non-padding token counts
            batch = self.text(examples)
            batch["labels"] = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, IGNORE)
            return batch
        missing = sorted({"question", "answer"} - set(examples[0]))
        if missing:
            raise ValueError(
                f"question-answer examples need the fields question and answer; missing {missing} "
                f"(found: {', '.join(examples[0])})"
            )
        rows = []
        for e in examples:
            prompt, answer = self.encode(e["question"], e["answer"])
            keep_prompt = max(0, min(len(prompt), self.max_length - len(answer)))
            prompt = prompt[len(prompt) - keep_prompt :]
            ids = (prompt + answer)[: self.max_length]
            labels = ([IGNORE] * len(prompt) + answer)[: self.max_length]
            rows.append((ids, labels))
        width = max(len(ids) for ids, _ in rows)
        pad = self.tokenizer.pad_token_id or 0
        input_ids = torch.full((len(rows), width), pad, dtype=torch.long)
        labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
        attention = torch.zeros((len(rows), width), dtype=torch.long)
        for i, (ids, lab) in enumerate(rows):
            input_ids[i, : len(ids)] = torch.tensor(ids)
            labels[i, : len(lab)] = torch.tensor(lab)
            attention[i, : len(ids)] = 1
        batch = {"input_ids": input_ids, "attention_mask": attention, "labels": labels}
        if "index" in examples[0]:
            batch["index"] = torch.tensor([e["index"] for e in examples], dtype=torch.long)
        return batch

    def prompts(self, questions: Sequence[str]) -> dict[str, Tensor]:
        """Left-padded prompt batch for generation (``input_ids``, ``attention_mask``)."""
        encoded = [self.prompt_ids(q)[-self.max_length :] for q in questions]
        width = max(len(ids) for ids in encoded)
        pad = self.tokenizer.pad_token_id or 0
        input_ids = torch.full((len(encoded), width), pad, dtype=torch.long)
        attention = torch.zeros((len(encoded), width), dtype=torch.long)
        for i, ids in enumerate(encoded):
            input_ids[i, width - len(ids) :] = torch.tensor(ids)
            attention[i, width - len(ids) :] = 1
        return {"input_ids": input_ids, "attention_mask": attention}
