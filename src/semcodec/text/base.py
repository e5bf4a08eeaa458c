"""The text-coder contract and its registry table.

A TEXT stream is self-describing: one header byte, then the coder's payload::

    header = coder id (low 4 bits, 0..14; 15 is reserved for a longer id) | check << 4
    check  = CRC-32 of the UTF-8 text, low 4 bits, verified after decoding

Any reader can therefore turn a TEXT stream back into a string without knowing which profile wrote
it, as long as it has the coder (and, for LM coders, the same model weights, pinned by hash). The id
needs only 4 bits, so the other 4 carry a checksum every coder gets for free: at ~70 bits per
caption, a checksum byte of its own would cost the LM coders 5 %.
"""

from __future__ import annotations

import zlib
from abc import ABC, abstractmethod
from typing import Any, ClassVar

from ..errors import FormatError, MissingComponentError
from ..registry import Entry, Registry

#: coder ids fit the low nibble of the TEXT header; this value is kept for a future longer-id form
ID_ESCAPE = 15

#: Every text coder: name -> (id in the TEXT header, class). Ids are part of the format: never reuse one.
TEXT_CODERS: Registry = Registry("text coder", {
    "raw": Entry(0, "semcodec.text.classic:RawUtf8Coder"),
    "zlib": Entry(1, "semcodec.text.classic:ZlibCoder"),
    "brotli": Entry(2, "semcodec.text.general:BrotliCoder"),
    "zstd": Entry(3, "semcodec.text.general:ZstdCoder"),
    "huffman": Entry(4, "semcodec.text.huffman:HuffmanCoder"),
    "clip-index": Entry(5, "semcodec.text.clip_index:ClipIndexCoder"),
    "lm-mix": Entry(6, "semcodec.text.lmcoders:LMMixArithmeticCoder"),
    "lm-ac": Entry(10, "semcodec.text.lmcoders:LMArithmeticCoder"),
    "lm-rank": Entry(11, "semcodec.text.lmcoders:LMRankZipCoder"),
    "hf-ac": Entry(12, "semcodec.text.lmcoders:HFArithmeticCoder"),
    "hf-rank": Entry(13, "semcodec.text.lmcoders:HFRankZipCoder"),
    "lm-ac-cache": Entry(14, "semcodec.text.lmcoders:LMCacheArithmeticCoder"),
    "clip-ids": Entry(7, "semcodec.text.clip_ids:ClipIdsCoder"),
}, id_range=range(ID_ESCAPE))

#: Preference order for "the best text coder available" (first available wins).
PREFERRED_TEXT_CODERS: list[str] = ["lm-mix", "lm-ac-cache", "lm-ac", "zlib"]


class TextCoder(ABC):
    """Encodes a string to bytes and back, exactly. Must round-trip *any* Unicode string.

    ``name`` and ``coder_id`` come from the :data:`TEXT_CODERS` table (the one place they are written).
    """

    name: ClassVar[str]
    coder_id: ClassVar[int]  # 0..14, unique, part of the format: never reuse an id

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        TEXT_CODERS.bind(cls, id_attr="coder_id")

    @classmethod
    def availability(cls) -> str | None:
        return None

    @abstractmethod
    def encode(self, text: str) -> bytes: ...

    @abstractmethod
    def decode(self, data: bytes) -> str: ...


def text_coder_class(name: str) -> type[TextCoder]:
    """The class of one coder (imports its module only); unknown names list the valid ones."""
    return TEXT_CODERS.get(name)


def text_coder_classes() -> dict[str, type[TextCoder]]:
    return TEXT_CODERS.load_all()


_INSTANCES: dict[str, TextCoder] = {}


def get_text_coder(name: str) -> TextCoder:
    """Return a (cached) instance; LM coders load their model once per process."""
    if name not in _INSTANCES:
        cls = text_coder_class(name)
        reason = cls.availability()
        if reason:
            raise MissingComponentError(f"text coder {name!r} not available: {reason}")
        _INSTANCES[name] = cls()
    return _INSTANCES[name]


def best_text_coder() -> TextCoder:
    for name in PREFERRED_TEXT_CODERS:
        if text_coder_class(name).availability() is None:
            return get_text_coder(name)
    return get_text_coder("zlib")


#: a profile's ``text_coder`` option value meaning "the best coder available here" (:func:`best_text_coder`)
AUTO_TEXT_CODER = "auto"


def text_coder_choices() -> tuple[str, ...]:
    """Valid values of a profile's ``text_coder`` option: ``auto`` and every registered coder name."""
    return (AUTO_TEXT_CODER, *TEXT_CODERS.names())


def resolve_text_coder(name: str | None) -> TextCoder:
    """The coder a profile's ``text_coder`` option names (``auto``/None: the best available one).

    Profiles need not record the choice anywhere else: the TEXT stream header carries the coder id, so
    the decoder picks the same coder whatever options it was given, and files written before the
    option existed decode exactly as before.
    """
    if name is None or name == AUTO_TEXT_CODER:
        return best_text_coder()
    return get_text_coder(name)


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
    cid = stream_coder_id(payload)
    name = TEXT_CODERS.name_for_id(cid)
    if name is None:
        raise FormatError(f"text stream uses unknown text coder id {cid}")
    text = get_text_coder(name).decode(payload[1:])
    if text_check(text) != payload[0] >> 4:
        raise FormatError("text stream checksum mismatch (corrupt data or a different model)")
    return text
