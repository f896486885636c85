"""RT-free selection (METHOD.md §5): the rule, the selection sets, the candidate grid of one-step methods,
the checkpoint callback of fine-tuning methods, and the (oracle) headroom against RT.

Below ``methods/`` and above ``masks/``/``models/``/``eval/``: every method selects through this package.
"""

from unlearn_lit.selection.checkpoint import CheckpointSelection
from unlearn_lit.selection.grid import StepSearch
from unlearn_lit.selection.headroom import ORACLE_KEY, Headroom, oracle_summary
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
from unlearn_lit.selection.sets import MEASURES, SelectionSets, first_examples, selection_sets, to_device
from unlearn_lit.selection.verdict import verdict

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
    "selection_sets",
    "to_device",
    "verdict",
]
