"""Figures of unlearn_lit: mask figures, mask overlap across runs and trade-off plots.

Plain matplotlib (Agg canvas, no pyplot state) and numpy: nothing here imports torch, so the
cross-run report reads run directories without loading a model. Every writer is atomic.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

DPI = 110


def new_figure(width: float, height: float) -> Any:
    """A constrained-layout :class:`~matplotlib.figure.Figure` with its own Agg canvas."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def png_bytes(fig: Any) -> bytes:
    """The figure as PNG bytes."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def save_png(fig: Any, path: str | os.PathLike) -> Path:
    """Writes the figure to ``path`` atomically (temporary file, then rename); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(png_bytes(fig))
    os.replace(tmp, path)
    return path


def integer_axis(axis: Any, bins: int | str = "auto") -> None:
    """Ticks only at integers (layers, heads, unit indices, counts), at most ``bins`` intervals."""
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(nbins=bins, integer=True))
