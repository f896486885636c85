"""The RT-free selection rule of METHOD.md §5 on fixed candidate tables, its measurements by hand, and
the did-not-unlearn verdict."""

import math

import pytest
import torch

from unlearn_lit.methods.base import parse_method
from unlearn_lit.models import build_backbone
from unlearn_lit.registry import UnknownNameError
from unlearn_lit.selection import SelectionRule, SelectionSets, choose_oracle, class_gap, verdict

# θ*'s reference row: retain loss 0.01, validation loss 0.31 with standard error 0.04
REF = {"damage": 0.0, "retain_loss": 0.01, "val_keep_loss": 0.31, "val_keep_loss_se": 0.04}


def row(forget_loss, retain_loss=0.01, val_loss=0.31, damage=0.0, forget_acc=0.5, val_keep_loss=None):
    return {
        "damage": damage,
        "retain_loss": retain_loss,
        "forget_loss": forget_loss,
        "val_loss": val_loss,
        "val_keep_loss": val_loss if val_keep_loss is None else val_keep_loss,
        "forget_acc": forget_acc,
    }


def test_tolerances_of_the_three_guards():
    assert SelectionRule().tolerance(REF) == pytest.approx(2 * 0.04)  # z standard errors
    assert SelectionRule(guard="gap").tolerance(REF) == pytest.approx(0.5 * (0.31 - 0.01))
    assert SelectionRule(guard="kl", eps=0.05).tolerance(REF) == 0.05
    # harm: the larger rise of the retain and the validation loss (the KL for the kl guard)
    r = row(0.5, retain_loss=0.05, val_loss=0.33, damage=0.2)
    assert SelectionRule().harm(r, REF) == pytest.approx(0.04)
    assert SelectionRule(guard="kl").harm(r, REF) == 0.2


def test_noise_guard_accepts_rt_like_damage_that_the_old_bound_rejects():
    # candidate 2 moved θ*'s predictions as far as RT would (KL 0.155 > the old 0.05 bound) but its
    # retain and validation losses stay within two standard errors: its forget loss matches validation
    table = [
        row(0.05),
        row(0.15, retain_loss=0.02, val_loss=0.32, damage=0.03),
        row(0.30, retain_loss=0.04, val_loss=0.34, damage=0.155),
        row(0.31, retain_loss=0.30, val_loss=0.60, damage=0.40),  # matches, but utility fell
    ]
    noise = SelectionRule().choose(table, REF, "val_loss")
    assert noise.index == 2 and "3/4 within the noise guard" in noise.reason
    assert SelectionRule(guard="kl", eps=0.05).choose(table, REF, "val_loss").index == 1
    assert SelectionRule(guard="gap").choose(table, REF, "val_loss").index == 2  # tolerance 0.15


def test_rule_is_not_monotone_and_evaluates_every_candidate():
    # harm is not monotone in the step size: a later candidate may be back within the guard
    table = [row(0.05), row(0.31, val_loss=0.9), row(0.29, val_loss=0.32)]
    assert SelectionRule().choose(table, REF, "val_loss").index == 2


def test_ties_broken_by_smaller_harm_and_nan_rows_never_chosen():
    # both forget losses are 0.25 from the validation loss (exact in binary): the smaller harm wins
    tie = {"val_loss": 0.5, "val_keep_loss": 0.31}
    table = [
        row(0.75, retain_loss=0.05, **tie),
        row(0.25, retain_loss=0.02, **tie),
        row(0.5, retain_loss=math.nan, **tie),
        row(math.inf),
    ]
    assert SelectionRule().choose(table, REF, "val_loss").index == 1


def test_no_candidate_within_the_guard_picks_least_harmful_and_says_so():
    c = SelectionRule().choose([row(0.3, val_loss=1.0), row(0.1, val_loss=0.8)], REF, "val_loss")
    assert c.index == 1 and "least harmful" in c.reason


def test_class_guard_ignores_the_forgotten_class():
    # the forgotten class's validation examples raise val_loss; the guard reads val_keep_loss only
    table = [
        row(0.05, forget_acc=0.9),
        row(5.0, val_loss=1.5, val_keep_loss=0.33, forget_acc=0.0),
        row(9.0, val_loss=2.5, val_keep_loss=0.80, forget_acc=0.0),
    ]
    assert SelectionRule(class_criterion="guard").choose(table, REF, "class").index == 1


# θ*'s accuracies for class forgetting: retain 0.99, kept-class validation 0.94
CLASS_REF = {**REF, "retain_acc": 0.99, "val_keep_acc": 0.94}


def acc_row(forget_acc, retain_acc, val_keep_acc, rise=0.0):
    r = row(1.0, retain_loss=0.01 + rise, val_keep_loss=0.31 + rise, forget_acc=forget_acc)
    return {**r, "retain_acc": retain_acc, "val_keep_acc": val_keep_acc}


