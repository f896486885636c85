"""The RT-free selection rule of METHOD.md §5 on fixed candidate tables."""

import math

import pytest
import torch

from unlearn_lit.methods.base import parse_method
from unlearn_lit.methods.selection import SelectionSets, choose, choose_oracle
from unlearn_lit.models import build_backbone
from unlearn_lit.registry import UnknownNameError


def row(damage, forget_loss, val_loss=1.0, forget_acc=0.5):
    return {"damage": damage, "forget_loss": forget_loss, "val_loss": val_loss, "forget_acc": forget_acc}


def test_rule_keeps_damage_bound_then_matches_validation_loss():
    table = [row(0.001, 0.2), row(0.010, 0.8), row(0.015, 1.05), row(0.300, 1.0)]
    c = choose(table, eps=0.02)
    assert c.index == 2 and not c.oracle  # 1.05 is closest to 1.0 among damage <= 0.02
    assert "3/4 within damage" in c.reason


def test_rule_is_not_monotone_and_evaluates_every_candidate():
    # damage is not monotone in the step size: a later candidate may be back within the bound
    table = [row(0.001, 0.2), row(0.050, 1.0), row(0.010, 0.95)]
    assert choose(table, eps=0.02).index == 2


def test_ties_broken_by_smaller_damage_and_nan_rows_never_chosen():
    table = [row(0.010, 1.1), row(0.005, 0.9), row(math.nan, 1.0), row(0.001, math.inf)]
    assert choose(table, eps=0.02).index == 1


def test_no_candidate_within_bound_picks_least_damaging_and_says_so():
    c = choose([row(0.5, 1.0), row(0.3, 0.1)], eps=0.02)
    assert c.index == 1 and "least damaging" in c.reason


def test_class_target_picks_lowest_forget_accuracy():
    table = [row(0.001, 5, forget_acc=0.6), row(0.010, 9, forget_acc=0.0), row(0.5, 20, forget_acc=0.0)]
    assert choose(table, eps=0.02, target="class").index == 1


def test_bad_inputs():
    with pytest.raises(ValueError, match="valid choices: val_loss, class"):
        choose([row(0, 0)], target="acc")
    with pytest.raises(ValueError, match="every candidate diverged"):
        choose([row(math.nan, 1.0)])
    with pytest.raises(UnknownNameError, match="valid choices"):
        parse_method("mape_nonsense")


def test_oracle_is_labelled():
    c = choose_oracle([row(0, 0), row(0, 1)], gap=lambda r: abs(r["forget_loss"] - 0.9))
    assert c.index == 1 and c.oracle and c.reason.startswith("ORACLE")


def test_measure_damage_is_zero_for_the_original_and_kl_by_hand():
    backbone = build_backbone("tiny_vit", num_labels=3).eval()
    g = torch.Generator().manual_seed(0)
    batch = backbone.collate([{"image": torch.rand(1, 8, 8, generator=g), "label": i % 3} for i in range(6)])
    sets = SelectionSets(backbone, [batch], [batch], [batch])
    m = sets.measure(backbone)
    assert m["damage"] == pytest.approx(0.0, abs=1e-12)
    assert m["forget_loss"] == pytest.approx(m["val_loss"])
    other = build_backbone("tiny_vit", num_labels=3, seed=1).eval()
    with torch.no_grad():
        p = torch.softmax(backbone(batch).double(), -1)
        q = torch.softmax(other(batch).double(), -1)
        kl = (p * (p.log() - q.log())).sum(-1).mean().item()
        loss = torch.nn.functional.cross_entropy(other(batch), batch["labels"]).item()
    m2 = sets.measure(other)
    assert m2["damage"] == pytest.approx(kl, rel=1e-6)
    assert m2["forget_loss"] == pytest.approx(loss, rel=1e-5)
