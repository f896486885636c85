"""One tiny name -> factory registry, shared by backbones, datasets, methods and mask sources."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from unlearn_lit.errors import unknown

T = TypeVar("T")


class UnknownNameError(ValueError):
    """Raised for a registry name that does not exist; the message lists the valid names."""


class Registry(Generic[T]):
    """Maps names to factories.

    Args:
        kind: what the registry holds ("backbone", "dataset", "method", ...), used in error messages.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator that registers ``obj`` under ``name``; a name can be registered once."""

        def deco(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._items[name] = obj
            return obj

        return deco

    def get(self, name: str) -> T:
        """Returns the factory for ``name`` or raises :class:`UnknownNameError` naming the valid choices."""
        try:
            return self._items[name]
        except KeyError:
            raise UnknownNameError(unknown(self.kind, name, sorted(self._items))) from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
