"""The selection's forward passes under autocast (``selection_precision``; issue 14's bf16 inference)."""

from __future__ import annotations

import math

import pytest
import torch

from unlearn_lit.config import RunConfig
from unlearn_lit.methods.base import UnlearnInputs
from unlearn_lit.selection import MEASURES, selection_dtype, selection_sets
from unlearn_lit.units import unit_layout


@pytest.mark.parametrize(
    ("setting", "runtime", "expected"),
    [
        ("auto", None, None),
        ("auto", "32-true", None),
        ("auto", "bf16-mixed", torch.bfloat16),
        ("auto", "16-mixed", torch.float16),
        ("auto", "bf16-true", None),  # the weights are bf16 already: nothing to autocast
        ("32", "bf16-mixed", None),
        ("bf16", None, torch.bfloat16),
        ("16", "32-true", torch.float16),
    ],
)
def test_selection_dtype_follows_the_runtime_unless_set(setting, runtime, expected):
    assert selection_dtype(setting, runtime) is expected


def test_an_unknown_selection_precision_names_the_choices():
    with pytest.raises(ValueError, match="valid choices: auto, 32, bf16, 16"):
        selection_dtype("fp8")
    with pytest.raises(ValueError, match="selection_precision.*auto, 32, bf16, 16"):
        RunConfig(selection_precision="bfloat16")


def _dtypes_seen(model, fn):
    """The output dtypes of every Linear layer while ``fn`` runs."""
    seen: set[torch.dtype] = set()
    hooks = [
        m.register_forward_hook(lambda _m, _i, out: seen.add(out.dtype))
        for m in model.modules()
        if isinstance(m, torch.nn.Linear)
    ]
    try:
        result = fn()
    finally:
        for h in hooks:
            h.remove()
    return seen, result


def test_autocast_sets_measure_every_candidate_and_the_reference_in_that_dtype(trained_digits):
    original, dm, _ = trained_digits
    seen, plain = _dtypes_seen(original, lambda: selection_sets(original, dm, 64, 64, seed=0))
    assert seen == {torch.float32} and plain.autocast is None
    seen, bf16 = _dtypes_seen(original, lambda: selection_sets(original, dm, 64, 64, 0, torch.bfloat16))
    assert seen == {torch.bfloat16}  # θ*'s reference row, measured when the sets are built
    screen = bf16.subset(16)  # a screen measures as its sets do
    seen, row = _dtypes_seen(original, lambda: screen.measure(original))
    assert seen == {torch.bfloat16} and screen.autocast is torch.bfloat16
    # the same measurements up to bfloat16's rounding of the logits (8 bits of mantissa)
    for key in MEASURES:
        a, b = plain.ref[key], bf16.ref[key]
        assert math.isfinite(b), key
        assert b == pytest.approx(a, rel=0.05, abs=0.02), key
    assert all(math.isfinite(row[k]) for k in MEASURES)


def test_a_method_builds_its_sets_in_the_run_selection_dtype(trained_digits):
    original, dm, _ = trained_digits
    inputs = UnlearnInputs(original, dm, unit_layout(original), selection_dtype=torch.bfloat16)
    assert inputs.sets(32, 32).autocast is torch.bfloat16
