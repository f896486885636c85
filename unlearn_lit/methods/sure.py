"""SURE: selective unlearning via representation erasure (Sepahvand et al., ICLR 2025; METHOD.md §6).

Domain-adversarial training (DANN): a domain classifier learns to tell the representations of forget
examples (domain 1) from those of unseen examples of the same distribution (domain 0); a
gradient-reversal layer between the backbone and the classifier makes the backbone erase that
difference, while cross-entropy on D_r keeps utility.

The representation is the input of the backbone's classification head (timm ``get_classifier()``,
HF ``classifier`` / ``score``), captured with a forward pre-hook: the pooled feature vector for ViT
and BERT, the first token for heads that pool themselves (RoBERTa), the last non-padding token for
decoders. **[choice]** The unseen domain is half of D_v; the other half stays the selection rule's
validation set, so the checkpoint is never chosen on data the method trained against.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Subset

from unlearn_lit.config.finetune import SureConfig
from unlearn_lit.families import is_causal
from unlearn_lit.methods.base import MethodResult, UnlearnInputs, register
from unlearn_lit.methods.finetune import finetune
from unlearn_lit.methods.losses import mean_loss
from unlearn_lit.models.base import Backbone

HEADS = ("classifier", "score", "head")


class GradReverse(torch.autograd.Function):
    """Identity forward; multiplies the gradient by ``-weight`` backward."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: float) -> Tensor:
        ctx.weight = weight
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:
        return -ctx.weight * grad, None


def classification_head(model: Backbone) -> nn.Module:
    """The backbone's classification head (the module whose input is the representation)."""
    if hasattr(model.net, "get_classifier"):  # timm
        return model.net.get_classifier()
    for name in HEADS:
        if isinstance(head := getattr(model.net, name, None), nn.Module):
            return head
    raise ValueError(f"no classification head found on {type(model.net).__name__}; looked for {HEADS}")


def representation(model: Backbone, batch: dict[str, Tensor]) -> Tensor:
    """The representation ``[B, D]`` entering the classification head."""
    captured: list[Tensor] = []
    handle = classification_head(model).register_forward_pre_hook(lambda m, args: captured.append(args[0]))
    try:
        model(batch)
    finally:
        handle.remove()
    x = captured[0]
    if x.dim() == 3:  # [B, T, D]: heads that pool themselves
        if is_causal(model.family) and "attention_mask" in batch:  # decoders pool the last token
            last = batch["attention_mask"].sum(1).long() - 1  # right padding
            return x[torch.arange(x.shape[0], device=x.device), last]
        return x[:, 0]
    return x


class SureObjective(nn.Module):
    """Cross-entropy on D_r plus the domain-adversarial term on forget vs unseen representations.

    Args:
        dim: width of the representation.
        hidden: width of the domain classifier's hidden layer.
        weight: gradient-reversal weight λ.
        lr: learning rate of the domain classifier (None = the phase's).
    """

    def __init__(self, dim: int, hidden: int = 256, weight: float = 1.0, lr: float | None = None) -> None:
        super().__init__()
        self.domain = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, 1))
        self.weight, self.lr = weight, lr

    def forward(self, model, forget, retain, original, progress, unseen) -> Tensor:
        z = torch.cat([representation(model, forget), representation(model, unseen)])
        y = torch.cat([z.new_ones(len(forget["labels"])), z.new_zeros(len(unseen["labels"]))])
        logits = self.domain(GradReverse.apply(z, self.weight)).squeeze(-1)
        return mean_loss(model, retain) + F.binary_cross_entropy_with_logits(logits, y)


def split_loader(loader: DataLoader, seed: int) -> tuple[DataLoader, DataLoader]:
    """Two loaders over a seeded random halving of ``loader.dataset`` (first shuffled, second not)."""
    n = len(loader.dataset)
    if n < 2:
        raise ValueError(f"SURE needs at least 2 validation examples to split, got {n}")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    halves = sorted(perm[: n // 2]), sorted(perm[n // 2 :])
    unseen = DataLoader(
        Subset(loader.dataset, halves[0]),
        batch_size=loader.batch_size,
        shuffle=True,
        generator=torch.Generator().manual_seed(seed),
        collate_fn=loader.collate_fn,
    )
    rest = DataLoader(
        Subset(loader.dataset, halves[1]), batch_size=loader.batch_size, collate_fn=loader.collate_fn
    )
    return unseen, rest


@register("sure", SureConfig)
def run(inputs: UnlearnInputs, cfg: SureConfig) -> MethodResult:
    """Domain-adversarial erasure of forget representations plus cross-entropy on D_r."""
    dm = inputs.datamodule
    unseen, selection_val = split_loader(dm.val_dataloader(batch_size=cfg.unseen_batch_size), inputs.seed)
    with torch.no_grad():
        dim = representation(inputs.original, next(iter(dm.forget_dataloader()))).shape[-1]
    objective = SureObjective(dim, cfg.domain_hidden, cfg.adversarial_weight, cfg.domain_lr)
    return finetune(
        inputs,
        cfg,
        objective,
        uses=("forget", "retain"),
        extra_loaders={"unseen": unseen},
        val_loader=selection_val,
    )
