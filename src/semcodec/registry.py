"""One lazy registry for everything picked by name: profiles, text coders, metrics, models, base codecs.

::

    table:   name ──► Entry(id, "package.module:Attribute")      (one line per entry, no imports)
    lookup:  Registry.get(name) ──► import that entry's module only ──► the attribute

A registry-owning package writes its table once (``PROFILES = Registry("profile", {...})``); that table
is the single place an entry is declared. Looking a name up imports only the module of that entry, so
asking for ``jpeg`` never pulls in torch or diffusers. Ids, where a registry has them, are part of the
file format (profile ids in the container header, text-coder ids in TEXT streams): never change or
reuse one. A class can take its name and id from the table (:meth:`Registry.bind`), so they are not
written twice.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from .errors import MissingComponentError, SemcodecError

T = TypeVar("T")


@dataclass(frozen=True)
class Entry:
    """Where a registered object lives: ``"package.module:attr"`` (``attr`` may be dotted and may step
    into a mapping, e.g. ``BASE_CODECS.heif``), or the object itself (plugins and tests)."""

    id: int | None
    target: Any

    @property
    def path(self) -> str | None:
        return self.target if isinstance(self.target, str) else None

    @property
    def module(self) -> str | None:
        return self.path.split(":", 1)[0] if self.path else None


def _resolve(path: str) -> Any:
    module, _, attr = path.partition(":")
    obj: Any = importlib.import_module(module)
    for part in attr.split(".") if attr else ():
        obj = obj[part] if isinstance(obj, Mapping) else getattr(obj, part)
    return obj


def _path_of(obj: Any) -> str:
    return f"{obj.__module__}:{obj.__qualname__}"


class Registry(Generic[T]):
    """Name → lazily imported object, with optional format ids.

    ``error`` is the exception raised for an unknown name (its message is one line listing the valid
    names, with a close match suggested when there is one).
    """

    def __init__(self, kind: str, entries: Mapping[str, Entry], *, id_range: range | None = None,
                 error: type[SemcodecError] = MissingComponentError) -> None:
        self.kind = kind
        self.id_range = id_range
        self.error = error
        self._entries: dict[str, Entry] = {}
        self._loaded: dict[str, T] = {}
        for name, entry in entries.items():
            self.add(name, entry)

    # ------------------------------------------------------------------ table
    def add(self, name: str, entry: Entry) -> None:
        """Register one more entry (plugins, tests). Names and ids must stay unique."""
        old = self._entries.get(name)
        if old is not None:
            if old == entry:
                return
            raise ValueError(f"{self.kind} {name!r} registered twice")
        if entry.id is not None:
            if self.id_range is not None and entry.id not in self.id_range:
                raise ValueError(f"{self.kind} id {entry.id} of {name!r} outside {self.id_range.start}.."
                                 f"{self.id_range.stop - 1}")
            clash = self.name_for_id(entry.id)
            if clash is not None:
                raise ValueError(f"{self.kind} id {entry.id} registered twice ({clash!r} and {name!r})")
        self._entries[name] = entry

    def names(self) -> list[str]:
        return list(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def items(self) -> list[tuple[str, Entry]]:
        return list(self._entries.items())

    def entry(self, name: str) -> Entry:
        try:
            return self._entries[name]
        except KeyError:
            raise self.error(self.unknown_message(name)) from None

    def unknown_message(self, name: str) -> str:
        valid = ", ".join(self._entries)
        lower = {n.lower(): n for n in self._entries}
        close = lower.get(str(name).lower()) or next(iter(difflib.get_close_matches(str(name), self._entries, 1)), None)
        hint = f" (did you mean {close!r}?)" if close else ""
        return f"unknown {self.kind} {name!r}{hint}; valid: {valid}"

    def name_for_id(self, id_: int) -> str | None:
        """The name registered under a format id, without importing anything."""
        for name, entry in self._entries.items():
            if entry.id == id_:
                return name
        return None

    # ------------------------------------------------------------------ objects
    def get(self, name: str) -> T:
        """The registered object; imports only the module of this entry."""
        if name not in self._loaded:
            entry = self.entry(name)
            self._loaded[name] = _resolve(entry.target) if entry.path else entry.target
        return self._loaded[name]

    def load_all(self) -> dict[str, T]:
        """Every entry, imported (listing commands, ``profiles``)."""
        return {name: self.get(name) for name in self._entries}

    def bind(self, cls: type, *, id_attr: str | None = None) -> Entry | None:
        """Give a class registered here its table name (``cls.name``) and id (``id_attr``).

        Called from a base class's ``__init_subclass__``: the table stays the one place a name or id
        is written. Classes not in the table (abstract bases, test doubles) are left as they are.
        Returns the class's entry, or ``None``.
        """
        path = _path_of(cls)
        for name, entry in self._entries.items():
            if entry.path == path or entry.target is cls:
                cls.name = name  # type: ignore[attr-defined]
                if id_attr is not None:
                    setattr(cls, id_attr, entry.id)
                return entry
        return None
