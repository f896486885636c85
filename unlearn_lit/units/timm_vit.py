"""Units of timm Vision Transformers: fused ``attn.qkv`` (three row slices per head), ``attn.proj``,
``mlp.fc1``, ``mlp.fc2`` (METHOD.md §2)."""

from __future__ import annotations

from unlearn_lit.models.base import Backbone
from unlearn_lit.units.layout import LayerUnits, UnitLayout, projection_rules


def vit_layout(backbone: Backbone) -> UnitLayout:
    net = backbone.net
    attn0 = net.blocks[0].attn
    heads, d_h = attn0.num_heads, attn0.head_dim
    layers = []
    for l in range(len(net.blocks)):
        p = f"net.blocks.{l}"
        head = projection_rules(backbone, f"{p}.attn.qkv", "out", d_h, sections=3)
        head += projection_rules(backbone, f"{p}.attn.proj", "in", d_h)
        filt = projection_rules(backbone, f"{p}.mlp.fc1", "out", 1) + projection_rules(
            backbone, f"{p}.mlp.fc2", "in", 1
        )
        layers.append(LayerUnits(f"{p}.attn.proj", f"{p}.mlp.fc2", {"head": head, "filter": filt}))
    return UnitLayout("vit", layers, {"head": heads, "filter": net.blocks[0].mlp.fc1.out_features}, d_h)
