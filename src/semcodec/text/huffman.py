"""Per-message byte Huffman coding (SEDIC's text coder), with the code table paid for in the stream.

Layout (all counted in the stream, nothing shared out of band)::

    varint n_bytes | n_symbols-1 (8 bits) | n_symbols x [byte value (8 bits), code length-1 (5 bits)]
    | Huffman bits (constriction QueueEncoder), zero padded to a byte (entropy.words.BIT_TRUNCATED)

Both sides build constriction's Huffman tree from the dyadic distribution 2^-length, so the decoder
gets exactly the encoder's tree from the transmitted lengths. For a 50-character caption the table
alone is ~30 bytes, which is why SEDIC-style Huffman loses to raw UTF-8 on short captions; it is kept
as the honest baseline.
"""

from __future__ import annotations

import heapq
from collections import Counter

import constriction
import numpy as np

from ..entropy.varint import decode_uvarint, encode_uvarint
from ..entropy.words import BIT_TRUNCATED
from ..errors import FormatError
from .base import TextCoder

MAX_BYTES = 1 << 20


def code_lengths(counts: dict[int, int]) -> dict[int, int]:
    """Huffman code lengths (ties broken by symbol value, so deterministic)."""
    if len(counts) == 1:
        return {next(iter(counts)): 1}
    heap = [(c, s, [s]) for s, c in sorted(counts.items())]
    heapq.heapify(heap)
    depth = dict.fromkeys(counts, 0)
    while len(heap) > 1:
        c1, k1, s1 = heapq.heappop(heap)
        c2, k2, s2 = heapq.heappop(heap)
        for s in s1 + s2:
            depth[s] += 1
        heapq.heappush(heap, (c1 + c2, min(k1, k2), s1 + s2))
    return depth


def _tree_probs(lengths: dict[int, int]) -> tuple[list[int], np.ndarray]:
    syms = sorted(lengths)
    return syms, np.array([2.0 ** -lengths[s] for s in syms])


class HuffmanCoder(TextCoder):
    """Per-message byte Huffman code, its table sent in the stream (SEDIC's text coder)."""

    def encode(self, text: str) -> bytes:
        raw = text.encode("utf-8", "surrogatepass")
        if len(raw) > MAX_BYTES:
            raise FormatError("text too long for the text channel (1 MiB cap)")
        out = bytearray(encode_uvarint(len(raw)))
        if not raw:
            return bytes(out)
        lengths = code_lengths(Counter(raw))
        syms, probs = _tree_probs(lengths)
        acc, nbits = len(syms) - 1, 8
        for s in syms:
            acc = (acc << 13) | (s << 5) | (lengths[s] - 1)
            nbits += 13
        pad = (-nbits) % 8
        out += (acc << pad).to_bytes((nbits + pad) // 8, "big")
        tree = constriction.symbol.huffman.EncoderHuffmanTree(probs)
        enc = constriction.symbol.QueueEncoder()
        index = {s: i for i, s in enumerate(syms)}
        for b in raw:
            enc.encode_symbol(index[b], tree)
        words, bits = enc.get_compressed_and_bitrate()
        out += BIT_TRUNCATED.to_bytes(words, bits)
        return bytes(out)

    def decode(self, data: bytes) -> str:
        try:
            n, pos = decode_uvarint(data, 0)
        except FormatError:
            raise FormatError("corrupted text stream: bad Huffman length header") from None
        if n > MAX_BYTES:
            raise FormatError("corrupted text stream: Huffman text over 1 MiB")
        if n == 0:
            if pos != len(data):
                raise FormatError("corrupted text stream: trailing bytes")
            return ""
        if pos >= len(data):
            raise FormatError("corrupted text stream: truncated Huffman table")
        k = data[pos] + 1
        tbytes = (8 + 13 * k + 7) // 8
        if pos + tbytes > len(data):
            raise FormatError("corrupted text stream: truncated Huffman table")
        acc = int.from_bytes(data[pos: pos + tbytes], "big") >> ((-(8 + 13 * k)) % 8)
        lengths: dict[int, int] = {}
        for i in range(k):
            e = (acc >> (13 * (k - 1 - i))) & 0x1FFF
            lengths[e >> 5] = (e & 31) + 1
        syms, probs = _tree_probs(lengths)
        if len(syms) != k or abs(probs.sum() - 1.0) > 1e-12 and k > 1:
            raise FormatError("corrupted text stream: invalid Huffman code lengths")
        body = data[pos + tbytes:]
        if k > 1 and n > 8 * len(body) + 8:  # every symbol costs at least one bit
            raise FormatError("corrupted text stream: Huffman data too short")
        words = BIT_TRUNCATED.to_words(body)
        tree = constriction.symbol.huffman.DecoderHuffmanTree(probs)
        dec = constriction.symbol.QueueDecoder(words)
        try:
            out = bytes(syms[dec.decode_symbol(tree)] for _ in range(n))
        except Exception as e:
            raise FormatError(f"corrupted text stream: Huffman decoding failed ({e})") from None
        nbits = 0 if k == 1 else sum(lengths[b] for b in out)
        if (nbits + 7) // 8 != len(body):
            raise FormatError("corrupted text stream: Huffman data length mismatch")
        try:
            return out.decode("utf-8", "surrogatepass")
        except UnicodeDecodeError:
            raise FormatError("corrupted text stream: invalid UTF-8") from None
