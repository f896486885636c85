"""Units of HF encoders: BERT (incl. MiniLM), RoBERTa, DistilBERT (METHOD.md §2 table)."""

from __future__ import annotations

from unlearn_lit.models.base import Backbone
from unlearn_lit.units.layout import LayerUnits, UnitLayout, projection_rules


def bert_layout(backbone: Backbone) -> UnitLayout:
    """BERT / RoBERTa: ``attention.self.{query,key,value}``, ``attention.output.dense``,
    ``intermediate.dense``, ``output.dense``."""
    net, cfg = backbone.net, backbone.net.config
    heads, d_h = cfg.num_attention_heads, cfg.hidden_size // cfg.num_attention_heads
    base = f"net.{net.base_model_prefix}.encoder.layer"
    layers = []
    for l in range(cfg.num_hidden_layers):
        p = f"{base}.{l}"
        head = sum(
            (
                projection_rules(backbone, f"{p}.attention.self.{q}", "out", d_h)
                for q in ("query", "key", "value")
            ),
            (),
        )
        head += projection_rules(backbone, f"{p}.attention.output.dense", "in", d_h)
        filt = projection_rules(backbone, f"{p}.intermediate.dense", "out", 1)
        filt += projection_rules(backbone, f"{p}.output.dense", "in", 1)
        layers.append(
            LayerUnits(f"{p}.attention.output.dense", f"{p}.output.dense", {"head": head, "filter": filt})
        )
    return UnitLayout(backbone.family, layers, {"head": heads, "filter": cfg.intermediate_size}, d_h)


def distilbert_layout(backbone: Backbone) -> UnitLayout:
    """DistilBERT: ``attention.{q,k,v}_lin``, ``attention.out_lin``, ``ffn.lin1``, ``ffn.lin2``."""
    cfg = backbone.net.config
    heads, d_h = cfg.n_heads, cfg.dim // cfg.n_heads
    layers = []
    for l in range(cfg.n_layers):
        p = f"net.distilbert.transformer.layer.{l}"
        head = sum((projection_rules(backbone, f"{p}.attention.{q}_lin", "out", d_h) for q in "qkv"), ())
        head += projection_rules(backbone, f"{p}.attention.out_lin", "in", d_h)
        filt = projection_rules(backbone, f"{p}.ffn.lin1", "out", 1) + projection_rules(
            backbone, f"{p}.ffn.lin2", "in", 1
        )
        layers.append(LayerUnits(f"{p}.attention.out_lin", f"{p}.ffn.lin2", {"head": head, "filter": filt}))
    return UnitLayout(backbone.family, layers, {"head": heads, "filter": cfg.hidden_dim}, d_h)
