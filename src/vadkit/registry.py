"""A small named registry: ``register`` by decorator, ``get`` by name, ``list`` the names.

Used for datasets, models and detectors so that a variant is picked by name, never by an ``if`` chain.
"""

from __future__ import annotations

from typing import Callable, Generic, Iterator, TypeVar

T = TypeVar("T")


class UnknownNameError(ValueError):
    """A registry has nothing by that name; the message lists the valid names."""


class Registry(Generic[T]):
    """Maps names to builders (classes or functions).

    >>> models = Registry("model")
    >>> @models.register("tiny")
    ... def tiny(**kw): ...
    >>> models.list()
    ['tiny']
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def add(item: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._items[name] = item
            return item

        return add

    def get(self, name: str) -> T:
        if name not in self._items:
            valid = ", ".join(sorted(self._items)) or "(none)"
            raise UnknownNameError(f"unknown {self.kind} {name!r}; expected one of: {valid}")
        return self._items[name]

    def list(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.list())
