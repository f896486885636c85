"""Typed method options: one group per registered method, keyed by the base method (issue: typed configs).

``method_options.so`` is an :class:`~unlearn_lit.methods.so.SOConfig` and applies to ``so``,
``mape_so`` and ``random_so`` alike; ``method_options.mape_so`` is a partial override of it for that
variant only (a dict of the fields that differ). The class is generated from :data:`METHODS`, so
``--help`` lists every method's options, jsonargparse validates their types before any work, and a new
method needs no edit here.

    method_options:
      so: {fisher_examples: 256}          # so, mape_so, random_so
      mape_so: {refine: 5}                # mape_so only, on top of the so options
      ga: {optim: {lr: 1.0e-4}}
"""

from __future__ import annotations

import dataclasses
from dataclasses import field, make_dataclass
from typing import Any

from unlearn_lit.methods.base import MASK_SOURCES, METHODS, parse_method
from unlearn_lit.typed import build, merge


def method_options_class() -> type:
    """A dataclass with one typed field per registered method and one override field per variant.

    Build it after every method module is imported (``import unlearn_lit.methods``).
    """
    names = sorted(METHODS.names())
    fields: list[tuple[str, Any, Any]] = [
        (name, METHODS.get(name).config, field(default_factory=METHODS.get(name).config)) for name in names
    ]
    fields += [
        (f"{source}_{name}", dict[str, Any] | None, field(default=None))
        for source in MASK_SOURCES[1:]
        for name in names
    ]
    doc = (
        "Options of every method, keyed by the base method (applies to all its mask sources); "
        "``<source>_<method>`` fields are partial overrides for one variant.\n\n"
        "Attributes:\n"
        + "".join(f"    {n}: options of ``{n}`` ({METHODS.get(n).config.__name__}).\n" for n in names)
        + "    <source>_<method>: a dict of fields overriding the base method's options for that variant.\n"
    )
    return make_dataclass(
        "MethodOptions", fields, namespace={"__doc__": doc, "resolve": _resolve, "__post_init__": _check}
    )


def _resolve(self: Any, name: str) -> Any:
    """The config of method ``name`` (``mape_so``): the base method's options with the variant's overrides."""
    base, source = parse_method(name)
    cfg = getattr(self, base)
    override = getattr(self, name, None) if source != "none" else None
    if not override:
        return cfg
    return build(type(cfg), merge(dataclasses.asdict(cfg), override), f"method_options.{name}")


def _check(self: Any) -> None:
    """Base groups given as dicts (Python callers) become configs; overrides are validated now."""
    for f in dataclasses.fields(self):
        value = getattr(self, f.name)
        if f.name in METHODS and isinstance(value, dict):
            setattr(self, f.name, build(METHODS.get(f.name).config, value, f"method_options.{f.name}"))
        elif value is not None and f.name not in METHODS:
            if not isinstance(value, dict):
                raise ValueError(f"method_options.{f.name} must be a mapping of fields, got {value!r}")
            _resolve(self, f.name)
