"""The mask artifact from statistics keeps the warm start beside the searched mask (the figure's swaps)."""

from __future__ import annotations

import torch

from unlearn_lit.masks.build import build_artifact
from unlearn_lit.phases.mask_learning import MaskConfig

SHAPES = {"head": (2, 4), "filter": (2, 8)}


def statistics(seed: int = 0, rows: int = 16) -> dict:
    gen = torch.Generator().manual_seed(seed)
    G = {k: torch.randn(rows, *s, generator=gen, dtype=torch.float64) for k, s in SHAPES.items()}
    return {
        "forget_grad_sum": {k: 0.1 * torch.randn(s, generator=gen, dtype=torch.float64) for k, s in SHAPES.items()},
        "retain_fisher": {k: (g**2).mean(0) for k, g in G.items()},
        "G": G,
        "num_forget": 8,
        "num_retain": rows,
    }  # fmt: skip


def test_artifact_keeps_the_warm_start_and_the_swaps_match_the_summary():
    art = build_artifact(
        statistics(), MaskConfig(sparsity=0.5, fisher_scale="sum"), SHAPES, ("head", "filter")
    )
    assert art.warm_start.keys() == {"head", "filter"}
    swapped = 0
    for kind, mask in art.masks.items():
        warm = art.warm_start[kind]
        assert torch.equal(warm.sum(1), mask.sum(1))  # the search keeps every layer's count
        assert int((mask & ~warm).sum()) == art.summary["search"][kind]["swapped"]
        swapped += int((mask & ~warm).sum())
    assert swapped > 0  # these statistics make the search change the warm start
    no_search = build_artifact(
        statistics(), MaskConfig(sparsity=0.5, search=False), SHAPES, ("head", "filter")
    )
    assert no_search.warm_start == {} and isinstance(no_search.summary["search"], str)
