"""``fashion_mnist``: Zalando's Fashion-MNIST (60,000 / 10,000 grey 28x28 images, 10 classes).

Offline it is read from the Debian package ``dataset-fashion-mnist`` (IDX files under
``/usr/share/datasets/fashion-mnist``); online users can pass ``download=True`` for torchvision's
download. The IDX parser is ours, so any directory holding the four standard files works.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import torch

from unlearn_lit.data.base import DATASETS, DatasetSpec, ImageExamples

DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
LABEL_NAMES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)


def read_idx(path: Path) -> np.ndarray:
    """Reads an IDX file (optionally gzipped): uint8 images ``[N, H, W]`` or labels ``[N]``."""
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path} is not an unsigned-byte IDX file")
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise ValueError(f"{path}: header says {shape} but holds {data.size} bytes")
    return data.reshape(shape)


def _find(root: Path, stem: str) -> Path | None:
    for name in (stem + ".gz", stem):
        for folder in (root, root / "FashionMNIST" / "raw"):  # the second is torchvision's layout
            if (folder / name).is_file():
                return folder / name
    return None


def _default_download_root() -> Path:
    return Path(os.environ.get("UNLEARN_LIT_DATA", "~/.cache/unlearn_lit")).expanduser() / "fashion_mnist"


@DATASETS.register("fashion_mnist")
def fashion_mnist(root: str | None = None, download: bool = False) -> DatasetSpec:
    """Fashion-MNIST from ``root``, the Debian package, or a torchvision download.

    Args:
        root: directory with the four IDX files (gzipped or not); default: the Debian package's
            directory, then ``$UNLEARN_LIT_DATA/fashion_mnist``.
        download: fetch the files with torchvision when they are missing (needs network).
    """
    roots = [Path(root)] if root else [DEBIAN_DIR, _default_download_root()]
    found = next((r for r in roots if all(_find(r, s) for pair in FILES.values() for s in pair)), None)
    if found is None and download:
        from torchvision.datasets import FashionMNIST

        found = roots[-1]
        for train in (True, False):
            FashionMNIST(str(found), train=train, download=True)
    if found is None:
        raise FileNotFoundError(
            f"Fashion-MNIST not found in {', '.join(map(str, roots))}. Offline: `apt-get install "
            "dataset-fashion-mnist` (files go to /usr/share/datasets/fashion-mnist); online: pass "
            "download=True (dataset_options={'download': True}) for the torchvision download."
        )
    parts = {}
    for split, (img_stem, lab_stem) in FILES.items():
        images = torch.from_numpy(read_idx(_find(found, img_stem)).copy()).unsqueeze(1)  # [N, 1, 28, 28]
        labels = torch.from_numpy(read_idx(_find(found, lab_stem)).astype(np.int64))
        parts[split] = ImageExamples(images, labels)
    return DatasetSpec(
        name="fashion_mnist",
        train=parts["train"],
        test=parts["test"],
        num_labels=10,
        task="classification",
        modality="image",
        options={},
        label_names=LABEL_NAMES,
    )