def test_class_gap_by_hand():
    # (forget acc + drop of retain acc + drop of kept validation acc) / 3; a rise is no gap
    assert class_gap(acc_row(0.3, 0.96, 0.93), CLASS_REF) == pytest.approx((0.3 + 0.03 + 0.01) / 3)
    assert class_gap(acc_row(0.3, 0.96, 0.95), CLASS_REF) == pytest.approx((0.3 + 0.03) / 3)
    assert class_gap(acc_row(1.0, 0.99, 0.94), CLASS_REF) == pytest.approx(1 / 3)
    assert class_gap(acc_row(0.0, 1.0, 0.97), CLASS_REF) == 0.0


def test_class_ideal_accepts_rt_like_loss_rise_that_the_guard_rejects():
    # measured on digits class 3: the candidate closest to RT forgot the class with kept accuracies
    # 2-3 points down and kept-class losses up by ~0.15 nats (>2 standard errors); the old guard kept
    # the candidate that still recognized 43% of the class
    table = [
        acc_row(1.0, 0.99, 0.94),  # θ*
        acc_row(0.43, 0.985, 0.935, rise=0.05),
        acc_row(0.0, 0.965, 0.915, rise=0.15),
        acc_row(0.0, 0.80, 0.75, rise=0.60),  # forgot, but the other classes collapsed
    ]
    ideal = SelectionRule().choose(table, CLASS_REF, "class")
    assert ideal.index == 2 and "class-forgetting ideal" in ideal.reason
    assert SelectionRule(class_criterion="guard").choose(table, CLASS_REF, "class").index == 1
    # equal gaps: the smaller harm wins; the ideal searches both sides of a step
    tie = [acc_row(0.0, 0.97, 0.94, rise=0.3), acc_row(0.0, 0.99, 0.92, rise=0.1)]
    assert SelectionRule().choose(tie, CLASS_REF, "class").index == 1
    assert SelectionRule().direction(table[2], CLASS_REF, "class") == 0
    assert SelectionRule(class_criterion="guard").direction(table[1], CLASS_REF, "class") == 1


def test_resolve_target_from_the_forget_policy():
    class DM:
        forget_spec = type("Spec", (), {"policy": "class"})()

    assert SelectionRule().resolve(DM()) == "class"
    assert SelectionRule(target="val_loss").resolve(DM()) == "val_loss"
    assert SelectionRule().resolve(object()) == "val_loss"


def test_bad_inputs():
    with pytest.raises(ValueError, match="valid choices: val_loss, class"):
        SelectionRule().choose([row(0.1)], REF, "acc")
    with pytest.raises(ValueError, match="valid choices: auto, val_loss, class"):
        SelectionRule(target="acc")
    with pytest.raises(ValueError, match="every candidate diverged"):
        SelectionRule().choose([row(math.nan)], REF, "val_loss")
    with pytest.raises(ValueError, match="positive"):
        SelectionRule(z=0)
    with pytest.raises(ValueError, match="valid choices: ideal, guard"):
        SelectionRule(class_criterion="acc")
    with pytest.raises(ValueError, match="valid choices: candidate, reference"):
        SelectionRule(scale="theta")
    with pytest.raises(UnknownNameError, match="valid choices"):
        parse_method("mape_nonsense")


def test_oracle_is_labelled():
    c = choose_oracle([row(0.0), row(1.0)], gap=lambda r: abs(r["forget_loss"] - 0.9))
    assert c.index == 1 and c.oracle and c.reason.startswith("ORACLE")


def test_measure_by_hand():
    backbone = build_backbone("tiny_vit", num_labels=3).eval()
    g = torch.Generator().manual_seed(0)
    batch = backbone.collate([{"image": torch.rand(1, 8, 8, generator=g), "label": i % 3} for i in range(6)])
    sets = SelectionSets(backbone, [batch], [batch], [batch], exclude_labels=[2])
    m = sets.measure(backbone)
    assert m["damage"] == pytest.approx(0.0, abs=1e-12)
    assert m["forget_loss"] == pytest.approx(m["val_loss"])
    assert m["retain_loss"] == pytest.approx(m["val_keep_loss"])
    other = build_backbone("tiny_vit", num_labels=3, seed=1).eval()
    ce = torch.nn.functional.cross_entropy
    with torch.no_grad():
        p = torch.softmax(backbone(batch).double(), -1)
        q = torch.softmax(other(batch).double(), -1)
        kl = (p * (p.log() - q.log())).sum(-1).mean().item()
        losses = ce(other(batch).double(), batch["labels"], reduction="none")
        keep = batch["labels"] != 2
        # class 2 forgotten: guarded losses over classes 0 and 1 only, on examples of those classes
        kept = ce(other(batch).double()[:, :2], batch["labels"].clamp(max=1), reduction="none")
        ref_kept = ce(backbone(batch).double()[:, :2], batch["labels"].clamp(max=1), reduction="none")[keep]
    m2 = sets.measure(other)
    correct = (other(batch).argmax(-1) == batch["labels"]).double()  # argmax over every class
    assert m2["retain_acc"] == pytest.approx(correct.mean().item())
    assert m2["val_keep_acc"] == pytest.approx(correct[keep].mean().item())
    assert m2["damage"] == pytest.approx(kl, rel=1e-6)
    assert m2["forget_loss"] == pytest.approx(losses.mean().item(), rel=1e-5)
    assert m2["val_keep_loss"] == pytest.approx(kept[keep].mean().item(), rel=1e-5)
    assert m2["retain_loss"] == pytest.approx(m2["val_keep_loss"])
    assert sets.ref["val_keep_loss"] == pytest.approx(ref_kept.mean().item(), rel=1e-5)
    assert sets.ref["val_keep_loss_se"] == pytest.approx(
        (ref_kept.std() / keep.sum().sqrt()).item(), rel=1e-5
    )


