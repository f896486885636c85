"""The mask figure of a run: which heads and filters the mask selects, by which scores, and what the
greedy search changed (MAPE-Unlearn, METHOD.md §3–§4).

One row per maskable kind, three panels per row:

1. the scores as a layers × units heatmap (wide kinds, e.g. 3,072 filters, are shown as the mean score
   of bins of adjacent units), with every selected unit marked by a dot at its exact index;
2. the selected units per layer (the search keeps each layer's count, so warm start and final agree);
3. the units the greedy search swapped: added (selected after the search, frozen in the warm start)
   and dropped (the reverse), over the units selected by both.

Input is numpy, keyed as in ``mask.safetensors`` (``head``, ``score.head``, ``warm.head``, ...), so the
figure can be drawn from a saved artifact without torch.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from unlearn_lit.viz import integer_axis, new_figure

KINDS = ("head", "filter")
MAX_COLUMNS = 128  # heatmap columns per layer; wider kinds are binned


def shown_kinds(arrays: Mapping[str, np.ndarray], summary: Mapping[str, Any]) -> list[str]:
    """The kinds to draw: the artifact's maskable kinds (``summary["kinds"]``), else every mask present."""
    kinds = summary.get("kinds") or KINDS
    return [k for k in KINDS if k in kinds and k in arrays]


def bin_columns(values: np.ndarray, max_columns: int = MAX_COLUMNS) -> tuple[np.ndarray, int]:
    """``[L, n]`` -> ``([L, ceil(n / b)], b)``: the mean over bins of ``b`` adjacent units (the last bin
    may be shorter), with ``b = ceil(n / max_columns)``; ``b = 1`` returns the values unchanged."""
    n = values.shape[1]
    width = max(1, math.ceil(n / max_columns))
    if width == 1:
        return values.astype(float), 1
    padded = np.full((values.shape[0], math.ceil(n / width) * width), np.nan)
    padded[:, :n] = values
    return np.nanmean(padded.reshape(values.shape[0], -1, width), axis=2), width


def _dot_area(n: int) -> float:
    """Marker area (points²) of one unit: about its width on a ~5-inch axis, between 1 and 36."""
    return float(np.clip((360 / n) ** 2, 1.0, 36.0))


def _score_norm(scores: np.ndarray) -> tuple[Any, str, str]:
    """(norm, colormap, colour-bar extension): limits at the 1st/99th percentiles so that a few extreme
    scores do not flatten the rest; signed scores get a diverging map centred at 0."""
    from matplotlib.colors import Normalize, TwoSlopeNorm

    lo, hi = np.nanpercentile(scores, [1, 99])
    extend = {(False, False): "neither", (True, False): "min", (False, True): "max", (True, True): "both"}[
        (bool(np.nanmin(scores) < lo), bool(np.nanmax(scores) > hi))
    ]
    if lo < 0 < hi:
        return TwoSlopeNorm(0.0, lo, hi), "RdBu_r", extend
    if lo == hi:
        lo, hi = lo - 1.0, hi + 1.0
    return Normalize(lo, hi), "viridis", extend


def _unit_axes(ax: Any, kind: str, shape: tuple[int, int]) -> None:
    """Layers down, unit indices across, integer ticks on both."""
    num_layers, n = shape
    ax.set_xlim(-0.5, n - 0.5)
    ax.set_ylim(num_layers - 0.5, -0.5)
    ax.set_xlabel(f"{kind} index")
    ax.set_ylabel("layer")
    integer_axis(ax.xaxis)
    integer_axis(ax.yaxis)


def _scores_panel(ax: Any, kind: str, mask: np.ndarray, scores: np.ndarray | None, objective: str) -> None:
    num_layers, n = mask.shape
    extent = (-0.5, n - 0.5, num_layers - 0.5, -0.5)  # x in unit indices even when binned
    if scores is not None:
        binned, width = bin_columns(scores)
        norm, cmap, extend = _score_norm(scores)
        image = ax.imshow(binned, cmap=cmap, norm=norm, aspect="auto", interpolation="nearest", extent=extent)
        label = f"{objective.upper()} score" + (f" (mean of {width} {kind}s)" if width > 1 else "")
        ax.figure.colorbar(image, ax=ax, extend=extend, label=label, fraction=0.05, pad=0.02)
    else:
        ax.imshow(
            np.zeros_like(mask, dtype=float), cmap="Greys", vmin=0, vmax=1, aspect="auto", extent=extent
        )
    layers, units = np.nonzero(mask)
    ax.scatter(units, layers, s=_dot_area(n), c="black", marker="o", edgecolors="white", linewidths=0.4)
    _unit_axes(ax, kind, mask.shape)
    ax.set_title(f"scores, {int(mask.sum())} of {mask.size} {kind}s selected (black dots)", fontsize=9)


