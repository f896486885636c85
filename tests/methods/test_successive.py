"""Successive unlearning: request splits, the memory-aided downdate and both update rules (float64)."""

import numpy as np
import pytest
import torch

from tests.methods.test_so import setup
from unlearn_lit.methods import UnlearnInputs
from unlearn_lit.methods.fisher import ParamSelection, forget_gradient_sum, retain_fisher
from unlearn_lit.methods.so import SOConfig, apply_so
from unlearn_lit.methods.successive import (
    AidedStatistics,
    RequestData,
    memory_aided,
    memory_free,
    run_successive,
    split_requests,
)
from unlearn_lit.units import unit_layout

CFG = SOConfig(select="fixed", tau=0.05, c=0.1, fisher_examples=None, selection_retain=8, selection_val=8)


def close(a, b):
    for n, p in a.named_parameters():
        torch.testing.assert_close(p, dict(b.named_parameters())[n], rtol=1e-10, atol=1e-12)


def test_split_requests_is_a_seeded_partition():
    parts = split_requests(10, 3, seed=0)
    assert [len(p) for p in parts] == [4, 3, 3]
    assert sorted(np.concatenate(parts).tolist()) == list(range(10))
    assert all((p == q).all() for p, q in zip(parts, split_requests(10, 3, seed=0), strict=True))
    assert any((p != q).any() for p, q in zip(parts, split_requests(10, 3, seed=1), strict=True))
    with pytest.raises(ValueError, match=r"num_requests must lie in \[1, 10\]"):
        split_requests(10, 11, seed=0)


def test_memory_aided_downdate_equals_fisher_on_the_remaining_retain_set():
    bb, dm = setup(n_forget=9, n_retain=12)
    inputs = UnlearnInputs(bb, dm, unit_layout(bb))
    data = RequestData(inputs, CFG, 3)
    sel = ParamSelection(bb, inputs.trainable(bb))
    stats = AidedStatistics(bb, sel, data, CFG)
    layout = unit_layout(bb)
    masks = {
        k: torch.rand(layout.shape(k), generator=torch.Generator().manual_seed(0)) < 0.5 for k in layout.kinds
    }
    pm = layout.param_masks(masks, dict(bb.named_parameters()))
    for t in (1, 2, 3):
        stats.advance()
        remaining, n_retain = data.retain(t)
        assert n_retain == 12 + sum(len(p) for p in data.parts[t:])
        direct = retain_fisher(bb, data.loader(remaining), sel)
        _, fisher, grads = stats.current()
        assert fisher.count == direct.count == 12 + sum(len(p) for p in data.parts[t:])
        removed, _ = forget_gradient_sum(bb, data.loader(data.forget(range(1, t + 1))), sel)
        for n in sel.names:
            torch.testing.assert_close(fisher.mean()[n], direct.mean()[n], rtol=1e-8, atol=1e-13)
            torch.testing.assert_close(grads[n], removed[n], rtol=1e-10, atol=1e-13)
        msel, mfisher, _ = stats.current(pm)  # restricted to a mask inside the statistics' support
        assert set(msel.names) == {n for n, m in pm.items() if m.any()}
        for n in msel.names:  # sel covers every entry, so its compact vectors are flattened parameters
            expected = direct.mean()[n].view(pm[n].shape)[pm[n]]
            torch.testing.assert_close(mfisher.mean()[n], expected, rtol=1e-8, atol=1e-13)


def test_memory_aided_and_memory_free_updates():
    bb, dm = setup(n_forget=6, n_retain=12)
    inputs = UnlearnInputs(bb, dm, unit_layout(bb))
    data = RequestData(inputs, CFG, 2)
    seen = []
    aided = memory_aided(inputs, CFG, 2, on_request=lambda t, m, r: {"t": t}, keep_models=True)
    assert [r.metrics for r in aided] == [{"t": 1}, {"t": 2}]
    sel = ParamSelection(bb, inputs.trainable(bb))
    for t, res in zip((1, 2), aided, strict=True):  # always from θ*, with the direct statistics
        remaining, n_retain = data.retain(t)
        fisher = retain_fisher(bb, data.loader(remaining), sel)
        grads, _ = forget_gradient_sum(bb, data.loader(data.forget(range(1, t + 1))), sel)
        close(res.model, apply_so(bb, sel, fisher, grads, n_retain, CFG, None).model)

    def mask_fn(model, forget_loader, retain_loader):
        seen.append(model)
        return None  # full-parameter

    free = memory_free(inputs, CFG, 2, mask_fn=mask_fn)
    assert seen[0] is bb and free[0].model is None and free[1].model is not None  # only the last kept
    first = memory_free(inputs, CFG, 2, keep_models=True)[0].model
    # exact: request 1 computed twice, in the same order in the same process
    assert all(torch.equal(p, q) for p, q in zip(seen[1].parameters(), first.parameters(), strict=True))
    remaining, n_retain = data.retain(2)  # request 2 starts from θ^1 with its own statistics
    fisher = retain_fisher(first, data.loader(remaining), sel)
    grads, _ = forget_gradient_sum(first, data.loader(data.forget([2])), sel)
    close(free[1].model, apply_so(first, sel, fisher, grads, n_retain, CFG, None).model)
    layout = unit_layout(bb)
    pm = layout.param_masks(
        {"filter": torch.ones(layout.shape("filter"), dtype=torch.bool)}, dict(bb.named_parameters())
    )
    masked = memory_aided(inputs, CFG, 2, mask_fn=lambda model, f, r: pm)[-1].model
    for n, p in masked.named_parameters():  # a recomputed mask inside the support: the rest stays θ*
        q = dict(bb.named_parameters())[n]
        assert torch.equal(p[~pm[n]], q[~pm[n]]) if n in pm else torch.equal(p, q)
    with pytest.raises(ValueError, match="valid choices: memory_free, memory_aided"):
        run_successive("memoryless", inputs, CFG, 2)
