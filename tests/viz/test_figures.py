"""Figures: the mask figure shows scores, selected units and the search's swaps; trade-off plots draw."""

from __future__ import annotations

import numpy as np

from unlearn_lit.crossrun.runs import aggregate
from unlearn_lit.viz import png_bytes
from unlearn_lit.viz.masks import bin_columns, mask_figure
from unlearn_lit.viz.tradeoff import sparsity_figure, tradeoff_figure


def arrays(n_filters: int = 300):
    rng = np.random.default_rng(0)
    head = np.zeros((3, 4), bool)
    head[0, 1] = head[1, 2] = head[2, 0] = True
    warm = head.copy()
    warm[1, 2], warm[1, 3] = False, True  # the search swapped head (1, 3) for (1, 2)
    filters = rng.random((3, n_filters)) < 0.1
    return {"head": head, "warm.head": warm, "score.head": rng.normal(size=(3, 4)).astype(np.float32),
            "filter": filters, "score.filter": rng.random((3, n_filters)).astype(np.float32)}  # fmt: skip


def texts(fig) -> list[str]:
    return [ax.get_title() for ax in fig.axes] + [ax.get_ylabel() for ax in fig.axes] + [fig.get_suptitle()]


def test_mask_figure_shows_scores_selection_and_swaps():
    summary = {"objective": "mlr", "sparsity": 0.9, "kinds": ["head", "filter"],
               "search": {"head": {"objective_before": 2.0, "objective_after": 1.5, "searched": 1},
                          "filter": "skipped"}}  # fmt: skip
    fig = mask_figure(arrays(), summary, title="run0")
    found = " | ".join(texts(fig))
    assert "run0: mask of objective MLR, sparsity 0.9" in found and "head J 2 → 1.5" in found
    assert "3 of 12 heads selected" in found and "greedy search: 1 of 3 selected heads swapped" in found
    assert "MLR score" in found and "MLR score (mean of 3 filters)" in found  # labelled colour bars
    # filters have no warm start: the panel says so instead of claiming no swaps
    assert not any("selected filters swapped" in t for t in texts(fig))
    for ax in fig.axes:
        if ax.get_xlabel() in ("head index", "filter index", "layer") or "selected" in ax.get_xlabel():
            ticks = np.asarray(ax.get_xticks())
            assert np.allclose(ticks, np.round(ticks)), (ax.get_xlabel(), ticks)
    assert png_bytes(fig)[:8] == b"\x89PNG\r\n\x1a\n"


def test_bin_columns_means_adjacent_units():
    values = np.arange(10, dtype=float).reshape(1, 10)
    binned, width = bin_columns(values, max_columns=4)
    assert width == 3 and binned.tolist() == [[1.0, 4.0, 7.0, 9.0]]  # the last bin is shorter
    assert bin_columns(values, max_columns=10)[1] == 1


def test_tradeoff_and_sparsity_figures_draw_every_method():
    rows = []
    for seed in (0, 1, 2):
        for sparsity in (0.5, 0.9):
            for method, gap in (("original", 6.0), ("rt", 0.0), ("mape_so", 3.0 + seed), ("so", 2.0)):
                rows.append({"setting": f"mask.sparsity={sparsity}", "method": method, "seed": seed,
                             "sparsity": sparsity if method == "mape_so" else None, "ua": 0.9, "ra": 0.99,
                             "ta": 0.9 - sparsity / 10, "mia": 0.8, "avg_gap": gap, "ua_gap": gap,
                             "ra_ta_gap": gap / 2, "time_s": 0.0 if method == "original" else 5.0,
                             "updated": {"original": 0.0, "mape_so": 0.1}.get(method, 1.0),
                             "failed": ""})  # fmt: skip
    groups = aggregate(rows)
    fig = tradeoff_figure(groups)
    methods = {t.get_text() for t in fig.legends[0].get_texts()}
    assert {"original", "rt", "mape_so", "so", "mask.sparsity=0.5", "mask.sparsity=0.9"} <= methods
    fig = sparsity_figure(groups, {"so": {"ta": 0.9, "ra": 0.99, "ua": 0.9, "avg_gap": 2.0}})
    line = fig.axes[0].get_lines()[0]  # TA of mape_so vs sparsity, in percent
    assert np.allclose(line.get_xdata(), [0.5, 0.9]) and np.allclose(line.get_ydata(), [85.0, 81.0])
