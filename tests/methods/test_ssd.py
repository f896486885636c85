"""SSD dampens exactly the entries its rule selects (brute force over every entry, float64)."""

import pytest
import torch

from tests.methods.test_so import ListData, one_thread, setup  # noqa: F401  (one_thread: autouse fixture)
from unlearn_lit.methods import METHODS, UnlearnInputs
from unlearn_lit.methods.ssd import SSDConfig, dampening
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
    selected = 0
    for n, p in res.model.named_parameters():
        theta = params[n].detach()
        if pm is not None and n not in pm:
            assert torch.equal(p, theta), n
            continue
        d = (n_r * r[n] + n_f * f[n]) / (n_r + n_f)
        expected = brute_force(theta, f[n], d, alpha, lam)
        if pm is not None:
            expected = torch.where(pm[n], expected, theta)
            assert torch.equal(p[~pm[n]], theta[~pm[n]])
        rule = (f[n] > alpha * d) if pm is None else (f[n] > alpha * d) & pm[n]
        assert torch.equal(p[~rule], theta[~rule]), n  # unselected entries bit-identical
        torch.testing.assert_close(p, expected, rtol=1e-9, atol=1e-15)
        selected += int(rule.sum())
    assert 0 < selected == res.info["entries_selected"] < res.info["params_trainable"]
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
