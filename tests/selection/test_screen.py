"""Screen-then-confirm checkpoint selection (issue 14): every checkpoint on a small screen, the best few
on the full sets, the unchanged rule among them; only the kept checkpoints' weights are held."""

from __future__ import annotations

import math

import lightning as L
import pytest
import torch

from unlearn_lit.methods import METHODS
from unlearn_lit.methods.finetune import screen_sets
from unlearn_lit.methods.losses import ga_loss
from unlearn_lit.phases.unlearn import MaskedUnlearning, OptimConfig
from unlearn_lit.selection import CheckpointSelection, SelectionRule, SelectionSets, first_examples
from unlearn_lit.selection.sets import MEASURES
from unlearn_lit.selection.sets import selection_sets as build_sets

RULE = SelectionRule()  # the default noise guard (tolerance 2 x 0.05 below)
EVERY, STEPS, TOP = 2, 20, 3


def row(forget_loss, val_loss=1.0, retain_loss=0.1):
    return {
        "damage": 0.001,
        "retain_loss": retain_loss,
        "retain_acc": 0.9,
        "forget_loss": forget_loss,
        "forget_acc": 0.5,
        "val_loss": val_loss,
        "val_acc": 0.5,
        "val_keep_loss": val_loss,
        "val_keep_acc": 0.8,
    }


class Weights(L.Callback):
    """Keeps every parameter after every step (placed before the selection callback)."""

    def __init__(self):
        self.by_step = {}

    def _keep(self, trainer, pl_module):
        self.by_step[trainer.global_step] = [p.detach().clone() for p in pl_module.model.parameters()]

    def on_train_start(self, trainer, pl_module):
        self._keep(trainer, pl_module)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self._keep(trainer, pl_module)


