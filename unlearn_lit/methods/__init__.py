"""Unlearning methods, one file each, registered by name in :data:`METHODS`.

Importing this package imports every method module so the registry is complete.
"""

from __future__ import annotations

import importlib
import pkgutil

from unlearn_lit.methods.base import (
    MASK_SOURCES,
    METHODS,
    Method,
    MethodResult,
    UnlearningFailed,
    UnlearnInputs,
    parse_method,
    register,
)

_SKIP = {"base"}
for _mod in pkgutil.iter_modules(__path__):
    if _mod.name not in _SKIP and not _mod.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_mod.name}")

__all__ = [
    "MASK_SOURCES",
    "METHODS",
    "Method",
    "MethodResult",
    "UnlearnInputs",
    "UnlearningFailed",
    "parse_method",
    "register",
]
