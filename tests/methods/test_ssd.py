"""SSD dampens exactly the entries its rule selects (brute force over every entry, float64).

The test's importances come from a per-example loop, the method's from ``vmap``: the same quantities in
another reduction order. The rule is checked wherever that order cannot flip it; entries within a
relative hair of the threshold ``f = α·d`` or of the noise floor are undecidable and only bounded.
"""

import pytest
import torch

from tests.methods.test_so import setup
from unlearn_lit.methods import METHODS, UnlearnInputs
from unlearn_lit.methods.ssd import SSDConfig, dampening, effective_alpha, noise_floor, rule_selects
from unlearn_lit.units import unit_layout


def importances(bb, examples):
    """Diagonal Fisher from one autograd.grad call per example."""
    bb.eval()
    params = dict(bb.named_parameters())
    total = {n: torch.zeros_like(p) for n, p in params.items()}
    for x in examples:
        grads = torch.autograd.grad(bb.per_example_loss(bb.collate([x])).sum(), list(params.values()))
        for n, g in zip(params, grads, strict=True):
            total[n] += g.pow(2)
    return {n: t / len(examples) for n, t in total.items()}


def brute_force(theta, f, d, alpha, lam):
    """Entry by entry: θ · min(λ d / f, 1) where f > α d, else θ."""
    out = theta.flatten().clone()
    for i, (fi, di) in enumerate(zip(f.flatten().tolist(), d.flatten().tolist(), strict=True)):
        if fi > alpha * di:
            out[i] = out[i] * min(lam * di / fi, 1.0)
    return out.view_as(theta)


@pytest.mark.parametrize("masked", [False, True])
def test_ssd_dampens_exactly_the_rule_entries(masked):
    bb, dm = setup(n_forget=6, n_retain=20)
    params = dict(bb.named_parameters())
    layout = unit_layout(bb)
    masks = {
        k: torch.rand(layout.shape(k), generator=torch.Generator().manual_seed(1)) < 0.5 for k in layout.kinds
    }
    pm = layout.param_masks(masks, params) if masked else None
    alpha, lam = 2.0, 0.5  # looser than the defaults so that many entries are selected
    res = METHODS.get("ssd").run(
        UnlearnInputs(bb, dm, layout, param_mask=pm), SSDConfig(alpha=alpha, lam=lam, fisher_examples=None)
    )
    f, r = importances(bb, dm.forget), importances(bb, dm.retain)
    n_f, n_r = len(dm.forget), len(dm.retain)
    decided, undecidable = 0, 0
    for n, p in res.model.named_parameters():
        theta = params[n].detach()
        if pm is not None and n not in pm:
            assert torch.equal(p, theta), n
            continue
        d = (n_r * r[n] + n_f * f[n]) / (n_r + n_f)
        expected = brute_force(theta, f[n], d, alpha, lam)
        floor = noise_floor(torch.maximum(f[n], d), torch.float64)
        # another reduction order moves f and d by ~1e-14 relative: only these entries can flip
        hair = ((f[n] - alpha * d).abs() <= 1e-6 * (f[n] + alpha * d)) | (
            (f[n] > floor / 2) & (f[n] < 2 * floor)
        )
        rule = rule_selects(f[n], d, alpha, torch.float64)
        if pm is not None:
            hair, rule = hair & pm[n], rule & pm[n]
            assert torch.equal(p[~pm[n]], theta[~pm[n]])
        keep = ~rule & ~hair
        assert torch.equal(p[keep], theta[keep]), n  # unselected entries bit-identical
        sure = rule & ~hair
        torch.testing.assert_close(p[sure], expected[sure], rtol=1e-9, atol=1e-15)
        # undecidable entries are either left alone or dampened by the rule's factor
        assert bool(((p[hair] == theta[hair]) | torch.isclose(p[hair], expected[hair], rtol=1e-9)).all())
        decided += int(sure.sum())
        undecidable += int(hair.sum())
    assert 0 < decided <= res.info["entries_selected"] <= decided + undecidable
    assert res.info["entries_selected"] < res.info["params_trainable"]
    assert res.info["params_trainable"] == (
        sum(int(m.sum()) for m in pm.values()) if masked else res.info["params_total"]
    )


def test_dampening_factors_and_config():
    f = torch.tensor([0.0, 1.0, 5.0, 30.0, 1.0])
    d = torch.tensor([0.0, 1.0, 1.0, 1.0, 0.0])
    beta = dampening({"w": f}, {"w": d}, alpha=2.0, lam=10.0)["w"]
    # not selected, not selected (1 > 2), selected but min(10/5, 1) = 1, 10/30, selected with d = 0 -> 0
    torch.testing.assert_close(beta, torch.tensor([1.0, 1.0, 1.0, 1 / 3, 0.0]))
    with pytest.raises(ValueError, match="valid choices"):
        SSDConfig(fisher="ekfac")
    assert METHODS.get("ssd").finetunes is False


def test_noise_level_importances_are_never_selected():
    # f > α·d holds for the tiny entries, but they are rounding noise next to the tensor's largest
    f = torch.tensor([1e-3, 1e-38, 3e-39, 0.0], dtype=torch.float64)
    d = torch.tensor([1e-5, 1e-40, 1e-40, 0.0], dtype=torch.float64)
    assert rule_selects(f, d, alpha=2.0).tolist() == [True, True, True, False]  # no floor without dtype
    assert rule_selects(f, d, alpha=2.0, dtype=torch.float32).tolist() == [True, False, False, False]
    assert rule_selects(f, d, alpha=2.0, dtype=torch.float64).tolist() == [True, False, False, False]


def test_alpha_that_cannot_select_is_replaced_with_a_warning(caplog):
    # |D_f| = 10% of D: f/d <= |D|/|D_f| = 10, so α = 10 selects nothing
    assert effective_alpha(10.0, n_forget=100, n_total=1000, auto=True) == pytest.approx(5.0)
    assert "selects nothing" in caplog.text
    assert effective_alpha(10.0, n_forget=100, n_total=1000, auto=False) == 10.0
    assert "cannot select any entry" in caplog.text
    assert effective_alpha(10.0, n_forget=10, n_total=1000, auto=True) == 10.0  # 10 < 100: kept


def test_auto_alpha_dampens_when_forget_set_is_large():
    bb, dm = setup(n_forget=8, n_retain=16)  # |D_f| = 1/3 of D: α = 10 could select nothing
    layout = unit_layout(bb)
    fixed = METHODS.get("ssd").run(UnlearnInputs(bb, dm, layout), SSDConfig(auto_alpha=False))
    auto = METHODS.get("ssd").run(UnlearnInputs(bb, dm, layout), SSDConfig())
    assert fixed.info["entries_selected"] == 0
    assert auto.hparams["alpha"] == pytest.approx(1.5) and auto.info["entries_selected"] > 0
