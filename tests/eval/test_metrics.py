"""Accuracy / Spearman, evaluate(), Avg.Gap and cost on hand-built cases (METHOD.md §7)."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from torch import nn

from unlearn_lit.data import DatasetSpec, ForgetSpec, UnlearnDataModule
from unlearn_lit.eval import (
    CostTracker,
    Outputs,
    avg_gap,
    changed_parameters,
    evaluate,
    parameter_counts,
    predict,
    score,
    tensor_bytes,
)
from unlearn_lit.models.base import Backbone


def outputs(preds, labels):
    preds, labels = torch.as_tensor(preds), torch.as_tensor(labels)
    return Outputs(preds, labels, torch.zeros(len(labels)), torch.arange(len(labels)))


def test_accuracy_and_spearman():
    assert score(outputs([0, 1, 2, 1], [0, 1, 1, 1]), "classification", 3) == 0.75
    up = score(outputs([0.1, 0.5, 0.9, 2.0], [1.0, 2.0, 3.0, 4.0]), "regression", 1)
    down = score(outputs([4.0, 3.0, 2.0, 1.0], [1.0, 2.0, 3.0, 4.0]), "regression", 1)
    # torchmetrics divides by std · std + 1e-6 and the ranks 1..4 have variance 1.25: a perfect rank
    # correlation scores ±(1 − 8e-7), 7 float32 ulps off, give or take a few float32 roundings
    tol = 1e-6 / 1.25 + 4 * torch.finfo(torch.float32).eps
    assert up == pytest.approx(1.0, abs=tol) and down == pytest.approx(-1.0, abs=tol)


def test_avg_gap_on_given_numbers():
    rt = {"forget/acc": 0.85, "forget/mia": 0.75, "retain/acc": 0.98, "test/acc": 0.86}
    method = {"forget/acc": 0.90, "forget/mia": 0.80, "retain/acc": 0.99, "test/acc": 0.85, "extra": 5.0}
    assert avg_gap(method, rt) == pytest.approx(3.0)  # (5 + 5 + 1 + 1) / 4 points
    # the SPE paper's MNLI BERT-base row: SO vs RT
    so = {"forget/acc": 0.8594, "forget/mia": 0.8047, "retain/acc": 0.9407, "test/acc": 0.8460}
    rt = {"forget/acc": 0.8516, "forget/mia": 0.7500, "retain/acc": 0.9795, "test/acc": 0.8478}
    assert avg_gap(so, rt) == pytest.approx((0.78 + 5.47 + 3.88 + 0.18) / 4)
    reg = {"forget/spearman": 0.5, "forget/mia": 0.5, "retain/spearman": 0.9, "test/spearman": 0.8}
    assert avg_gap({**reg, "forget/spearman": 0.7}, reg) == pytest.approx(5.0)
    with pytest.raises(KeyError, match="forget/mia"):
        avg_gap({"forget/acc": 1.0}, rt)


# The margin of a hesitant prediction. exp(−2⁻¹³) rounds to 1 − 2⁻¹³, so the softmax sum over the four
# classes is exact in float32 in any summation order: every hesitant correct example has the same loss
# bit for bit, whatever the position of its label (with a margin of 1.0 the loss depends on it by 1 ulp).
HESITANT = 2.0**-13


class Oracle(nn.Module):
    """Logits ``strength * one_hot(pred)``: ``pixel_values`` carries [pred, strength] per example."""

    def __init__(self) -> None:
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, x):
        return nn.functional.one_hot(x[:, 0].long(), 4).float() * x[:, 1:2] + self.dummy


def synthetic(forget: ForgetSpec, forgotten: bool):
    """200 training and 100 test examples; members get confident logits, non-members hesitant ones.

    With ``forgotten`` the forget set looks exactly like test data (an ideal RT); every 4th test
    example is misclassified.
    """
    train = [{"label": i % 4, "member": True} for i in range(200)]
    test = [{"label": i % 4, "member": False, "wrong": i % 4 == 0} for i in range(100)]
    spec = DatasetSpec("synthetic", train, test, num_labels=4, task="classification", modality="image")
    dm = UnlearnDataModule(spec, forget, seed=0, val_size=0, batch_size=16)
    forget_set = set(dm.forget_indices.tolist())

    def collate(examples):
        rows = []
        for e in examples:
            member = e["member"] and not (forgotten and e["index"] in forget_set)
            rows.append([(e["label"] + e.get("wrong", False)) % 4, 4.0 if member else HESITANT])
        return {
            "pixel_values": torch.tensor(rows),
            "labels": torch.tensor([e["label"] for e in examples]),
            "index": torch.tensor([e["index"] for e in examples]),
        }

    return Backbone(Oracle(), "vit", "classification", 4, collate, name="oracle"), dm


def test_evaluate_original_like_model():
    backbone, dm = synthetic(ForgetSpec("random", size=20), forgotten=False)
    m = evaluate(backbone, dm)
    assert (m["forget/acc"], m["retain/acc"], m["test/acc"]) == (1.0, 1.0, 0.75)
    assert m["forget/mia"] == 1.0 and m["forget/mia_efficacy"] == 0.0 and m["forget/mia_attack_acc"] == 1.0
    assert m["forget/loss_auc"] == 1.0 and m["forget/loss_tpr_at_1pct_fpr"] == 1.0


def test_evaluate_retrain_like_model_and_gap():
    backbone, dm = synthetic(ForgetSpec("random", size=20), forgotten=True)
    rt = evaluate(backbone, dm, retain_subsample=50)
    assert rt["forget/mia"] == 0.0 and rt["forget/mia_efficacy"] == 1.0
    # forget losses tie exactly (see HESITANT) with the 75 correct test losses and are below the 25 wrong
    # ones: AUC = 0.25 + 0.75 / 2
    assert rt["forget/loss_auc"] == pytest.approx(0.625)
    assert rt["forget/acc"] == 1.0 and rt["retain/acc"] == 1.0
    original = evaluate(*synthetic(ForgetSpec("random", size=20), forgotten=False))
    assert avg_gap(original, rt) == pytest.approx(25.0)  # only MIA differs, by 100 points


def test_evaluate_class_forgetting_reports_per_class_test_accuracy():
    backbone, dm = synthetic(ForgetSpec("class", classes=(0,)), forgotten=True)
    m = evaluate(backbone, dm)
    assert (
        m["test_forget_class/acc"] == 0.0 and m["test_retain_class/acc"] == 1.0
    )  # class-0 tests are the wrong ones


def test_predict_restores_mode_and_keeps_order():
    backbone, dm = synthetic(ForgetSpec("random", size=20), forgotten=False)
    dm.bind(backbone)
    backbone.train()
    out = predict(backbone, dm.forget_dataloader())
    assert backbone.training and out.index.tolist() == dm.forget_indices.tolist()
    assert torch.allclose(out.confidence, torch.full((20,), np.exp(4) / (np.exp(4) + 3)))


def test_cost_tracker_and_parameter_counts():
    cost = CostTracker()
    with cost.phase("unlearn") as record:
        buffer = torch.ones(64 * 2**20, dtype=torch.uint8)  # 64 MiB touched inside the phase
        buffer += 1
        time.sleep(0.05)
    assert record["seconds"] >= 0.05 and record["peak_memory_bytes"] >= 64 * 2**20
    assert set(cost.as_dict()) == {
        f"cost/unlearn/{k}" for k in ("seconds", "peak_memory_bytes", "memory_kind")
    }
    model = nn.Linear(4, 3)  # 12 weights + 3 biases
    assert tensor_bytes(model.state_dict(), [torch.zeros(2, dtype=torch.float64)]) == 15 * 4 + 16
    counts = parameter_counts(model, {"weight": torch.eye(3, 4, dtype=torch.bool)})
    assert counts == {"params/total": 15, "params/updated": 3, "params/updated_fraction": 0.2}
    with pytest.raises(KeyError, match="no such parameters"):
        parameter_counts(model, {"net.weight": torch.ones(3, 4)})
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        model.weight[0, :2] += 1
    assert changed_parameters(before, model.state_dict()) == {
        "params/changed": 2,
        "params/changed_fraction": 2 / 15,
    }
