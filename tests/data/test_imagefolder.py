"""Dataset ``imagefolder``: your own images in the ImageFolder layout, through the whole pipeline."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.datasets import load_digits

from tests.toys import quick_run_fields
from unlearn_lit.config import DataConfig, RunConfig
from unlearn_lit.data import build_dataset
from unlearn_lit.run import run

NAMES = ["zero", "one", "two"]


def make_folder(root, n_train=150, n_test=45):
    """Digits 0-2 as 8x8 grayscale PNGs under root/train/<name>/ and root/test/<name>/."""
    x, y = load_digits(return_X_y=True)
    keep = np.flatnonzero(y < 3)
    for split, idx in (("train", keep[:n_train]), ("test", keep[n_train : n_train + n_test])):
        for i in idx:
            folder = root / split / NAMES[y[i]]
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray((x[i].reshape(8, 8) * 255 / 16).astype(np.uint8), mode="L").save(
                folder / f"{i}.png"
            )
    return x, y, keep


def test_images_labels_and_errors(tmp_path):
    x, y, keep = make_folder(tmp_path)
    spec = build_dataset("imagefolder", root=str(tmp_path), grayscale=True)
    assert spec.label_names == ("one", "two", "zero") and spec.num_labels == 3 and spec.modality == "image"
    assert len(spec.train) == 150 and len(spec.test) == 45
    ex = spec.train[0]
    assert ex["image"].shape == (1, 8, 8) and 0.0 <= ex["image"].min() and ex["image"].max() <= 1.0
    # every training image is one of the digits it was written from, with its class
    pixels = {tuple((x[i] * 255 / 16).astype(np.uint8)): NAMES[y[i]] for i in keep[:150]}
    for e in (spec.train[k] for k in range(0, 150, 17)):
        key = tuple(torch.round(e["image"].flatten() * 255).to(torch.uint8).tolist())
        assert pixels[key] == spec.label_names[e["label"]]
    rgb = build_dataset("imagefolder", root=str(tmp_path), image_size=16)
    assert rgb.train[0]["image"].shape == (3, 16, 16)
    (tmp_path / "test" / "zero").rename(tmp_path / "test" / "nought")
    with pytest.raises(ValueError, match="class folders differ"):
        build_dataset("imagefolder", root=str(tmp_path))
    with pytest.raises(FileNotFoundError, match="one sub-folder per class"):
        build_dataset("imagefolder", root=str(tmp_path / "nowhere"))


@pytest.mark.integration
@pytest.mark.timeout(300)
def test_an_image_folder_runs_through_the_pipeline(tmp_path):
    make_folder(tmp_path / "images")
    cfg = RunConfig(
        backbone="vit_digits",
        backbone_options={"embed_dim": 32, "depth": 2},
        data=DataConfig(name="imagefolder", options={"root": str(tmp_path / "images"), "grayscale": True},
                        forget_size=16, val_size=16),
        methods=["rt", "so", "ga"],
        **quick_run_fields(tmp_path),
    )  # fmt: skip
    summary = run(cfg, tmp_path / "run")
    assert not summary["failed"] and {"original", "rt", "so", "ga"} <= summary["methods"].keys()
    assert summary["methods"]["original"]["test_acc"] > 0.5  # θ* learnt the three digits
