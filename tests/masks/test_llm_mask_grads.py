"""Per-example mask gradients on the answer-only loss of a causal LM (METHOD.md §2, §9).

A tiny random-init Llama with grouped-query attention (4 query heads, 2 K/V heads), float64, on a
right-padded batch of question-answer pairs: the one-pass per-example mask gradients equal those of
each example collated alone (no padding) and differentiated on its own.
"""

from __future__ import annotations

import torch

from tests.units.test_layout import exact_rmsnorm
from unlearn_lit.masks.stats import per_example_mask_grads
from unlearn_lit.models import build_backbone
from unlearn_lit.units import unit_layout

QA = [
    {"question": "Where was Kalo Ren born?", "answer": "In Oslo.", "index": 0},
    {"question": "Which genre does Mi Tas write?", "answer": "Mi Tas writes poetry and satire.", "index": 1},
    {"question": "Award?", "answer": "The Veltran Prize.", "index": 2},
]


def test_per_example_mask_grads_on_gqa_llama_equal_a_one_example_loop():
    backbone = build_backbone("tiny_llama", tokenizer="chars", kv_heads=2, positions=258).double().eval()
    assert backbone.net.config.num_key_value_heads == 2 and backbone.net.config.num_attention_heads == 4
    exact_rmsnorm(backbone)
    layout = unit_layout(backbone)
    batch = backbone.collate(QA)
    assert (batch["attention_mask"] == 0).any()  # padded: the loop below is not the same computation
    grads = per_example_mask_grads(backbone, layout, batch)
    for b, example in enumerate(QA):
        alone = backbone.collate([example])
        masks = {
            k: torch.ones(layout.shape(k), dtype=torch.float64, requires_grad=True) for k in layout.kinds
        }
        with layout.apply_masks(backbone, **masks):
            loss = backbone.per_example_loss(alone).sum()
        head, filt = torch.autograd.grad(loss, [masks["head"], masks["filter"]])
        torch.testing.assert_close(grads["head"][b], head, atol=1e-10, rtol=1e-8)
        torch.testing.assert_close(grads["filter"][b], filt, atol=1e-10, rtol=1e-8)
        assert head.abs().max() > 0 and filt.abs().max() > 0
    # the answer-only loss: the gradients differ from those of the whole-sequence loss
    whole = per_example_mask_grads(backbone, layout, {k: v for k, v in batch.items() if k != "labels"})
    assert not torch.allclose(whole["filter"], grads["filter"])
