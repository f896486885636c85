"""Unit layer (METHOD.md §2): exact masking, ownership, per-example mask gradients, for every family."""

from __future__ import annotations

import copy

import pytest
import torch

from unlearn_lit.families import FAMILIES as REGISTERED
from unlearn_lit.masks.stats import per_example_mask_grads
from unlearn_lit.models import build_backbone
from unlearn_lit.models.base import Backbone
from unlearn_lit.registry import UnknownNameError
from unlearn_lit.units import unit_layout

FAMILIES = [f"tiny_{name}" for name in REGISTERED.names()]  # every registered family, by its tiny model
TEXTS = ["the cat sat on the mat", "unlearning is hard", "a b c", "transformers have heads and filters"]


def make(name: str, dtype: torch.dtype = torch.float32) -> tuple[Backbone, dict]:
    backbone = build_backbone(name, num_labels=3).to(dtype).eval()
    if backbone.family == "vit":
        g = torch.Generator().manual_seed(0)
        examples = [{"image": torch.rand(1, 8, 8, generator=g), "label": i % 3} for i in range(4)]
    elif backbone.task == "lm":
        examples = [{"text": t} for t in TEXTS]
    else:
        examples = [{"text": t, "label": i % 3} for i, t in enumerate(TEXTS)]
    batch = backbone.collate(examples)
    if dtype == torch.float64:
        exact_rmsnorm(backbone)
    if "pixel_values" in batch:
        batch["pixel_values"] = batch["pixel_values"].to(dtype)
    return backbone, batch


def exact_rmsnorm(backbone: Backbone) -> None:
    """HF's Llama/Mistral RMSNorm upcasts to float32 only; in a float64 model that rounds to float32 and
    drowns finite differences. Compute the same formula in the input dtype instead."""

    def forward(self, x):
        return self.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.variance_epsilon))

    for m in backbone.modules():
        if type(m).__name__.endswith("RMSNorm"):
            m.forward = forward.__get__(m)


@pytest.fixture(params=FAMILIES)
def family(request):
    return request.param


def test_all_ones_mask_leaves_logits_unchanged(family):
    backbone, batch = make(family)
    layout = unit_layout(backbone)
    with torch.no_grad():
        ref = backbone(batch)
        ones = layout.ones(torch.float32)
        with layout.apply_masks(backbone, head=ones["head"], filter=ones["filter"]):
            shared = backbone(batch)
        b = batch_len(batch)
        per_ex = {k: v.expand(b, *v.shape).clone() for k, v in ones.items()}
        with layout.apply_masks(backbone, head=per_ex["head"], filter=per_ex["filter"]):
            batched = backbone(batch)
    assert (shared - ref).abs().max().item() <= 1e-6
    assert (batched - ref).abs().max().item() <= 1e-6


def batch_len(batch: dict) -> int:
    return next(iter(batch.values())).shape[0]


@pytest.mark.parametrize("kind", ["head", "filter"])
def test_masking_a_unit_equals_zeroing_its_output_side_parameters(family, kind):
    backbone, batch = make(family)
    layout = unit_layout(backbone)
    layer, index = layout.num_layers - 1, 1
    mask = layout.ones(torch.float32)
    mask[kind][layer, index] = 0.0
    with torch.no_grad(), layout.apply_masks(backbone, **{kind: mask[kind]}):
        masked = backbone(batch)
    zeroed = copy.deepcopy(backbone)
    lay = layout.layers[layer]
    out_param = f"{lay.head_hook if kind == 'head' else lay.filter_hook}.weight"
    params = dict(zeroed.named_parameters())
    slices = [s for s in layout.owned(kind, layer, index) if s.param == out_param]
    assert len(slices) == 1
    with torch.no_grad():
        s = slices[0]
        params[s.param].narrow(s.dim, s.start, s.stop - s.start).zero_()
        expected = zeroed(batch)
        original = backbone(batch)
    torch.testing.assert_close(masked, expected, atol=1e-6, rtol=1e-5)
    assert (masked - original).abs().max() > 1e-6  # the unit mattered: the test can fail


def test_per_example_mask_gradients_equal_loop_and_finite_differences(family):
    backbone, batch = make(family, torch.float64)
    layout = unit_layout(backbone)
    grads = per_example_mask_grads(backbone, layout, batch)
    n = batch_len(batch)
    for b in range(n):
        one = {k: v[b : b + 1] for k, v in batch.items()}
        masks = {
            k: torch.ones(layout.shape(k), dtype=torch.float64, requires_grad=True) for k in layout.kinds
        }
        with layout.apply_masks(backbone, **masks):
            loss = backbone.per_example_loss(one).sum()
        loop = torch.autograd.grad(loss, [masks["head"], masks["filter"]])
        torch.testing.assert_close(grads["head"][b], loop[0], atol=1e-10, rtol=1e-8)
        torch.testing.assert_close(grads["filter"][b], loop[1], atol=1e-10, rtol=1e-8)
        # central finite differences on a few units of each kind
        eps, rel = 1e-5, 1e-5
        for kind, (l, i) in (("head", (0, 1)), ("filter", (1, 3)), ("filter", (0, 0))):
            vals = []
            for sign in (1, -1):
                m = layout.ones(torch.float64)
                m[kind][l, i] += sign * eps
                with torch.no_grad(), layout.apply_masks(backbone, **m):
                    vals.append(backbone.per_example_loss(one).item())
            fd = (vals[0] - vals[1]) / (2 * eps)
            assert grads[kind][b, l, i].item() == pytest.approx(fd, rel=rel, abs=1e-8)


