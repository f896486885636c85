"""SalUn's saliency mask (Fan et al. 2024; METHOD.md §6) against a brute-force top fraction of |∇θ L(D_f)|."""

from __future__ import annotations

import pytest
import torch

from unlearn_lit.methods import METHODS
from unlearn_lit.methods.salun import salun_mask
from unlearn_lit.phases.unlearn import OptimConfig


def brute_saliency(model, forget_loader):
    """|∇θ mean_{D_f} ℓ| from one batch holding the whole forget set."""
    examples = [e for b in forget_loader for e in _split(b)]
    batch = {k: torch.cat([e[k] for e in examples]) for k in examples[0]}
    model.eval()
    params = dict(model.named_parameters())
    grads = torch.autograd.grad(model.per_example_loss(batch).mean(), list(params.values()))
    return {n: g.abs() for n, g in zip(params, grads, strict=True)}


def _split(batch):
    return [{k: v[i : i + 1] for k, v in batch.items()} for i in range(len(batch["labels"]))]


def float64_batches(loader):
    """The loader's batches with floating inputs in float64, for a float64 model."""
    return [{k: v.double() if v.is_floating_point() else v for k, v in b.items()} for b in loader]


@pytest.mark.parametrize("backbone", ["tiny_vit", "tiny_bert"])
@pytest.mark.parametrize("fraction", [0.5, 0.1])
def test_mask_keeps_exactly_the_global_top_fraction(toy_inputs, backbone, fraction):
    # in float64: salun_mask sums its gradient over batches of 8 and the brute force over one batch, two
    # summation orders that agree to float64 rounding, far below the gaps between saliencies
    inputs = toy_inputs(backbone, masked=False)
    model = inputs.original.double()
    batch_size = 64 if backbone == "tiny_bert" else 8  # text pads per batch: brute force on one batch
    loader = float64_batches(inputs.datamodule.forget_dataloader(batch_size=batch_size))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    mask = salun_mask(model, loader, fraction)
    sal = brute_saliency(model, loader)

    flat_sal = torch.cat([sal[n].flatten() for n in mask])
    flat_mask = torch.cat([mask[n].flatten() for n in mask])
    assert set(mask) == set(sal) and all(mask[n].shape == sal[n].shape for n in mask)
    assert int(flat_mask.sum()) == round(fraction * flat_sal.numel())
    kept, dropped = flat_sal[flat_mask], flat_sal[~flat_mask]
    order = torch.sort(flat_sal, descending=True).values
    # rounding of the two summation orders: a generous 2^10 float64 ulps of the largest saliency
    tol = 1024 * torch.finfo(torch.float64).eps * order[0]
    # brute force: every kept entry is at least every dropped one
    assert kept.min() >= dropped.max() - tol
    torch.testing.assert_close(torch.sort(kept, descending=True).values, order[: len(kept)], rtol=0, atol=tol)
    for n, p in model.named_parameters():  # θ* untouched, no gradients left behind
        assert torch.equal(p, before[n]) and p.grad is None


def test_mask_is_restricted_to_allowed_entries(toy_inputs):
    inputs = toy_inputs("tiny_vit", masked=True)
    allowed = inputs.param_mask
    mask = salun_mask(inputs.original, inputs.datamodule.forget_dataloader(), 0.3, allowed)
    assert set(mask) == set(allowed)
    n_allowed = sum(int(m.sum()) for m in allowed.values())
    assert sum(int(m.sum()) for m in mask.values()) == round(0.3 * n_allowed)
    assert all(not (mask[n] & ~allowed[n]).any() for n in mask)
    with pytest.raises(ValueError, match=r"fraction must lie in \(0, 1\]"):
        salun_mask(inputs.original, inputs.datamodule.forget_dataloader(), 0.0)


def test_salun_updates_only_salient_entries(toy_inputs):
    inputs = toy_inputs("tiny_vit", masked=False)
    cfg = METHODS.get("salun").config(
        fraction=0.2, optim=OptimConfig(lr=1e-3, weight_decay=0.1), max_steps=10, selection=False
    )
    result = METHODS.get("salun").run(inputs, cfg)
    mask = salun_mask(inputs.original, inputs.datamodule.forget_dataloader(), 0.2)
    moved = 0
    for name, p in result.model.named_parameters():
        orig = inputs.original.get_parameter(name)
        # exact: the mask recomputed here is the method's own, the same computation on the same θ*
        assert torch.equal(p[~mask[name]], orig[~mask[name]]), name
        moved += int((p[mask[name]] != orig[mask[name]]).sum())
    assert moved > 0.9 * sum(int(m.sum()) for m in mask.values())
    assert result.hparams["fraction"] == 0.2
