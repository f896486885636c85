"""The selection sets every candidate is measured on, in inference mode (METHOD.md §5).

A retain slice (about 512 examples), the forget set D_f and the validation set D_v (never trained on).
θ*'s own measurements are the reference row the guard of :mod:`unlearn_lit.selection.rule` is
calibrated from, including the standard error of its mean validation loss. For class forgetting, the
guarded losses treat the forgotten classes as RT would: their validation examples are left out of the
guarded validation loss (``val_keep_loss``) and accuracy (``val_keep_acc``; both are meant to fall for
the forgotten class), and the guarded retain and validation losses are taken over the remaining
classes' logits only (a forgotten class's probability mass moving to the others is the point, not
damage). Accuracies are argmax over every class, as the reported metrics are.

Forward passes run in the model's dtype, or under ``torch.autocast`` at ``autocast`` (e.g. bfloat16:
1.8x faster on MiniLM on an AVX512-BF16 CPU); θ*'s reference row is measured the same way as every
candidate, and losses, log-probabilities and the KL are taken in float64 from the logits.
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from unlearn_lit.config.names import SELECTION_PRECISIONS
from unlearn_lit.data.buckets import sort_by_length, trim_padding
from unlearn_lit.masks.stats import batch_size
from unlearn_lit.models.base import Backbone

MEASURES = (
    "damage",
    "retain_loss",
    "retain_acc",
    "forget_loss",
    "forget_acc",
    "val_loss",
    "val_acc",
    "val_keep_loss",
    "val_keep_acc",
)


class SelectionSets:
    """Pre-collated selection batches, θ*'s reference predictions and θ*'s reference row.

    Args:
        original: θ*, measured once: reference log-probabilities on the retain slice and :attr:`ref`.
        retain: batches of the retain slice.
        forget: batches of D_f.
        val: batches of D_v.
        exclude_labels: labels left out of the guarded validation loss (the forgotten classes).
        autocast: dtype of ``torch.autocast`` for every forward pass (None: the model's dtype; see
            :func:`selection_dtype`).
    """

    def __init__(
        self,
        original: Backbone,
        retain: Iterable[dict],
        forget: Iterable[dict],
        val: Iterable[dict],
        exclude_labels: Sequence[int] = (),
        autocast: torch.dtype | None = None,
    ):
        device = next(original.parameters()).device  # batches live where θ* does
        self.autocast = autocast
        self._order: dict[str, Tensor] = {}  # per set: each stored example's position in the input
        for name, batches in (("retain", retain), ("forget", forget), ("val", val)):
            batches, self._order[name] = sort_by_length(list(batches))  # text: no padding to pay for
            setattr(self, name, [to_device(b, device) for b in batches])
        if not self.forget:
            raise ValueError("selection needs a non-empty forget set")
        self.task = original.task
        self.exclude_labels = tuple(int(c) for c in exclude_labels)
        self.reference: list[Tensor] | None = None  # θ*'s retain predictions, set by the first measure
        self._ref_stats: dict[str, tuple[Tensor, ...]] = {}  # θ*'s per-example measurements (CPU)
        self.ref = self.measure(original, reference=True)

    def _log_probs(self, logits: Tensor) -> Tensor:
        return F.log_softmax(logits.double(), -1) if self.task == "classification" else logits.double()

    @torch.inference_mode()
    def _losses(
        self, model: Backbone, batches: list[dict], outputs: list[Tensor] | None = None
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Per-example losses, the losses over the kept classes only, correctness (NaN for regression)
        and labels, float64; ``outputs`` collects the raw model outputs (one forward pass per batch).

        The kept-class loss renormalizes the softmax without the forgotten classes' logits (as RT,
        which never learnt them): pushing a forgotten class down is not collateral damage.
        """
        losses, kept, correct, labels = [], [], [], []
        device = next(model.parameters()).device
        for batch in batches:
            with (
                torch.autocast(device.type, dtype=self.autocast)
                if self.autocast
                else contextlib.nullcontext()
            ):
                logits = model(batch)
            logits = logits.float() if self.autocast else logits  # the losses of float logits
            if (
                outputs is not None
            ):  # LLMs: the [B] answer log-likelihood (a [B, T, V] reference would not fit)
                outputs.append(-model.per_example_loss(batch, logits) if self.task == "lm" else logits)
            losses.append(model.per_example_loss(batch, logits).double())
            labels.append(batch["labels"].reshape(len(losses[-1]), -1)[:, 0].double())
            if self.task == "classification":
                correct.append((logits.argmax(-1) == batch["labels"]).double())
            else:
                correct.append(torch.full_like(losses[-1], math.nan))
            if self.exclude_labels and self.task == "classification":
                logits = logits.clone()
                logits[:, list(self.exclude_labels)] = -math.inf
                kept.append(model.per_example_loss(batch, logits).double())
            else:
                kept.append(losses[-1])
        empty = torch.zeros(0, dtype=torch.float64)
        return tuple(torch.cat(t) if t else empty for t in (losses, kept, correct, labels))  # type: ignore[return-value]

    @torch.inference_mode()
    def measure(
        self, model: Backbone, reference: bool = False, stop: Callable[[dict[str, float]], bool] | None = None
    ) -> dict[str, float]:
        """The row of one candidate: every key of :data:`MEASURES` (NaN where a set is empty); one
        forward pass per example. ``reference``: ``model`` is θ* -- keep its retain predictions (the
        KL's reference) and per-example measurements (:meth:`subset` slices them), and add the standard
        error of its mean guarded validation loss.

        ``stop``: the guarded sets (validation and retain slice, the smaller first) are measured before
        D_f, and after each of them ``stop(row so far)`` may end the measurement (the rule's guard has
        already failed, :meth:`~unlearn_lit.selection.rule.SelectionRule.outside`): the sets not measured
        are NaN in the row and ``pruned`` names the last one measured. Never with ``reference``.
        """
        was_training = model.training
        model.eval()
        stats: dict[str, tuple[Tensor, ...]] = {}
        damage, pruned = math.nan, None
        for name in self._order_measured(stop is not None and not reference):
            if name == "retain":
                logits: list[Tensor] = []
                stats[name] = self._losses(model, self.retain, logits)
                damage = self._damage(logits, reference)
            else:
                stats[name] = self._losses(model, getattr(self, name))
            if name != "forget" and stop is not None and not reference:
                row = self._row(stats, damage, False)
                if stop(row):
                    pruned = name
                    break
        if reference:
            self._ref_stats = {k: tuple(t.cpu() for t in v) for k, v in stats.items()}
        model.train(was_training)
        row = self._row(stats, damage, reference)
        return row if pruned is None else {**row, "pruned": pruned}

    def _order_measured(self, guarded_first: bool) -> tuple[str, ...]:
        """The order the sets are measured in: with ``guarded_first``, the smaller guarded set (validation
        or retain slice; retain on a tie), the other, then D_f."""
        if not guarded_first:
            return ("retain", "forget", "val")
        sizes = self.sizes()
        return ("val", "retain", "forget") if sizes["val"] < sizes["retain"] else ("retain", "val", "forget")

    def _damage(self, logits: list[Tensor], reference: bool) -> float:
        """Mean KL(θ* || candidate) over the retain slice (squared difference for regression and LMs);
        with ``reference``, ``logits`` are θ*'s and become the reference."""
        current = [self._log_probs(z) for z in logits]
        if reference:
            self.reference = current
        kl = []
        for ref, cur in zip(self.reference, current, strict=True):
            if self.task == "classification":
                kl.append((ref.exp() * (ref - cur)).sum(-1))  # KL(θ* || candidate) per example
            else:
                kl.append((ref - cur) ** 2)
        return _mean(torch.cat(kl)) if kl else 0.0

    def _row(self, stats: dict[str, tuple[Tensor, ...]], damage: float, reference: bool) -> dict[str, float]:
        """The measurements of one candidate from its per-example ``(losses, kept, correct, labels)``
        of each set (NaN for a set not in ``stats``)."""
        empty = torch.zeros(0, dtype=torch.float64)
        nothing = (empty,) * 4
        _, kept, correct, labels = stats.get("retain", nothing)  # (a retain set holds no forgotten class)
        out = {"retain_loss": _mean(self._keep(kept, labels)), "retain_acc": _mean(correct)}
        out["damage"] = damage
        for name in ("forget", "val"):
            losses, kept, correct, labels = stats.get(name, nothing)
            out[f"{name}_loss"], out[f"{name}_acc"] = _mean(losses), _mean(correct)
        _, kept, correct, labels = stats.get("val", nothing)
        keep = self._keep(kept, labels)  # the validation set's
        out["val_keep_loss"], out["val_keep_acc"] = _mean(keep), _mean(self._keep(correct, labels))
        if reference:  # the guard's noise scale: θ*'s standard error
            out["val_keep_loss_se"] = float(keep.std() / math.sqrt(len(keep))) if len(keep) > 1 else math.inf
        return {k: out[k] for k in (*MEASURES, *(("val_keep_loss_se",) if reference else ()))}

    def _keep(self, losses: Tensor, labels: Tensor) -> Tensor:
        if not self.exclude_labels:
            return losses
        excluded = torch.tensor(self.exclude_labels, dtype=labels.dtype, device=labels.device)
        return losses[~torch.isin(labels, excluded)]

    def to(self, device: torch.device | str) -> SelectionSets:
        """Moves the pre-collated batches and references to ``device`` (in place; a no-op when there)."""
        for attr in ("retain", "forget", "val"):
            setattr(self, attr, [to_device(b, device) for b in getattr(self, attr)])
        self.reference = [r.to(device) for r in self.reference]
        return self

    def sizes(self) -> dict[str, int]:
        """Examples in each set."""
        return {k: sum(batch_size(b) for b in getattr(self, k)) for k in ("retain", "forget", "val")}

    def subset(self, n: int | None, spread: bool = False) -> SelectionSets:
        """``n`` examples of each set (a coarse screen): the first ones, or with ``spread`` ones evenly
        spaced through each set (examples sit in dataset order, which may be grouped, e.g. by writer or
        source: a spread screen samples every part of it); ``self`` when ``n`` is None.

        No forward pass: the subset's reference predictions and row are θ*'s, sliced from the
        per-example measurements kept when the sets were built (so a subset of θ*'s sets keeps θ* as
        its reference even where the model being unlearned started elsewhere, e.g. a repair). Its
        standard error is the full sets' (the final choice is held to that tolerance).
        """
        if n is None:
            return self
        sub, picks = copy.copy(self), {}
        sub._order = {}
        for name, total in self.sizes().items():
            if spread and n < total:
                wanted = torch.arange(n) * total // n  # [n] evenly spaced positions in the input order
            else:
                wanted = torch.arange(min(n, total))
            # where those examples are stored (text sets are stored sorted by length)
            picks[name] = torch.sort(torch.argsort(self._order[name])[wanted]).values
            setattr(sub, name, _pick(getattr(self, name), picks[name]))
            sub._order[name] = torch.argsort(torch.argsort(self._order[name][picks[name]]))
        retain = [batch_size(b) for b in sub.retain]
        sub.reference = list(torch.cat(self.reference)[picks["retain"]].split(retain)) if retain else []
        sub._ref_stats = {k: tuple(t[picks[k]] for t in v) for k, v in self._ref_stats.items()}
        sub.ref = {**sub._row(sub._ref_stats, 0.0, True), "val_keep_loss_se": self.ref["val_keep_loss_se"]}
        return sub


