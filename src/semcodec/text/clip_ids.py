"""Exact coding of a sequence of CLIP token ids (``clip-ids``): for prompts that are ids, not text.

ResULIC's Pfo optimises the prompt in token space and may end on an id sequence that no text
tokenises to (CLIP's tokenizer lower-cases, merges BPE pieces, …), so the index coder of *text*
(``clip-index``) cannot carry it. This coder sends the ids themselves. To keep the text-coder contract
(a string in, the same string out; the TEXT header's CRC is over that string) an id sequence is written
as a string of private-use characters, one per id (U+F0000 + id), by :func:`ids_to_text`;
:func:`text_to_ids` is its inverse. Any other string still round-trips through a byte path::

    symbols: mode (0 ids | 1 bytes), then per id: hi = id >> 8 (257-ary, 256 = end), lo = id & 255
    hi ~ adaptive counts from the CLIP unigram prior (training captions), lo ~ the prior's lo | hi

The factorisation hi·lo is exactly the unigram prior (same bits as a 49k-ary model) with 257/256-entry
rows instead of a 49k-entry row per symbol.
"""

from __future__ import annotations

import json
from functools import lru_cache

import numpy as np

from ..entropy.rangecoder import SymbolDecoder, encode_symbols
from ..errors import FormatError
from ..paths import PACKAGE_WEIGHTS
from .base import TextCoder
from .lmcoders import BYTE_FREQS, MAX_TEXT_BYTES, MODE_FREQS

PRIOR_PATH = PACKAGE_WEIGHTS / "caption_lm" / "clip_unigram.json"
PUA = 0xF0000  # Supplementary Private Use Area-A: U+F0000 … U+FFFFD
MAX_ID = 0xFFFD  # ids 0 … 65532 (CLIP's vocabulary is 49 408)
END = 256  # the hi-symbol that ends the sequence
ADAPT = 32  # in-message weight of one id, in prior units (the prior has ~16·4·count per id)
MAX_IDS = 4096


def ids_to_text(ids: list[int]) -> str:
    """The string form of a token-id sequence (one private-use character per id)."""
    if any(not 0 <= int(i) <= MAX_ID for i in ids):
        raise ValueError(f"token ids must be in 0..{MAX_ID}")
    return "".join(chr(PUA + int(i)) for i in ids)


def text_to_ids(text: str) -> list[int] | None:
    """Inverse of :func:`ids_to_text`; None if ``text`` is not an id string."""
    out = [ord(c) - PUA for c in text]
    return out if all(0 <= i <= MAX_ID for i in out) else None


@lru_cache(maxsize=1)
def _prior() -> tuple[np.ndarray, np.ndarray]:
    """Integer counts: hi (257) and lo | hi (256 × 256), +1 floors, from the shipped unigram."""
    hi = np.ones(END + 1, dtype=np.int64) * 16
    lo = np.ones((END, 256), dtype=np.int64)
    counts = json.loads(PRIOR_PATH.read_text())["counts"] if PRIOR_PATH.exists() else {}
    for k, c in counts.items():
        i = int(k)
        if 0 <= i <= MAX_ID:
            hi[i >> 8] += 64 * int(c)
            lo[i >> 8, i & 255] += 64 * int(c)
    hi[END] += 64 * max(1, len(counts) // 8)  # one end per message
    return hi, lo


class ClipIdsCoder(TextCoder):

    @classmethod
    def availability(cls) -> str | None:
        return None if PRIOR_PATH.exists() else f"CLIP unigram prior missing ({PRIOR_PATH.name})"

    def encode(self, text: str) -> bytes:
        ids = text_to_ids(text)
        if ids is None or len(ids) > MAX_IDS:
            raw = text.encode("utf-8", "surrogatepass")
            if len(raw) > MAX_TEXT_BYTES:
                raise FormatError("text too long for the text channel (1 MiB cap)")
            return encode_symbols([1] + list(raw) + [256], [MODE_FREQS] + [BYTE_FREQS] * (len(raw) + 1))
        hi, lo = (a.copy() for a in _prior())
        syms, rows = [0], [MODE_FREQS]
        for i in ids:
            h, low = i >> 8, i & 255
            syms += [h, low]
            rows += [hi.copy(), lo[h].copy()]
            hi[h] += ADAPT
            lo[h, low] += ADAPT
        syms.append(END)
        rows.append(hi.copy())
        return encode_symbols(syms, rows)

    def decode(self, data: bytes) -> str:
        dec = SymbolDecoder(data, "text stream")
        if dec.decode(MODE_FREQS) == 1:
            out = bytearray()
            while (b := dec.decode(BYTE_FREQS)) != 256:
                out.append(b)
                if len(out) > min(64 * len(data) + 256, MAX_TEXT_BYTES):
                    raise FormatError("corrupted text stream: byte run exceeds the size cap")
            try:
                return out.decode("utf-8", "surrogatepass")
            except UnicodeDecodeError:
                raise FormatError("corrupted text stream: invalid UTF-8") from None
        hi, lo = (a.copy() for a in _prior())
        ids: list[int] = []
        while (h := dec.decode(hi)) != END:
            low = dec.decode(lo[h])
            hi[h] += ADAPT
            lo[h, low] += ADAPT
            ids.append(h << 8 | low)
            if len(ids) > MAX_IDS or (h << 8 | low) > MAX_ID:
                raise FormatError("corrupted text stream: token ids out of range")
        return ids_to_text(ids)
