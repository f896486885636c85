"""Hyperparameter selection without RT (METHOD.md §5).

Every candidate (an SO step size, a fine-tuning checkpoint) is measured on small fixed selection
sets in inference mode: a retain slice, the forget set and a validation set never trained on. The
rule, with smooth criteria rather than accuracies:

1. keep candidates whose damage -- mean KL(θ* || candidate) on the retain slice -- is at most ``eps``;
2. among them pick the one whose forget-set mean loss is closest to the validation mean loss
   (random forgetting), or whose forget accuracy is lowest (class forgetting: a removed class should
   not be predicted at all), ties broken by smaller damage;
3. if no candidate is within the bound, pick the least damaging one and say so.

An ``oracle`` mode (closest to RT) exists for analysis only; its choice is labelled as such.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from unlearn_lit.models.base import Backbone

TARGETS = ("val_loss", "class")


@dataclass
class Choice:
    """The selected candidate: its index in the table, and why."""

    index: int
    reason: str
    oracle: bool = False


class SelectionSets:
    """Pre-collated selection batches plus θ*'s reference predictions on the retain slice.

    Args:
        original: θ*, used once to cache reference log-probabilities on the retain slice.
        retain: batches of the retain slice (about 512 examples).
        forget: batches of D_f.
        val: batches of the validation set D_v (about 512 examples, never trained on).
    """

    def __init__(
        self, original: Backbone, retain: Iterable[dict], forget: Iterable[dict], val: Iterable[dict]
    ):
        self.retain, self.forget, self.val = list(retain), list(forget), list(val)
        if not self.forget:
            raise ValueError("selection needs a non-empty forget set")
        self.task = original.task
        self.reference = [self._logp(original, b) for b in self.retain]

    @torch.inference_mode()
    def _logp(self, model: Backbone, batch: dict) -> Tensor:
        was_training = model.training
        model.eval()
        logits = model(batch)
        model.train(was_training)
        return F.log_softmax(logits.double(), -1) if self.task == "classification" else logits.double()

    @torch.inference_mode()
    def measure(self, model: Backbone) -> dict[str, float]:
        """Damage on the retain slice, mean loss and accuracy on D_f and D_v; NaN-safe."""
        was_training = model.training
        model.eval()
        kl = []
        for batch, ref in zip(self.retain, self.reference, strict=True):
            cur = self._logp(model, batch)
            if self.task == "classification":
                kl.append((ref.exp() * (ref - cur)).sum(-1))  # KL(θ* || candidate) per example
            else:
                kl.append((ref - cur) ** 2)
        out = {"damage": torch.cat(kl).mean().item() if kl else 0.0}
        for name, batches in (("forget", self.forget), ("val", self.val)):
            losses, correct = [], []
            for batch in batches:
                logits = model(batch)
                losses.append(model.per_example_loss(batch, logits).double())
                if self.task == "classification":
                    correct.append((logits.argmax(-1) == batch["labels"]).double())
            out[f"{name}_loss"] = torch.cat(losses).mean().item() if losses else math.nan
            out[f"{name}_acc"] = torch.cat(correct).mean().item() if correct else math.nan
        model.train(was_training)
        return out


def choose(candidates: list[dict[str, float]], eps: float = 0.02, target: str = "val_loss") -> Choice:
    """Applies the RT-free rule to a candidate table (rows from :meth:`SelectionSets.measure`).

    Non-finite rows (a diverged candidate) are never chosen.
    """
    if target not in TARGETS:
        raise ValueError(f"unknown selection target {target!r}; valid choices: {', '.join(TARGETS)}")
    finite = [i for i, c in enumerate(candidates) if all(math.isfinite(v) for v in _criteria(c, target))]
    if not finite:
        raise ValueError("no candidate has finite selection criteria (every candidate diverged)")
    within = [i for i in finite if candidates[i]["damage"] <= eps]
    if not within:
        best = min(finite, key=lambda i: candidates[i]["damage"])
        return Choice(best, f"no candidate within damage bound {eps:g}; least damaging chosen")
    best = min(within, key=lambda i: (_distance(candidates[i], target), candidates[i]["damage"]))
    what = "forget loss closest to validation loss" if target == "val_loss" else "lowest forget accuracy"
    return Choice(best, f"{len(within)}/{len(candidates)} within damage {eps:g}; {what}")


def choose_oracle(candidates: list[dict[str, float]], gap: Callable[[dict], float]) -> Choice:
    """ORACLE (analysis only): the candidate with the smallest ``gap`` to RT."""
    scored = [(gap(c), i) for i, c in enumerate(candidates)]
    scored = [(g, i) for g, i in scored if math.isfinite(g)]
    if not scored:
        raise ValueError("no candidate has a finite gap to RT")
    return Choice(
        min(scored)[1], "ORACLE: closest to RT (uses the retrained model; analysis only)", oracle=True
    )


def _criteria(c: dict[str, float], target: str) -> tuple[float, ...]:
    return (
        (c["damage"], c["forget_loss"], c["val_loss"])
        if target == "val_loss"
        else (c["damage"], c["forget_acc"])
    )


def _distance(c: dict[str, float], target: str) -> float:
    return abs(c["forget_loss"] - c["val_loss"]) if target == "val_loss" else c["forget_acc"]
