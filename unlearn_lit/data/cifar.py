"""``cifar10``: CIFAR-10 (50,000 / 10,000 RGB 32x32 images, 10 classes), online through torchvision.

The batches are parsed here from the standard ``cifar-10-batches-py`` directory (pickled dicts with
``data`` [N, 3072] uint8 as R, G, B planes and ``labels``), so a local copy works offline; torchvision
is used only to download when ``download=True``.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import torch

from unlearn_lit.data.base import DATASETS, DatasetSpec, ImageExamples

FOLDER = "cifar-10-batches-py"
LABEL_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def read_batches(paths: list[Path]) -> ImageExamples:
    """Concatenates CIFAR python-format batch files into ``[N, 3, 32, 32]`` uint8 images and labels."""
    images, labels = [], []
    for path in paths:
        with open(path, "rb") as f:
            batch = pickle.load(f, encoding="bytes")  # the official files are Python 2 pickles
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        if data.ndim != 2 or data.shape[1] != 3072:
            raise ValueError(f"{path}: expected data [N, 3072], got {data.shape}")
        images.append(data.reshape(-1, 3, 32, 32))
        labels.extend(batch[b"labels"])
    return ImageExamples(torch.from_numpy(np.concatenate(images)), torch.tensor(labels, dtype=torch.long))


def _default_root() -> Path:
    return Path(os.environ.get("UNLEARN_LIT_DATA", "~/.cache/unlearn_lit")).expanduser() / "cifar10"


@DATASETS.register("cifar10")
def cifar10(root: str | None = None, download: bool = False) -> DatasetSpec:
    """CIFAR-10 from ``root/cifar-10-batches-py``.

    Args:
        root: the directory holding ``cifar-10-batches-py`` (default ``$UNLEARN_LIT_DATA/cifar10``).
        download: download and extract with torchvision when missing (needs network).
    """
    base = Path(root) if root else _default_root()
    folder = base / FOLDER
    if not (folder / "test_batch").is_file() and download:
        from torchvision.datasets import CIFAR10

        CIFAR10(str(base), train=True, download=True)
    train_files = sorted(folder.glob("data_batch_*"))
    if not train_files or not (folder / "test_batch").is_file():
        raise FileNotFoundError(
            f"CIFAR-10 not found in {folder}; pass download=True (dataset_options={{'download': True}}, "
            "needs network) or root=<directory containing cifar-10-batches-py>"
        )
    return DatasetSpec(
        name="cifar10",
        train=read_batches(train_files),
        test=read_batches([folder / "test_batch"]),
        num_labels=10,
        task="classification",
        modality="image",
        options={"root": str(base)},
        label_names=LABEL_NAMES,
    )
