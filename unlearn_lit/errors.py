"""The project's exceptions, below ``selection/``, ``methods/`` and ``phases/`` so that every layer can raise them."""

from __future__ import annotations


class UnlearningFailed(RuntimeError):
    """A method diverged (NaN/inf loss or update); θ* and earlier results are untouched."""
