"""Headroom of the RT-free rule (METHOD.md §5): what an oracle that sees RT would have picked.

Where RT is available (benchmarks), every candidate is also evaluated with the full metric suite and
its Avg.Gap to RT is kept in the candidate table (``oracle/avg_gap``). The smallest of them is the
oracle's Avg.Gap: the best any RT-free rule could do with the same candidates. It is reported beside the
rule's choice, always labelled as oracle, and never used to choose.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from torch import nn

from unlearn_lit.eval.metrics import avg_gap

ORACLE_KEY = "oracle/avg_gap"


class Headroom:
    """Scores candidates against RT.

    Args:
        rt_metrics: RT's metrics (as :func:`~unlearn_lit.eval.metrics.evaluate` returns them).
        evaluate: ``model -> metrics`` on the same splits.
        gap: ``(metrics, rt_metrics) -> distance`` (default: Avg.Gap as a fraction).
    """

    def __init__(
        self,
        rt_metrics: Mapping[str, float],
        evaluate: Callable[[nn.Module], dict[str, float]],
        gap: Callable[[Mapping[str, float], Mapping[str, float]], float] | None = None,
    ):
        self.rt_metrics, self.evaluate = dict(rt_metrics), evaluate
        self.gap = gap or avg_gap_fraction

    def __call__(self, model: nn.Module) -> dict[str, float]:
        """``{"oracle/avg_gap": Avg.Gap (fraction), "eval/<metric>": value, ...}`` of one candidate."""
        was_training = model.training
        metrics = self.evaluate(model.eval())
        model.train(was_training)
        try:
            gap = self.gap(metrics, self.rt_metrics)
        except (KeyError, ValueError):
            gap = math.nan
        return {ORACLE_KEY: gap, **{f"eval/{k}": float(v) for k, v in metrics.items()}}


def avg_gap_fraction(metrics: Mapping[str, float], rt_metrics: Mapping[str, float]) -> float:
    """Avg.Gap to RT as a fraction (the default headroom distance)."""
    return avg_gap(metrics, rt_metrics) / 100.0


def oracle_summary(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The oracle's candidate and Avg.Gap over a scored table (empty when no row was scored)."""
    scored = [(r[ORACLE_KEY], i) for i, r in enumerate(rows) if math.isfinite(r.get(ORACLE_KEY, math.nan))]
    if not scored:
        return {}
    gap, index = min(scored)
    return {"oracle_index": index, "oracle_avg_gap": gap}
