"""A pretrained backbone's new task head (and a timm ViT built without weights) is initialized from its
``seed``, not from whatever the global RNG went through before: θ* and RT start from the same head, and
θ*'s cache key, which hashes the initial weights, is the same in every run."""

from __future__ import annotations

import pytest
import torch

from unlearn_lit.models import build_backbone


def head(backbone) -> torch.Tensor:
    return backbone.net.classifier.weight.detach().clone()


def test_minilm_head_is_the_seeds_whatever_the_global_rng_did():
    torch.manual_seed(1)
    first = head(build_backbone("minilm", num_labels=3))
    torch.manual_seed(2)
    torch.rand(1000)  # other work before the backbone is built
    state = torch.random.get_rng_state()
    second = head(build_backbone("minilm", num_labels=3))
    assert torch.equal(first, second)
    assert torch.equal(torch.random.get_rng_state(), state)  # the global RNG is left as it was
    assert not torch.equal(first, head(build_backbone("minilm", num_labels=3, seed=1)))


def test_timm_vit_without_weights_is_the_seeds():
    torch.manual_seed(3)
    a = build_backbone("timm:vit_tiny_patch16_224", num_labels=3, img_size=32, patch_size=8)
    torch.rand(1000)
    b = build_backbone("timm:vit_tiny_patch16_224", num_labels=3, img_size=32, patch_size=8)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))


@pytest.mark.parametrize("name", ["vit_digits", "tiny_bert", "tiny_llama"])
def test_tiny_builders_leave_the_global_rng_as_it_was(name):
    """A random-init model is its seed's, and building it does not reseed what runs after it."""
    torch.manual_seed(4)
    torch.rand(10)
    state = torch.random.get_rng_state()
    a = build_backbone(name, num_labels=3, seed=5)
    assert torch.equal(torch.random.get_rng_state(), state)
    torch.rand(1000)
    b = build_backbone(name, num_labels=3, seed=5)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    c = build_backbone(name, num_labels=3, seed=6)
    assert not all(torch.equal(p, q) for p, q in zip(a.parameters(), c.parameters(), strict=True))
