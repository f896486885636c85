"""unlearn_lit: module-aware parameter-efficient machine unlearning (MAPE-Unlearn) in PyTorch Lightning.

Public API::

    from unlearn_lit import build_backbone, build_datamodule, METHODS, RunConfig, load_config, unit_layout
    from unlearn_lit.run import run   # the pipeline (``unlearn_lit.run`` is also its module's name)
"""

from __future__ import annotations

__version__ = "0.1.0"

_EXPORTS = {
    "build_backbone": "unlearn_lit.models",
    "build_datamodule": "unlearn_lit.data",
    "unit_layout": "unlearn_lit.units",
    "METHODS": "unlearn_lit.methods",
    "RunConfig": "unlearn_lit.config",
    "load_config": "unlearn_lit.__main__",
}
__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name: str):  # lazy: `import unlearn_lit` stays cheap (no torch import)
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'unlearn_lit' has no attribute {name!r}")
