"""timm Vision Transformers: by timm name (``pretrained`` only when online) or an explicit small config."""

from __future__ import annotations

from typing import Any

import timm
from timm.models.vision_transformer import VisionTransformer

from unlearn_lit.models.base import Backbone, ImageCollate, seeded_init


def _wrap(net: VisionTransformer, name: str) -> Backbone:
    img = net.patch_embed.img_size
    cfg = getattr(net, "pretrained_cfg", None) or {}
    mean, std = cfg.get("mean", 0.5), cfg.get("std", 0.5)
    collate = ImageCollate(img[0], net.patch_embed.proj.in_channels, mean, std)
    return Backbone(net, "vit", "classification", net.num_classes, collate, name=name)


def small_vit(
    num_labels: int = 10,
    img_size: int = 8,
    patch_size: int = 2,
    in_chans: int = 1,
    embed_dim: int = 64,
    depth: int = 4,
    num_heads: int = 4,
    mlp_ratio: float = 2.0,
    seed: int = 0,
) -> Backbone:
    """A small random-init ViT (default: 4 layers x 4 heads, 128 filters per layer, for 8x8 digits)."""
    with seeded_init(seed):  # the global RNG is left as it was
        net = VisionTransformer(
            img_size=img_size,
            patch_size=patch_size,
            in_chans=in_chans,
            num_classes=num_labels,
            embed_dim=embed_dim,
            depth=depth,
            num_heads=num_heads,
            mlp_ratio=mlp_ratio,
        )
    net.pretrained_cfg = {"mean": 0.5, "std": 0.5}
    return _wrap(net, f"vit_small_{img_size}px")


def from_timm(
    name: str, num_labels: int = 10, pretrained: bool = False, seed: int = 0, **kwargs: Any
) -> Backbone:
    """Any timm ViT by name, e.g. ``vit_base_patch16_224``; ``pretrained=True`` downloads weights
    (online). ``seed`` initializes what the weights lack (the new head; everything without them)."""
    with seeded_init(seed):
        net = timm.create_model(name, pretrained=pretrained, num_classes=num_labels, **kwargs)
    if not isinstance(net, VisionTransformer):
        raise ValueError(
            f"timm model {name!r} is a {type(net).__name__}; unlearn_lit supports timm ViTs only"
        )
    return _wrap(net, name)
