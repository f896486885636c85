"""``digits``: scikit-learn's 8x8 handwritten digits (1,797 images, 10 classes), offline.

Images are scaled to [0, 1] as ``[1, 8, 8]`` tensors; the train/test split is a seeded 80/20 hold-out
(1,437 / 360), from which the DataModule carves D_v (METHOD.md §1).
"""

from __future__ import annotations

import math

import torch
from sklearn.datasets import load_digits

from unlearn_lit.data.base import DATASETS, DatasetSpec, ImageExamples
from unlearn_lit.data.splits import holdout


@DATASETS.register("digits")
def digits(test_fraction: float = 0.2, split_seed: int = 0) -> DatasetSpec:
    """The digits dataset.

    Args:
        test_fraction: fraction of the 1,797 images held out as D_t.
        split_seed: seed of the train/test split.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must lie in (0, 1), got {test_fraction}")
    data = load_digits()
    images = torch.tensor(data.images / 16.0, dtype=torch.float32).unsqueeze(1)  # [N, 1, 8, 8]
    labels = torch.tensor(data.target, dtype=torch.long)
    n_test = math.ceil(len(labels) * test_fraction)  # as scikit-learn's train_test_split
    test, train = holdout(len(labels), n_test, split_seed, "digits_test")
    return DatasetSpec(
        name="digits",
        train=ImageExamples(images[train], labels[train]),
        test=ImageExamples(images[test], labels[test]),
        num_labels=10,
        task="classification",
        modality="image",
        options={"test_fraction": test_fraction, "split_seed": split_seed},
        label_names=tuple(str(d) for d in range(10)),
    )
