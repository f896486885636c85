"""Dataclasses from plain mappings (YAML, JSON, Python dicts), with every value type-checked.

Errors name the field path, the expected type and the valid fields, before any work starts.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

from unlearn_lit import errors


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``override``'s keys replaced, recursing into nested mappings."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def build(cls: type, data: dict[str, Any], where: str) -> Any:
    """Dataclass ``cls`` from a plain dict, recursing into dataclass fields, with every value
    type-checked; errors name the field path and the valid fields."""
    valid = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - valid)
    if unknown:
        raise ValueError(errors.unknown(f"{where} option", unknown[0], sorted(valid), label="valid"))
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for key, value in data.items():
        hint, path = hints.get(key, Any), f"{where}.{key}"
        kind = next((a for a in (hint, *typing.get_args(hint)) if dataclasses.is_dataclass(a)), None)
        if kind is not None and isinstance(value, dict):
            value = build(kind, value, path)
        elif not matches(value, hint):
            raise ValueError(f"{path}: expected {_name(hint)}, got {value!r} ({type(value).__name__})")
        elif isinstance(value, list) and typing.get_origin(hint) is tuple:
            value = tuple(value)
        kwargs[key] = value
    return cls(**kwargs)


def matches(value: Any, hint: Any) -> bool:
    """Whether ``value`` fits the type hint (unions, lists, tuples, dicts, literals; int for float)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any or hint is object:
        return True
    if hint is type(None) or value is None:
        return value is None and (hint is type(None) or type(None) in args)
    if origin in (typing.Union, types.UnionType):
        return any(matches(value, a) for a in args)
    if origin is typing.Literal:
        return value in args
    if origin in (list, tuple, set):
        if not isinstance(value, list | tuple):
            return False
        inner = [a for a in args if a is not Ellipsis][:1] or [Any]
        return all(matches(v, inner[0]) for v in value)
    if origin is dict or hint is dict:
        return isinstance(value, dict)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(hint, type):
        return isinstance(value, hint) or dataclasses.is_dataclass(hint)
    return True  # a hint this checker does not model: the config's own __post_init__ validates it


def _name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")