class StepSets:
    """Selection sets whose row is looked up from the step whose weights the model holds: a
    confirmation that measured the wrong weights would get the wrong row."""

    def __init__(self, rows, weights):
        self.rows, self.weights, self.calls = rows, weights, 0
        self.ref = {**row(0.2), "damage": 0.0, "val_keep_loss_se": 0.05}

    def measure(self, model, stop=None):  # measures every set: pruning is an optimization only
        self.calls += 1
        now = list(model.parameters())
        step = next(s for s, w in self.weights.by_step.items() if all(map(torch.equal, now, w)))
        return dict(self.rows[step // EVERY])


class HeldWeights(L.Callback):
    """Records how many checkpoints' weights the selection holds (placed after it)."""

    def __init__(self, selector):
        self.selector, self.most = selector, 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.most = max(self.most, len(self.selector._weights))


def fit(toy_inputs, full_rows, screen_rows=None):
    inputs = toy_inputs("tiny_vit", masked=True)
    weights = Weights()
    full = StepSets(full_rows, weights)
    screen = None if screen_rows is None else StepSets(screen_rows, weights)
    selector = CheckpointSelection(
        full, RULE, "val_loss", EVERY, patience=None, screen=screen, confirm_top=TOP
    )
    held = HeldWeights(selector)
    module = MaskedUnlearning(inputs.fresh_model(), None, inputs.param_mask, ga_loss, OptimConfig(lr=1e-2))
    trainer = L.Trainer(
        max_steps=STEPS,
        callbacks=[weights, selector, held],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
    )
    trainer.fit(module, train_dataloaders={"forget": inputs.datamodule.forget_dataloader(batch_size=4)})
    chosen = weights.by_step[selector.chosen_step]
    assert all(map(torch.equal, module.model.parameters(), chosen))  # restored exactly
    return selector, full, screen, held


# the forget loss rises through the validation loss (1.0) between steps 10 and 12; the best
# checkpoint by the rule on the full sets is step 12 (|1.05 - 1| closest)
FULL = [row(x) for x in (0.2, 0.3, 0.4, 0.6, 0.8, 0.9, 1.05, 1.2, 1.4, 1.6, 1.8)]


def test_screen_equal_to_the_full_sets_chooses_as_the_rule_does(toy_inputs):
    today, _, _, _ = fit(toy_inputs, FULL)
    screened, full, screen, _ = fit(toy_inputs, FULL, screen_rows=FULL)
    expected = RULE.choose(FULL, full.ref, "val_loss").index
    assert today.choice.index == screened.choice.index == expected == 6
    assert today.evaluations == {"screen": 0, "full": len(FULL)}
    assert screened.evaluations["screen"] == len(FULL) == screen.calls
    assert [r["step"] for r in screened.table] == [EVERY * i for i in range(len(FULL))]


def test_confirmation_picks_the_rules_choice_when_the_screen_ranks_it_in_the_top_k(toy_inputs):
    # the screen is noisy: it prefers steps 10 and 14 to the true best, step 12 (third on the screen)
    screen_rows = [dict(r) for r in FULL]
    screen_rows[5], screen_rows[6], screen_rows[7] = row(0.99), row(1.1), row(1.02)
    assert RULE.rank(screen_rows[1:], {**FULL[0], "val_keep_loss_se": 0.05}, "val_loss", TOP) == [4, 6, 5]
    selector, full, _, held = fit(toy_inputs, FULL, screen_rows=screen_rows)
    assert (
        selector.chosen_step == 12 and selector.choice.index == RULE.choose(FULL, full.ref, "val_loss").index
    )
    # step 0 at the start, the three best on the screen (10, 12, 14) and the last (20) at the end
    assert selector.evaluations["full"] == full.calls == 5 <= TOP + 2
    confirmed = [r["step"] for r in selector.table if math.isfinite(r["forget_loss"])]
    assert confirmed == [0, 10, 12, 14, 20]
    assert held.most <= TOP + 1  # step 0 and the running top k, never every checkpoint
    assert "5 of 11 checkpoints confirmed" in selector.choice.reason


def test_full_evaluations_stay_within_top_k_plus_two(toy_inputs):
    # the screen's ranking is unrelated to the full sets': still at most k + 2 full evaluations, and the
    # choice is the rule's among the confirmed checkpoints
    screen_rows = [row(x) for x in (0.2, 1.0, 0.9, 1.1, 0.5, 0.4, 0.3, 2.0, 0.1, 0.7, 0.8)]
    selector, full, _, _ = fit(toy_inputs, FULL, screen_rows=screen_rows)
    assert selector.evaluations == {"screen": len(FULL), "full": full.calls} and full.calls <= TOP + 2
    confirmed = [i for i, r in enumerate(selector.table) if math.isfinite(r["forget_loss"])]
    rows = [FULL[i] for i in confirmed]
    assert selector.choice.index == confirmed[RULE.choose(rows, full.ref, "val_loss").index]


def test_rank_is_the_rules_order():
    ref = {**row(0.2), "val_keep_loss_se": 0.05}
    rows = [row(0.2), row(1.5, val_loss=1.5), row(0.9), row(float("nan")), row(1.05), row(0.5)]
    order = RULE.rank(rows, ref, "val_loss")
    assert order[0] == RULE.choose(rows, ref, "val_loss").index == 4
    assert order == [4, 2, 5, 0, 1] and RULE.rank(rows, ref, "val_loss", 2) == [4, 2]  # NaN row left out


@pytest.mark.parametrize("spread", [False, True], ids=["first", "spread"])
def test_subset_reference_is_the_originals_measured_on_the_subset(toy_inputs, spread):
    inputs = toy_inputs("tiny_bert", masked=False)
    sets = build_sets(inputs.original, inputs.datamodule, 48, 16, seed=0)
    sub = sets.subset(10, spread=spread)
    direct = SelectionSets(inputs.original, sub.retain, sub.forget, sub.val)  # θ* measured on the subset
    assert sub.sizes() == {"retain": 10, "forget": 10, "val": 10}
    for key in MEASURES:
        assert sub.ref[key] == pytest.approx(direct.ref[key], abs=1e-6), key
    assert sub.ref["val_keep_loss_se"] == sets.ref["val_keep_loss_se"]  # the full sets' tolerance
    assert sub.measure(inputs.original)["damage"] == pytest.approx(0.0, abs=1e-9)
    # the subset's examples are those at the first / evenly spread positions of the *input* order
    # (the sets store text sorted by length)
    indices = torch.cat([b["index"] for b in sub.retain]).tolist()
    loader = inputs.datamodule.retain_dataloader(subsample=48, seed=0)
    everything = torch.cat([b["index"] for b in first_examples(loader)]).tolist()
    expected = everything[:10] if not spread else [everything[i * 48 // 10] for i in range(10)]
    assert sorted(indices) == sorted(expected)
    if not spread:
        first_val = first_examples(inputs.datamodule.val_dataloader(), 10)
        assert sorted(torch.cat([b["index"] for b in sub.val]).tolist()) == sorted(
            torch.cat([b["index"] for b in first_val]).tolist()
        )


def test_method_screens_then_confirms(toy_inputs):
    inputs = toy_inputs("tiny_vit", masked=True)
    cfg = METHODS.get("ga").config(
        max_steps=12, every_n_steps=2, forget_batch_size=8, patience=None, lr_retries=0, selection_screen=8
    )
    result = METHODS.get("ga").run(inputs, cfg)
    table, info = result.candidates, result.info
    assert [r["step"] for r in table] == [0, 2, 4, 6, 8, 10, 12]
    assert all("screen/forget_loss" in r for r in table) and info["selection_screen"] == 8
    # step 0 is θ*, whose full and screen rows the sets hold: the 6 later checkpoints are screened, and
    # only the top k and the last are measured in full
    assert info["selection_evaluations"]["screen"] == 6 and info["selection_evaluations"]["full"] <= 4
    assert {k: table[0][k] for k in MEASURES} == {k: info["selection_ref"][k] for k in MEASURES}
    screen = screen_sets(
        build_sets(inputs.original, inputs.datamodule, cfg.selection_retain, cfg.selection_val, 0), 8
    )
    measured = screen.measure(inputs.original)  # θ* measured on the screen: what step 0's row stands for
    for key in MEASURES:
        assert table[0][f"screen/{key}"] == pytest.approx(measured[key], abs=1e-6), key
    chosen = next(r for r in table if r["step"] == result.hparams["steps"])
    assert math.isfinite(chosen["forget_loss"]) and math.isfinite(table[-1]["forget_loss"])
    off = METHODS.get("ga").run(inputs, METHODS.get("ga").config(**{**vars(cfg), "selection_screen": 0}))
    assert off.info["selection_evaluations"] == {"screen": 0, "full": 7}
    assert "screen/forget_loss" not in off.candidates[0]
