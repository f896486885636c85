"""The family registry (unlearn_lit/families.py): one record per family, used by every layer."""

from __future__ import annotations

import pytest
import torch

from unlearn_lit.families import FAMILIES, Family, family_of, is_causal, register
from unlearn_lit.models import build_backbone
from unlearn_lit.registry import UnknownNameError
from unlearn_lit.units import LAYOUTS, unit_layout


def test_every_family_has_a_unit_layout_and_every_layout_a_family():
    assert LAYOUTS.names() == FAMILIES.names()


@pytest.mark.parametrize("name", [n for n in FAMILIES.names() if FAMILIES.get(n).model_types])
def test_causal_flag_matches_what_the_model_computes(name):
    """Independent of the flag: change the last token; a causal model's earlier outputs do not move."""
    backbone = build_backbone(f"tiny_{name}", num_labels=3).eval()
    net = backbone.net
    assert family_of(net.config.model_type).name == name == backbone.family
    assert unit_layout(backbone).family == name
    ids = torch.tensor([[5, 9, 17, 23, 31, 40]])
    other = ids.clone()
    other[0, -1] = 7
    with torch.no_grad():
        a = net(input_ids=ids, output_hidden_states=True).hidden_states[-1]
        b = net(input_ids=other, output_hidden_states=True).hidden_states[-1]
    earlier_unchanged = torch.allclose(a[0, :-1], b[0, :-1], atol=1e-6)
    assert earlier_unchanged == is_causal(name)


def test_unknown_model_types_and_double_claims_fail_naming_the_supported():
    with pytest.raises(UnknownNameError, match="unsupported HF model_type 'qwen2'; supported: .*llama"):
        family_of("qwen2")
    with pytest.raises(ValueError, match="already belong to family 'llama'"):
        register(Family("llama_again", ("llama",), causal=True))
    with pytest.raises(UnknownNameError, match="valid choices"):
        is_causal("qwen2")
