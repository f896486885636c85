"""Scores (MLR, MLF, NORM, random) and top-k selection, checked against independent computations."""

import math

import pytest
import torch

from unlearn_lit.masks.objectives import (
    OBJECTIVES,
    compute_scores,
    maskable_kinds,
    mlf_scores,
    mlr_scores,
    norm_scores,
    num_selected,
    random_scores,
    select_units,
)
from unlearn_lit.registry import UnknownNameError

SHAPES = {"head": (3, 4), "filter": (3, 10)}


def per_example_grads(num_examples: int, seed: int) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return {k: torch.randn(num_examples, *s, generator=gen, dtype=torch.float64) for k, s in SHAPES.items()}


def loop_gradient_plus_fisher(grads_sum_split, grads_fisher_split, alpha, fisher_multiplier=1.0):
    """SC_i = Σ_x a(x)_i + α · c · mean_x b(x)_i², one unit at a time in Python floats."""
    out = {}
    for kind, (L, n) in SHAPES.items():
        a, b = grads_sum_split[kind], grads_fisher_split[kind]
        sc = torch.empty(L, n, dtype=torch.float64)
        for layer in range(L):
            for i in range(n):
                g = sum(float(a[x, layer, i]) for x in range(a.shape[0]))
                f = sum(float(b[x, layer, i]) ** 2 for x in range(b.shape[0])) / b.shape[0]
                sc[layer, i] = g + alpha * fisher_multiplier * f
        out[kind] = sc
    return out


@pytest.mark.parametrize("fisher_scale", ["mean", "sum"])
def test_mlr_matches_loop(fisher_scale):
    forget, retain = per_example_grads(5, 0), per_example_grads(7, 1)
    stats = {
        "forget_grad_sum": {k: t.sum(0) for k, t in forget.items()},
        "retain_fisher": {k: (t**2).mean(0) for k, t in retain.items()},
    }
    scores = compute_scores("mlr", stats, alpha=0.3, fisher_scale=fisher_scale, num_retain=7)
    expected = loop_gradient_plus_fisher(forget, retain, 0.3, 7.0 if fisher_scale == "sum" else 1.0)
    for kind in SHAPES:
        torch.testing.assert_close(scores[kind], expected[kind])


def test_mlr_default_alpha_is_one_half():
    g = {"head": torch.tensor([[1.0, -2.0]])}
    f = {"head": torch.tensor([[4.0, 2.0]])}
    torch.testing.assert_close(mlr_scores(g, f)["head"], torch.tensor([[3.0, -1.0]]))


def test_mlf_matches_loop_and_selects_bottom_by_default():
    forget, retain = per_example_grads(4, 2), per_example_grads(6, 3)
    stats = {
        "retain_grad_sum": {k: t.sum(0) for k, t in retain.items()},
        "forget_fisher": {k: (t**2).mean(0) for k, t in forget.items()},
    }
    scores = mlf_scores(**stats, alpha=0.5)
    expected = loop_gradient_plus_fisher(retain, forget, 0.5)
    for kind in SHAPES:
        torch.testing.assert_close(scores[kind], expected[kind])
    assert OBJECTIVES.get("mlf").select == "bottom"
    assert OBJECTIVES.get("mlr").select == "top"
    summed = mlf_scores(**stats, alpha=0.5, fisher_scale="sum", num_forget=4)
    torch.testing.assert_close(summed["head"], loop_gradient_plus_fisher(retain, forget, 0.5, 4.0)["head"])


def test_norm_is_l2_norm_over_forget_examples():
    forget = per_example_grads(5, 4)
    scores = norm_scores({k: (t**2).sum(0) for k, t in forget.items()})
    for kind, (L, n) in SHAPES.items():
        for layer in range(L):
            for i in range(n):
                col = [float(forget[kind][x, layer, i]) for x in range(5)]
                assert math.isclose(float(scores[kind][layer, i]), math.sqrt(sum(v * v for v in col)))


def test_norm_rejects_negative_sums_of_squares():
    with pytest.raises(ValueError, match="negative"):
        norm_scores({"head": torch.tensor([[1.0, -1.0]])})


def test_random_is_seeded_and_selects_k_random_units_per_kind():
    a, b = random_scores(SHAPES, seed=3), random_scores(SHAPES, seed=3)
    assert all(torch.equal(a[k], b[k]) for k in SHAPES)
    assert not torch.equal(a["filter"], random_scores(SHAPES, seed=4)["filter"])
    hits = torch.zeros(SHAPES["filter"])
    for seed in range(200):
        masks = select_units(random_scores(SHAPES, seed=seed), 0.8)
        assert int(masks["head"].sum()) == num_selected(12, 0.8) == 2
        assert int(masks["filter"].sum()) == num_selected(30, 0.8) == 6
        hits += masks["filter"]
    # each filter is selected with probability 6/30: expect 40 of 200, never 0
    assert hits.min() > 15 and hits.max() < 70


@pytest.mark.parametrize(
    ("n", "sparsity", "k"), [(144, 0.9, 14), (25, 0.9, 3), (10, 0.95, 1), (30, 0.0, 30), (12, 0.99, 0)]
)
def test_num_selected_rounds_half_up_on_decimal_sparsity(n, sparsity, k):
    assert num_selected(n, sparsity) == k


