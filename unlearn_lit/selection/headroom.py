"""Headroom of the RT-free rule (METHOD.md §5): what an oracle that sees RT would have picked.

Where RT is available (benchmarks), every candidate is also evaluated with the full metric suite and
its Avg.Gap to RT is kept in the candidate table (``oracle/avg_gap``). The smallest of them is the
oracle's Avg.Gap: the best any RT-free rule could do with the same candidates. It is reported beside the
rule's choice, always labelled as oracle, and never used to choose.

Scoring a candidate costs a full evaluation (on MiniLM/tweets about 3,000 forward passes, more than the
whole selection). With ``prune``, a candidate is scored only as far as needed to show that it cannot be
the oracle: after D_f and again after the test set, the Avg.Gap terms measured so far bound its Avg.Gap
from below (every missing |Δ| is at least 0); once that bound exceeds the best Avg.Gap already in the
same candidate table, the evaluation stops. The row then has ``oracle/avg_gap`` NaN and
``oracle/lower_bound`` set. The oracle's candidate and Avg.Gap are exactly those of the full scoring
(a pruned candidate is never below a scored one); only the pruned rows' other metrics are missing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from torch import nn

from unlearn_lit.eval.metrics import avg_gap, avg_gap_lower_bound

ORACLE_KEY = "oracle/avg_gap"
BOUND_KEY = "oracle/lower_bound"


class Headroom:
    """Scores candidates against RT.

    Args:
        rt_metrics: RT's metrics (as :func:`~unlearn_lit.eval.metrics.evaluate` returns them).
        evaluate: ``model -> metrics`` on the same splits; with ``prune`` it must accept ``stop=`` as
            :func:`~unlearn_lit.eval.metrics.evaluate` does.
        gap: ``(metrics, rt_metrics) -> distance`` (default: Avg.Gap as a fraction).
        prune: stop scoring a candidate once its Avg.Gap provably exceeds the table's best (module
            docstring); only with the default distance, whose lower bound is known.
    """

    def __init__(
        self,
        rt_metrics: Mapping[str, float],
        evaluate: Callable[..., dict[str, float]],
        gap: Callable[[Mapping[str, float], Mapping[str, float]], float] | None = None,
        prune: bool = False,
    ):
        if prune and gap is not None:
            raise ValueError("prune bounds the default Avg.Gap only; pass gap=None or prune=False")
        self.rt_metrics, self.evaluate = dict(rt_metrics), evaluate
        self.gap = gap or avg_gap_fraction
        self.prune = prune

    def __call__(self, model: nn.Module, best: float = math.inf) -> dict[str, float]:
        """``{"oracle/avg_gap": Avg.Gap (fraction), "eval/<metric>": value, ...}`` of one candidate;
        ``best``: the smallest ``oracle/avg_gap`` already in the candidate's table (used by ``prune``)."""
        was_training = model.training
        cut: list[float] = []  # the lower bound that stopped the evaluation, if one did

        def stop(partial: dict[str, float]) -> bool:
            bound = avg_gap_lower_bound(partial, self.rt_metrics) / 100.0
            if bound > best * (1.0 + 1e-9):  # a tie is kept: the earlier row stays the oracle
                cut.append(bound)
            return bool(cut)

        pruning = self.prune and math.isfinite(best)
        metrics = self.evaluate(model.eval(), **({"stop": stop} if pruning else {}))
        model.train(was_training)
        scored = {f"eval/{k}": float(v) for k, v in metrics.items()}
        if cut:
            return {ORACLE_KEY: math.nan, BOUND_KEY: cut[0], **scored}
        try:
            gap = self.gap(metrics, self.rt_metrics)
        except (KeyError, ValueError):
            gap = math.nan
        return {ORACLE_KEY: gap, **scored}


def best_scored(rows: Sequence[Mapping[str, Any]]) -> float:
    """The smallest finite ``oracle/avg_gap`` of a candidate table (inf when none is scored yet)."""
    return min((r[ORACLE_KEY] for r in rows if math.isfinite(r.get(ORACLE_KEY, math.nan))), default=math.inf)


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
