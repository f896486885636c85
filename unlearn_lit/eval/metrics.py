"""The metric suite of METHOD.md §7: forget/retain/test accuracy (UA / RA / TA; Spearman for regression),
both MIA conventions, the loss attack, and Avg.Gap to RT.

Every score is a fraction in [0, 1] (Spearman in [-1, 1]) except Avg.Gap, which the paper reports in
percentage points. The MIA feature is ``exp(-loss)``: exactly the true-class softmax probability for
classification, and a monotone transform of the squared error for regression **[choice]**.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader
from torchmetrics.functional import spearman_corrcoef
from torchmetrics.functional.classification import multiclass_accuracy
from tqdm.auto import tqdm

from unlearn_lit.data.buckets import sorted_windows
from unlearn_lit.eval.mia import confidence_mia, loss_attack
from unlearn_lit.models.base import Backbone, predictions

if TYPE_CHECKING:
    from unlearn_lit.data import UnlearnDataModule

log = logging.getLogger(__name__)
GAP_KEYS = ("forget/{score}", "forget/mia", "retain/{score}", "test/{score}")


@dataclass
class Outputs:
    """Per-example outputs of one split, in loader order."""

    preds: Tensor  # [N] predicted labels or values
    labels: Tensor  # [N]
    losses: Tensor  # [N] per-example losses
    index: Tensor  # [N] the examples' ``index`` field

    @property
    def confidence(self) -> Tensor:
        """``exp(-loss)``: the softmax probability of the true class for classification."""
        return torch.exp(-self.losses)


@torch.inference_mode()
def predict(backbone: Backbone, loader: Iterable[dict[str, Tensor]], desc: str = "predict") -> Outputs:
    """Runs ``backbone`` in eval mode over ``loader`` and collects :class:`Outputs` on the CPU."""
    was_training = backbone.training
    backbone.eval()
    device = next(backbone.parameters()).device
    parts: dict[str, list[Tensor]] = {"preds": [], "labels": [], "losses": [], "index": []}
    total = len(loader) if isinstance(loader, DataLoader) else None
    bar = tqdm(desc=desc, total=total, leave=False, disable=total is not None and total < 20)
    try:  # text: each window of batches re-cut by length (no padding), results put back in loader order
        for window, order in sorted_windows(loader):
            part: dict[str, list[Tensor]] = {k: [] for k in parts}
            for batch in window:
                batch = {k: v.to(device) if isinstance(v, Tensor) else v for k, v in batch.items()}
                logits = backbone(batch)
                part["preds"].append(predictions(logits, backbone.task).cpu())
                part["losses"].append(backbone.per_example_loss(batch, logits).float().cpu())
                part["labels"].append(batch["labels"].cpu())
                if "index" in batch:
                    part["index"].append(batch["index"].cpu())
            back = torch.argsort(order)  # loader position -> position in the re-cut window
            for k, v in part.items():
                if v:
                    parts[k].append(torch.cat(v)[back])
            bar.update(len(window))
    finally:
        bar.close()
        backbone.train(was_training)
    return Outputs(
        **{
            k: torch.cat(v) if v else torch.empty(0, dtype=torch.long if k == "index" else torch.float)
            for k, v in parts.items()
        }
    )


def score(out: Outputs, task: str, num_labels: int) -> float:
    """Accuracy (classification) or Spearman correlation (regression) of one split."""
    if task == "regression":
        return float(spearman_corrcoef(out.preds.float(), out.labels.float()))
    return float(multiclass_accuracy(out.preds, out.labels, num_classes=num_labels, average="micro"))


def evaluate(
    backbone: Backbone,
    datamodule: UnlearnDataModule,
    retain_subsample: int | None = None,
    seed: int = 0,
    stop: Callable[[dict[str, float]], bool] | None = None,
) -> dict[str, float]:
    """UA, RA, TA, both MIA conventions and the loss attack of ``backbone`` on ``datamodule``'s splits.

    Args:
        backbone: the model to judge (original, retrain or unlearned).
        datamodule: an :class:`~unlearn_lit.data.UnlearnDataModule`; bound to ``backbone`` if unbound.
        retain_subsample: score RA on a seeded subsample of D_r (large datasets); the MIA members are
            still the first |D_t| examples of D_r.
        seed: seed of the retain subsample.
        stop: called with the scores so far after D_f (``forget/<score>``) and again after the test set
            (``test/<score>`` added); when it returns True the evaluation ends there and returns those
            scores only (the retain split, the largest, is measured last).

    Returns:
        ``{split}/{acc|spearman}`` for forget, retain and test; ``forget/mia``, ``forget/mia_efficacy``,
        ``forget/mia_attack_acc``, ``forget/loss_auc``, ``forget/loss_tpr_at_1pct_fpr``; for class
        forgetting also ``test_forget_class/acc`` and ``test_retain_class/acc``.
    """
    if backbone.task == "lm":
        raise ValueError("evaluate() scores classification and regression; use the LLM metrics for task 'lm'")
    if datamodule.collate_fn is None:
        datamodule.bind(backbone)
    task, n_labels = datamodule.dataset.task, datamodule.dataset.num_labels
    name = "spearman" if task == "regression" else "acc"
    forget = predict(backbone, datamodule.forget_dataloader(), "forget")
    partial = {f"forget/{name}": score(forget, task, n_labels)}
    if stop is not None and stop(dict(partial)):
        return partial
    test = predict(backbone, datamodule.test_dataloader(), "test")
    partial[f"test/{name}"] = score(test, task, n_labels)
    if stop is not None and stop(dict(partial)):
        return partial
    if retain_subsample is None:
        retain = predict(backbone, datamodule.retain_dataloader(), "retain")
        members = _head(retain, len(datamodule.mia_members))  # D_r is sorted: its prefix is the shadow set
    else:
        retain = predict(
            backbone, datamodule.retain_dataloader(subsample=retain_subsample, seed=seed), "retain"
        )
        members = predict(backbone, datamodule.loader("mia_members"), "mia members")
    nonmembers = _head(test, len(datamodule.mia_nonmembers))
    metrics = {
        f"{split}/{name}": score(out, task, n_labels)
        for split, out in (("forget", forget), ("retain", retain), ("test", test))
    }
    mia = confidence_mia(members.confidence.numpy(), nonmembers.confidence.numpy(), forget.confidence.numpy())
    metrics.update({f"forget/{k}": v for k, v in mia.items() if k != "attack_acc"})
    metrics["forget/mia_attack_acc"] = mia["attack_acc"]
    attack = loss_attack(forget.losses.numpy(), test.losses.numpy(), fpr=0.01)
    metrics["forget/loss_auc"] = attack["loss_auc"]
    metrics["forget/loss_tpr_at_1pct_fpr"] = attack["loss_tpr_at_fpr"]
    spec = datamodule.forget_spec
    if spec.policy == "class":
        in_class = torch.isin(test.labels, torch.tensor(spec.classes))
        metrics["test_forget_class/acc"] = _acc(test, in_class)
        metrics["test_retain_class/acc"] = _acc(test, ~in_class)
    return metrics


def _head(out: Outputs, n: int) -> Outputs:
    return Outputs(out.preds[:n], out.labels[:n], out.losses[:n], out.index[:n])


def _acc(out: Outputs, keep: Tensor) -> float:
    return float((out.preds[keep] == out.labels[keep]).float().mean()) if keep.any() else float("nan")


def avg_gap(
    metrics: Mapping[str, float], retrain: Mapping[str, float], keys: Iterable[str] | None = None
) -> float:
    """Avg.Gap: mean |metric - metric_RT| over UA, MIA, RA, TA, in percentage points.

    Args:
        metrics: the method's metrics (fractions, as :func:`evaluate` returns them).
        retrain: RT's metrics on the same splits.
        keys: which metrics to average; default forget/mia/retain/test with ``acc`` or ``spearman``.
    """
    keys = gap_keys(retrain) if keys is None else list(keys)
    missing = [k for k in keys if k not in metrics or k not in retrain]
    if missing:
        raise KeyError(
            f"Avg.Gap needs {missing} in both metric dicts; available: {sorted(set(metrics) & set(retrain))}"
        )
    return float(np.mean([abs(metrics[k] - retrain[k]) for k in keys]) * 100.0)


def gap_keys(retrain: Mapping[str, float]) -> list[str]:
    """Avg.Gap's metrics: forget score, MIA, retain score, test score (``acc``, or ``spearman`` for regression)."""
    metric = "spearman" if "test/spearman" in retrain else "acc"
    return [k.format(score=metric) for k in GAP_KEYS]


def avg_gap_lower_bound(partial: Mapping[str, float], retrain: Mapping[str, float]) -> float:
    """A lower bound of Avg.Gap (points) from the metrics measured so far: each missing term |Δ| is at
    least 0, so the mean over the measured terms' sum is never above the full Avg.Gap."""
    keys = gap_keys(retrain)
    return float(sum(abs(partial[k] - retrain[k]) for k in keys if k in partial) / len(keys) * 100.0)
