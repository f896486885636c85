"""Typed method options, keyed by the base method: :mod:`unlearn_lit.config.methods` (torch-free, so
the CLI validates them before importing torch); this module keeps the old import path."""

from __future__ import annotations

from unlearn_lit.config.methods import MethodOptions, method_options_class  # noqa: F401  (re-exported)
