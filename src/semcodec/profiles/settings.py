"""Profile settings: one frozen dataclass per profile declares every option once.

Each field carries its type (the annotation), default, range or choices and a one-line help::

    @dataclass(frozen=True)
    class ItcSettings(Settings):
        steps: int = option(20, "DDIM steps at the decoder", low=1, high=1000, wire="u")

From that one declaration come: option parsing and validation (``--set key=value`` and keyword
arguments; an unknown key or a bad value is a one-line :class:`SemcodecError`), the option schema
shown by ``semcodec profiles --json``, the PARAMS stream fields a profile sends (``wire``: a
``pack_params`` type, real values scaled by ``scale`` to integers) and the decode-relevant settings
that go into the profile's config hash (``config=True``).
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

from ..errors import SemcodecError

S = TypeVar("S", bound="Settings")

#: strings that mean "no value / decide automatically" for an optional non-string option
_AUTO = ("auto", "none", "null", "")


def option(default: Any, help: str, *, low: float | None = None, high: float | None = None,
           choices: tuple[Any, ...] | None = None, wire: str | None = None, scale: int = 1,
           config: bool = False) -> Any:
    """A settings field. ``wire``/``scale``: how the value travels in PARAMS; ``config``: hashed."""
    meta = {"help": help, "low": low, "high": high, "choices": choices, "wire": wire, "scale": scale,
            "config": config}
    if isinstance(default, dict):
        return dataclasses.field(default_factory=lambda: dict(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def _base_type(hint: Any) -> tuple[type, bool]:
    """(value type, None allowed) of an annotation such as ``int``, ``float | None`` or ``dict[str, Any]``."""
    optional = False
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        optional = len(args) < len(typing.get_args(hint))
        hint = args[0] if len(args) == 1 else object
    origin = typing.get_origin(hint) or hint
    return (origin if isinstance(origin, type) else object), optional


def _coerce(name: str, value: Any, kind: type, optional: bool) -> Any:
    """Turn a keyword or ``--set`` value (JSON-parsed when possible) into the declared type."""
    if value is None or (optional and kind is not str and isinstance(value, str) and value.strip().lower() in _AUTO):
        if optional:
            return None
        raise SemcodecError(f"option {name} needs a value")
    try:
        if kind is bool:
            if isinstance(value, str):
                low = value.strip().lower()
                if low not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                    raise ValueError(value)
                return low in ("1", "true", "yes", "on")
            if value not in (0, 1):
                raise ValueError(value)
            return bool(value)
        if kind is int:
            if isinstance(value, bool):
                raise ValueError(value)
            f = float(value)
            if f != int(f):
                raise ValueError(value)
            return int(f)
        if kind is float:
            if isinstance(value, bool):
                raise ValueError(value)
            return float(value)
        if kind is str:
            return value if isinstance(value, str) else json.dumps(value)
        if kind is dict:
            value = json.loads(value) if isinstance(value, str) else value
            if not isinstance(value, Mapping):
                raise ValueError(value)
            return dict(value)
    except (TypeError, ValueError, OverflowError, json.JSONDecodeError):
        raise SemcodecError(f"option {name} must be {'a JSON object' if kind is dict else kind.__name__}"
                            f"{' or auto' if optional else ''}, got {value!r}") from None
    return value


@dataclasses.dataclass(frozen=True)
class Settings:
    """Base of every profile's settings dataclass (a profile without options uses it as is)."""

    # ------------------------------------------------------------------ building
    @classmethod
    def from_options(cls: type[S], options: Mapping[str, Any], profile: str = "profile") -> S:
        """Validated settings from keyword options (``-`` in keys counts as ``_``)."""
        options = {k.replace("-", "_"): v for k, v in options.items()}
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            close = [m for u in unknown for m in difflib.get_close_matches(u, known, 1)]
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise SemcodecError(f"profile {profile!r} has no option(s) {', '.join(unknown)}{hint};"
                                f" valid: {', '.join(sorted(known)) or 'none'}")
        return cls(**options)

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            kind, optional = _base_type(hints[f.name])
            value = _coerce(f.name, getattr(self, f.name), kind, optional)
            m = f.metadata
            if value is not None:
                if m.get("choices") is not None and value not in m["choices"]:
                    raise SemcodecError(f"option {f.name} must be one of {', '.join(map(str, m['choices']))},"
                                        f" got {value!r}")
                low, high = m.get("low"), m.get("high")
                if (low is not None and value < low) or (high is not None and value > high):
                    raise SemcodecError(f"option {f.name} must be in {_range(low, high)}, got {value!r}")
            object.__setattr__(self, f.name, value)

    # ------------------------------------------------------------------ derived
    @classmethod
    def schema(cls) -> list[dict[str, Any]]:
        """Every option: name, type, default, range/choices and help (``semcodec profiles --json``)."""
        hints = typing.get_type_hints(cls)
        rows = []
        for f in dataclasses.fields(cls):
            kind, optional = _base_type(hints[f.name])
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
            row = {"name": f.name, "type": kind.__name__ + (" | None" if optional else ""), "default": default,
                   "help": f.metadata.get("help", "")}
            for key in ("low", "high", "choices"):
                if f.metadata.get(key) is not None:
                    row[key] = f.metadata[key]
            rows.append(row)
        return rows

    @classmethod
    def wire_schema(cls) -> list[tuple[str, str]]:
        """The PARAMS fields carried for these settings, in declaration order."""
        return [(f.name, f.metadata["wire"]) for f in dataclasses.fields(cls) if f.metadata.get("wire")]

    def wire_values(self) -> dict[str, Any]:
        """Values of :meth:`wire_schema` as sent: a choice as its index, a real value scaled to an integer."""
        out = {}
        for f in dataclasses.fields(self):
            if f.metadata.get("wire"):
                v, scale, choices = getattr(self, f.name), f.metadata["scale"], f.metadata["choices"]
                if choices is not None:
                    v = choices.index(v)
                out[f.name] = int(round(v * scale)) if scale != 1 else v
        return out

    @classmethod
    def from_wire(cls, values: Mapping[str, Any]) -> dict[str, Any]:
        """Inverse of :meth:`wire_values` for the fields present in ``values`` (decoder side; no validation:
        the profile checks what a corrupted file could hold)."""
        out = {}
        for f in dataclasses.fields(cls):
            if f.metadata.get("wire") and f.name in values:
                v, scale, choices = values[f.name], f.metadata["scale"], f.metadata["choices"]
                v = v / scale if scale != 1 else v
                out[f.name] = choices[int(v)] if choices is not None and 0 <= int(v) < len(choices) else v
        return out

    def as_sent(self: S) -> S:
        """These settings as the decoder reads them back from PARAMS (real values rounded to their unit)."""
        return self.replace(**{f.name: round(getattr(self, f.name) * f.metadata["scale"]) / f.metadata["scale"]
                               for f in dataclasses.fields(self)
                               if f.metadata.get("scale", 1) != 1 and getattr(self, f.name) is not None})

    def config_items(self) -> dict[str, Any]:
        """Settings the decoder depends on (hashed into the file header)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.metadata.get("config")}

    def replace(self: S, **changes: Any) -> S:
        return dataclasses.replace(self, **changes)


def _range(low: float | None, high: float | None) -> str:
    return f"{'' if low is None else f'{low:g}'}..{'' if high is None else f'{high:g}'}"

