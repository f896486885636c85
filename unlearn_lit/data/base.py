"""The data contract shared by every dataset (METHOD.md §1 and §7).

A registered dataset factory returns a :class:`DatasetSpec` (raw train and test examples, number of
labels, task, modality). :class:`UnlearnDataModule` turns it into the
sets every phase uses: D (training), D_f / D_r (forget / retain), D_v (validation, held out of the
training pool, never trained on) and D_t (test), plus the MIA shadow sets.

Raw examples are dicts: ``{"image": FloatTensor[C, H, W] in [0, 1], "label": int}`` or
``{"text": str, ("text_pair": str,) "label": int | float}``. Views add ``"index"``: the example's
position in D (for D, D_f, D_r), in D_v or in D_t.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, RandomSampler

from unlearn_lit.data.buckets import BUCKET_BATCHES, LengthBuckets, token_lengths
from unlearn_lit.data.splits import ForgetSpec, check_forget, holdout, select_forget
from unlearn_lit.data.splits import subsample as subsample_positions
from unlearn_lit.registry import Registry

log = logging.getLogger(__name__)

DATASETS: Registry = Registry("dataset")
MODALITIES = ("image", "text")
TASKS = ("classification", "regression", "lm")


@dataclass
class DatasetSpec:
    """What a dataset factory returns.

    Attributes:
        name: registry name.
        train: the training pool (D_v is carved from it, the rest is D).
        test: the test set D_t.
        num_labels: number of classes (1 for regression).
        task: ``classification`` or ``regression``.
        modality: ``image`` or ``text``.
        options: the factory options that change the data (part of the cache key).
        label_names: optional class names.
        val: a predefined D_v (never trained on; e.g. QA about held-out fictitious authors); None: D_v
            is held out of ``train`` (``val_size``).
        forget_positions: positions into ``train`` of the dataset's own forget split (TOFU's forget10),
            used by the forget policy ``split``.
        eval_sets: further evaluation sets by name (``lm``: TOFU's forget/retain/real-authors/world-facts
            sets with paraphrased and perturbed answers).
    """

    name: str
    train: Sequence[dict[str, Any]]
    test: Sequence[dict[str, Any]]
    num_labels: int
    task: str
    modality: str
    options: dict[str, Any] = field(default_factory=dict)
    label_names: tuple[str, ...] = ()
    val: Sequence[dict[str, Any]] | None = None
    forget_positions: Sequence[int] | None = None
    eval_sets: dict[str, Sequence[dict[str, Any]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"unknown task {self.task!r}; valid choices: {', '.join(TASKS)}")
        if self.modality not in MODALITIES:
            raise ValueError(f"unknown modality {self.modality!r}; valid choices: {', '.join(MODALITIES)}")
        if len(self.train) == 0 or len(self.test) == 0:
            raise ValueError(
                f"dataset {self.name!r} has {len(self.train)} train, {len(self.test)} test examples"
            )


class ImageExamples(Sequence):
    """Images stored as one tensor, served as raw example dicts.

    Args:
        images: ``[N, C, H, W]``; uint8 (scaled by 1/255 on access) or float in [0, 1].
        labels: ``[N]`` integer labels.
    """

    def __init__(self, images: Tensor, labels: Tensor) -> None:
        if images.ndim != 4 or len(images) != len(labels):
            raise ValueError(
                f"expected images [N, C, H, W] and labels [N], got {images.shape}, {labels.shape}"
            )
        self.images = images
        self.labels = labels.long()

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict[str, Any]:  # type: ignore[override]
        x = self.images[i]
        x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
        return {"image": x, "label": int(self.labels[i])}


class ExampleView(Dataset):
    """Examples ``base[positions[i]]``; with ``reindex`` the view's ``index`` is ``i``, else kept from base.

    Args:
        base: raw examples or another view.
        positions: positions into ``base``.
        reindex: whether this view defines the ``index`` field (D, D_v, D_t) or inherits it (D_f, D_r).
    """

    def __init__(self, base: Sequence[dict[str, Any]] | ExampleView, positions: np.ndarray, reindex: bool):
        self.base = base
        self.positions = np.asarray(positions, dtype=np.int64)
        self.reindex = reindex

    def __len__(self) -> int:
        return len(self.positions)

    def __getitem__(self, i: int) -> dict[str, Any]:
        example = self.base[int(self.positions[i])]
        return {**example, "index": int(i)} if self.reindex else example

    def labels(self) -> np.ndarray:
        """``[len]`` labels without materializing images when the base stores them as a tensor."""
        if isinstance(self.base, ExampleView):
            return self.base.labels()[self.positions]
        if isinstance(self.base, ImageExamples):
            return self.base.labels.numpy()[self.positions]
        return np.asarray([self.base[int(p)]["label"] for p in self.positions])


def digest(obj: Any) -> str:
    """A stable sha256 of JSON-able data or an index array (for cache keys and split identity)."""
    if isinstance(obj, np.ndarray):
        return hashlib.sha256(np.ascontiguousarray(obj, dtype="<i8").tobytes()).hexdigest()
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


SPLITS = ("train", "forget", "retain", "val", "test", "mia_members", "mia_nonmembers")
MODES = ("original", "retrain")


class UnlearnDataModule(L.LightningDataModule):
    """D, D_f, D_r, D_v, D_t and the MIA shadow sets of one dataset, with their loaders.

    All splits are built (and validated) in the constructor, before any training starts.

    Args:
        dataset: the registered dataset.
        forget: the forget policy (default: 128 random examples).
        seed: seed of the forget selection (and of shuffling unless a loader gets its own seed).
        data_seed: seed of the dataset-level hold-outs (D_v, ``max_train``, ``max_test``); D does not
            depend on ``seed``, so runs with several forget seeds share one original model.
        val_size: size of D_v held out of the training pool: an int, a fraction in (0, 1), or None for
            ``min(512, 10% of the pool)``.
        max_train: cap on |D| (seeded subsample) for quick runs.
        max_test: cap on |D_t| (seeded subsample).
        mia_size: cap on the MIA shadow sets; by default members are the first |D_t| examples of D_r
            and non-members are D_t (METHOD.md §7).
        batch_size: training batch size.
        eval_batch_size: batch size of the other loaders (default ``2 * batch_size``).
        num_workers: DataLoader workers.
        collate_fn: the backbone's collate; usually bound later with :meth:`bind`.
        mode: ``original`` (``train_dataloader`` serves D) or ``retrain`` (serves D_r).
        length_buckets: text data: shuffled loaders (training) group examples of similar length,
            sorting them within buckets of this many batches and shuffling the batches
            (:class:`~unlearn_lit.data.buckets.LengthBuckets`; less padding); None or 0: plain shuffling.
            Ignored for images.
    """

    def __init__(
        self,
        dataset: DatasetSpec,
        forget: ForgetSpec | None = None,
        *,
        seed: int = 0,
        data_seed: int = 0,
        val_size: int | float | None = None,
        max_train: int | None = None,
        max_test: int | None = None,
        mia_size: int | None = None,
        batch_size: int = 32,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        collate_fn: Callable[[Sequence[dict[str, Any]]], dict[str, Tensor]] | None = None,
        mode: str = "original",
        length_buckets: int | None = BUCKET_BATCHES,
    ) -> None:
        super().__init__()
        self.dataset = dataset
        self.forget_spec = forget or ForgetSpec()
        self.seed, self.data_seed = int(seed), int(data_seed)
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size or 2 * batch_size
        self.num_workers, self.collate_fn = num_workers, collate_fn
        self.mode = mode
        if length_buckets is not None and length_buckets < 0:
            raise ValueError(f"length_buckets must be None or >= 0, got {length_buckets}")
        self.length_buckets = length_buckets if dataset.modality == "text" and length_buckets else None
        n_pool = len(dataset.train)
        if dataset.val is not None:  # the dataset's own D_v (held-out QA); the whole pool is D
            self.val_size = len(dataset.val)
            val_pos, pool = np.arange(0), np.arange(n_pool)
        else:
            self.val_size = _val_count(val_size, n_pool)
            val_pos, pool = holdout(n_pool, self.val_size, self.data_seed, "val")
        if max_train is not None:
            pool = pool[subsample_positions(len(pool), max_train, self.data_seed, "max_train")]
        if len(pool) < 2:
            raise ValueError(f"only {len(pool)} training examples left after holding out D_v; lower val_size")
        self.train = ExampleView(dataset.train, pool, reindex=True)
        if dataset.val is not None:
            self.val = ExampleView(dataset.val, np.arange(len(dataset.val)), reindex=True)
        else:
            self.val = ExampleView(dataset.train, val_pos, reindex=True)
        test_pos = subsample_positions(len(dataset.test), max_test, self.data_seed, "max_test")
        self.test = ExampleView(dataset.test, test_pos, reindex=True)
        if self.forget_spec.policy == "split":
            self.forget_indices = split_forget(dataset, self.train.positions)
        else:
            labels = self.train.labels() if dataset.task != "lm" else np.zeros(len(self.train))
            self.forget_indices = select_forget(
                self.forget_spec, labels, dataset.num_labels, dataset.task, self.seed,
                ids=lambda: [str(dataset.train[int(p)].get("id", int(p))) for p in pool],
            )  # fmt: skip
        self.retain_indices = np.setdiff1d(np.arange(len(self.train)), self.forget_indices)
        self.forget = ExampleView(self.train, self.forget_indices, reindex=False)
        self.retain = ExampleView(self.train, self.retain_indices, reindex=False)
        n_mia = min(len(self.retain), len(self.test), mia_size or len(self.test))
        self.mia_members = ExampleView(self.retain, np.arange(n_mia), reindex=False)
        self.mia_nonmembers = ExampleView(self.test, np.arange(n_mia), reindex=False)
        log.info("dataset %s: %s", dataset.name, self.sizes())

    @property
    def mode(self) -> str:
        return self._mode

    @mode.setter
    def mode(self, value: str) -> None:
        if value not in MODES:
            raise ValueError(f"unknown mode {value!r}; valid choices: {', '.join(MODES)}")
        self._mode = value

    def sizes(self) -> dict[str, int]:
        """Number of examples in every split."""
        return {name: len(getattr(self, name)) for name in SPLITS}

    def bind(self, backbone: Any) -> UnlearnDataModule:
        """Uses ``backbone.collate`` for every loader after checking the backbone fits the task."""
        task, n = self.dataset.task, self.dataset.num_labels
        if task == "lm":  # a language model's "labels" are its vocabulary
            n = getattr(backbone, "num_labels", n)
        if getattr(backbone, "task", task) != task or getattr(backbone, "num_labels", n) != n:
            raise ValueError(
                f"backbone {getattr(backbone, 'name', '')!r} is a {backbone.task} model with "
                f"{backbone.num_labels} labels; dataset {self.dataset.name!r} needs {task} with {n}"
            )
        self.collate_fn = backbone.collate
        return self

    def loader(
        self, split: str, shuffle: bool = False, batch_size: int | None = None, seed: int | None = None
    ) -> DataLoader:
        """A DataLoader over one of :data:`SPLITS`; shuffling uses a generator seeded by ``seed``."""
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; valid choices: {', '.join(SPLITS)}")
        size = batch_size or (self.batch_size if split == "train" else self.eval_batch_size)
        return self._make_loader(getattr(self, split), shuffle, size, seed)

    def _make_loader(self, data: Dataset, shuffle: bool, batch_size: int, seed: int | None) -> DataLoader:
        if self.collate_fn is None:
            raise RuntimeError("no collate function: call datamodule.bind(backbone) or pass collate_fn=")
        generator = torch.Generator().manual_seed(self.seed if seed is None else seed) if shuffle else None
        if shuffle and self.length_buckets:
            token_lengths(data, self.collate_fn)  # once per split and backbone: the bucket sort key
            sampler = RandomSampler(data, generator=generator)
            return DataLoader(
                data,
                batch_sampler=LengthBuckets(sampler, batch_size, bucket_batches=self.length_buckets),
                collate_fn=self.collate_fn,
                num_workers=self.num_workers,
            )
        return DataLoader(
            data,
            batch_size=batch_size,
            shuffle=shuffle,
            generator=generator,
            collate_fn=self.collate_fn,
            num_workers=self.num_workers,
        )

    def train_dataloader(self, batch_size: int | None = None, seed: int | None = None) -> DataLoader:
        """Shuffled D (mode ``original``) or D_r (mode ``retrain``)."""
        split = "train" if self.mode == "original" else "retain"
        return self.loader(split, shuffle=True, batch_size=batch_size or self.batch_size, seed=seed)

    def forget_dataloader(self, batch_size: int | None = None) -> DataLoader:
        return self.loader("forget", batch_size=batch_size)

    def retain_dataloader(
        self,
        shuffle: bool = False,
        subsample: int | None = None,
        seed: int | None = None,
        batch_size: int | None = None,
    ) -> DataLoader:
        """D_r, optionally a seeded subsample of ``subsample`` examples (sorted, so stable)."""
        if subsample is None:
            return self.loader("retain", shuffle=shuffle, batch_size=batch_size, seed=seed)
        s = self.seed if seed is None else seed
        positions = subsample_positions(len(self.retain), subsample, s, "retain_subsample")
        view = ExampleView(self.retain, positions, reindex=False)
        return self._make_loader(view, shuffle, batch_size or self.eval_batch_size, s)

    def val_dataloader(self, batch_size: int | None = None) -> DataLoader:
        return self.loader("val", batch_size=batch_size)

    def test_dataloader(self, batch_size: int | None = None) -> DataLoader:
        return self.loader("test", batch_size=batch_size)

    def identity(self, include_forget: bool) -> dict[str, Any]:
        """What determines D (and, with ``include_forget``, D_f): the data part of a cache key."""
        ident = {
            "dataset": self.dataset.name,
            "options": self.dataset.options,
            "num_train": len(self.train),
            "train_positions": digest(self.train.positions),
        }
        if include_forget:
            ident["forget_indices"] = digest(self.forget_indices)
        if self.length_buckets:  # the training batches (text only: image keys are unchanged)
            ident["length_buckets"] = self.length_buckets
        return ident

    def write_split(self, run_dir: str | Path) -> Path:
        """Writes ``forget_indices.json`` (indices into D plus how they were chosen) atomically."""
        run_dir = Path(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        payload = {
            "dataset": self.dataset.name,
            "options": self.dataset.options,
            "forget": asdict(self.forget_spec),
            "seed": self.seed,
            "data_seed": self.data_seed,
            "sizes": self.sizes(),
            "train_positions_sha256": digest(self.train.positions),
            "forget_indices": self.forget_indices.tolist(),
        }
        path = run_dir / "forget_indices.json"
        with tempfile.NamedTemporaryFile("w", dir=run_dir, suffix=".tmp", delete=False) as f:
            json.dump(payload, f, indent=1, default=str)
        os.replace(f.name, path)
        return path


def split_forget(dataset: DatasetSpec, positions: np.ndarray) -> np.ndarray:
    """Forget indices into D of the dataset's own forget split (policy ``split``)."""
    if dataset.forget_positions is None:
        raise ValueError(
            f"forget policy 'split' needs a dataset with its own forget split (tofu, tofu_synthetic); "
            f"{dataset.name!r} has none: use random, class or indices"
        )
    return check_forget(
        np.flatnonzero(np.isin(positions, np.asarray(dataset.forget_positions))), len(positions)
    )


def _val_count(val_size: int | float | None, n_pool: int) -> int:
    if val_size is None:
        return min(512, n_pool // 10)
    if isinstance(val_size, float) and 0.0 < val_size < 1.0:
        return round(val_size * n_pool)
    if isinstance(val_size, int) and 0 <= val_size < n_pool:
        return val_size
    raise ValueError(
        f"val_size must be an int in [0, {n_pool}), a fraction in (0, 1) or None; got {val_size!r}"
    )
