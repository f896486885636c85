"""CheckpointSelection (METHOD.md §5): candidates every k steps, the rule's choice, exact restore, early stop."""

from __future__ import annotations

import lightning as L
import pytest
import torch

from unlearn_lit.methods import METHODS
from unlearn_lit.methods.finetune import lr_retry_factor
from unlearn_lit.methods.losses import ga_loss
from unlearn_lit.phases.unlearn import MaskedUnlearning, OptimConfig
from unlearn_lit.selection import CheckpointSelection, SelectionRule

KL = SelectionRule(guard="kl", eps=0.02)
NOISE = SelectionRule()  # the default guard


class ScriptedSets:
    """Selection sets whose measurements follow a script (one row per evaluation); θ*'s row is ``ref``."""

    def __init__(self, rows):
        self.rows, self.calls = rows, 0
        self.ref = {**row(0.2, damage=0.0), "val_keep_loss_se": 0.05}

    def measure(self, model, stop=None):  # measures every set: pruning is an optimization only
        row = self.rows[min(self.calls, len(self.rows) - 1)]
        self.calls += 1
        return dict(row)


def row(forget_loss, damage=0.001, val_loss=1.0, forget_acc=0.5, retain_loss=0.1):
    return {
        "damage": damage,
        "retain_loss": retain_loss,
        "forget_loss": forget_loss,
        "val_loss": val_loss,
        "val_keep_loss": val_loss,
        "forget_acc": forget_acc,
        "val_acc": 0.5,
        "retain_acc": 0.9,
        "val_keep_acc": 0.8,
    }


class Recorder(L.Callback):
    """Keeps every parameter at every evaluation step (runs after the selection callback)."""

    def __init__(self, every):
        self.every, self.weights = every, {}

    def _keep(self, trainer, pl_module):
        self.weights[trainer.global_step] = {
            n: p.detach().clone() for n, p in pl_module.model.named_parameters()
        }

    def on_train_start(self, trainer, pl_module):
        self._keep(trainer, pl_module)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step % self.every == 0:
            self._keep(trainer, pl_module)


def fit(inputs, selector, max_steps, lr=1e-2):
    recorder = Recorder(selector.every_n_steps)
    module = MaskedUnlearning(inputs.fresh_model(), None, inputs.param_mask, ga_loss, OptimConfig(lr=lr))
    trainer = L.Trainer(
        max_steps=max_steps,
        callbacks=[selector, recorder],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
    )
    trainer.fit(module, train_dataloaders={"forget": inputs.datamodule.forget_dataloader(batch_size=4)})
    return module, trainer, recorder


def test_restores_the_chosen_checkpoint_exactly_and_stops_after_patience(toy_inputs):
    inputs = toy_inputs("tiny_vit", masked=True)
    # steps 0, 5, 10, ...: forget loss rises past the validation loss (1.0) at step 15
    script = [row(0.2), row(0.5), row(0.9), row(1.3), row(1.6), row(2.0), row(2.5)]
    sets = ScriptedSets(script)
    selector = CheckpointSelection(sets, KL, "val_loss", every_n_steps=5, patience=1)
    module, trainer, recorder = fit(inputs, selector, max_steps=100)

    assert trainer.global_step == 20 and selector.stopped_early  # passed at 15, one more evaluation
    assert [r["step"] for r in selector.table] == [0, 5, 10, 15, 20]
    assert selector.choice.index == KL.choose(selector.table, sets.ref, "val_loss").index == 2
    assert selector.chosen_step == 10
    chosen, last = recorder.weights[10], recorder.weights[20]
    differs = False
    for name, p in module.model.named_parameters():
        assert torch.equal(p, chosen[name]), name
        differs |= not torch.equal(chosen[name], last[name])
    assert differs  # the restore did something


@pytest.mark.parametrize("rule", [KL, NOISE], ids=["kl", "noise"])
def test_guard_and_final_step_is_a_candidate(toy_inputs, rule):
    inputs = toy_inputs("tiny_vit", masked=True)
    # every candidate after θ* breaks the guard except the final (unscheduled) step 7: for ``kl`` by
    # its KL, for ``noise`` by a validation loss 0.5 above θ*'s (tolerance 2 x 0.05)
    script = [row(0.2), row(1.0, damage=0.5, val_loss=1.5), row(0.95, damage=0.01)]
    sets = ScriptedSets(script)
    selector = CheckpointSelection(sets, rule, "val_loss", every_n_steps=5, patience=None)
    module, trainer, recorder = fit(inputs, selector, max_steps=7)
    assert [r["step"] for r in selector.table] == [0, 5, 7]
    assert (
        selector.chosen_step == 7
        and selector.choice.index == rule.choose(selector.table, sets.ref, "val_loss").index
    )
    assert not selector.stopped_early
    trained = inputs.param_mask
    name = next(n for n, m in trained.items() if m.any())
    assert not torch.equal(module.model.get_parameter(name), inputs.original.get_parameter(name))


