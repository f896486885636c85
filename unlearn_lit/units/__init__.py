"""The unit layer: per architecture family, what a head and a filter are and which parameters they own.

Adding a family is a :class:`~unlearn_lit.families.Family` record (``unlearn_lit/families.py``) plus
one function ``backbone -> UnitLayout`` registered here under its name; a test checks that the two
registries name the same families.
"""

from __future__ import annotations

from unlearn_lit.models.base import Backbone
from unlearn_lit.registry import Registry
from unlearn_lit.units.hf_decoder import gpt2_layout, llama_layout
from unlearn_lit.units.hf_encoder import bert_layout, distilbert_layout
from unlearn_lit.units.layout import KINDS, Block, OwnedSlice, SliceRule, UnitLayout
from unlearn_lit.units.timm_vit import vit_layout

LAYOUTS: Registry = Registry("architecture")
for _name, _fn in {
    "bert": bert_layout,
    "roberta": bert_layout,
    "distilbert": distilbert_layout,
    "vit": vit_layout,
    "llama": llama_layout,
    "mistral": llama_layout,
    "gpt2": gpt2_layout,
}.items():
    LAYOUTS.register(_name)(_fn)


def unit_layout(backbone: Backbone) -> UnitLayout:
    """The :class:`UnitLayout` of ``backbone``; unsupported architectures name the supported ones."""
    return LAYOUTS.get(backbone.family)(backbone)


__all__ = ["KINDS", "LAYOUTS", "Block", "OwnedSlice", "SliceRule", "UnitLayout", "unit_layout"]
