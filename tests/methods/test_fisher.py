"""The parameter diagonal Fisher and forget gradient sums against one-example-at-a-time autograd (float64)."""

import pytest
import torch
from sklearn.datasets import load_digits
from torch.utils.data import DataLoader

from unlearn_lit.methods.base import UnlearningFailed
from unlearn_lit.methods.fisher import (
    CHUNK_MEMORY_BYTES,
    MAX_CHUNK,
    Fisher,
    ParamSelection,
    SlicedGradient,
    _structure,
    auto_chunk,
    check_finite,
    forget_gradient_sum,
    retain_fisher,
)
from unlearn_lit.models import build_backbone
from unlearn_lit.units import unit_layout


def double_backbone(name: str, num_labels: int = 3):
    """A tiny backbone in float64 whose collate casts floating inputs to float64."""
    kw = {"task": "classification"} if name in ("tiny_gpt2", "tiny_llama") else {}
    bb = build_backbone(name, num_labels=num_labels, **kw).double()
    collate = bb.collate
    bb.collate = lambda ex: {k: v.double() if v.is_floating_point() else v for k, v in collate(ex).items()}
    return bb


def examples(name: str, n: int, num_labels: int = 3):
    if name == "tiny_vit":
        d = load_digits()
        return [
            {
                "image": torch.tensor(d.images[i] / 16).view(1, 8, 8).float(),
                "label": int(d.target[i]) % num_labels,
                "index": i,
            }
            for i in range(n)
        ]
    words = "the cat sat on a mat while dogs ran far away".split()
    return [{"text": " ".join(words[: 2 + i % 9]), "label": i % num_labels, "index": i} for i in range(n)]


def loop_grads(bb, exs):
    """Per-example gradients ``{name: [n, *shape]}``, one autograd.grad call per example."""
    bb.eval()
    params = dict(bb.named_parameters())
    out = {n: [] for n in params}
    for e in exs:
        g = torch.autograd.grad(
            bb.per_example_loss(bb.collate([e])).sum(), list(params.values()), allow_unused=True
        )
        for (n, p), gi in zip(params.items(), g, strict=True):
            out[n].append(torch.zeros_like(p) if gi is None else gi)
    return {n: torch.stack(v) for n, v in out.items()}


def check_per_batch(pb, grads, ref, masks, batch: int) -> None:
    """The per-batch Fisher (and the forget gradient sum, unless None) against per-example gradients
    ``ref``, over consecutive batches of ``batch`` examples (float64)."""
    for n, m in masks.items():
        g = ref[n][:, m]
        sums = torch.stack([g[i : i + batch].sum(0) for i in range(0, len(g), batch)])
        torch.testing.assert_close(pb.mean()[n], sums.pow(2).sum(0) / len(g), rtol=1e-9, atol=1e-14)
        if grads is not None:
            torch.testing.assert_close(grads[n], g.sum(0), rtol=1e-9, atol=1e-14)


def unit_mask(bb, seed=0):
    """Random unit mask expanded to parameters: some params partially selected, most untouched."""
    layout = unit_layout(bb)
    gen = torch.Generator().manual_seed(seed)
    masks = {k: torch.rand(layout.shape(k), generator=gen) < 0.4 for k in layout.kinds}
    masks["head"][1:] = False  # layer >= 1 heads frozen: their params must get no statistics
    return layout.param_masks(masks, dict(bb.named_parameters()))


@pytest.mark.parametrize(
    "name,chunk", [("tiny_vit", 3), ("tiny_bert", 3), ("tiny_gpt2", 3), ("tiny_vit", None)]
)
def test_per_example_fisher_equals_loop_on_selected_params_only(name, chunk):
    bb = double_backbone(name)
    exs = examples(name, 10)
    masks = unit_mask(bb)
    sel = ParamSelection(bb, masks)
    if chunk is None:  # automatic: every example of a tiny model's batch at once
        assert auto_chunk(bb, sel) == MAX_CHUNK
    fisher = retain_fisher(bb, DataLoader(exs, batch_size=4, collate_fn=bb.collate), sel, chunk_size=chunk)
    ref = loop_grads(bb, exs)
    selected = {n for n, m in masks.items() if m.any()}
    assert set(fisher.sumsq) == selected and len(selected) < len(ref)
    assert fisher.count == 10
    for n, f in fisher.mean().items():
        assert f.dtype == torch.float64 and f.numel() == int(masks[n].sum())
        torch.testing.assert_close(f, ref[n].pow(2).mean(0)[masks[n]], rtol=1e-9, atol=1e-14)


