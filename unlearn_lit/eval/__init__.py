"""Evaluation (METHOD.md §7): accuracy / Spearman per split, MIA, loss attack, Avg.Gap and cost."""

from unlearn_lit.eval.cost import CostTracker, changed_parameters, parameter_counts, tensor_bytes
from unlearn_lit.eval.metrics import Outputs, avg_gap, evaluate, predict, score
from unlearn_lit.eval.mia import confidence_mia, loss_attack

__all__ = [
    "CostTracker",
    "Outputs",
    "avg_gap",
    "changed_parameters",
    "confidence_mia",
    "evaluate",
    "loss_attack",
    "parameter_counts",
    "predict",
    "score",
    "tensor_bytes",
]
