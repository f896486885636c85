"""The mask artifact from phase-1 statistics: warm start, then the greedy block search (METHOD.md §4).

A pure function of the statistics and the options: no Trainer, no model. The objective registry
(:data:`~unlearn_lit.masks.objectives.OBJECTIVES`) says which options an objective takes and whether
it has a block form to search; nothing here branches on objective names.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from unlearn_lit.masks.artifact import MaskArtifact
from unlearn_lit.masks.objectives import OBJECTIVES, objective_options
from unlearn_lit.masks.search import greedy_search, warm_start
from unlearn_lit.units.layout import KINDS


def build_artifact(
    statistics: Mapping[str, Any], config: Any, shapes: Mapping[str, Sequence[int]], kinds: Sequence[str]
) -> MaskArtifact:
    """Warm start + (for objectives with a block form) greedy search.

    Args:
        statistics: the phase-1 statistics (:meth:`MaskStatistics.result`; ``G`` rows for the search).
        config: the phase-1 options (a :class:`~unlearn_lit.phases.mask_learning.MaskConfig`).
        shapes: ``kind -> [L, n]`` of every kind of the backbone.
        kinds: the maskable kinds.
    """
    cfg, stats = config, statistics
    available = {"alpha": cfg.alpha, "fisher_scale": cfg.fisher_scale, "num_retain": stats["num_retain"],
                 "num_forget": stats["num_forget"], "seed": cfg.seed,
                 "shapes": {k: shapes[k] for k in kinds}}  # fmt: skip
    masks, scores = warm_start(
        cfg.objective,
        stats,
        cfg.sparsity,
        budget=cfg.budget,
        select=cfg.select,
        kinds=kinds,
        **objective_options(cfg.objective, available),
    )
    summary: dict[str, Any] = {
        "objective": cfg.objective,
        "sparsity": cfg.sparsity,
        "kinds": list(kinds),
        "budget": cfg.budget,
        "alpha": cfg.alpha,
        "fisher_scale": cfg.fisher_scale,
        "data": {"num_forget": stats["num_forget"], "num_retain": stats["num_retain"], "seed": cfg.seed},
    }
    if cfg.search and OBJECTIVES.get(cfg.objective).block_search and "G" in stats:
        # J uses the mean-scale Fisher (1/N)||sum G||^2; the 'sum' scale multiplies it by |D_r|.
        alpha = cfg.alpha * (stats["num_retain"] if cfg.fisher_scale == "sum" else 1.0)
        g_f = {k: stats["forget_grad_sum"][k] for k in kinds}
        warm = masks
        masks, info = greedy_search(masks, g_f, stats["G"], alpha, scores)
        summary["search"] = info["kinds"]
        summary["data"]["search_rows"] = int(next(iter(stats["G"].values())).shape[0])
    else:
        warm = {}
        summary["search"] = (
            f"skipped (search={cfg.search}, objective={cfg.objective}: no block objective to search)"
        )
    full = {k: masks.get(k, torch.zeros(tuple(shapes[k]), dtype=torch.bool)) for k in KINDS}
    return MaskArtifact(head=full["head"], filter=full["filter"], scores=scores, summary=summary,
                        warm_start=dict(warm))  # fmt: skip