def test_owned_slices_disjoint_and_param_masks_match_slices(family):
    backbone, _ = make(family)
    layout = unit_layout(backbone)
    params = dict(backbone.named_parameters())
    cover = {name: torch.zeros_like(params[name], dtype=torch.int32) for name in layout.unit_param_names()}
    shared_cover = {name: torch.zeros_like(c) for name, c in cover.items()}
    g = torch.Generator().manual_seed(1)
    masks = {k: torch.rand(layout.shape(k), generator=g) < 0.4 for k in layout.kinds}
    selected_cover = {name: torch.zeros_like(c, dtype=torch.bool) for name, c in cover.items()}
    for kind in layout.kinds:
        for l in range(layout.num_layers):
            for i in range(layout.counts[kind]):
                for s in layout.owned(kind, l, i):
                    target = shared_cover if s.shared else cover
                    target[s.param].narrow(s.dim, s.start, s.stop - s.start).add_(1)
                    if masks[kind][l, i]:
                        selected_cover[s.param].narrow(s.dim, s.start, s.stop - s.start).fill_(True)
    for name in cover:
        assert cover[name].max() <= 1, f"units overlap in {name}"
        assert not ((cover[name] > 0) & (shared_cover[name] > 0)).any()
    if backbone.family == "mistral":  # GQA: each K/V slice is shared by exactly its group of query heads
        group = layout.counts["head"] // backbone.net.config.num_key_value_heads
        assert group > 1 and all(v.max() == group for v in shared_cover.values() if v.any())
    expanded = layout.param_masks(masks, params)
    assert set(expanded) == set(cover)
    for name in cover:
        assert torch.equal(expanded[name], selected_cover[name]), name
    full = layout.param_masks(layout.ones(), params)
    for name in cover:
        assert torch.equal(full[name], (cover[name] + shared_cover[name]) > 0), name


def test_param_counts_match_method_formulas(family):
    backbone, _ = make(family)
    layout = unit_layout(backbone)
    params = dict(backbone.named_parameters())
    d, d_h = 32, layout.head_dim
    if backbone.family in ("llama", "mistral"):  # no biases; K/V rows are shared under GQA (Mistral)
        gqa = backbone.net.config.num_key_value_heads < backbone.net.config.num_attention_heads
        assert gqa == (backbone.family == "mistral")
        assert layout.param_count("head", params, include_shared=False) == (2 if gqa else 4) * d * d_h
        assert layout.param_count("head", params) == 4 * d * d_h
        assert layout.param_count("filter", params) == 3 * d
    else:
        assert layout.param_count("head", params) == 4 * d * d_h + 3 * d_h
        assert layout.param_count("filter", params) == 2 * d + 1


def test_minilm_layout():
    backbone = build_backbone("minilm", num_labels=3)
    layout = unit_layout(backbone)
    assert layout.shape("head") == (6, 12) and layout.shape("filter") == (6, 1536)
    assert len(layout.blocks) == 12
    params = dict(backbone.named_parameters())
    assert layout.param_count("head", params) == 4 * 384 * 32 + 3 * 32
    assert layout.param_count("filter", params) == 2 * 384 + 1


def test_hooks_removed_after_exit_even_on_error():
    backbone, batch = make("tiny_bert")
    layout = unit_layout(backbone)

    def n_hooks():
        return sum(len(m._forward_pre_hooks) for m in backbone.modules())

    ones = layout.ones(torch.float32)
    with layout.apply_masks(backbone, **ones):
        assert n_hooks() == 2 * layout.num_layers
    assert n_hooks() == 0
    with pytest.raises(RuntimeError, match="boom"), layout.apply_masks(backbone, **ones):
        raise RuntimeError("boom")
    assert n_hooks() == 0


def test_bad_input_errors_name_valid_choices():
    with pytest.raises(UnknownNameError, match="valid choices: .*minilm"):
        build_backbone("no_such_model")
    backbone, batch = make("tiny_bert")
    backbone.family = "t5"
    with pytest.raises(UnknownNameError, match="architecture 't5'.*bert.*vit"):
        unit_layout(backbone)
    backbone.family = "bert"
    layout = unit_layout(backbone)
    with pytest.raises(ValueError, match=r"expected \[L, n\] = \[2, 4\] or \[B, 2, 4\]"):
        with layout.apply_masks(backbone, head=torch.ones(3, 4)):
            pass
    with pytest.raises(ValueError, match="unknown unit kind 'neuron'; valid choices: head, filter"):
        layout.shape("neuron")
    with pytest.raises(ValueError, match="batch size 2"):
        with layout.apply_masks(backbone, head=torch.ones(2, 2, 4)):
            backbone(batch)


def test_local_pretrained_directory_loads_offline(tmp_path):
    backbone, batch = make("tiny_bert")
    backbone.net.save_pretrained(tmp_path)
    from unlearn_lit.models.hf import load_tokenizer, minilm_path

    load_tokenizer(str(minilm_path())).save_pretrained(tmp_path)
    for name in (str(tmp_path), f"hf:{tmp_path}"):
        loaded = build_backbone(name, num_labels=3).eval()
        assert loaded.family == "bert"
        with torch.no_grad():
            torch.testing.assert_close(loaded(batch), backbone(batch))
