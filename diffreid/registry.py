"""Named implementations of one kind (dataset formats, backbones, captioners, optimisers), each
registered with `register` where it is defined, and looked up by the name a config or flag gives."""

from __future__ import annotations

from typing import Callable, Generic, Iterator, TypeVar

from diffreid.errors import DiffreidError

T = TypeVar("T")


class Registry(Generic[T]):
    """`load` imports the modules whose decorators fill the registry, once, on the first lookup."""

    def __init__(self, kind: str, load: Callable[[], None] | None = None):
        self.kind = kind
        self._load = load
        self._items: dict[str, T] = {}

    def register(self, *names: str) -> Callable[[T], T]:
        def decorate(item: T) -> T:
            for name in names:
                self._items[name] = item
            return item

        return decorate

    def _loaded(self) -> dict[str, T]:
        if self._load is not None:
            load, self._load = self._load, None
            load()
        return self._items

    def names(self) -> list[str]:
        """In registration order."""
        return list(self._loaded())

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __contains__(self, name: object) -> bool:
        try:
            return name in self._loaded()
        except TypeError:  # unhashable, e.g. a list read from YAML: no name
            return False

    def __getitem__(self, name: str) -> T:
        items = self._loaded()
        if name not in items:
            raise DiffreidError(f"unknown {self.kind} {name!r}; choose one of {', '.join(items)}")
        return items[name]
