"""Unlearned models saved in their native format, loadable with the stock library alone.

- HF transformers backbones: ``save_pretrained`` (config + ``model.safetensors``) and the tokenizer;
  ``AutoModelForSequenceClassification.from_pretrained(dir)`` (or ``AutoModelForCausalLM``) loads it.
- timm ViTs: ``model.safetensors`` (the timm model's own state dict) and ``config.json`` with the
  ``VisionTransformer`` arguments (or the timm model name) and the input normalization:
  ``timm.models.vision_transformer.VisionTransformer(**config["kwargs"])`` + ``load_state_dict``.

Either directory also loads back into a :class:`Backbone` of the same architecture with
:func:`unlearn_lit.phases.train.load_original` (``original: DIR``).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from safetensors.torch import save_model

from unlearn_lit.models.base import Backbone


def vit_config(net: Any, name: str) -> dict[str, Any]:
    """The ``VisionTransformer`` arguments of a timm ViT (enough to rebuild it), its name and input norm."""
    block = net.blocks[0]
    kwargs = {
        "img_size": int(net.patch_embed.img_size[0]),
        "patch_size": int(net.patch_embed.patch_size[0]),
        "in_chans": int(net.patch_embed.proj.in_channels),
        "num_classes": int(net.num_classes),
        "embed_dim": int(net.embed_dim),
        "depth": len(net.blocks),
        "num_heads": int(block.attn.num_heads),
        "mlp_ratio": block.mlp.fc1.out_features / net.embed_dim,
    }
    cfg = getattr(net, "pretrained_cfg", None) or {}
    return {"library": "timm", "architecture": "VisionTransformer", "timm_name": name, "kwargs": kwargs,
            "mean": cfg.get("mean", 0.5), "std": cfg.get("std", 0.5)}  # fmt: skip


def save_backbone(backbone: Backbone, directory: str | Path) -> Path:
    """Writes ``backbone`` to ``directory`` (created; must not exist) in its native format, atomically."""
    directory = Path(directory)
    if directory.exists():
        raise FileExistsError(f"{directory} exists; models are never overwritten")
    tmp = directory.with_name(f".{directory.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    net = backbone.net
    if hasattr(net, "save_pretrained"):  # HF transformers
        net.save_pretrained(tmp)
        tokenizer = getattr(backbone.collate, "tokenizer", None)
        if tokenizer is not None:
            tokenizer.save_pretrained(tmp)
    else:  # timm
        save_model(net, str(tmp / "model.safetensors"))
        (tmp / "config.json").write_text(json.dumps(vit_config(net, backbone.name), indent=1))
    os.replace(tmp, directory)
    return directory