def test_class_target_stops_when_forget_accuracy_reaches_zero(toy_inputs):
    inputs = toy_inputs("tiny_vit", masked=True)
    script = [row(0.2, forget_acc=0.9), row(0.5, forget_acc=0.4), row(3.0, forget_acc=0.0)]
    selector = CheckpointSelection(ScriptedSets(script), NOISE, "class", every_n_steps=2, patience=0)
    fit(inputs, selector, max_steps=50)
    assert [r["step"] for r in selector.table] == [0, 2, 4] and selector.stopped_early
    assert selector.chosen_step == 4


def test_state_dict_holds_table_and_choice():
    sets = ScriptedSets([row(0.2)])
    selector = CheckpointSelection(sets, NOISE, "val_loss", every_n_steps=3)
    selector.table = [{"step": 0, **row(0.2)}, {"step": 3, **row(0.9)}]
    selector.choice = NOISE.choose(selector.table, sets.ref, "val_loss")
    state = selector.state_dict()
    assert state["choice"]["index"] == 1 and len(state["table"]) == 2
    other = CheckpointSelection(ScriptedSets([row(0.2)]), NOISE, "val_loss")
    other.load_state_dict(state)
    assert other.table == selector.table and other.choice == selector.choice and other.chosen_step == 3


def test_bad_arguments_name_the_choices():
    with pytest.raises(ValueError, match="valid choices: val_loss, class"):
        CheckpointSelection(ScriptedSets([]), NOISE, target="accuracy")
    with pytest.raises(ValueError, match="every_n_steps"):
        CheckpointSelection(ScriptedSets([]), NOISE, "val_loss", every_n_steps=0)
    with pytest.raises(ValueError, match="valid choices: noise, gap, kl"):
        SelectionRule(guard="bound")


def test_method_run_records_candidates_with_real_selection_sets(toy_inputs):
    inputs = toy_inputs("tiny_vit", masked=True)
    cfg = METHODS.get("ga").config(
        max_steps=12, every_n_steps=4, forget_batch_size=8, patience=None, lr_retries=0
    )
    result = METHODS.get("ga").run(inputs, cfg)
    table = result.candidates
    assert [r["step"] for r in table] == [0, 4, 8, 12]
    assert table[0]["damage"] == pytest.approx(0.0, abs=1e-9)  # step 0 is θ* itself
    assert table[-1]["forget_loss"] > table[0]["forget_loss"]  # gradient ascent on D_f
    assert result.info["kept_original"] == (result.hparams["steps"] == 0)
    assert "within the noise guard" in result.info["choice"] or "least harmful" in result.info["choice"]


def test_default_checkpoint_spacing_gives_about_the_requested_candidates(toy_inputs):
    inputs = toy_inputs("tiny_vit", masked=True)
    cfg = METHODS.get("ga").config(
        max_steps=12, candidates=4, forget_batch_size=8, patience=None, lr_retries=0
    )
    result = METHODS.get("ga").run(inputs, cfg)
    assert result.hparams["every_n_steps"] == 3
    assert [r["step"] for r in result.candidates] == [0, 3, 6, 9, 12]


def test_learning_rate_retry_factor():
    sets = ScriptedSets([row(0.2)])
    sel = CheckpointSelection(sets, NOISE, "val_loss", every_n_steps=5)

    def table(*rows):
        sel.table = [{"step": 5 * i, **r} for i, r in enumerate(rows)]
        sel.choice = NOISE.choose(sel.table, sets.ref, "val_loss")

    table(row(0.2), row(2.0, val_loss=3.0))  # the first checkpoint breaks the guard: too large a step
    assert sel.chosen_step == 0 and lr_retry_factor(sel, [{"lr": 1.0}]) == 0.1
    table(row(0.2), row(0.19))  # every checkpoint within the guard, nothing moved: too small
    assert sel.chosen_step == 0 and lr_retry_factor(sel, [{"lr": 1.0}]) == 10.0
    assert lr_retry_factor(sel, [{"lr": 1.0}, {"lr": 0.1}]) is None  # one direction only
    table(row(0.2), row(1.1))  # a good checkpoint ...
    assert sel.chosen_step == 5 and lr_retry_factor(sel, [{"lr": 1.0}]) is None
    sel.passed_at = 1  # ... but the target was passed at the first checkpoint: resolve it finer
    assert lr_retry_factor(sel, [{"lr": 1.0}], candidates=20) == 0.1
