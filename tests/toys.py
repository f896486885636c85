"""Toy unlearning problems on the real DataModule contract: tiny BERT / tiny ViT, 64 training examples.

``toy_inputs`` is a fixture of every test (imported by the root conftest)."""

from __future__ import annotations

import pytest
import torch
from sklearn.datasets import load_digits

from unlearn_lit.data import DatasetSpec, ForgetSpec, UnlearnDataModule
from unlearn_lit.methods.base import UnlearnInputs
from unlearn_lit.models import build_backbone
from unlearn_lit.units import unit_layout

NUM_LABELS = {"tiny_bert": 3, "tiny_vit": 10}
WORDS = "the cat sat on a mat while dogs ran far away from home".split()


def raw_examples(modality: str, n: int, num_labels: int, offset: int = 0) -> list[dict]:
    if modality == "image":
        d = load_digits()
        return [
            {"image": torch.tensor(d.images[i] / 16).view(1, 8, 8).float(), "label": int(d.target[i])}
            for i in range(offset, offset + n)
        ]
    return [
        {"text": " ".join(WORDS[(i * 7) % 5 : (i * 7) % 5 + 2 + i % 8]), "label": i % num_labels}
        for i in range(offset, offset + n)
    ]


def toy_datamodule(backbone, n_train: int = 80, forget: int = 16, batch_size: int = 8) -> UnlearnDataModule:
    """D = 64 examples (16 forget, 48 retain), D_v = 16, D_t = 16, bound to the backbone's collate."""
    modality = "image" if backbone.family == "vit" else "text"
    spec = DatasetSpec(
        name=f"toy_{modality}",
        train=raw_examples(modality, n_train, backbone.num_labels),
        test=raw_examples(modality, 16, backbone.num_labels, offset=n_train),
        num_labels=backbone.num_labels,
        task="classification",
        modality=modality,
    )
    dm = UnlearnDataModule(spec, ForgetSpec(size=forget), val_size=16, batch_size=batch_size)
    return dm.bind(backbone)


class DoubleCollate:
    """Collate to float64 images, for float64 gradient checks."""

    def __init__(self, collate):
        self.collate = collate

    def __call__(self, examples):
        batch = self.collate(examples)
        batch["pixel_values"] = batch["pixel_values"].double()
        return batch


def random_unit_mask(backbone, seed: int = 0) -> dict[str, torch.Tensor]:
    """A random unit mask (about half of the heads and filters of every layer) expanded to parameters."""
    layout = unit_layout(backbone)
    gen = torch.Generator().manual_seed(seed)
    masks = {k: torch.rand(layout.shape(k), generator=gen) < 0.5 for k in layout.kinds}
    for m in masks.values():  # every block has a selected and a frozen unit: shared matrices are split
        m[:, 0], m[:, 1] = True, False
    return layout.param_masks(masks, dict(backbone.named_parameters()))


@pytest.fixture
def toy_inputs():
    """Factory ``(backbone name, masked) -> UnlearnInputs`` on a fresh tiny backbone."""

    def make(name: str, masked: bool = True, seed: int = 0, **fields) -> UnlearnInputs:
        backbone = build_backbone(name, num_labels=NUM_LABELS[name])
        return UnlearnInputs(
            original=backbone,
            datamodule=toy_datamodule(backbone),
            layout=unit_layout(backbone),
            param_mask=random_unit_mask(backbone, seed) if masked else None,
            seed=seed,
            **fields,
        )

    return make


def quick_run_fields(tmp_path) -> dict:
    """RunConfig fields every tiny end-to-end test shares: short SO/GA selections, a private cache, CPU."""
    from unlearn_lit.runtime import Runtime

    return dict(
        method_options={"so": {"fisher_examples": 32, "selection_retain": 32, "selection_val": 16},
                        "ga": {"max_steps": 4, "lr_retries": 0, "selection_retain": 32}},
        cache_dir=str(tmp_path / "cache"),
        trainer=Runtime(accelerator="cpu", progress_bar=False),
        threads=1,
    )  # fmt: skip