def _counts_panel(ax: Any, kind: str, mask: np.ndarray) -> None:
    num_layers, n = mask.shape
    counts = mask.sum(axis=1)
    ax.barh(np.arange(num_layers), counts, color="black", height=0.7)
    for layer, c in enumerate(counts):
        ax.text(c, layer, f" {int(c)}", va="center", fontsize=7)
    ax.set_xlim(0, max(1, int(counts.max())) * 1.25)
    ax.set_ylim(num_layers - 0.5, -0.5)
    ax.set_xlabel(f"selected {kind}s (of {n} per layer)")
    ax.set_ylabel("layer")
    integer_axis(ax.xaxis, bins=4)
    integer_axis(ax.yaxis)
    ax.set_title("selected per layer", fontsize=9)


def _swaps_panel(ax: Any, kind: str, mask: np.ndarray, warm: np.ndarray | None, search: Any) -> None:
    num_layers, n = mask.shape
    if warm is None:
        reason = search if isinstance(search, str) else "not recorded in this artifact"
        ax.text(0.5, 0.5, f"no warm start to compare:\n{reason}", ha="center", va="center",
                fontsize=8, wrap=True, transform=ax.transAxes)  # fmt: skip
        ax.set_axis_off()
        return
    from matplotlib.lines import Line2D

    kept, added, dropped = mask & warm, mask & ~warm, warm & ~mask
    dot = _dot_area(n)
    styles = (
        (kept, "0.7", "o", dot, f"selected by both ({int(kept.sum())})"),
        (added, "tab:green", "+", max(25.0, 4 * dot), f"added by the search ({int(added.sum())})"),
        (dropped, "tab:red", "x", max(25.0, 4 * dot), f"dropped by the search ({int(dropped.sum())})"),
    )
    handles = []
    for cells, colour, marker, area, label in styles:
        layers, units = np.nonzero(cells)
        ax.scatter(units, layers, s=area, c=colour, marker=marker, linewidths=0 if marker == "o" else 1.2)
        handles.append(Line2D([], [], color=colour, marker=marker, ls="", ms=6, label=label))
    _unit_axes(ax, kind, mask.shape)
    ax.legend(handles=handles, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=3,
              frameon=False)  # fmt: skip
    ax.set_title(
        f"greedy search: {int(added.sum())} of {int(mask.sum())} selected {kind}s swapped", fontsize=9
    )


def _objective_text(summary: Mapping[str, Any]) -> str:
    search = summary.get("search")
    if not isinstance(search, Mapping):
        return "no greedy search"
    parts = [f"{kind} J {v['objective_before']:.4g} → {v['objective_after']:.4g}"
             for kind, v in search.items() if isinstance(v, Mapping) and v.get("searched")]  # fmt: skip
    return "greedy search: " + ("; ".join(parts) if parts else "no block to search")


def mask_figure(arrays: Mapping[str, np.ndarray], summary: Mapping[str, Any], title: str = "") -> Any:
    """The figure of one mask artifact (see the module docstring).

    Args:
        arrays: ``head`` / ``filter`` ``[L, n]`` bool masks, optionally ``score.<kind>`` and
            ``warm.<kind>`` (the warm start before the greedy search).
        summary: the artifact's summary (``objective``, ``sparsity``, ``kinds``, ``search``).
        title: a prefix of the figure title (e.g. the run's name).
    """
    kinds = shown_kinds(arrays, summary)
    if not kinds:
        raise ValueError(f"no mask to draw: arrays hold {sorted(arrays)}; expected some of {KINDS}")
    fig = new_figure(14.0, 0.6 + 3.3 * len(kinds))
    axes = fig.subplots(len(kinds), 3, squeeze=False, gridspec_kw={"width_ratios": (3, 1.2, 3)})
    objective = str(summary.get("objective", "?"))
    search = summary.get("search")
    for row, kind in zip(axes, kinds, strict=True):
        mask = np.asarray(arrays[kind], dtype=bool)
        scores = arrays.get(f"score.{kind}")
        warm = arrays.get(f"warm.{kind}")
        _scores_panel(row[0], kind, mask, None if scores is None else np.asarray(scores, float), objective)
        _counts_panel(row[1], kind, mask)
        kind_search = search.get(kind) if isinstance(search, Mapping) else search
        _swaps_panel(row[2], kind, mask, None if warm is None else np.asarray(warm, bool), kind_search)
    sparsity = summary.get("sparsity")
    head = f"{title}: " if title else ""
    fig.suptitle(
        f"{head}mask of objective {objective.upper()}, sparsity {sparsity} (fraction frozen per kind); "
        f"{_objective_text(summary)}",
        fontsize=10,
    )
    return fig
