"""Datasets by registry name and the forget/retain/test DataModule (METHOD.md §1, §7).

>>> dm = build_datamodule("digits", forget="random", forget_size=128, seed=0)
>>> dm = build_datamodule("digits", forget="class", forget_classes=[3])
>>> dm = build_datamodule("tweets", max_train=4000).bind(build_backbone("minilm", num_labels=3))

Adding a dataset family is one new module in this package that registers a factory with
``@DATASETS.register(name)``; the modules are discovered on import.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Sequence
from typing import Any

from unlearn_lit.data.base import DATASETS, DatasetSpec, ExampleView, ImageExamples, UnlearnDataModule
from unlearn_lit.data.buckets import BUCKET_BATCHES
from unlearn_lit.data.splits import FORGET_POLICIES, ForgetSpec

_CORE = {"base", "buckets", "splits"}
for _module in pkgutil.iter_modules(__path__):
    if _module.name not in _CORE:
        importlib.import_module(f"{__name__}.{_module.name}")


def build_dataset(name: str, **options: Any) -> DatasetSpec:
    """Loads a registered dataset (``DATASETS.names()``) with its factory options."""
    return DATASETS.get(name)(**options)


def build_datamodule(
    name: str,
    forget: str | ForgetSpec = "random",
    forget_size: int = 128,
    forget_classes: Sequence[int] = (),
    forget_indices: str | None = None,
    forget_ids: str | None = None,
    seed: int = 0,
    data_seed: int = 0,
    val_size: int | float | None = None,
    max_train: int | None = None,
    max_test: int | None = None,
    mia_size: int | None = None,
    batch_size: int = 32,
    eval_batch_size: int | None = None,
    num_workers: int = 0,
    collate_fn: Any = None,
    length_buckets: int | None = BUCKET_BATCHES,
    dataset_options: dict[str, Any] | None = None,
) -> UnlearnDataModule:
    """Builds the DataModule of a registered dataset.

    Args:
        name: dataset registry name (``digits``, ``fashion_mnist``, ``tweets``, ``tweets_binary``,
            ``sst2``, ``mnli``, ``qqp``, ``stsb``, ``cifar10``; your own: ``csv``, ``imagefolder``, ``hf``).
        forget: forget policy (``random``, ``class``, ``indices``, ``ids``) or a ready :class:`ForgetSpec`.
        forget_size: number of random forget examples.
        forget_classes: classes to forget (policy ``class``).
        forget_indices: path of an indices file (policy ``indices``).
        forget_ids: path of a file of example ids (policy ``ids``).
        seed: forget selection seed.
        data_seed: seed of D_v and the size caps.
        val_size: D_v size (int, fraction, or None for ``min(512, 10%)``).
        max_train: cap on |D|.
        max_test: cap on |D_t|.
        mia_size: cap on the MIA shadow sets.
        batch_size: training batch size.
        eval_batch_size: batch size of evaluation loaders.
        num_workers: DataLoader workers.
        collate_fn: a collate function; usually bound later with ``datamodule.bind(backbone)``.
        length_buckets: text: training batches of similar length, sorted within buckets of this many
            batches, the batches shuffled (None or 0: plain shuffling).
        dataset_options: passed to the dataset factory (``root``, ``download``, ``data_dir``,
            ``split_seed``, ...).
    """
    spec = forget
    if not isinstance(spec, ForgetSpec):
        spec = ForgetSpec(
            policy=forget,
            size=forget_size,
            classes=tuple(forget_classes),
            indices_file=forget_indices,
            ids_file=forget_ids,
        )
    dataset = DATASETS.get(name)(**(dataset_options or {}))  # unknown names fail before loading
    return UnlearnDataModule(
        dataset,
        spec,
        seed=seed,
        data_seed=data_seed,
        val_size=val_size,
        max_train=max_train,
        max_test=max_test,
        mia_size=mia_size,
        batch_size=batch_size,
        eval_batch_size=eval_batch_size,
        num_workers=num_workers,
        collate_fn=collate_fn,
        length_buckets=length_buckets,
    )


__all__ = [
    "DATASETS",
    "FORGET_POLICIES",
    "DatasetSpec",
    "ExampleView",
    "ForgetSpec",
    "ImageExamples",
    "UnlearnDataModule",
    "build_dataset",
    "build_datamodule",
]
