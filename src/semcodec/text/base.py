"""The text-coder contract and registry.

A TEXT stream is self-describing: one header byte, then the coder's payload::

    header = coder id (low 4 bits, 0..14; 15 is reserved for a longer id) | check << 4
    check  = CRC-32 of the UTF-8 text, low 4 bits, verified after decoding

Any reader can therefore turn a TEXT stream back into a string without knowing which profile wrote
it, as long as it has the coder (and, for LM coders, the same model weights, pinned by hash). The id
needs only 4 bits, so the other 4 carry a checksum every coder gets for free: at ~70 bits per
caption, a checksum byte of its own would cost the LM coders 5 %.
"""

from __future__ import annotations

import importlib
import zlib
from abc import ABC, abstractmethod
from typing import ClassVar

from ..errors import FormatError, MissingComponentError


class TextCoder(ABC):
    """Encodes a string to bytes and back, exactly. Must round-trip *any* Unicode string."""

    name: ClassVar[str]
    coder_id: ClassVar[int]  # 0..255, unique, part of the format: never reuse an id

    @classmethod
    def availability(cls) -> str | None:
        return None

    @abstractmethod
    def encode(self, text: str) -> bytes: ...

    @abstractmethod
    def decode(self, data: bytes) -> str: ...


_BY_NAME: dict[str, type[TextCoder]] = {}
_BY_ID: dict[int, type[TextCoder]] = {}

#: Modules whose import registers text coders.
TEXT_CODER_MODULES: list[str] = [
    "semcodec.text.classic",
    "semcodec.text.general",
    "semcodec.text.huffman",
    "semcodec.text.lmcoders",
    "semcodec.text.clip_index",
]

#: Preference order for "the best text coder available" (first available wins).
PREFERRED_TEXT_CODERS: list[str] = ["lm-mix", "lm-ac-cache", "lm-ac", "zlib"]

_loaded = False


#: coder ids fit the low nibble of the TEXT header; this value is kept for a future longer-id form
ID_ESCAPE = 15


def register_text_coder(cls: type[TextCoder]) -> type[TextCoder]:
    if not 0 <= cls.coder_id < ID_ESCAPE:
        raise ValueError(f"text coder id {cls.coder_id} outside 0..{ID_ESCAPE - 1}")
    if cls.coder_id in _BY_ID and _BY_ID[cls.coder_id] is not cls:
        raise ValueError(f"text coder id {cls.coder_id} registered twice")
    _BY_NAME[cls.name] = cls
    _BY_ID[cls.coder_id] = cls
    return cls


def _load_all() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        for mod in TEXT_CODER_MODULES:
            importlib.import_module(mod)


def text_coder_classes() -> dict[str, type[TextCoder]]:
    _load_all()
    return dict(_BY_NAME)


_INSTANCES: dict[str, TextCoder] = {}


def get_text_coder(name: str) -> TextCoder:
    """Return a (cached) instance; LM coders load their model once per process."""
    _load_all()
    if name not in _BY_NAME:
        raise MissingComponentError(f"unknown text coder {name!r}; available: {', '.join(sorted(_BY_NAME))}")
    if name not in _INSTANCES:
        cls = _BY_NAME[name]
        reason = cls.availability()
        if reason:
            raise MissingComponentError(f"text coder {name!r} not available: {reason}")
        _INSTANCES[name] = cls()
    return _INSTANCES[name]


def best_text_coder() -> TextCoder:
    _load_all()
    for name in PREFERRED_TEXT_CODERS:
        cls = _BY_NAME.get(name)
        if cls is not None and cls.availability() is None:
            return get_text_coder(name)
    return get_text_coder("zlib")


def text_check(text: str) -> int:
    """The 4-bit check stored in the TEXT header."""
    return zlib.crc32(text.encode("utf-8", "surrogatepass")) & 0xF


def stream_coder_id(payload: bytes) -> int:
    """Coder id of a TEXT stream (FormatError if the header is missing or uses the reserved form)."""
    if not payload:
        raise FormatError("corrupted text stream: empty")
    cid = payload[0] & 0xF
    if cid == ID_ESCAPE:
        raise FormatError("text stream uses an extended coder id this build of semcodec does not know")
    return cid


def encode_text_stream(text: str, coder: TextCoder | None = None) -> bytes:
    coder = coder or best_text_coder()
    return bytes([coder.coder_id | text_check(text) << 4]) + coder.encode(text)


def decode_text_stream(payload: bytes) -> str:
    _load_all()
    cid = stream_coder_id(payload)
    cls = _BY_ID.get(cid)
    if cls is None:
        raise FormatError(f"text stream uses unknown text coder id {cid}")
    text = get_text_coder(cls.name).decode(payload[1:])
    if text_check(text) != payload[0] >> 4:
        raise FormatError("text stream checksum mismatch (corrupt data or a different model)")
    return text
