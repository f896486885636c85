"""Guard pruning (``SelectionRule.prune``): a candidate stops being measured once it fails the guard, when
its table already holds a candidate within it. Every choice must be the one measuring everything gives,
on a real tiny ViT trained on digits (SO's step search and GA's screened checkpoints)."""

from __future__ import annotations

import math

import pytest

from unlearn_lit.methods import METHODS, UnlearnInputs
from unlearn_lit.runtime import Runtime
from unlearn_lit.selection import SelectionRule
from unlearn_lit.selection.sets import MEASURES, selection_sets
from unlearn_lit.units import unit_layout

REF = {"retain_loss": 0.1, "val_keep_loss": 1.0, "val_keep_loss_se": 0.05, "damage": 0.0}  # tolerance 0.1
NAN = math.nan


def partial(retain=NAN, val=NAN, damage=NAN):
    return {"retain_loss": retain, "val_keep_loss": val, "damage": damage}


def test_outside_reads_only_the_measured_terms():
    rule = SelectionRule()
    assert not rule.outside(partial(), REF, "val_loss")  # nothing measured yet
    assert rule.outside(partial(val=1.11), REF, "val_loss")  # validation rose by 0.11 > 0.1
    assert not rule.outside(partial(val=1.09), REF, "val_loss")
    assert not rule.outside(partial(val=0.5), REF, "val_loss")  # a validation *fall* is no harm
    assert rule.outside(partial(retain=0.0 - 1e-9), REF, "val_loss")  # two-sided: a fall of 0.1+
    assert not SelectionRule(two_sided=False).outside(partial(retain=-0.5), REF, "val_loss")
    assert rule.outside(partial(retain=0.25, val=1.0), REF, "val_loss")
    kl = SelectionRule(guard="kl", eps=0.02)
    assert kl.outside(partial(damage=0.03), REF, "val_loss") and not kl.outside(
        partial(val=9.0), REF, "val_loss"
    )
    assert not rule.outside(partial(val=9.0, retain=9.0), REF, "class")  # the class ideal has no guard
    assert rule.outside(partial(val=9.0), REF, "class") is False
    assert SelectionRule(class_criterion="guard").outside(partial(val=9.0), REF, "class")
    stop = rule.stop(REF, "val_loss")  # what the searches pass to measure(stop=...)
    assert stop(partial(val=1.11)) and not stop(partial(val=1.09))
    assert SelectionRule(prune=False).stop(REF, "val_loss") is None


@pytest.mark.parametrize(("n_retain", "n_val", "first"), [(64, 32, "val"), (32, 64, "retain")])
def test_measure_stops_after_the_smaller_guarded_set(trained_digits, n_retain, n_val, first):
    original, dm, _ = trained_digits
    sets = selection_sets(original, dm, n_retain, n_val, seed=0)
    whole = sets.measure(original)
    seen = []
    cut = sets.measure(original, stop=lambda row: seen.append(dict(row)) or True)
    assert cut["pruned"] == first and len(seen) == 1
    measured = {"val": ("val_loss", "val_acc", "val_keep_loss", "val_keep_acc"),
                "retain": ("retain_loss", "retain_acc", "damage")}[first]  # fmt: skip
    for key in MEASURES:
        if key in measured:
            assert cut[key] == pytest.approx(whole[key], rel=1e-12, abs=1e-15)
        else:
            assert math.isnan(cut[key]), key
    never = sets.measure(original, stop=lambda row: False)
    assert "pruned" not in never and never == pytest.approx(whole, rel=1e-12, abs=1e-15)
    assert sets.measure(original, reference=True, stop=lambda row: True).keys() >= set(MEASURES)


def run_both(original, dm, method, options):
    spec, out = METHODS.get(method), {}
    for prune in (False, True):
        inputs = UnlearnInputs(
            original, dm, unit_layout(original), seed=0, runtime=Runtime("cpu", progress_bar=False)
        )
        out[prune] = spec.run(inputs, spec.config(**options, rule={"prune": prune}))
    return out


