"""MIA of METHOD.md §7 on constructed cases with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from unlearn_lit.eval import confidence_mia, loss_attack


@pytest.fixture
def shadow():
    rng = np.random.default_rng(0)
    return rng.uniform(0.9, 1.0, 200), rng.uniform(0.0, 0.1, 200), rng


def test_separable_members_and_nonmembers(shadow):
    members, nonmembers, rng = shadow
    seen = confidence_mia(members, nonmembers, rng.uniform(0.92, 1.0, 50))
    assert seen == {"mia": 1.0, "mia_efficacy": 0.0, "attack_acc": 1.0}
    unseen = confidence_mia(members, nonmembers, rng.uniform(0.0, 0.08, 50))
    assert unseen["mia"] == 0.0 and unseen["mia_efficacy"] == 1.0
    half = confidence_mia(members, nonmembers, np.r_[rng.uniform(0.95, 1, 30), rng.uniform(0, 0.05, 10)])
    assert half["mia"] == pytest.approx(0.75) and half["mia_efficacy"] == pytest.approx(0.25)


def test_identical_members_and_nonmembers_teach_the_attack_nothing(shadow):
    members, _, rng = shadow
    # every feature value appears once as member and once as non-member: any classifier is right on
    # exactly half of its training points
    result = confidence_mia(members, members.copy(), rng.uniform(0, 1, 40))
    assert result["attack_acc"] == 0.5
    assert 0.0 <= result["mia"] <= 1.0 and result["mia"] + result["mia_efficacy"] == 1.0


def test_empty_sets_raise():
    with pytest.raises(ValueError, match="non-empty"):
        confidence_mia(np.array([0.9]), np.array([0.1]), np.array([]))


def test_loss_attack_small_hand_computed():
    # pairs (forget, test) with forget loss < test loss: 4 + 3 + 3 + 3 = 13 of 16
    result = loss_attack([0.1, 0.2, 0.3, 0.4], [0.15, 0.5, 0.6, 0.7])
    assert result["loss_auc"] == pytest.approx(13 / 16)
    assert result["loss_tpr_at_fpr"] == pytest.approx(0.25)  # no false positive allowed: only loss 0.1


def test_loss_attack_tpr_at_one_percent_fpr():
    test = np.arange(1, 101) / 100  # 100 non-members: losses 0.01 .. 1.00
    forget = np.array([0.005] * 3 + [0.015] * 2 + [2.0] * 5)
    result = loss_attack(forget, test)
    # threshold loss <= 0.015 admits one test example (FPR 1%) and 5 of 10 forget examples
    assert result["loss_tpr_at_fpr"] == pytest.approx(0.5)
    # AUC = (3 * 100 + 2 * 99 + 5 * 0) / (10 * 100)
    assert result["loss_auc"] == pytest.approx(0.498)
    assert loss_attack(forget, test, fpr=0.0)["loss_tpr_at_fpr"] == pytest.approx(0.3)


def test_loss_attack_extremes():
    assert loss_attack([0.1, 0.2], [0.5, 0.6]) == {"loss_auc": 1.0, "loss_tpr_at_fpr": 1.0}
    same = loss_attack([0.3] * 5, [0.3] * 5)
    assert same["loss_auc"] == 0.5 and same["loss_tpr_at_fpr"] == 0.0