def test_per_batch_fisher_and_forget_gradient_sum():
    bb = double_backbone("tiny_vit")
    exs = examples("tiny_vit", 9)
    sel = ParamSelection(bb, {n: torch.ones_like(p, dtype=torch.bool) for n, p in bb.named_parameters()})
    ref = loop_grads(bb, exs)
    one = retain_fisher(bb, DataLoader(exs, batch_size=1, collate_fn=bb.collate), sel, mode="per_batch")
    exact = retain_fisher(bb, DataLoader(exs, batch_size=4, collate_fn=bb.collate), sel)
    for n in sel.names:  # batches of one: per-batch is exact
        torch.testing.assert_close(one.mean()[n], exact.mean()[n], rtol=1e-9, atol=1e-14)
    pb = retain_fisher(bb, DataLoader(exs, batch_size=4, collate_fn=bb.collate), sel, mode="per_batch")
    grads, count = forget_gradient_sum(bb, DataLoader(exs, batch_size=4, collate_fn=bb.collate), sel)
    assert pb.count == count == 9
    for n in sel.names:
        g = ref[n].reshape(9, -1)
        batch_sums = torch.stack([g[0:4].sum(0), g[4:8].sum(0), g[8:9].sum(0)])
        torch.testing.assert_close(pb.mean()[n], batch_sums.pow(2).sum(0) / 9, rtol=1e-9, atol=1e-14)
        torch.testing.assert_close(grads[n], g.sum(0), rtol=1e-9, atol=1e-14)


def test_padded_text_batches_are_computed_in_pieces_with_the_same_statistics():
    """A padded text batch is cut into length-sorted pieces without their padding: the per-batch
    Fisher squares the whole batch's gradient sum, and every statistic equals the padded loop's."""
    bb = double_backbone("tiny_bert")
    words = "the cat sat on a mat while dogs ran far away".split()
    exs = [{"text": " ".join(words[: 2 + 8 * (i % 2)]), "label": i % 3, "index": i} for i in range(40)]
    sel = ParamSelection(bb, unit_mask(bb))
    widths = []
    hook = bb.net.register_forward_pre_hook(
        lambda _, args, kwargs: widths.append(tuple(kwargs["input_ids"].shape)), with_kwargs=True
    )
    loader = DataLoader(exs, batch_size=40, collate_fn=bb.collate)  # one batch, padded to 10 words
    padded = bb.collate(exs)["attention_mask"]
    pb = retain_fisher(bb, loader, sel, mode="per_batch")
    assert [w[0] for w in widths] == [20, 20] and widths[0][1] < widths[1][1] == padded.shape[1]
    assert sum(a * b for a, b in widths) < 0.8 * padded.numel()  # the padding is not paid for
    grads, count = forget_gradient_sum(bb, loader, sel)
    pe = retain_fisher(bb, loader, sel, chunk_size=8)
    hook.remove()
    ref = loop_grads(bb, exs)  # one padded example at a time
    assert pb.count == count == pe.count == 40
    for n, m in sel.masks.items():
        g = ref[n][:, m]
        torch.testing.assert_close(pb.mean()[n], g.sum(0).pow(2) / 40, rtol=1e-9, atol=1e-14)
        torch.testing.assert_close(grads[n], g.sum(0), rtol=1e-9, atol=1e-14)
        torch.testing.assert_close(pe.mean()[n], g.pow(2).mean(0), rtol=1e-9, atol=1e-14)


