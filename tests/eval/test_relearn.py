"""Relearning attack: per-step forget accuracy, determinism, the original untouched, the plot."""

import math

import pytest
import torch

from tests.methods.test_so import setup
from unlearn_lit.eval.relearn import RelearnConfig, plot_relearn, relearn_attack, relearn_curves, split_attack


def test_attack_records_every_step_and_relearns_the_forget_set(tmp_path):
    bb, dm = setup(n_forget=24, n_retain=0, n_val=0, dtype=torch.float32)
    before = {n: p.detach().clone() for n, p in bb.named_parameters()}
    cfg = RelearnConfig(fraction=0.5, steps=15, lr=1e-2, batch_size=6)
    rows = relearn_attack(bb, dm.forget, cfg)
    assert [r["step"] for r in rows] == list(range(16)) and math.isnan(rows[0]["train_loss"])
    assert all(torch.equal(p, before[n]) for n, p in bb.named_parameters())  # attacks a copy
    assert rows[-1]["attack_loss"] < rows[0]["attack_loss"] and rows[-1]["attack_acc"] > rows[0]["attack_acc"]
    n_attack = len(split_attack(24, 0.5, 0)[0])
    for r in rows:  # D_f accuracy is the size-weighted mix of the attacked and held-out parts
        mix = (n_attack * r["attack_acc"] + (24 - n_attack) * r["heldout_acc"]) / 24
        assert r["forget_acc"] == pytest.approx(mix)
    curves = relearn_curves({"unlearned": bb, "retrain": bb}, dm.forget, cfg)
    assert curves["unlearned"] == curves["retrain"] == rows  # same attack, same seed: same curve
    png = plot_relearn(curves, tmp_path / "plots" / "relearn.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(KeyError, match="valid choices"):
        plot_relearn(curves, tmp_path / "x.png", metric="ua")


def test_split_and_config_errors():
    attacked, held = split_attack(10, 0.3, seed=1)
    assert len(attacked) == 3 and sorted([*attacked, *held]) == list(range(10))
    assert len(split_attack(3, 0.01, seed=0)[0]) == 1
    with pytest.raises(ValueError, match="valid choices: sgd, adam, adamw"):
        RelearnConfig(optimizer="lion")
    with pytest.raises(ValueError, match="fraction"):
        RelearnConfig(fraction=0.0)
    with pytest.raises(ValueError, match=r"lr > 0 \(or None\)"):
        RelearnConfig(lr=0.0)


def test_unset_rate_is_the_fine_tuning_default_of_the_model_size():
    """lr None (what FT's config holds when FT scales its rate to the model) attacks at that same rate."""
    from unlearn_lit.methods.finetune import auto_lr

    bb, dm = setup(n_forget=12, n_retain=0, n_val=0, dtype=torch.float32)
    rows = relearn_attack(bb, dm.forget, RelearnConfig(steps=2, lr=None, batch_size=6))
    expected = auto_lr(sum(p.numel() for p in bb.parameters()))
    assert {r["lr"] for r in rows} == {expected} and expected != RelearnConfig().lr
    explicit = relearn_attack(bb, dm.forget, RelearnConfig(steps=2, lr=expected, batch_size=6))
    assert explicit == rows  # the same attack as passing that rate by hand