def assert_same_choice_fewer_measurements(results, key):
    full, pruned = results[False], results[True]
    assert pruned.hparams == full.hparams and pruned.info["reason"] == full.info["reason"]
    a, b = full.candidates, pruned.candidates
    assert [r[key] for r in a] == [r[key] for r in b]  # the same candidates, in the same order
    cut = [i for i, r in enumerate(b) if "pruned" in r]
    assert cut, "no candidate was pruned: the test would show nothing"
    rule, ref = SelectionRule(), full.info.get("selection_ref") or pruned.info["selection_ref"]
    for i, (x, y) in enumerate(zip(a, b, strict=True)):
        if i in cut:  # outside the guard when measured whole, and forget never measured
            assert not rule.within(x, ref) and math.isnan(y["forget_loss"])
        else:
            assert {k: y[k] for k in MEASURES} == pytest.approx(
                {k: x[k] for k in MEASURES}, rel=1e-9, nan_ok=True
            )


def test_so_step_search_chooses_the_same_step(trained_digits):
    original, dm, _ = trained_digits
    results = run_both(original, dm, "so", dict(selection_retain=64, selection_val=32))
    assert_same_choice_fewer_measurements(results, "value")
    assert results[True].info["time_selection_s"] > 0


def test_ga_confirmation_chooses_the_same_checkpoint(trained_digits):
    original, dm, _ = trained_digits
    options = dict(selection_retain=64, selection_val=32, max_steps=24, lr_retries=0, patience=None,
                   selection_screen=16, confirm_top=2, optim={"lr": 3e-3})  # fmt: skip
    results = run_both(original, dm, "ga", options)
    assert_same_choice_fewer_measurements(results, "step")


class LinearSets:
    """Selection sets whose row is a linear function of the step value loaded (``state["value"]``),
    measured validation first and honouring ``stop`` as :meth:`SelectionSets.measure` does."""

    def __init__(self, state, val_slope, screen_slope=None):
        self.state, self.val_slope = state, val_slope
        self.screen_slope = val_slope / 2 if screen_slope is None else screen_slope
        self.ref = {**self.row(0.0), "val_keep_loss_se": 0.05}  # tolerance 0.1

    def row(self, v):
        val = 1.0 + self.val_slope * v
        losses = {
            "retain_loss": 0.1 + 0.05 * v,
            "forget_loss": 0.1 + 2 * v,
            "val_loss": val,
            "val_keep_loss": val,
        }
        return {**dict.fromkeys(MEASURES, 0.5), "damage": 0.0, **losses}

    def subset(self, n):  # the screen: validation loss rises more slowly
        return LinearSets(self.state, self.screen_slope)

    def measure(self, model, stop=None):
        full = self.row(self.state["value"])
        first = {k: (full[k] if k.startswith("val") else NAN) for k in MEASURES}
        return {**first, "pruned": "val"} if stop is not None and stop(first) else full


@pytest.mark.parametrize(
    ("slope", "screen", "grid", "completed"),
    [(0.6, 0.3, [0.01, 0.3, 1.0], 0), (5.0, 1.0, [0.01, 0.08, 1.0], 1)],
)
def test_the_search_over_pruned_steps_follows_the_whole_rows(slope, screen, grid, completed):
    """The screen's choice fails the guard on the full sets, where only θ* is within it: the search anchors
    on it (alone, its other sets are not needed) and bisects towards smaller steps. With the steeper
    validation loss the next step fails too, and the least harmful of the two -- the anchor -- is found by
    measuring whole only the one whose bound is lower."""
    from unlearn_lit.selection import StepSearch

    tables = {}
    for prune in (False, True):
        state = {"value": 0.0}
        search = StepSearch(None, lambda c, v, state=state: state.update(value=v) or True, lambda c, v: {},
                            LinearSets(state, slope, screen), SelectionRule(prune=prune), "val_loss", screen=8)  # fmt: skip
        choice = search.run([0.1], grid, refine=3, max_extend=0)
        tables[prune] = (search.rows, search.rows[choice.index]["value"], search.completed)
    (full, chosen, _), (pruned, chosen_pruned, done) = tables[False], tables[True]
    assert chosen == chosen_pruned and 0 < chosen < grid[1] and done == completed
    assert [(r["stage"], r["value"]) for r in full] == [(r["stage"], r["value"]) for r in pruned]
    rule, ref = SelectionRule(), LinearSets({"value": 0.0}, slope).ref
    first_full = next(r for r in pruned if r["stage"] == "full" and r["value"] == grid[1])
    assert "pruned" in first_full and not rule.within(full[pruned.index(first_full)], ref)
    for a, b in zip(full, pruned, strict=True):  # whole rows are the same; pruned ones lack D_f
        if "pruned" in b:
            assert not rule.within(a, ref) and math.isnan(b["forget_loss"])
        else:
            assert a == b
