"""The mask-overlap matrix: pairwise Jaccard overlap of several runs' selected units, per kind, beside
the overlap two random masks of the same sparsity would have (:mod:`unlearn_lit.masks.overlap`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from unlearn_lit.viz import new_figure

ANNOTATE_UP_TO = 16  # runs; beyond this the cells are too small for numbers


def overlap_figure(matrices: Mapping[str, tuple[np.ndarray, np.ndarray]], names: Sequence[str]) -> Any:
    """One heatmap per kind: cell (i, j) is the Jaccard overlap of runs i and j, written in the cell
    with the random-mask expectation below it (grey cells: not comparable, e.g. another backbone).

    Args:
        matrices: ``kind -> (observed, expected)`` ``[R, R]`` arrays (:func:`overlap_matrices`).
        names: the R run names, in the matrices' order.
    """
    import matplotlib
    from matplotlib.colors import ListedColormap

    r = len(names)
    side = min(12.0, 2.5 + 0.45 * r)
    fig = new_figure(side * len(matrices) + 0.8, side)
    axes = fig.subplots(1, len(matrices), squeeze=False)[0]
    cmap = ListedColormap(matplotlib.colormaps["Blues"](np.linspace(0.05, 1.0, 256))).with_extremes(
        bad="0.85"
    )
    for ax, (kind, (observed, expected)) in zip(axes, matrices.items(), strict=True):
        image = ax.imshow(
            np.ma.masked_invalid(observed), cmap=cmap, vmin=0.0, vmax=1.0, interpolation="nearest"
        )
        fig.colorbar(image, ax=ax, label="Jaccard overlap of selected units", fraction=0.046, pad=0.03)
        if r <= ANNOTATE_UP_TO:
            size = 8 if r <= 6 else 6
            for i in range(r):
                for j in range(r):
                    if np.isfinite(observed[i, j]):
                        colour = "white" if observed[i, j] > 0.6 else "black"
                        ax.text(j, i, f"{observed[i, j]:.2f}\n({expected[i, j]:.2f})", ha="center",
                                va="center", fontsize=size, color=colour)  # fmt: skip
        ax.set_xticks(range(r), names, rotation=60, ha="right", fontsize=7)
        ax.set_yticks(range(r), names, fontsize=7)
        off = expected[~np.eye(r, dtype=bool)]
        off = off[np.isfinite(off)]
        chance = (
            "–"
            if not off.size
            else f"{off.min():.2f}" + (f"–{off.max():.2f}" if off.max() - off.min() >= 0.005 else "")
        )
        ax.set_title(f"{kind}s (random masks: {chance})", fontsize=9)
    fig.suptitle("Mask stability: Jaccard overlap of the selected units, random-mask expectation in brackets",
                 fontsize=10)  # fmt: skip
    return fig
