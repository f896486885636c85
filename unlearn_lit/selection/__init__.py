"""RT-free selection (METHOD.md §5): the rule, the selection sets, the candidate grid of one-step methods,
the checkpoint callback of fine-tuning methods, and the (oracle) headroom against RT.

Below ``methods/`` and above ``masks/``/``models/``/``eval/``: every method selects through this package.
"""

from __future__ import annotations

import importlib

from unlearn_lit.selection.rule import (
    CLASS_CRITERIA,
    GUARDS,
    TARGETS,
    Choice,
    SelectionRule,
    choose_oracle,
    class_gap,
    distance,
)
from unlearn_lit.selection.verdict import verdict

# The torch-free part (the rule, part of every method's options, which the CLI validates before importing
# torch) above; the rest: name -> submodule, imported on first use.
_EXPORTS = {
    "CheckpointSelection": "checkpoint",
    "StepSearch": "grid",
    "ORACLE_KEY": "headroom",
    "Headroom": "headroom",
    "oracle_summary": "headroom",
    "MEASURES": "sets",
    "SelectionSets": "sets",
    "first_examples": "sets",
    "selection_dtype": "sets",
    "selection_sets": "sets",
    "to_device": "sets",
}


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CLASS_CRITERIA",
    "GUARDS",
    "MEASURES",
    "ORACLE_KEY",
    "TARGETS",
    "CheckpointSelection",
    "Choice",
    "Headroom",
    "SelectionRule",
    "SelectionSets",
    "StepSearch",
    "choose_oracle",
    "class_gap",
    "distance",
    "first_examples",
    "oracle_summary",
    "selection_dtype",
    "selection_sets",
    "to_device",
    "verdict",
]