def _pick(batches: list[dict[str, Any]], positions: Tensor) -> list[dict[str, Any]]:
    """The examples at sorted ``positions`` of a set, each kept in its own (smaller) batch."""
    out, start = [], 0
    for batch in batches:
        size = batch_size(batch)
        rows = positions[(positions >= start) & (positions < start + size)] - start
        if len(rows):
            picked = {k: v[rows.to(v.device)] if isinstance(v, Tensor) else v for k, v in batch.items()}
            out.append(trim_padding(picked))
        start += size
    return out


def _mean(t: Tensor) -> float:
    return t.mean().item() if t.numel() else math.nan


def to_device(batch: dict[str, Any], device: torch.device | str | None) -> dict[str, Any]:
    """A batch with its tensors on ``device``."""
    return {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}


def first_examples(
    batches: Iterable[dict[str, Tensor]], n: int | None = None, device: torch.device | None = None
) -> list[dict[str, Tensor]]:
    """Batches holding the first ``n`` examples (all when None; the last one trimmed), moved to ``device``."""
    out, seen = [], 0
    for batch in batches:
        if n is not None and seen >= n:
            break
        keep = batch_size(batch) if n is None else min(batch_size(batch), n - seen)
        batch = {k: v[:keep] if isinstance(v, Tensor) else v for k, v in batch.items()}
        out.append(to_device(batch, device) if device is not None else batch)
        seen += keep
    return out


