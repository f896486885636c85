"""Trade-off plots across runs (METHOD.md §7): what each method pays for its closeness to RT.

Input rows are per (setting, method) means with 95% CI half-widths ``<metric>_ci`` over seeds
(:func:`unlearn_lit.crossrun.runs.aggregate`); error bars are drawn where a CI exists (two seeds or
more). One colour per method in every figure; one marker per setting.

- :func:`tradeoff_figure`: Avg.Gap vs time, Avg.Gap vs share of parameters updated (costs at their
  mean, without error bars), and the UA gap vs the mean RA/TA gap to RT (how much a method forgets too
  little or too much vs what it breaks).
- :func:`sparsity_figure`: TA, RA, UA and Avg.Gap of the masked methods vs the sparsity, the methods
  without a unit mask as dashed lines.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from unlearn_lit.viz import new_figure

MARKERS = "osD^vPX*<>hp"
LABELS = {
    "ua": "UA (%)",
    "ra": "RA (%)",
    "ta": "TA (%)",
    "avg_gap": "Avg.Gap to RT (points)",
    "ua_gap": "UA gap to RT (points)",
    "ra_ta_gap": "mean RA/TA gap to RT (points)",
    "time_s": "time (s, log scale)",
    "updated": "parameters updated (%, log scale)",
}
PERCENT = {"ua", "ra", "ta", "updated"}  # fractions drawn in percent
COSTS = ("time_s", "updated")


def _value(row: Mapping[str, Any], metric: str, ci: bool = False) -> float:
    v = row.get(f"{metric}_ci" if ci else metric)
    v = math.nan if v is None else float(v)
    return 100 * v if metric in PERCENT else v


def _colours(rows: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    return {m: f"C{i % 10}" for i, m in enumerate(dict.fromkeys(r["method"] for r in rows))}


def _legend(fig: Any, colours: Mapping[str, str], settings: Sequence[str]) -> None:
    """Methods by colour and, when there are several settings, settings by marker, below the panels."""
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=c, marker="o", ls="", label=m) for m, c in colours.items()]
    if len(settings) > 1:
        handles += [Line2D([], [], color="0.3", marker=MARKERS[i % len(MARKERS)], ls="", label=s)
                    for i, s in enumerate(settings)]  # fmt: skip
    fig.legend(
        handles=handles, loc="outside lower center", ncol=min(6, len(handles)), fontsize=7, frameon=False
    )


def _scatter(ax: Any, rows: Sequence[Mapping[str, Any]], x: str, y: str, colours: Mapping[str, str],
             settings: Sequence[str]) -> None:  # fmt: skip
    for row in rows:
        xv, yv = _value(row, x), _value(row, y)
        if not (math.isfinite(xv) and math.isfinite(yv)) or (ax.get_xscale() == "log" and xv <= 0):
            continue
        # costs (time, parameters) are drawn at their mean: their spread is wall-clock noise, not the point
        xe = math.nan if x in COSTS else _value(row, x, ci=True)
        ye = _value(row, y, ci=True)
        bars = ax.errorbar(xv, yv, xerr=None if math.isnan(xe) else xe, yerr=None if math.isnan(ye) else ye,
                           color=colours[row["method"]], ms=5, capsize=2, lw=0.8,
                           marker=MARKERS[settings.index(row["setting"]) % len(MARKERS)])  # fmt: skip
        for line in bars.lines[2]:
            line.set_alpha(0.5)


def _zero_cost_lines(ax: Any, rows: Sequence[Mapping[str, Any]], x: str, y: str, colours) -> None:
    """Methods at zero cost (the original) cannot sit on a log axis: a dashed line at their value."""
    for row in rows:
        if _value(row, x) == 0 and math.isfinite(_value(row, y)):
            ax.axhline(_value(row, y), color=colours[row["method"]], ls="--", lw=1)


def _log_axis(axis: Any) -> None:
    """A log scale with plain tick labels at 1, 2, 5 × 10^k (not 2×10^1)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    axis.axes.set_xscale("log")
    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def _gaps_from_zero(ax: Any, x: str, y: str) -> None:
    """Gaps are never negative: their axes start at 0 (a t interval of few seeds may reach below)."""
    if "gap" in y:
        ax.set_ylim(bottom=0)
    if "gap" in x:
        ax.set_xlim(left=0)


