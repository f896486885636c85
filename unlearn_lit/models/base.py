"""The backbone contract: a plain ``nn.Module`` that maps a batch dict to logits.

Every LightningModule in unlearn_lit talks to a model only through :class:`Backbone`:

- ``backbone(batch)`` returns logits: ``[B, C]`` for classification, ``[B]`` for regression,
  ``[B, T, V]`` for causal language models;
- ``backbone.per_example_loss(batch)`` returns the per-example loss ``[B]`` (cross-entropy, squared
  error, or the mean next-token cross-entropy of each sequence -- of its answer tokens only when the
  batch has token ``labels`` ``[B, T]``, question tokens being -100);
- ``backbone.collate(examples)`` turns raw examples from a dataset (``{"text": ..., "label": ...}`` or
  ``{"image": ..., "label": ...}``) into a batch, so tokenization and image transforms are bound late,
  by the backbone, never copied into data configs.

The wrapped network lives in ``backbone.net``; parameter names therefore start with ``net.``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

TASKS = ("classification", "regression", "lm")
INPUT_KEYS = ("input_ids", "attention_mask", "token_type_ids", "pixel_values")
IGNORE = -100  # token label that takes no part in the loss (question and padding tokens)


class Backbone(nn.Module):
    """A network plus the few facts every phase needs about it.

    Args:
        net: the underlying HF transformers or timm model.
        family: architecture family used by the unit layer (``bert``, ``roberta``, ``distilbert``,
            ``vit``, ``llama``, ``mistral``, ``gpt2``).
        task: ``classification``, ``regression`` or ``lm``.
        num_labels: number of classes (1 for regression, vocabulary size for ``lm``).
        collate: function from a list of raw examples to a batch dict.
        name: the registry name or path the backbone was built from (recorded in run directories).
    """

    def __init__(
        self,
        net: nn.Module,
        family: str,
        task: str,
        num_labels: int,
        collate: Callable[[Sequence[dict[str, Any]]], dict[str, Tensor]],
        name: str = "",
    ) -> None:
        super().__init__()
        if task not in TASKS:
            raise ValueError(f"unknown task {task!r}; valid choices: {', '.join(TASKS)}")
        self.net = net
        self.family = family
        self.task = task
        self.num_labels = num_labels
        self.collate = collate
        self.name = name

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        if "pixel_values" in batch:
            x = batch["pixel_values"]
            dtype = next(self.net.parameters()).dtype  # a model cast to a *-true precision's dtype
            out = self.net(x if x.dtype == dtype or not dtype.is_floating_point else x.to(dtype))
        else:
            out = self.net(**{k: batch[k] for k in INPUT_KEYS if k in batch})
        logits = out if isinstance(out, Tensor) else out.logits
        return logits.squeeze(-1) if self.task == "regression" else logits

    def per_example_loss(self, batch: dict[str, Tensor], logits: Tensor | None = None) -> Tensor:
        """Per-example loss ``[B]`` of the batch (computed from ``logits`` when given)."""
        logits = self(batch) if logits is None else logits
        return per_example_loss(logits, batch, self.task)


@contextlib.contextmanager
def seeded_init(seed: int) -> Iterator[None]:
    """Weights created inside (a pretrained model's new task head, a random-init model) come from
    ``seed``, whatever the global RNG's state, and the global RNG is left as it was. Without it a new
    head's init depends on what ran before the backbone was built: θ* and RT would start from different
    heads, and θ*'s cache key (which hashes the initial weights) would change from run to run."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def per_example_loss(logits: Tensor, batch: dict[str, Tensor], task: str) -> Tensor:
    """Per-example loss ``[B]``: cross-entropy, squared error, or mean next-token cross-entropy."""
    if task == "classification":
        return F.cross_entropy(logits, batch["labels"], reduction="none")
    if task == "regression":
        return (logits - batch["labels"].to(logits.dtype)) ** 2
    # Causal LM: predict token t+1 from tokens <= t. With token labels [B, T] (question-answer batches,
    # METHOD.md §9) only the answer tokens count: question and padding tokens are IGNORE (-100); without
    # them every non-padding token does (attention_mask 0 does not count).
    ids = batch["input_ids"]
    labels = batch.get("labels")
    if labels is not None and labels.dim() == 2:
        target = labels[:, 1:]
        weight = target != IGNORE
        target = target.masked_fill(~weight, 0)
    else:
        target = ids[:, 1:]
        weight = batch.get("attention_mask", torch.ones_like(ids))[:, 1:].bool()
    token_loss = F.cross_entropy(logits[:, :-1].transpose(1, 2), target, reduction="none")  # [B, T-1]
    weight = weight.to(token_loss.dtype)
    return (token_loss * weight).sum(1) / weight.sum(1).clamp_min(1.0)


def predictions(logits: Tensor, task: str) -> Tensor:
    """Predicted labels ``[B]`` (classification) or values ``[B]`` (regression)."""
    return logits.argmax(-1) if task == "classification" else logits


class ImageCollate:
    """Collate for image backbones: stack ``[C, H, W]`` images in [0, 1], match channels and size,
    normalize. A class (not a closure) so spawned processes can pickle it."""

    def __init__(
        self,
        image_size: int,
        in_chans: int,
        mean: float | Sequence[float] = 0.5,
        std: float | Sequence[float] = 0.5,
    ) -> None:
        self.image_size, self.in_chans = image_size, in_chans
        self.mean = torch.as_tensor(mean, dtype=torch.float32).reshape(-1, 1, 1)
        self.std = torch.as_tensor(std, dtype=torch.float32).reshape(-1, 1, 1)

    def __call__(self, examples: Sequence[dict[str, Any]]) -> dict[str, Tensor]:
        x = torch.stack([torch.as_tensor(e["image"], dtype=torch.float32) for e in examples])  # [B, C, H, W]
        if x.shape[1] != self.in_chans:  # grey -> RGB by repetition, RGB -> grey by averaging
            x = x.mean(1, keepdim=True).expand(-1, self.in_chans, -1, -1)
        if x.shape[-1] != self.image_size or x.shape[-2] != self.image_size:
            size = (self.image_size, self.image_size)
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        return _add_targets({"pixel_values": (x - self.mean) / self.std}, examples, torch.long)


class TextCollate:
    """Collate for text backbones: tokenize ``text`` (and ``text_pair`` when present), pad dynamically."""

    def __init__(self, tokenizer: Any, max_length: int = 128, label_dtype: torch.dtype = torch.long) -> None:
        self.tokenizer, self.max_length, self.label_dtype = tokenizer, max_length, label_dtype

    def __call__(self, examples: Sequence[dict[str, Any]]) -> dict[str, Tensor]:
        texts = [e["text"] for e in examples]
        pairs = [e["text_pair"] for e in examples] if "text_pair" in examples[0] else None
        enc = self.tokenizer(
            texts, pairs, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        )
        batch = {k: v for k, v in enc.items() if k in INPUT_KEYS}
        return _add_targets(batch, examples, self.label_dtype)


def _add_targets(
    batch: dict[str, Tensor], examples: Sequence[dict[str, Any]], label_dtype: torch.dtype
) -> dict[str, Tensor]:
    if "label" in examples[0]:
        batch["labels"] = torch.tensor([e["label"] for e in examples], dtype=label_dtype)
    if "index" in examples[0]:
        batch["index"] = torch.tensor([e["index"] for e in examples], dtype=torch.long)
    return batch
