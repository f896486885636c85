"""Mask stability: the Jaccard overlap of two masks' selected units, and what chance alone would give.

For one kind of unit with n units, two masks selecting the sets A and B have the Jaccard overlap
J = |A ∩ B| / |A ∪ B|. Two independent uniformly random masks with |A| = k1 and |B| = k2 (the random-unit
control of METHOD.md §3 at the same sparsity) share X = |A ∩ B| units, X ~ Hypergeometric(n, k1, k2), so

    E[J] = Σ_x P(X = x) · x / (k1 + k2 − x),   P(X = x) = C(k1, x) C(n − k1, k2 − x) / C(n, k2),

summed over max(0, k1 + k2 − n) ≤ x ≤ min(k1, k2). (Not k1 k2 / n / (k1 + k2 − k1 k2 / n): the mean of a
ratio is not the ratio of the means, though the two are close for large n.) Numpy only, no torch.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """|A ∩ B| / |A ∪ B| of two bool masks of one shape (True = selected); NaN when neither selects a unit.

    Raises:
        ValueError: the shapes differ.
    """
    a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(f"masks of different shapes cannot overlap: {a.shape} vs {b.shape}")
    union = int((a | b).sum())
    return int((a & b).sum()) / union if union else math.nan


def expected_random_jaccard(n: int, k1: int, k2: int) -> float:
    """E[J] of two independent uniformly random subsets of sizes ``k1`` and ``k2`` of ``n`` units (exact;
    see the module docstring). NaN when both are empty."""
    if not (0 <= k1 <= n and 0 <= k2 <= n):
        raise ValueError(f"need 0 <= k1, k2 <= n; got n={n}, k1={k1}, k2={k2}")
    if k1 == 0 and k2 == 0:
        return math.nan
    log_total = _log_comb(n, k2)
    expected = 0.0
    for x in range(max(1, k1 + k2 - n), min(k1, k2) + 1):  # x = 0 adds nothing
        log_p = _log_comb(k1, x) + _log_comb(n - k1, k2 - x) - log_total
        expected += math.exp(log_p) * x / (k1 + k2 - x)
    return expected


def _log_comb(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def overlap_matrices(
    masks: Sequence[Mapping[str, np.ndarray] | None], kinds: Sequence[str]
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Pairwise overlaps of several runs' masks, per kind.

    Args:
        masks: one ``kind -> [L, n]`` bool dict per run, or None for a run without a mask.
        kinds: the kinds to compare.

    Returns:
        ``kind -> (J, E)``, both ``[R, R]``: the observed Jaccard overlap and the expectation for random
        masks with the same numbers of selected units. NaN where a run lacks the kind, where the shapes
        differ (other backbones) or where neither mask selects a unit.
    """
    out = {}
    for kind in kinds:
        r = len(masks)
        observed, expected = np.full((r, r), np.nan), np.full((r, r), np.nan)
        for i in range(r):
            for j in range(r):
                a = masks[i].get(kind) if masks[i] is not None else None
                b = masks[j].get(kind) if masks[j] is not None else None
                if a is None or b is None or np.shape(a) != np.shape(b):
                    continue
                observed[i, j] = jaccard(a, b)
                expected[i, j] = expected_random_jaccard(int(np.size(a)), int(np.sum(a)), int(np.sum(b)))
        out[kind] = (observed, expected)
    return out
