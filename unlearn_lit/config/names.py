"""The registry names a config is validated against, without importing the registries (no torch).

The CLI parses and validates a run's config -- and answers ``--help`` or a typo -- before importing
torch, Lightning or transformers. These tables are therefore static copies of the names the real
registries hold (``unlearn_lit.models.BACKBONES``, ``unlearn_lit.data.DATASETS``,
``unlearn_lit.masks.objectives.OBJECTIVES``; the methods are :data:`unlearn_lit.config.methods.
METHOD_CONFIGS`); a test checks each equals its registry, so adding a backbone, dataset or objective
without its name here fails the tests rather than the user.
"""

from __future__ import annotations

import sys
from collections.abc import Collection
from pathlib import Path

from unlearn_lit.errors import unknown
from unlearn_lit.registry import UnknownNameError

BACKBONES = (
    "bert_base", "distilbert_base", "minilm", "roberta_base", "roberta_large", "smollm2_135m",
    "tiny_bert", "tiny_distilbert", "tiny_gpt2", "tiny_llama", "tiny_mistral", "tiny_roberta", "tiny_vit",
    "vit_base", "vit_cifar10", "vit_digits", "vit_fashion_mnist",
)  # fmt: skip
BACKBONE_PREFIXES = ("hf:", "timm:")
DATASETS = (
    "cifar10", "csv", "digits", "fashion_mnist", "hf", "imagefolder", "mcq_synthetic", "mnli", "qqp", "sst2",
    "stsb", "tofu", "tofu_synthetic", "tweets", "tweets_binary", "wmdp",
)  # fmt: skip
OBJECTIVES = ("mlf", "mlr", "norm", "random")

MASK_SOURCES = ("none", "mape", "random", "salun")  # "none" first: a plain name is the full method
FORGET_POLICIES = ("random", "class", "indices", "ids", "split")
KINDS = ("head", "filter")
MASKABLE: dict[str, tuple[str, ...]] = {"heads": ("head",), "filters": ("filter",), "both": KINDS}
GRANULARITIES = ("example", "batch")
FISHER_MODES = ("per_example", "per_batch")
SELECTION_PRECISIONS = ("auto", "32", "bf16", "16")  # selection.sets.selection_dtype
SUCCESSIVE_MODES = ("memory_free", "memory_aided")
LOGGERS = ("csv", "wandb")
MCQ_FORMATS = ("letter", "cloze")  # multiple-choice scoring (unlearn_lit.eval.mcq)


def registered(static: Collection[str], module: str, registry: str) -> list[str]:
    """``static`` plus the names registered at run time in ``module.registry`` when it is imported
    already (a name a Python caller added); never imports it (that would import torch)."""
    live = getattr(sys.modules.get(module), registry, None)
    return sorted({*static, *(live.names() if live is not None else ())})


def check_backbone(name: str) -> None:
    """Raises UnknownNameError (a ValueError) with a "did you mean" unless ``name`` is a registered backbone, ``hf:``/``timm:``
    prefixed, or a local directory holding an HF ``config.json``."""
    names = registered(BACKBONES, "unlearn_lit.models", "BACKBONES")
    if name in names or name.startswith(BACKBONE_PREFIXES) or (Path(name) / "config.json").is_file():
        return
    raise UnknownNameError(
        unknown("backbone", name, names)
        + ", 'hf:<hub id or local path>', 'timm:<timm ViT name>', or a local directory with an HF config.json"
    )


def check_dataset(name: str) -> None:
    """Raises UnknownNameError (a ValueError) with a "did you mean" unless ``name`` is a registered dataset."""
    names = registered(DATASETS, "unlearn_lit.data.base", "DATASETS")
    if name not in names:
        raise UnknownNameError(unknown("dataset", name, names))


def check_sparsity(sparsity: float) -> None:
    """Raises ValueError unless ``0 <= sparsity < 1`` (S = fraction of frozen units)."""
    if not isinstance(sparsity, (int, float)) or not 0.0 <= sparsity < 1.0:
        raise ValueError(f"sparsity (fraction of frozen units) must be in [0, 1); got {sparsity!r}")


def maskable_kinds(types: str) -> tuple[str, ...]:
    """Maps the config choice ``"heads" | "filters" | "both"`` to the kinds it makes maskable."""
    if types not in MASKABLE:
        raise ValueError(f"maskable types must be one of {', '.join(map(repr, MASKABLE))}; got {types!r}")
    return MASKABLE[types]
