"""Units of HF decoders: Llama, Mistral (grouped-query attention, gated FFN) and GPT-2 (fused,
transposed ``Conv1D`` weights) (METHOD.md §2).

With GQA a K/V row block serves ``H / H_kv`` query heads; it is updated when any head of its group is
selected (METHOD.md §2 [choice]), so those slices are marked shared.
"""

from __future__ import annotations

from unlearn_lit.models.base import Backbone
from unlearn_lit.units.layout import LayerUnits, UnitLayout, projection_rules


def llama_layout(backbone: Backbone) -> UnitLayout:
    """Llama / Mistral: ``self_attn.{q,k,v,o}_proj``, ``mlp.{gate,up,down}_proj``."""
    cfg = backbone.net.config
    heads = cfg.num_attention_heads
    d_h = getattr(cfg, "head_dim", None) or cfg.hidden_size // heads
    group = heads // (cfg.num_key_value_heads or heads)
    layers = []
    for l in range(cfg.num_hidden_layers):
        p = f"net.model.layers.{l}"
        head = projection_rules(backbone, f"{p}.self_attn.q_proj", "out", d_h)
        for kv in ("k_proj", "v_proj"):
            head += projection_rules(backbone, f"{p}.self_attn.{kv}", "out", d_h, group=group)
        head += projection_rules(backbone, f"{p}.self_attn.o_proj", "in", d_h)
        filt = sum((projection_rules(backbone, f"{p}.mlp.{g}_proj", "out", 1) for g in ("gate", "up")), ())
        filt += projection_rules(backbone, f"{p}.mlp.down_proj", "in", 1)
        layers.append(
            LayerUnits(f"{p}.self_attn.o_proj", f"{p}.mlp.down_proj", {"head": head, "filter": filt})
        )
    return UnitLayout(backbone.family, layers, {"head": heads, "filter": cfg.intermediate_size}, d_h)


def gpt2_layout(backbone: Backbone) -> UnitLayout:
    """GPT-2: fused ``attn.c_attn`` ([d, 3d], Q|K|V columns), ``attn.c_proj``, ``mlp.c_fc``, ``mlp.c_proj``."""
    cfg = backbone.net.config
    heads, d_h = cfg.n_head, cfg.n_embd // cfg.n_head
    layers = []
    for l in range(cfg.n_layer):
        p = f"net.transformer.h.{l}"
        head = projection_rules(backbone, f"{p}.attn.c_attn", "out", d_h, sections=3)
        head += projection_rules(backbone, f"{p}.attn.c_proj", "in", d_h)
        filt = projection_rules(backbone, f"{p}.mlp.c_fc", "out", 1) + projection_rules(
            backbone, f"{p}.mlp.c_proj", "in", 1
        )
        layers.append(LayerUnits(f"{p}.attn.c_proj", f"{p}.mlp.c_proj", {"head": head, "filter": filt}))
    n_inner = cfg.n_inner or 4 * cfg.n_embd
    return UnitLayout("gpt2", layers, {"head": heads, "filter": n_inner}, d_h)