_AUTOCAST = {"bf16": "bfloat16", "16": "float16", "bf16-mixed": "bfloat16", "16-mixed": "float16"}


def selection_dtype(precision: str, runtime_precision: str | None = None) -> torch.dtype | None:
    """The autocast dtype of the selection's forward passes (:class:`SelectionSets`).

    Args:
        precision: ``auto`` (the runtime's: bfloat16 under ``bf16-mixed``, float16 under ``16-mixed``,
            else none), ``32`` (none: the weights' own dtype), ``bf16`` or ``16``.
        runtime_precision: the run's ``--trainer.precision``.
    """
    if precision not in SELECTION_PRECISIONS:
        raise ValueError(
            f"unknown selection precision {precision!r}; valid choices: {', '.join(SELECTION_PRECISIONS)}"
        )
    name = _AUTOCAST.get(runtime_precision or "") if precision == "auto" else _AUTOCAST.get(precision)
    return getattr(torch, name) if name else None


def selection_sets(
    original: Backbone,
    datamodule: Any,
    n_retain: int,
    n_val: int,
    seed: int,
    autocast: torch.dtype | None = None,
) -> SelectionSets:
    """A seeded retain slice of ``n_retain``, D_f and the first ``n_val`` examples of D_v, on θ*'s device,
    measured under ``autocast`` (None: the weights' dtype).

    The forgotten classes (class forgetting) are left out of the guarded validation loss.
    """
    device = next(original.parameters()).device
    spec = getattr(datamodule, "forget_spec", None)
    exclude = tuple(spec.classes) if getattr(spec, "policy", None) == "class" else ()
    return SelectionSets(
        original,
        first_examples(datamodule.retain_dataloader(subsample=n_retain, seed=seed), device=device),
        first_examples(datamodule.forget_dataloader(), device=device),
        first_examples(datamodule.val_dataloader(), n_val, device),
        exclude_labels=exclude,
        autocast=autocast,
    )