@pytest.mark.parametrize("window_bytes", [None, 1])
def test_padded_text_batches_share_length_sorted_pieces_and_keep_their_own_sums(monkeypatch, window_bytes):
    """On a CPU, the batch sums of a window of padded text batches are computed in length-sorted pieces
    shared by the batches' examples, each batch's sum kept apart (the per-batch Fisher squares each):
    the same statistics as one padded example at a time (float64), with less padding than the batches
    had. With room for one batch's sums only, each batch is computed alone: the same numbers."""
    import unlearn_lit.methods.fisher as fisher_module

    if window_bytes is not None:
        monkeypatch.setattr(fisher_module, "WINDOW_MEMORY_BYTES", window_bytes)
    bb = double_backbone("tiny_bert")
    words = "the cat sat on a mat while dogs ran far away and then some more".split()
    lengths = [14 if i % 6 == 0 else 2 + i % 3 for i in range(48)]  # a long tweet in every batch
    exs = [{"text": " ".join(words[:k]), "label": i % 3, "index": i} for i, k in enumerate(lengths)]
    sel = ParamSelection(bb, unit_mask(bb))
    assert SlicedGradient(bb, sel).groupable  # every selected parameter is a Linear weight or bias
    shapes = []
    hook = bb.net.register_forward_pre_hook(
        lambda _, args, kwargs: shapes.append(tuple(kwargs["input_ids"].shape)), with_kwargs=True
    )
    loader = DataLoader(exs, batch_size=8, collate_fn=bb.collate)  # 6 random-length batches
    padded = sum(b["attention_mask"].numel() for b in loader)
    pb = retain_fisher(bb, loader, sel, mode="per_batch")
    grads, count = forget_gradient_sum(bb, loader, sel)
    hook.remove()
    computed = sum(a * b for a, b in shapes[: len(shapes) // 2])  # the Fisher's forward passes
    if window_bytes is None:  # the first batch alone, then pieces of 8 shared by the others' examples
        assert [s[0] for s in shapes[: len(shapes) // 2]] == [8] * 6 and computed < 0.65 * padded
    ref = loop_grads(bb, exs)
    assert pb.count == count == 48
    check_per_batch(pb, grads, ref, sel.masks, 8)


class Wrapped(torch.nn.Module):
    """Holds a Linear; subclasses decide how ``forward`` uses it."""

    def __init__(self, inner: torch.nn.Linear) -> None:
        super().__init__()
        self.inner = inner


def test_a_linear_whose_forward_never_runs_falls_back_to_autograd():
    """A tapped Linear whose weight another module uses directly (its own forward, and so its hook, never
    runs) gets its gradient from plain autograd: the same statistics as one example at a time."""

    class Direct(Wrapped):  # uses the inner Linear's weight without calling it
        def forward(self, x):
            return torch.nn.functional.linear(x, self.inner.weight, self.inner.bias)

    bb = double_backbone("tiny_bert")
    bb.net.classifier = Direct(bb.net.classifier)
    exs = examples("tiny_bert", 12)
    sel = ParamSelection(bb, {n: torch.ones_like(p, dtype=torch.bool) for n, p in bb.named_parameters()})
    loader = DataLoader(exs, batch_size=4, collate_fn=bb.collate)
    pb = retain_fisher(bb, loader, sel, mode="per_batch")
    ref = loop_grads(bb, exs)
    assert ref["net.classifier.inner.weight"].abs().sum() > 0
    check_per_batch(pb, None, ref, sel.masks, 4)


def test_causal_lm_batches_without_padding_keep_their_own_statistics():
    """A causal LM's batches that hold no padding (every batch's examples of one length) are not re-cut
    with guessed padding values (labels' ignore index): the same statistics as one example at a time."""
    bb = build_backbone("tiny_llama", num_labels=3).double()  # the language-model task
    words = "the cat sat on a mat while dogs ran far away".split()
    lengths = [2, 2, 3, 3, 5, 5, 4]
    exs = [{"text": " ".join(words[:k]), "label": 0, "index": i} for i, k in enumerate(lengths)]
    loader = DataLoader(exs, batch_size=2, collate_fn=bb.collate)
    sel = ParamSelection(bb, unit_mask(bb))
    pb = retain_fisher(bb, loader, sel, mode="per_batch")
    grads, _ = forget_gradient_sum(bb, loader, sel)
    check_per_batch(pb, grads, loop_grads(bb, exs), sel.masks, 2)


def test_a_linear_on_sequence_first_or_flattened_inputs_falls_back_to_autograd():
    """A Linear whose input does not hold the batch's examples first ([T, B, D], or tokens flattened to
    [B*T, D]) is computed by plain autograd: the same statistics as one example at a time."""

    class SeqFirst(Wrapped):
        def forward(self, x):
            return self.inner(x.transpose(0, 1)).transpose(0, 1)

    class Flat(Wrapped):
        def forward(self, x):
            return self.inner(x.reshape(-1, x.shape[-1])).reshape(*x.shape[:-1], -1)

    bb = double_backbone("tiny_bert")
    layers = bb.net.bert.encoder.layer
    layers[0].intermediate.dense = SeqFirst(layers[0].intermediate.dense)
    layers[1].output.dense = Flat(layers[1].output.dense)
    exs = examples("tiny_bert", 11)
    sel = ParamSelection(bb, {n: torch.ones_like(p, dtype=torch.bool) for n, p in bb.named_parameters()
                              if "dense" in n})  # fmt: skip
    loader = DataLoader(exs, batch_size=4, collate_fn=bb.collate)
    pb = retain_fisher(bb, loader, sel, mode="per_batch")
    check_per_batch(pb, None, loop_grads(bb, exs), sel.masks, 4)
    with torch.inference_mode(), pytest.raises(RuntimeError, match="inference_mode"):
        forget_gradient_sum(bb, loader, sel)


def test_selection_put_take_and_guards():
    bb = double_backbone("tiny_vit")
    masks = unit_mask(bb)
    sel = ParamSelection(bb, masks)
    name = next(n for n in sel.names if not sel.full[n])
    p = dict(bb.named_parameters())[name].detach()
    new = sel.put(name, p, sel.take(name, p) + 1.0)
    # exact: take / put only move entries, and both sides round the same + 1.0 of the same values
    assert torch.equal(new[~masks[name]], p[~masks[name]])
    assert torch.equal(new[masks[name]], p[masks[name]] + 1.0)
    assert ParamSelection(bb, {n: torch.zeros_like(m) for n, m in masks.items()}).names == []
    with pytest.raises(KeyError, match="unknown parameters"):
        ParamSelection(bb, {"nope": torch.ones(1, dtype=torch.bool)})
    with pytest.raises(ValueError, match="valid choices: per_example, per_batch"):
        retain_fisher(bb, [], sel, mode="diag")
    with pytest.raises(UnlearningFailed, match="non-finite entries in w"):
        check_finite({"w": torch.tensor([1.0, float("nan")])}, "update")
    f = Fisher({"w": torch.tensor([4.0, 6.0])}, 4)
    torch.testing.assert_close(
        f.downdate(Fisher({"w": torch.tensor([1.0, 2.0])}, 1)).mean()["w"], torch.tensor([1.0, 4 / 3])
    )
    with pytest.raises(ValueError, match="cannot remove"):
        f.downdate(f)


def test_auto_chunk_fits_the_memory_budget():
    bb = double_backbone("tiny_vit")
    sel = ParamSelection(bb, {n: torch.ones_like(p, dtype=torch.bool) for n, p in bb.named_parameters()})
    per_example = sum(p.numel() * p.element_size() for p in bb.parameters())
    assert auto_chunk(bb, sel) == min(CHUNK_MEMORY_BYTES // per_example, MAX_CHUNK)
    with pytest.raises(ValueError, match="chunk_size"):
        retain_fisher(bb, [], sel, chunk_size=0)


@pytest.mark.parametrize("name", ["tiny_vit", "tiny_bert", "tiny_llama", "tiny_gpt2"])
def test_batch_sums_take_a_unit_mask_weight_gradient_on_its_rows_or_columns_only(name):
    """MAPE-SO's batch sums: a Linear weight whose mask is whole rows (columns) gets only those rows'
    (columns') gradient through the side path, equal to the whole gradient's entries (float64); GPT-2's
    Conv1D weights (not Linear) keep the whole gradient."""
    bb = double_backbone(name)
    exs = examples(name, 9)
    masks = unit_mask(bb)
    sel = ParamSelection(bb, masks)
    sliced = SlicedGradient(bb, sel)
    if name == "tiny_gpt2":
        assert not any(n.endswith("attn.weight") or "mlp" in n for n in sliced.slices)
    else:
        axes = {axis for axis, _ in sliced.slices.values()}
        assert axes == {"rows", "cols"}, sliced.slices.keys()  # heads' and filters' in and out sides
    flags = [p.requires_grad for p in bb.parameters()]
    loader = DataLoader(exs, batch_size=4, collate_fn=bb.collate)
    grads, count = forget_gradient_sum(bb, loader, sel)
    pb = retain_fisher(bb, loader, sel, mode="per_batch")
    assert [p.requires_grad for p in bb.parameters()] == flags  # restored
    ref = loop_grads(bb, exs)
    assert count == pb.count == 9 and set(grads) == {n for n, m in masks.items() if m.any()}
    for n, m in sel.masks.items():
        g = ref[n][:, m]
        batch_sums = torch.stack([g[0:4].sum(0), g[4:8].sum(0), g[8:9].sum(0)])
        torch.testing.assert_close(grads[n], g.sum(0), rtol=1e-9, atol=1e-14)
        torch.testing.assert_close(pb.mean()[n], batch_sums.pow(2).sum(0) / 9, rtol=1e-9, atol=1e-14)


def test_a_weight_mask_is_sliced_only_when_it_is_whole_rows_or_columns_of_at_most_half():
    rows = torch.zeros(6, 4, dtype=torch.bool)
    rows[[1, 4]] = True
    assert _structure(rows)[0] == "rows" and _structure(rows)[1].tolist() == [1, 4]
    cols = torch.zeros(6, 4, dtype=torch.bool)
    cols[:, 2] = True
    assert _structure(cols)[0] == "cols" and _structure(cols)[1].tolist() == [2]
    mixed = rows.clone()
    mixed[0, 0] = True  # not whole rows, not whole columns
    assert _structure(mixed) is None
    most = torch.ones(6, 4, dtype=torch.bool)
    most[0] = False  # 5 of 6 rows: the whole gradient is cheaper
    assert _structure(most) is None and _structure(torch.ones(4, dtype=torch.bool)) is None
