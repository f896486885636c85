"""Retain repair after class forgetting (unlearn_lit.methods.repair), on a real tiny ViT and digits."""

from __future__ import annotations

import pytest
import torch

from unlearn_lit.data import build_datamodule
from unlearn_lit.methods import METHODS, UnlearnInputs
from unlearn_lit.methods.repair import RepairConfig, changed_masks, repair
from unlearn_lit.models import build_backbone
from unlearn_lit.runtime import Runtime
from unlearn_lit.selection import SelectionRule, class_gap
from unlearn_lit.units import unit_layout


def test_changed_entries_marks_exactly_what_moved():
    a = build_backbone("tiny_vit", num_labels=10, seed=0)
    b = build_backbone("tiny_vit", num_labels=10, seed=0)
    name, p = next(iter(b.named_parameters()))
    with torch.no_grad():
        p.view(-1)[3] += 1.0
    masks = changed_masks(a, b)
    assert list(masks) == [name] and int(masks[name].sum()) == 1 and bool(masks[name].view(-1)[3])


def test_repair_config_rejects_bad_values():
    with pytest.raises(ValueError, match="valid choices: class, always, never"):
        RepairConfig(when="sometimes")
    with pytest.raises(ValueError, match="epochs"):
        RepairConfig(epochs=0)
    with pytest.raises(ValueError, match="extend >= 0, got 2, 10, -1"):
        RepairConfig(extend=-1)
    from unlearn_lit.methods.finetune import FinetuneConfig

    with pytest.raises(ValueError, match="lr_retries and extend must be >= 0"):
        FinetuneConfig(extend=-1)


@pytest.fixture(scope="module")
def class_run():
    """GA on a tiny ViT with digit 3 forgotten (few steps), then the repair."""
    torch.manual_seed(0)
    dm = build_datamodule("digits", forget="class", forget_classes=[3], max_train=300, max_test=100, seed=0)
    dm.setup("fit")
    model = build_backbone("tiny_vit", num_labels=10, seed=0)
    dm.bind(model)
    inputs = UnlearnInputs(model, dm, unit_layout(model), seed=0, runtime=Runtime("cpu", progress_bar=False))
    ga = METHODS.get("ga")
    cfg = ga.config(max_steps=6, lr_retries=0, selection_retain=64, selection_val=64, optim={"lr": 3e-3})
    result = ga.run(inputs, cfg)
    rule = SelectionRule()
    return inputs, result, repair(inputs, result, RepairConfig(epochs=1, candidates=4), rule), rule


def test_repair_updates_only_what_the_method_changed_and_step_zero_is_the_method(class_run):
    inputs, result, repaired, rule = class_run
    assert RepairConfig().applies(inputs.datamodule, result, rule)  # class forgetting, θ* changed
    assert not RepairConfig(when="never").applies(inputs.datamodule, result, rule)
    before = dict(inputs.original.named_parameters())
    method = dict(result.model.named_parameters())
    moved = changed_masks(inputs.original, result.model)
    for name, p in repaired.model.named_parameters():
        frozen = ~moved[name] if name in moved else torch.ones_like(p, dtype=torch.bool)
        assert torch.equal(p[frozen], before[name][frozen]), name  # the hard freeze, bit for bit
    info = repaired.info["repair"]
    table = info["table"]
    assert table[0]["step"] == 0 and info["steps"] in [r["step"] for r in table]
    assert (
        repaired.hparams["repair_steps"] == info["steps"]
        and repaired.hparams["steps"] == result.hparams["steps"]
    )
    assert len(repaired.candidates) == len(result.candidates) + len(table)
    assert all(r["stage"] == "repair" for r in repaired.candidates[len(result.candidates) :])
    # the rule chose by the class criterion against θ*'s row, not the method's
    sets_ref = result.info["selection_ref"]
    gaps = [class_gap(r, sets_ref) for r in table]
    assert class_gap(table[[r["step"] for r in table].index(info["steps"])], sets_ref) == min(gaps)
    if info["steps"] == 0:
        assert all(torch.equal(p, method[n]) for n, p in repaired.model.named_parameters())


def test_repair_learning_rates_full_and_under_a_unit_mask_also_masked(class_run):
    """The repair steps at the full-parameter default of the model size; under a unit mask it also runs at
    masked unlearning's 20x from the same start and the rule chooses between the two runs; a configured
    rate is used as is."""
    import dataclasses

    from tests.toys import random_unit_mask
    from unlearn_lit.methods.finetune import MASKED_LR_FACTOR, auto_lr
    from unlearn_lit.methods.repair import repair_lrs

    inputs, result, repaired, rule = class_run
    full = auto_lr(sum(p.numel() for p in inputs.original.parameters()))
    assert repaired.hparams["repair_lr"] == pytest.approx(full)
    assert repair_lrs(RepairConfig(), inputs.original, masked=True) == pytest.approx(
        [full, MASKED_LR_FACTOR * full]
    )
    assert repair_lrs(RepairConfig(lr=1e-4), inputs.original, masked=True) == [1e-4]
    masked = dataclasses.replace(inputs, param_mask=random_unit_mask(inputs.original))
    again = repair(masked, result, RepairConfig(epochs=1, candidates=2), rule)
    tables = {}
    for row in again.info["repair"]["table"]:
        tables.setdefault(row["lr"], []).append(row)
    assert sorted(tables) == pytest.approx([full, MASKED_LR_FACTOR * full])  # both runs, every checkpoint
    assert again.hparams["repair_lr"] in tables
    chosen = [r for r in tables[again.hparams["repair_lr"]] if r["step"] == again.hparams["repair_steps"]]
    gaps = [
        class_gap(r, result.info["selection_ref"])
        for rows in tables.values()
        for r in rows
        if all(v == v for v in (r.get("retain_acc", 0.0), r.get("val_keep_acc", 0.0)))
    ]  # confirmed rows
    assert chosen and class_gap(chosen[0], result.info["selection_ref"]) == pytest.approx(min(gaps))


def test_repair_is_doubled_exactly_when_the_rule_chooses_its_last_checkpoint(class_run):
    """``extend``: a repair whose chosen checkpoint is its last (still improving when it ended) is rerun
    at twice the length, once; one that chose earlier is kept as run."""
    inputs, result, _, rule = class_run
    slow = {"epochs": 1, "candidates": 4, "lr": 1e-4}  # too small a step to finish within one epoch
    once = repair(inputs, result, RepairConfig(**slow, extend=0), rule).info["repair"]
    assert once["steps"] == once["steps_run"] > 0  # the rule chose the last checkpoint: at the edge
    twice = repair(inputs, result, RepairConfig(**slow, extend=1), rule).info["repair"]
    assert twice["steps_run"] == 2 * once["steps_run"]
    assert max(r["step"] for r in twice["table"]) == twice["steps_run"]
    again = repair(inputs, result, RepairConfig(**slow, extend=2), rule).info["repair"]
    assert again["steps_run"] in (2 * once["steps_run"], 4 * once["steps_run"])
    assert (again["steps_run"] == 4 * once["steps_run"]) == (twice["steps"] == twice["steps_run"])
    # a repair that chose an earlier checkpoint is not extended
    default = repair(inputs, result, RepairConfig(epochs=1, candidates=4, extend=1), rule).info["repair"]
    assert default["steps"] < default["steps_run"] == once["steps_run"]
