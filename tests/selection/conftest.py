"""A real tiny ViT trained on digits (θ*), its datamodule and a retrained model's metrics (RT), shared by
the selection tests that need trained models (every candidate table of a random-init model is flat)."""

from __future__ import annotations

import copy

import pytest
import torch

from unlearn_lit.data import build_datamodule
from unlearn_lit.eval.metrics import evaluate
from unlearn_lit.models import build_backbone


def fit(model, examples, steps: int = 150, seed: int = 0):
    """A plain Adam loop over ``examples`` (enough for a tiny ViT to fit digits)."""
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(steps):
        idx = torch.randint(len(examples), (32,), generator=gen).tolist()
        loss = model.per_example_loss(model.collate([examples[i] for i in idx])).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


@pytest.fixture(scope="session")
def trained_digits():
    """``(θ*, datamodule, RT's metrics)``: 48 random forget examples of 300 digits."""
    dm = build_datamodule("digits", forget="random", forget_size=48, max_train=300, max_test=100, seed=0)
    dm.setup("fit")
    init = build_backbone("tiny_vit", num_labels=10, seed=0)
    dm.bind(init)
    original = fit(copy.deepcopy(init), [*dm.forget, *dm.retain])
    retrain = fit(copy.deepcopy(init), list(dm.retain))
    return original, dm, evaluate(retrain, dm)
