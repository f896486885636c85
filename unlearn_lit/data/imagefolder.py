"""``imagefolder``: your own images in torchvision's ``ImageFolder`` layout, without code.

    ROOT/train/<class name>/*.png   (D, the training pool; D_v is carved from it)
    ROOT/test/<class name>/*.png    (D_t; the same class folders)

    python -m unlearn_lit run --config FILE --data.name imagefolder \
        --data.options '{"root": "my_images", "image_size": 32}' --out runs/mine

Images are read with ``torchvision.datasets.ImageFolder``, converted to RGB (or grayscale with
``grayscale: true``), resized to ``image_size`` (default: the first training image's size) and kept as
one uint8 tensor; classes are the folder names in sorted order. The backbone's collate then matches its
own input size and channels.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch

from unlearn_lit.data.base import DATASETS, DatasetSpec, ImageExamples


def _load(folder: Path, image_size: int | None, grayscale: bool) -> tuple[ImageExamples, list[str], int]:
    from torchvision.datasets import ImageFolder

    if not folder.is_dir():
        raise FileNotFoundError(f"imagefolder needs {folder} (one sub-folder per class)")
    data = ImageFolder(str(folder))
    if len(data) == 0:
        raise ValueError(f"{folder} holds no images")
    images = []
    for path, _ in data.samples:
        img = data.loader(path)
        image_size = image_size or int(img.width)
        images.append(image_tensor(img, image_size, grayscale))
    labels = torch.tensor([label for _, label in data.samples])
    return ImageExamples(torch.stack(images), labels), data.classes, image_size


def image_tensor(img: Any, image_size: int | None, grayscale: bool) -> torch.Tensor:
    """A PIL image as a ``[C, H, W]`` uint8 tensor, RGB or grayscale, resized to ``image_size`` squared."""
    from torchvision.transforms.v2 import functional as TF

    t = TF.pil_to_tensor(img.convert("L" if grayscale else "RGB"))
    if image_size is not None and t.shape[-2:] != (image_size, image_size):
        t = TF.resize(t, [image_size, image_size], antialias=True)
    return t


def _digest(folder: Path) -> str:
    """SHA-256 over the files' relative paths and bytes (the data's identity in θ*'s cache key)."""
    h = hashlib.sha256()
    for f in sorted(p for p in folder.rglob("*") if p.is_file()):
        h.update(str(f.relative_to(folder)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()


@DATASETS.register("imagefolder")
def imagefolder(root: str, image_size: int | None = None, grayscale: bool = False) -> DatasetSpec:
    """An image classification dataset from ``root/train`` and ``root/test``.

    Args:
        root: the folder holding ``train/`` and ``test/``, each with one sub-folder per class.
        image_size: square size every image is resized to (None: the first training image's width).
        grayscale: read images as one channel (else RGB).
    """
    base = Path(root).expanduser()
    train, classes, size = _load(base / "train", image_size, grayscale)
    test, test_classes, _ = _load(base / "test", size, grayscale)
    if test_classes != classes:
        raise ValueError(f"train and test class folders differ: {classes} vs {test_classes}")
    return DatasetSpec(
        name="imagefolder",
        train=train,
        test=test,
        num_labels=len(classes),
        task="classification",
        modality="image",
        options={"root": str(base), "image_size": size, "grayscale": grayscale, "sha256": _digest(base)},
        label_names=tuple(classes),
    )
