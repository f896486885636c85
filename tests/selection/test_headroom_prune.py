"""Pruned headroom (``headroom_prune``): a candidate is scored against RT only until its Avg.Gap provably
exceeds the best of its table. The oracle must be exactly the full scoring's, on a real tiny ViT with a
trained θ* and a retrained RT on digits."""

from __future__ import annotations

import functools
import math

import pytest

from unlearn_lit.eval.metrics import avg_gap, avg_gap_lower_bound, evaluate
from unlearn_lit.methods import METHODS, UnlearnInputs
from unlearn_lit.runtime import Runtime
from unlearn_lit.selection.headroom import BOUND_KEY, ORACLE_KEY, Headroom, best_scored, oracle_summary
from unlearn_lit.units import unit_layout


@pytest.fixture(scope="module")
def problem(trained_digits):
    return trained_digits


def headroom(dm, rt, prune):
    return Headroom(rt, functools.partial(evaluate, datamodule=dm), prune=prune)


def test_evaluate_stops_where_told_and_the_bound_never_exceeds_avg_gap(problem):
    original, dm, rt = problem
    full = evaluate(original, dm)
    seen: list[dict] = []
    forget_only = evaluate(original, dm, stop=lambda m: seen.append(m) or True)
    assert forget_only == {"forget/acc": full["forget/acc"]} and seen == [forget_only]
    with_test = evaluate(original, dm, stop=lambda m: "test/acc" in m)
    assert with_test == {"forget/acc": full["forget/acc"], "test/acc": full["test/acc"]}
    gap = avg_gap(full, rt)
    bounds = [avg_gap_lower_bound(m, rt) for m in (forget_only, with_test, full)]
    assert bounds[0] <= bounds[1] <= bounds[2] and bounds[2] == pytest.approx(gap, rel=1e-12)
    assert bounds[1] == pytest.approx(
        (abs(full["forget/acc"] - rt["forget/acc"]) + abs(full["test/acc"] - rt["test/acc"])) * 25
    )
    with pytest.raises(ValueError, match="default Avg.Gap"):
        Headroom(rt, evaluate, gap=lambda m, r: 0.0, prune=True)


@pytest.mark.parametrize("method", ["so", "ga"])
def test_pruned_headroom_finds_the_same_oracle_for_less(problem, method):
    original, dm, rt = problem
    spec = METHODS.get(method)
    options = dict(selection_retain=64, selection_val=64)
    if method == "ga":
        options.update(max_steps=12, lr_retries=0, selection_screen=0, optim={"lr": 3e-3})
    results = {}
    for prune in (False, True):
        inputs = UnlearnInputs(original, dm, unit_layout(original), seed=0, headroom=headroom(dm, rt, prune),
                               runtime=Runtime("cpu", progress_bar=False))  # fmt: skip
        results[prune] = spec.run(inputs, spec.config(**options))
    full, pruned = results[False].candidates, results[True].candidates
    assert (
        len(full) == len(pruned) and results[False].hparams == results[True].hparams
    )  # the rule is blind to it
    assert oracle_summary(full) == oracle_summary(pruned) and oracle_summary(full)
    assert results[False].info["oracle_avg_gap"] == results[True].info["oracle_avg_gap"]
    cut = [i for i, r in enumerate(pruned) if BOUND_KEY in r]
    assert cut, "no candidate was pruned: the test would show nothing"
    for i, (a, b) in enumerate(zip(full, pruned, strict=True)):
        if i in cut:  # stopped early, with a bound that holds and exceeds the best before it
            assert math.isnan(b[ORACLE_KEY]) and "eval/retain/acc" not in b
            assert a[ORACLE_KEY] >= b[BOUND_KEY] - 1e-12
            stage = [r for r in pruned[:i] if r.get("stage") == b.get("stage")]
            assert b[BOUND_KEY] > best_scored(stage)
        else:  # scored in full, as without pruning
            assert b[ORACLE_KEY] == a[ORACLE_KEY]