ORIGINAL = {
    "forget/acc": 0.99,
    "forget/mia": 0.9,
    "retain/acc": 1.0,
    "test/acc": 0.93,
    "forget/loss_auc": 0.6,
}


@pytest.mark.parametrize(
    ("changed", "after", "info", "expected"),
    [
        (0, ORIGINAL, {}, False),  # nothing changed
        (10, {**ORIGINAL, "forget/acc": 0.9}, {"kept_original": True, "reason": "step 0"}, False),
        (500, {**ORIGINAL, "forget/loss_auc": 0.55}, {}, False),  # weights moved, no reported metric
        (500, {**ORIGINAL, "forget/acc": 0.95}, {}, True),
        (500, {**ORIGINAL, "test/acc": 0.92}, {"kept_original": False}, True),
    ],
)
def test_did_not_unlearn_exactly_when_nothing_changed(changed, after, info, expected):
    unlearned, why = verdict(changed, after, ORIGINAL, info)
    assert unlearned is expected
    assert (why == "") == expected
    if info.get("reason"):
        assert "step 0" in why


def test_distance_is_relative_to_the_candidates_generalization_gap():
    # candidate 1 raised every loss (random labels do): its forget loss is 0.30 below its validation
    # loss (0.29 for θ*), but that is 0.91 of its generalization gap against θ*'s 0.97: it moved D_f
    # towards "unseen" and is chosen; an absolute difference would have kept θ*
    table = [row(0.02), row(0.08, retain_loss=0.05, val_loss=0.38)]
    assert SelectionRule().choose(table, REF, "val_loss").index == 1
    assert abs(table[1]["forget_loss"] - table[1]["val_loss"]) > abs(
        table[0]["forget_loss"] - table[0]["val_loss"]
    )


def test_two_sided_default_counts_overfitting_the_retain_set_as_harm():
    # FT-like candidate: forget loss matches validation, but the retain loss fell far below θ*'s (RT
    # fits D_r as θ* does); measured on MiniLM, the one-sided guard chose such a checkpoint
    ref = {**REF, "retain_loss": 0.20}
    table = [row(0.25, retain_loss=0.20), row(0.31, retain_loss=0.02)]
    assert SelectionRule().harm(table[1], ref) == pytest.approx(0.18)
    assert SelectionRule().choose(table, ref, "val_loss").index == 0
    assert SelectionRule(two_sided=False).choose(table, ref, "val_loss").index == 1


def test_reference_scale_does_not_reward_fitting_the_retain_set():
    # FT-like checkpoint (measured on MiniLM seed 2, rounded): the retain loss fell by 0.06 (inside the
    # two-sided guard 0.083), D_f stayed as far below validation (0.30 -> 0.33 nats); divided by its own,
    # wider gap it looks closer (1.15 -> 0.98), divided by θ*'s it does not (1.15 -> 1.31)
    ref = {
        "damage": 0.0,
        "retain_loss": 0.353,
        "val_loss": 0.609,
        "val_keep_loss": 0.609,
        "val_keep_loss_se": 0.0414,
    }
    table = [row(0.314, retain_loss=0.353, val_loss=0.609), row(0.297, retain_loss=0.291, val_loss=0.632)]
    candidate, reference = SelectionRule(), SelectionRule(scale="reference")
    assert candidate.distance(table[1], ref, "val_loss") == pytest.approx(0.335 / 0.341, rel=1e-9)
    assert reference.distance(table[1], ref, "val_loss") == pytest.approx(0.335 / 0.256, rel=1e-9)
    assert candidate.choose(table, ref, "val_loss").index == 1
    assert reference.choose(table, ref, "val_loss").index == 0
