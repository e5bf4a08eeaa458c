"""CLIP token-index coding (ResULIC): send open_clip BPE token ids instead of characters.

ResULIC transmits the CLIP tokenizer's indices. CLIP's tokenizer is lossy (lower-cases, normalises
spaces), so to keep the text exact we send three things, all through one range coder::

    text --split with CLIP's regex--> words w_1..w_k (lower-cased) + per word: case flag
         (as-is / Capitalised / UPPER) + spaces-before flag (0, 1 or 2)
    symbols: mode, [w_i's BPE ids ..., case_i, space_i]*, EOS (at a word start)

Token ids are modelled by an adaptive unigram: a prior from the *training* captions' CLIP token counts
(``weights/caption_lm/clip_unigram.json``) plus counts of ids already sent in this message; flags use
small adaptive counts conditioned on punctuation. Anything the split can't reproduce exactly (tabs,
double spaces, odd casing, special-token strings) goes through the byte path (mode 1).
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..entropy.rangecoder import SymbolDecoder, encode_symbols
from ..errors import FormatError, MissingComponentError
from ..paths import PACKAGE_WEIGHTS
from .base import TextCoder
from .lmcoders import BYTE_FREQS, MAX_TEXT_BYTES, MODE_FREQS

PRIOR_PATH = PACKAGE_WEIGHTS / "caption_lm" / "clip_unigram.json"
PRIOR_SCALE = 4.0  # weight of one training occurrence relative to the +1 floor
ADAPT = 0.02
MAX_WORD = 48  # longest word sent as CLIP tokens
MAX_CLIP_BYTES = 4096  # longer texts use the byte path (each token carries a 49k-entry table)  # weight of one in-message occurrence, as a fraction of the prior's total mass


@lru_cache(maxsize=1)
def _tokenizer():
    try:
        from open_clip.tokenizer import SimpleTokenizer
    except ImportError as e:
        raise MissingComponentError("CLIP index coding needs open_clip_torch: pip install 'semcodec[generative]' (or open_clip_torch)") from e
    return SimpleTokenizer()


@lru_cache(maxsize=1)
def _prior() -> np.ndarray:
    tok = _tokenizer()
    v = len(tok.encoder)
    p = np.ones(v + 1, dtype=np.float64)  # + EOS
    if PRIOR_PATH.exists():
        for k, c in json.loads(PRIOR_PATH.read_text())["counts"].items():
            if 0 <= int(k) <= v:
                p[int(k)] += PRIOR_SCALE * c
    return np.floor(p * 16.0)  # integers: exact and identical on both sides


def build_prior(captions: list[str], path: Path = PRIOR_PATH) -> None:
    """Count CLIP token ids over the training captions (lower-cased, as CLIP sees them)."""
    tok = _tokenizer()
    counts: dict[int, int] = {}
    for cap in captions:
        ids = tok.encode(cap)
        for i in ids:
            counts[i] = counts.get(i, 0) + 1
        counts[len(tok.encoder)] = counts.get(len(tok.encoder), 0) + 1  # one EOS per caption
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"source": "Flickr8k + COCO train2017 subset captions",
                                "counts": {str(k): v for k, v in sorted(counts.items())}}))


def _split(text: str) -> list[tuple[str, int, int]] | None:
    """(lower-cased word, case flag, space-before flag) per word, or None if not reproducible."""
    import regex

    tok = _tokenizer()
    if any(len(c.lower()) != 1 or len(c.upper()) != 1 for c in text):
        return None
    low = text.lower()
    out: list[tuple[str, int, int]] = []
    prev = 0
    for m in regex.finditer(tok.pat, low):
        gap = text[prev: m.start()]
        if gap not in ("", " ", "  "):  # two spaces: common after a full stop
            return None
        w, orig = m.group(), text[m.start(): m.end()]
        case = 0 if orig == w else 1 if orig == w[0].upper() + w[1:] else 2 if orig == w.upper() else -1
        if case < 0:
            return None
        out.append((w, case, len(gap)))
        prev = m.end()
    return out if prev == len(text) else None


def _join(words: list[tuple[str, int, int]]) -> str:
    parts = []
    for w, case, sp in words:
        w = w if case == 0 else w[0].upper() + w[1:] if case == 1 else w.upper()
        parts.append(" " * sp + w)
    return "".join(parts)


class _Flags:
    """Adaptive binary/ternary counts, one table per context."""

    def __init__(self, n: int, ctxs: int) -> None:
        self.c = np.ones((ctxs, n), dtype=np.int64) * 2

    def row(self, ctx: int) -> np.ndarray:
        return self.c[ctx].copy()

    def update(self, ctx: int, s: int) -> None:
        self.c[ctx, s] += 4


def _is_punct(w: str) -> int:
    return int(not w[:1].isalnum())


class ClipIndexCoder(TextCoder):

    @classmethod
    def availability(cls) -> str | None:
        try:
            import open_clip  # noqa: F401
            import regex  # noqa: F401
        except ImportError:
            return "pip install 'semcodec[generative]' (or open_clip_torch)"
        return None

    def __init__(self) -> None:
        tok = _tokenizer()
        self.tok = tok
        self.eos = len(tok.encoder)
        self.prior = _prior()
        self.adapt = max(1.0, float(np.floor(self.prior.sum() * ADAPT)))

    def _word_ids(self, w: str) -> list[int] | None:
        tok = self.tok
        try:
            w.encode("utf-8")
        except UnicodeEncodeError:
            return None
        pieces = tok.bpe("".join(tok.byte_encoder[b] for b in w.encode("utf-8"))).split(" ")
        if any(p not in tok.encoder for p in pieces) or not pieces[-1].endswith("</w>"):
            return None
        if any(p.endswith("</w>") for p in pieces[:-1]):
            return None
        return [tok.encoder[p] for p in pieces]

    def _word_text(self, ids: list[int]) -> str:
        tok = self.tok
        s = "".join(tok.decoder[i] for i in ids)
        if not s.endswith("</w>"):
            raise FormatError("corrupted text stream: CLIP word not terminated")
        try:
            return bytearray(tok.byte_decoder[c] for c in s[:-4]).decode("utf-8")
        except (KeyError, UnicodeDecodeError):
            raise FormatError("corrupted text stream: invalid CLIP token bytes") from None

    def encode(self, text: str) -> bytes:
        raw = text.encode("utf-8", "surrogatepass")
        if len(raw) > MAX_TEXT_BYTES:
            raise FormatError("text too long for the text channel (1 MiB cap)")
        words = _split(text) if len(raw) <= MAX_CLIP_BYTES else None
        if words is not None and any(len(w) > MAX_WORD for w, _, _ in words):
            words = None  # CLIP's BPE is quadratic in word length: such words go the byte path
        ids = None if words is None else [self._word_ids(w) for w, _, _ in words]
        if ids is None or any(i is None for i in ids) or _join(words) != text:
            syms = [1] + list(raw) + [256]
            rows = [MODE_FREQS] + [BYTE_FREQS] * (len(raw) + 1)
            return encode_symbols(syms, rows)
        syms, rows = [0], [MODE_FREQS]
        counts = self.prior.copy()
        case_m, space_m = _Flags(3, 2), _Flags(3, 4)
        prev_p = 1
        for (w, case, sp), wid in zip(words, ids, strict=True):
            for t in wid:
                syms.append(t)
                rows.append(counts.copy())
                counts[t] += self.adapt
            p = _is_punct(w)
            syms += [case, sp]
            rows += [case_m.row(p), space_m.row(2 * prev_p + p)]
            case_m.update(p, case)
            space_m.update(2 * prev_p + p, sp)
            prev_p = p
        syms.append(self.eos)
        rows.append(counts.copy())
        return encode_symbols(syms, rows)

    def decode(self, data: bytes) -> str:
        dec = SymbolDecoder(data, "text stream")
        cap = 64 * len(data) + 256
        if dec.decode(MODE_FREQS) == 1:
            out = bytearray()
            while (b := dec.decode(BYTE_FREQS)) != 256:
                out.append(b)
                if len(out) > min(cap, MAX_TEXT_BYTES):
                    raise FormatError("corrupted text stream: byte run exceeds the size cap")
            try:
                return out.decode("utf-8", "surrogatepass")
            except UnicodeDecodeError:
                raise FormatError("corrupted text stream: invalid UTF-8") from None
        counts = self.prior.copy()
        case_m, space_m = _Flags(3, 2), _Flags(3, 4)
        words: list[tuple[str, int, int]] = []
        prev_p, n_tok = 1, 0
        while True:
            wid: list[int] = []
            while True:
                t = dec.decode(counts)
                n_tok += 1
                if n_tok > cap:
                    raise FormatError("corrupted text stream: no end within the size cap")
                if t == self.eos:
                    if wid:
                        raise FormatError("corrupted text stream: end inside a word")
                    text = _join(words)
                    if self.encode(text) != data:
                        raise FormatError("corrupted text stream: not the canonical encoding of its text")
                    return text
                counts[t] += self.adapt
                wid.append(t)
                if self.tok.decoder[t].endswith("</w>"):
                    break
            w = self._word_text(wid)
            p = _is_punct(w)
            case = dec.decode(case_m.row(p))
            sp = dec.decode(space_m.row(2 * prev_p + p))
            case_m.update(p, case)
            space_m.update(2 * prev_p + p, sp)
            words.append((w, case, sp))
            prev_p = p
