"""The fine-tuning objectives against their formulas (METHOD.md §5–§6), computed independently by hand."""

from __future__ import annotations

import math

import pytest
import torch
from sklearn.datasets import load_digits

from unlearn_lit.methods.losses import (
    ft_loss,
    ga_loss,
    gd_loss,
    npo_loss,
    random_labels,
    repair_loss,
    rl_loss,
    sa_loss,
    unlikelihood,
)
from unlearn_lit.models import build_backbone


@pytest.fixture(scope="module")
def setup():
    model = build_backbone("tiny_vit", num_labels=10, seed=0).eval()
    ref = build_backbone("tiny_vit", num_labels=10, seed=1).eval()
    d = load_digits()
    exs = [
        {
            "image": torch.tensor(d.images[i] / 16).view(1, 8, 8).float(),
            "label": int(d.target[i]),
            "index": 100 + i,
        }
        for i in range(12)
    ]
    forget, retain = model.collate(exs[:5]), model.collate(exs[5:])
    return model, ref, forget, retain


def nll(model, batch):
    """−log p(y|x) per example, from softmax probabilities in float64."""
    with torch.no_grad():
        p = torch.softmax(model(batch).double(), -1)
    return -torch.log(p[torch.arange(len(p)), batch["labels"]])


def test_ga_gd_ft_formulas(setup):
    model, _, forget, retain = setup
    f, r = nll(model, forget), nll(model, retain)
    assert ga_loss(model, forget).item() == pytest.approx(-f.mean().item(), rel=1e-6)
    gd = -f.mean().item() + r.mean().item()  # two similar means: compare in absolute terms
    assert gd_loss(model, forget, retain).item() == pytest.approx(gd, abs=1e-5)
    assert ft_loss(model, None, retain).item() == pytest.approx(r.mean().item(), rel=1e-6)
    with pytest.raises(ValueError, match="needs a batch"):
        gd_loss(model, forget, None)


@pytest.mark.parametrize("beta,retain_weight", [(0.1, 0.0), (0.5, 2.0)])
def test_npo_formula(setup, beta, retain_weight):
    model, ref, forget, retain = setup
    logp, logp_ref = -nll(model, forget), -nll(ref, forget)
    terms = [
        math.log(1.0 / (1.0 + math.exp(beta * (a - b))))
        for a, b in zip(logp.tolist(), logp_ref.tolist(), strict=True)
    ]
    expected = -(2.0 / beta) * sum(terms) / len(terms) + retain_weight * nll(model, retain).mean().item()
    got = npo_loss(model, forget, retain, ref, beta=beta, retain_weight=retain_weight)
    assert got.item() == pytest.approx(expected, rel=1e-5)


def test_npo_at_the_reference_is_two_over_beta_log_two_and_grads_only_flow_to_the_model(setup):
    model, _, forget, _ = setup
    ref = build_backbone("tiny_vit", num_labels=10, seed=0).eval()
    loss = npo_loss(model, forget, None, ref, beta=0.1)
    assert loss.item() == pytest.approx(2.0 / 0.1 * math.log(2.0), rel=1e-6)
    loss.backward()
    assert all(p.grad is None for p in ref.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    model.zero_grad(set_to_none=True)
    with pytest.raises(ValueError, match="reference"):
        npo_loss(model, forget, None, None)


@pytest.mark.parametrize("progress", [0.0, 0.25, 1.0])
def test_sa_formula_over_trainable_parameters(setup, progress):
    model, _, _, retain = setup
    frozen = dict(model.named_parameters())["net.head.weight"]
    frozen.requires_grad_(False)
    try:
        l1 = sum(
            p.detach().double().abs().sum().item()
            for n, p in model.named_parameters()
            if n != "net.head.weight"
        )
        expected = nll(model, retain).mean().item() + 5e-5 * (1.0 - progress) * l1
        assert sa_loss(model, None, retain, progress=progress).item() == pytest.approx(expected, rel=1e-5)
    finally:
        frozen.requires_grad_(True)


def test_random_labels_are_wrong_fixed_per_index_and_cover_the_other_classes():
    labels = torch.arange(1000) % 10
    index = torch.arange(1000)
    a = random_labels(labels, index, 10, seed=0)
    assert (a != labels).all() and ((a >= 0) & (a < 10)).all()
    assert torch.equal(a, random_labels(labels, index, 10, seed=0))  # fixed per (seed, index)
    assert torch.equal(
        a[500:], random_labels(labels[500:], index[500:], 10, seed=0)
    )  # independent of batching
    assert not torch.equal(a, random_labels(labels, index, 10, seed=1))
    counts = torch.bincount((a - labels) % 10, minlength=10)
    assert counts[0] == 0 and (counts[1:] > 70).all()  # every wrong class drawn, roughly uniformly
    with pytest.raises(ValueError, match=">= 2 classes"):
        random_labels(labels, index, 1)


def test_rl_formula_mixes_relabelled_forget_and_retain(setup):
    model, _, forget, retain = setup
    relabelled = {**forget, "labels": random_labels(forget["labels"], forget["index"], 10, seed=3)}
    expected = torch.cat([nll(model, relabelled), nll(model, retain)]).mean().item()
    assert rl_loss(model, forget, retain, seed=3).item() == pytest.approx(expected, rel=1e-6)
    assert rl_loss(model, forget, None, seed=3).item() == pytest.approx(
        nll(model, relabelled).mean().item(), rel=1e-6
    )


def test_unlikelihood_and_repair_formula(setup):
    model, _, forget, retain = setup
    # −log(1 − p) from ℓ = −log p, by hand; stable where p is tiny (ℓ large: −log(1 − p) ≈ p)
    losses = torch.tensor([-math.log(0.3), -math.log(0.999), 50.0], dtype=torch.float64)
    expected = [-math.log(0.7), -math.log(0.001), math.exp(-50.0)]
    assert unlikelihood(losses).tolist() == pytest.approx(expected, rel=1e-9)
    p = torch.exp(-nll(model, forget))  # the model's probability of each forget example's label
    want = nll(model, retain).mean().item() + (-torch.log1p(-p)).mean().item()
    assert repair_loss(model, forget, retain).item() == pytest.approx(want, rel=1e-5)
    with pytest.raises(ValueError, match="forget batch"):
        repair_loss(model, None, retain)


def test_npo_gradient_at_the_reference_is_ga_gradient(setup):
    """At θ = θ_ref every example's NPO weight 2σ(β log π/π_ref) is 1, so NPO's gradient is GA's exactly
    (float64): under a scale-free optimizer (Adam) the two take the same first step, which is why their
    rows coincide on short runs."""
    import copy

    model, _, forget, _ = setup
    model = copy.deepcopy(model).double()
    ref = copy.deepcopy(model)
    grads = {}
    for name, loss in (
        ("ga", lambda: ga_loss(model, forget)),
        ("npo", lambda: npo_loss(model, forget, None, ref, beta=0.1)),
    ):
        model.zero_grad(set_to_none=True)
        loss().backward()
        grads[name] = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])
    assert grads["ga"].abs().max() > 0
    torch.testing.assert_close(grads["npo"], grads["ga"], rtol=1e-10, atol=1e-14)
