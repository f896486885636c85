"""Mask overlap: Jaccard identities and the random-mask expectation against a simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from unlearn_lit.masks.overlap import expected_random_jaccard, jaccard, overlap_matrices


def random_mask(rng: np.random.Generator, shape: tuple[int, int], k: int) -> np.ndarray:
    flat = np.zeros(int(np.prod(shape)), dtype=bool)
    flat[rng.choice(flat.size, size=k, replace=False)] = True
    return flat.reshape(shape)


def test_overlap_with_itself_is_one_and_with_its_complement_zero():
    mask = random_mask(np.random.default_rng(0), (4, 16), 7)
    assert jaccard(mask, mask) == 1.0
    assert jaccard(mask, ~mask) == 0.0
    assert jaccard(mask, mask | ~mask) == pytest.approx(7 / 64)  # A ⊂ B: |A| / |B|
    assert math.isnan(jaccard(np.zeros((2, 2), bool), np.zeros((2, 2), bool)))
    with pytest.raises(ValueError, match="different shapes"):
        jaccard(mask, mask[:2])


@pytest.mark.parametrize(("n", "k1", "k2"), [(64, 6, 6), (48, 5, 12), (20, 15, 15), (512, 51, 51)])
def test_random_overlap_expectation_matches_a_simulation(n, k1, k2):
    rng = np.random.default_rng(n + k1 + k2)
    draws_n = 20_000 if n < 100 else 4_000
    ranks = rng.random((2, draws_n, n)).argsort(axis=2)  # uniformly random subsets: the k lowest ranks
    a, b = ranks[0] < k1, ranks[1] < k2
    draws = (a & b).sum(axis=1) / (a | b).sum(axis=1)
    assert jaccard(a[0], b[0]) == draws[0]
    expected = expected_random_jaccard(n, k1, k2)
    stderr = draws.std() / math.sqrt(draws.size)
    assert abs(draws.mean() - expected) < 4 * stderr + 1e-12, (draws.mean(), expected, stderr)
    # and not the ratio of the means, which the simulation tells apart at this size
    if (n, k1, k2) == (20, 15, 15):
        naive = k1 * k2 / n / (k1 + k2 - k1 * k2 / n)
        assert abs(draws.mean() - naive) > 4 * stderr


def test_expectation_edge_cases():
    assert expected_random_jaccard(10, 10, 10) == pytest.approx(1.0)
    assert expected_random_jaccard(10, 0, 3) == 0.0
    assert expected_random_jaccard(10, 6, 6) >= 2 / 10  # at least 2 shared units: J >= 2/10
    assert math.isnan(expected_random_jaccard(10, 0, 0))
    with pytest.raises(ValueError, match="0 <= k1, k2 <= n"):
        expected_random_jaccard(10, 11, 1)


def test_overlap_matrices_per_kind():
    rng = np.random.default_rng(1)
    a = {"head": random_mask(rng, (2, 4), 3), "filter": random_mask(rng, (2, 8), 4)}
    b = {"head": ~a["head"], "filter": a["filter"]}
    c = {"head": random_mask(rng, (3, 4), 3)}  # another backbone: not comparable
    out = overlap_matrices([a, b, c, None], ("head", "filter"))
    observed, expected = out["head"]
    assert observed[0, 0] == 1.0 and observed[0, 1] == 0.0 and observed[1, 0] == 0.0
    assert math.isnan(observed[0, 2]) and math.isnan(observed[3, 3]) and observed[2, 2] == 1.0
    assert expected[0, 1] == pytest.approx(expected_random_jaccard(8, 3, 5))
    assert out["filter"][0][0, 1] == 1.0 and math.isnan(out["filter"][0][0, 2])