def tradeoff_figure(rows: Sequence[Mapping[str, Any]], title: str = "") -> Any:
    """Avg.Gap vs time, Avg.Gap vs parameters updated, UA gap vs RA/TA gap (see the module docstring)."""
    colours = _colours(rows)
    settings = list(dict.fromkeys(r["setting"] for r in rows))
    fig = new_figure(14.0, 4.6 + 0.15 * math.ceil((len(colours) + len(settings)) / 6))
    axes = fig.subplots(1, 3)
    for ax, x, y in zip(
        axes, ("time_s", "updated", "ra_ta_gap"), ("avg_gap", "avg_gap", "ua_gap"), strict=True
    ):
        if x != "ra_ta_gap":
            _log_axis(ax.xaxis)
            _zero_cost_lines(ax, rows, x, y, colours)
        _scatter(ax, [r for r in rows if x != "ra_ta_gap" or r["method"] != "rt"], x, y, colours, settings)
        ax.set_xlabel(LABELS[x])
        ax.set_ylabel(LABELS[y])
        ax.grid(alpha=0.3, which="both")
        _gaps_from_zero(ax, x, y)
    axes[0].set_title("closeness to RT vs time (dashed: no cost)", fontsize=9)
    axes[1].set_title("closeness to RT vs parameters updated", fontsize=9)
    axes[2].set_title("forgetting gap vs utility gap (RT at 0, 0)", fontsize=9)
    _legend(fig, colours, settings)
    fig.suptitle(title or "Trade-offs per method (mean ± 95% CI over seeds where several; gap axes "
                 "start at 0)", fontsize=10)  # fmt: skip
    return fig


def sparsity_figure(
    rows: Sequence[Mapping[str, Any]], references: Mapping[str, Mapping[str, float]], title: str = ""
) -> Any:
    """TA, RA, UA, Avg.Gap vs sparsity: one line per masked method (rows with a ``sparsity``), and a
    dashed line per method of ``references`` (``method -> {metric: value}``, metrics as in ``rows``)."""
    masked = [r for r in rows if r.get("sparsity") is not None]
    colours = _colours([*masked, *({"method": m} for m in references)])
    fig = new_figure(14.0, 4.4)
    axes = fig.subplots(1, 4)
    for ax, metric in zip(axes, ("ta", "ra", "ua", "avg_gap"), strict=True):
        for method in dict.fromkeys(r["method"] for r in masked):
            pts = sorted((r["sparsity"], _value(r, metric), _value(r, metric, ci=True))
                         for r in masked if r["method"] == method)  # fmt: skip
            xs, ys, es = (np.array(v, dtype=float) for v in zip(*pts, strict=True))
            ax.errorbar(xs, ys, yerr=np.where(np.isfinite(es), es, 0.0) if np.isfinite(es).any() else None,
                        color=colours[method], marker="o", ms=4, capsize=2, label=method)  # fmt: skip
        for method, values in references.items():
            v = _value(values, metric)
            if math.isfinite(v):
                ax.axhline(v, color=colours[method], ls="--", lw=1, label=f"{method} (no unit mask)")
        ax.set_xlabel("sparsity S (fraction of units frozen)")
        ax.set_ylabel(LABELS[metric])
        ax.grid(alpha=0.3)
        _gaps_from_zero(ax, "sparsity", metric)
    fig.legend(
        *axes[0].get_legend_handles_labels(), loc="outside lower center", ncol=6, fontsize=7, frameon=False
    )
    fig.suptitle(title or "Utility and closeness to RT vs sparsity (mean ± 95% CI over seeds)", fontsize=10)
    return fig
