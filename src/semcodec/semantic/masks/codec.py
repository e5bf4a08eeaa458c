"""The MASK stream: binary object masks coded losslessly (optionally at reduced resolution).

Methods:

- ``ctx``  : context-adaptive binary arithmetic coding, 16-pixel JBIG-style template, adaptive
  counts started from a prior learned on BSDS500 train/val (see ``context.py``, ``prior.py``),
  range coding with constriction (exact 16-bit Bernoulli models);
- ``ctx0`` : same coder with JBIG1's 10-pixel template and no prior (pure adaptive, 1/2 start);
- ``rle``  : raster run lengths + DEFLATE (baseline).

Payload layout (integers are LEB128 varints)::

    +-----------------------------+--------+-------+-------+------------------------------+------+
    | method | log2(factor) << 4  | height | width | count | per mask: bh [by bx bw if bh]| body |
    | 1 byte                      | full-resolution size   | <= 64 | box in low-res pixels        |      |
    +-----------------------------+--------+-------+-------+------------------------------+------+

Only pixels inside each mask's bounding box are coded (outside is 0). ``ctx*`` body: one range-coder
message for all masks in order (adaptive state shared), big-endian 32-bit words with trailing zero
bytes dropped (``entropy.words.RANGE_STRIPPED``). ``rle`` body: per mask, varint length + run-length/DEFLATE bytes.

Decoding is sequential (one constriction call per pixel, about 2-3 µs), so sizes are capped: a
corrupted or hostile payload raises :class:`FormatError` and never decodes more than
``MAX_CODED_PIXELS`` pixels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...entropy.models import bernoulli_model
from ...entropy.rangecoder import RangeDecoder, RangeEncoder
from ...entropy.varint import decode_uvarint, encode_uvarint
from ...entropy.words import RANGE_STRIPPED
from ...errors import FormatError
from .context import TEMPLATES, AdaptiveState, EstimatorParams, adaptive_probs, contexts, template_pad
from .prior import crop_to_bbox, load_prior, prior_hash
from .resample import FACTORS, downsample, upsample
from .rle import rle_decode, rle_encode

METHODS = {"ctx": 0, "ctx0": 1, "rle": 2}
_METHOD_NAMES = {v: k for k, v in METHODS.items()}
MAX_MASKS = 64
MAX_MASK_PIXELS = 1 << 26  # full-resolution H*W
MAX_CODED_PIXELS = 1 << 24  # total bounding-box pixels decoded per payload
MAX_OUTPUT_PIXELS = 1 << 28  # count * H * W of the decoded masks (256 MB of bools)

#: Estimator settings per method (part of the format: changing them changes the bitstream).
ESTIMATORS = {
    "ctx": ("t16", EstimatorParams(inc=2, prior_weight=32, limit=1024)),
    "ctx0": ("t10", EstimatorParams(inc=2, prior_weight=1, limit=1024)),
}

@dataclass(frozen=True)
class MaskCoder:
    """``encode(masks) -> bytes`` / ``decode(bytes, width, height) -> masks`` for one MASK stream."""

    method: str = "ctx"
    factor: int = 1

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"mask method must be one of {sorted(METHODS)}, got {self.method!r}")
        if self.factor not in FACTORS:
            raise ValueError(f"mask factor must be one of {FACTORS}, got {self.factor}")

    def config(self) -> dict[str, Any]:
        cfg: dict[str, Any] = {"method": self.method, "factor": self.factor}
        if self.method == "ctx":
            cfg["prior"] = prior_hash()
        return cfg

    def encode(self, masks: Sequence[np.ndarray]) -> bytes:
        return encode_masks(masks, self.method, self.factor)

    def decode(self, payload: bytes, width: int, height: int) -> list[np.ndarray]:
        return decode_masks(payload, expected_size=(height, width))


def _prior_for(method: str, factor: int) -> np.ndarray:
    template, _ = ESTIMATORS[method]
    if method == "ctx":
        return load_prior(template, factor)
    return np.full(1 << len(TEMPLATES[template]), 1 << 15, dtype=np.int64)


def encode_masks(masks: Sequence[np.ndarray], method: str = "ctx", factor: int = 1) -> bytes:
    """Code same-sized H×W masks into one MASK payload."""
    if method not in METHODS or factor not in FACTORS:
        raise ValueError(f"bad mask coder settings: method={method!r} factor={factor}")
    if len(masks) > MAX_MASKS:
        raise ValueError(f"at most {MAX_MASKS} masks per stream")
    if not masks:
        raise ValueError("no masks to code")
    height, width = masks[0].shape
    if any(m.shape != (height, width) for m in masks):
        raise ValueError("all masks in a stream must have the same size")
    head = bytearray([METHODS[method] | (FACTORS.index(factor) << 4)])
    head += encode_uvarint(height) + encode_uvarint(width) + encode_uvarint(len(masks))
    crops = []
    for m in masks:
        crop, (y, x, h, w) = crop_to_bbox(downsample(m, factor))
        head += encode_uvarint(h)
        if h:
            head += encode_uvarint(y) + encode_uvarint(x) + encode_uvarint(w)
        crops.append(crop)
    if method == "rle":
        body = b"".join(encode_uvarint(len(r)) + r for r in (rle_encode(c) for c in crops if c.size))
        return bytes(head) + body
    template, est = ESTIMATORS[method]
    tpl = TEMPLATES[template]
    parts = [(contexts(c, tpl), c.reshape(-1)) for c in crops if c.size]
    if not parts:
        return bytes(head)
    ctx = np.concatenate([p[0] for p in parts])
    bits = np.concatenate([p[1] for p in parts])
    q = adaptive_probs(ctx, bits, _prior_for(method, factor), est)
    enc = RangeEncoder()
    enc.encode_bits(bits.astype(np.int32), q)
    return bytes(head) + enc.to_bytes(RANGE_STRIPPED)


def _decode_ctx(decoder: Any, state: AdaptiveState, tpl: tuple[tuple[int, int], ...], h: int, w: int,
                models: dict[int, Any]) -> np.ndarray:
    """Decode one h×w crop pixel by pixel; the upper-row part of each context is vectorised per row."""
    top, left, right = template_pad(tpl)
    n_row = sum(1 for dy, _ in tpl if dy == 0)
    assert tpl[:n_row] == tuple((0, -k - 1) for k in range(n_row)), "current-row pixels must come first"
    pad = np.zeros((h + top, w + left + right), dtype=np.int64)
    win_mask = (1 << n_row) - 1
    c0, c1, prior = state.c0, state.c1, state.prior
    inc, wt, limit = state.inc, state.w, state.limit
    for y in range(h):
        up = np.zeros(w, dtype=np.int64)
        for k, (dy, dx) in enumerate(tpl[n_row:], start=n_row):
            up |= pad[top + y + dy, left + dx : left + dx + w] << k
        upl = up.tolist()
        row = [0] * w
        win = 0
        for x in range(w):
            c = upl[x] | win
            n1 = c1[c]
            n = c0[c] + n1
            p = ((n1 << 16) + wt * prior[c]) // (n + wt)
            p = 1 if p < 1 else (65535 if p > 65535 else p)
            model = models.get(p)
            if model is None:
                model = models[p] = bernoulli_model(p)
            b = int(decoder.decode(model))
            if b:
                c1[c] = n1 + inc
            else:
                c0[c] += inc
            if c0[c] + c1[c] > limit:
                c0[c] = (c0[c] + 1) >> 1
                c1[c] = (c1[c] + 1) >> 1
            row[x] = b
            win = ((win << 1) | b) & win_mask
        pad[top + y, left : left + w] = row
    return pad[top:, left : left + w].astype(bool)


def decode_masks(payload: bytes, expected_size: tuple[int, int] | None = None,
                 max_coded_pixels: int = MAX_CODED_PIXELS) -> list[np.ndarray]:
    """Inverse of :func:`encode_masks`; returns full-resolution bool masks (upsampled if coded reduced)."""
    view = memoryview(payload)
    if not view:
        raise FormatError("corrupted mask stream: empty")
    method_id, flog = view[0] & 0x0F, view[0] >> 4
    if method_id not in _METHOD_NAMES or flog >= len(FACTORS):
        raise FormatError(f"corrupted mask stream: unknown method byte {view[0]:#04x}")
    method, factor = _METHOD_NAMES[method_id], FACTORS[flog]
    height, pos = decode_uvarint(view, 1)
    width, pos = decode_uvarint(view, pos)
    count, pos = decode_uvarint(view, pos)
    if height == 0 or width == 0 or height * width > MAX_MASK_PIXELS:
        raise FormatError(f"corrupted mask stream: mask size {width}x{height}")
    if expected_size is not None and (height, width) != tuple(expected_size):
        raise FormatError(f"mask stream is {width}x{height}, image is {expected_size[1]}x{expected_size[0]}")
    if not 0 < count <= MAX_MASKS:
        raise FormatError(f"corrupted mask stream: {count} masks (allowed 1..{MAX_MASKS})")
    if count * height * width > MAX_OUTPUT_PIXELS:
        raise FormatError(f"mask stream would decode {count} masks of {width}x{height}, above the size cap")
    hl, wl = -(-height // factor), -(-width // factor)
    boxes = []
    total = 0
    for _ in range(count):
        h, pos = decode_uvarint(view, pos)
        y = x = w = 0
        if h:
            y, pos = decode_uvarint(view, pos)
            x, pos = decode_uvarint(view, pos)
            w, pos = decode_uvarint(view, pos)
            if w == 0 or y + h > hl or x + w > wl:
                raise FormatError("corrupted mask stream: bounding box outside the mask")
        boxes.append((y, x, h, w))
        total += h * w
    if total > max_coded_pixels:
        raise FormatError(f"mask stream codes {total} pixels, above the cap of {max_coded_pixels}")
    body = bytes(view[pos:])
    crops: list[np.ndarray | None] = []
    if method == "rle":
        bpos = 0
        for _, _, h, w in boxes:
            if not h:
                crops.append(None)
                continue
            n, bpos = decode_uvarint(body, bpos)
            if bpos + n > len(body):
                raise FormatError("truncated mask stream: run-length block runs past the end")
            crops.append(rle_decode(body[bpos : bpos + n], h, w))
            bpos += n
        if bpos != len(body):
            raise FormatError("corrupted mask stream: trailing bytes")
    else:
        template, est = ESTIMATORS[method]
        state = AdaptiveState(_prior_for(method, factor), est)
        models: dict[int, Any] = {}
        try:
            decoder = RangeDecoder(body, RANGE_STRIPPED).raw if total else None
            for _, _, h, w in boxes:
                crops.append(_decode_ctx(decoder, state, TEMPLATES[template], h, w, models) if h else None)
        except (ValueError, RuntimeError, AssertionError) as e:
            raise FormatError(f"corrupted mask stream: {e}") from None
    out = []
    for (y, x, h, w), crop in zip(boxes, crops, strict=True):
        low = np.zeros((hl, wl), dtype=bool)
        if crop is not None:
            low[y : y + h, x : x + w] = crop
        out.append(upsample(low, height, width, factor))
    return out