@pytest.mark.parametrize("sparsity", [1.0, -0.1, 1.5, float("nan")])
def test_sparsity_out_of_range_is_rejected(sparsity):
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        select_units({"head": torch.zeros(2, 2)}, sparsity)


def reference_selection(values: list[float], k: int, top: bool) -> set[int]:
    """Indices of the k best values; ties go to the lower index."""
    order = sorted(range(len(values)), key=lambda i: (-values[i] if top else values[i], i))
    return set(order[:k])


@pytest.mark.parametrize("select", ["top", "bottom"])
@pytest.mark.parametrize("sparsity", [0.0, 0.5, 0.75, 0.9])
def test_per_kind_selection_matches_reference(select, sparsity):
    gen = torch.Generator().manual_seed(5)
    # rounded so that ties occur across layers
    scores = {k: torch.randint(0, 4, s, generator=gen).double() for k, s in SHAPES.items()}
    masks = select_units(scores, sparsity, select=select)
    for kind, t in scores.items():
        k = num_selected(t.numel(), sparsity)
        expected = reference_selection(t.flatten().tolist(), k, select == "top")
        assert set(torch.nonzero(masks[kind].flatten()).flatten().tolist()) == expected
        assert masks[kind].dtype == torch.bool and masks[kind].shape == t.shape


def test_ties_go_to_lower_layer_then_lower_index():
    scores = torch.tensor([[1.0, 2.0, 1.0], [2.0, 1.0, 1.0]])
    assert select_units({"head": scores}, 0.5)["head"].tolist() == [[True, True, False], [True, False, False]]
    bottom = select_units({"head": scores}, 0.5, select="bottom")["head"]
    assert bottom.tolist() == [[True, False, True], [False, True, False]]


def test_joint_budget_ranks_all_maskable_kinds_together():
    scores = {
        "head": torch.tensor([[5.0, 0.0], [1.0, 1.0]]),
        "filter": torch.tensor([[4.0, 3.0, 2.0], [6.0, 0.5, 1.0]]),
    }
    masks = select_units(scores, 0.6, budget="joint")  # k = round(0.4 · 10) = 4
    assert masks["head"].tolist() == [[True, False], [False, False]]
    assert masks["filter"].tolist() == [[True, True, False], [True, False, False]]
    flat = scores["head"].flatten().tolist() + scores["filter"].flatten().tolist()
    chosen = torch.cat([masks["head"].flatten(), masks["filter"].flatten()])
    assert set(torch.nonzero(chosen).flatten().tolist()) == reference_selection(flat, 4, True)


def test_kinds_restriction_freezes_the_other_kind():
    scores = random_scores(SHAPES, seed=0)
    for kinds in (["filter"], maskable_kinds("filters")):
        masks = select_units(scores, 0.5, kinds=kinds)
        assert not masks["head"].any() and masks["head"].shape == SHAPES["head"]
        assert int(masks["filter"].sum()) == 15
    joint = select_units(scores, 0.5, budget="joint", kinds=["head"])
    assert int(joint["head"].sum()) == 6 and not joint["filter"].any()
    with pytest.raises(ValueError, match="subset"):
        select_units({"head": scores["head"]}, 0.5, kinds=["filter"])
    with pytest.raises(ValueError, match="'heads', 'filters', 'both'"):
        maskable_kinds("neurons")


def test_invalid_inputs_name_the_valid_choices():
    scores = {"head": torch.zeros(2, 2)}
    with pytest.raises(ValueError, match="'per_kind', 'joint'"):
        select_units(scores, 0.5, budget="global")
    with pytest.raises(ValueError, match="'top', 'bottom'"):
        select_units(scores, 0.5, select="max")
    with pytest.raises(ValueError, match="'head', 'filter'"):
        select_units({"neuron": torch.zeros(2, 2)}, 0.5)
    with pytest.raises(ValueError, match=r"\[L, n\]"):
        select_units({"head": torch.zeros(4)}, 0.5)
    with pytest.raises(ValueError, match="non-finite"):
        select_units({"head": torch.tensor([[0.0, float("nan")]])}, 0.5)
    with pytest.raises(ValueError, match=r"shape \(2, 3\); expected \(2, 2\)"):
        mlr_scores({"head": torch.zeros(2, 2)}, {"head": torch.zeros(2, 3)})
    with pytest.raises(ValueError, match="'mean', 'sum'"):
        mlr_scores(scores, scores, fisher_scale="median")
    with pytest.raises(ValueError, match="num_retain"):
        mlr_scores(scores, scores, fisher_scale="sum")


def test_compute_scores_reports_missing_statistics_and_unknown_options():
    with pytest.raises(UnknownNameError, match="mlf, mlr, norm, random"):
        compute_scores("fisher", {})
    with pytest.raises(ValueError, match=r"missing \['retain_fisher'\]"):
        compute_scores("mlr", {"forget_grad_sum": {"head": torch.zeros(1, 2)}})
    with pytest.raises(ValueError, match=r"does not take options \['beta'\]"):
        compute_scores("norm", {"forget_grad_sq_sum": {"head": torch.zeros(1, 2)}}, beta=1.0)
    scores = compute_scores("random", {}, shapes=SHAPES, seed=1)
    assert torch.equal(scores["head"], random_scores(SHAPES, seed=1)["head"])
