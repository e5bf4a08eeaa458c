"""Arithmetic coding of the residual with constriction, all patches advancing together.

The image (padded to a multiple of p) is cut into N p×p patches. Step t ∈ [0, p²) handles pixel
t (raster order) of every patch at once: one transformer step with a KV cache over a batch of N
tokens, then R, G and B of those N pixels in turn (G's mixture sees r_R, B's sees r_R and r_G)::

    step t:  embed(g, x_l, neighbour residuals) ─► backbone(+KV cache) ─► h ─┬► GMM_R ─► code x_R
                                                                             ├► GMM_G(r_R) ─► x_G
                                                                             └► GMM_B(r_R,r_G) ─► x_B

Both sides run exactly the same computation (same batch shapes, same order, one torch thread inside
:func:`fixed_threads`); mixture parameters are rounded to an integer grid and the pmfs are integer
frequencies (:mod:`.mixture`), so the encoder's and decoder's tables are bit-identical whatever the
caller's thread count. The encoder stores the integer parameters of every step and then pushes the
symbols onto the ANS stack in reverse decoding order.

With ``adapt_steps > 0`` (the default) the encoder fits a per-image :class:`~.adapter.HeadAdapter` on
teacher-forced backbone states (:func:`fit_residual_adapter`), runs the coding pass to collect the
exact states h, and only then computes the mixtures; h does not depend on the head, so the decoder's
states are the same and it applies the stored adapter.

RESIDUAL stream payload, version 1: ``[1][CRC32 of the original pixels, 4 bytes BE][ANS words, u32 LE]``
(``entropy.words.ANS_WORDS``);
version 2: ``[2][CRC32][adapter length, 2 bytes BE][adapter (zlib int8)][ANS words, u32 LE]``.
Versions 3 and 4 are laid out like 1 and 2 but coded in the checkerboard order (a model with
``checkerboard``: first every patch with (row + column) even, then the others, which see their
decoded neighbours across the patch borders); a stream whose order does not match the weights'
is a :class:`~semcodec.errors.FormatError`. Version 5 is version 4 with the adapter in its low-rank
form (:class:`~.adapter.HeadAdapter`, its first byte is the rank); the encoder writes it only when
the estimated residual bits plus the larger adapter come out smaller than with the bias form.
The CRC makes any corruption a :class:`~semcodec.errors.FormatError` instead of a wrong image.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from ..determinism import fixed_threads
from ..entropy.rangecoder import AnsDecoder, AnsEncoder
from ..entropy.words import ANS_WORDS
from ..errors import FormatError
from ..kv_cache import forward_with_cache
from ..progress import bar as progress_bar
from .adapter import HeadAdapter, adapter_cost, fit_adapter
from .mixture import gmm_bits, integer_pmf, quantise_params
from .model import OFFSETS, UNAVAILABLE, ResidualLM

VERSION_PLAIN, VERSION_ADAPTED = 1, 2  # patch-local coding order (models without checkerboard)
VERSION_CB_PLAIN, VERSION_CB_ADAPTED = 3, 4  # two-phase checkerboard order
VERSION_CB_LOW_RANK = 5  # checkerboard order, adapter in its low-rank form


def stream_versions(model: ResidualLM) -> tuple[int, int]:
    """(plain, adapted) version bytes of the streams this model writes: they name its coding order."""
    return (VERSION_CB_PLAIN, VERSION_CB_ADAPTED) if model.cfg.checkerboard else (VERSION_PLAIN, VERSION_ADAPTED)

ESTIMATE_CHUNK = 512  # patches per teacher-forced backbone call of fit_residual (memory bound)
DEFAULT_ADAPT_STEPS = 200  # Adam steps of the per-image head adapter (0: trained head as it is)
DEFAULT_ADAPTER_RANK = 4  # rank of the adapter's low-rank form tried after the bias form (0: never)
LOW_RANK_LR = 0.02  # its fit continues from the fitted bias form, hence a smaller step than from zero

class PatchStepper:
    """State of one image being coded: conv features, base pixels, decoded residuals, KV cache.

    Patches are coded in phases (one phase, or the two colours of a checkerboard, see
    :meth:`ResidualLM.phases`); inside a phase all its patches advance together, one pixel per step.
    Decoded residual codes live in one image-sized buffer (with a 1-pixel UNAVAILABLE border), so a
    pixel's neighbours are read from wherever they were decoded and then masked by the model's
    availability table, exactly as in training (:meth:`ResidualLM.neighbour_codes`).
    """

    def __init__(self, model: ResidualLM, xl: np.ndarray, quality: int) -> None:
        p = model.cfg.patch
        self.model, self.p = model, p
        h, w = xl.shape[:2]
        hp, wp = -(-h // p) * p, -(-w // p) * p
        self.pad = ((0, hp - h), (0, wp - w), (0, 0))
        xlp = torch.from_numpy(np.pad(xl, self.pad, mode="edge")).permute(2, 0, 1)[None].contiguous()
        valid = torch.from_numpy(np.pad(np.ones((h, w, 1), bool), self.pad)).permute(2, 0, 1)[None]
        self.g = self._patches(model.glob(xlp))  # (N,p,p,d) conv features
        self.xl = self._patches(xlp).long()  # (N,p,p,3)
        self.valid = self._patches(valid)[..., 0]  # (N,p,p) bool
        self.n = self.xl.shape[0]
        nh, nw = hp // p, wp // p
        self.q = torch.full((self.n,), model.quality_index(quality), dtype=torch.long)
        self.phase_of = model.phases(nh, nw)  # (N,)
        self.codes = torch.full((hp + 2, wp + 2, 3), UNAVAILABLE, dtype=torch.long)
        idx = torch.arange(self.n)
        self.oy, self.ox = (idx // nw) * p + 1, (idx % nw) * p + 1  # patch origins in the code buffer
        self.sel = idx
        self.avail = model.availability(0)
        self.cache = None

    def _patches(self, t: torch.Tensor) -> torch.Tensor:
        b, c, h, w = t.shape
        p = self.p
        return t.reshape(b, c, h // p, p, w // p, p).permute(0, 2, 4, 3, 5, 1).reshape(-1, p, p, c)

    def phases(self) -> list[int]:
        return sorted({int(v) for v in self.phase_of})

    def begin(self, phase: int) -> torch.Tensor:
        """Start a phase: its patches (indices into the N patches) and a fresh KV cache."""
        self.sel = torch.nonzero(self.phase_of == phase)[:, 0]
        self.avail = self.model.availability(phase)
        self.cache = None
        return self.sel

    def pad_image(self, x: np.ndarray) -> torch.Tensor:
        """Original pixels as patches; padding pixels equal the (padded) base, i.e. residual 0."""
        xp = np.pad(x, self.pad, mode="edge")
        xs = self._patches(torch.from_numpy(xp).permute(2, 0, 1)[None].contiguous()).long()
        return torch.where(self.valid[..., None], xs, self.xl)

    def step(self, t: int) -> torch.Tensor:
        """Backbone state of pixel t of every patch of the current phase, (n_sel, d)."""
        i, j = divmod(t, self.p)
        s = self.sel
        y, x = self.oy[s] + i, self.ox[s] + j
        nb = self.model.n_nbr
        nbr = torch.stack([self.codes[y + dy, x + dx] for dy, dx in OFFSETS[:nb]], 1)  # (n_sel, nb, 3)
        nbr = torch.where(self.avail[i, j].view(1, nb, 1), nbr, torch.full((), UNAVAILABLE, dtype=torch.long))
        e = self.model.embed(self.g[s, i, j], self.xl[s, i, j], nbr, self.q[s])[:, None]
        out, self.cache = forward_with_cache(self.model.backbone, self.cache, inputs_embeds=e)
        return out.last_hidden_state[:, 0]

    def params(self, h: torch.Tensor, c: int, r: torch.Tensor, adapter: HeadAdapter | None) -> torch.Tensor:
        """Quantised mixture parameters of channel ``c`` from states ``h`` and the pixel's residuals ``r``."""
        return quantise_params(*self.model.head(h, c, r, adapter))

    def record(self, t: int, r: torch.Tensor) -> None:
        """Store the residuals (n_sel, 3) of pixel t of the current phase's patches."""
        i, j = divmod(t, self.p)
        self.codes[self.oy[self.sel] + i, self.ox[self.sel] + j] = (r + 255).clamp(0, 510)


@dataclass
class ResidualFit:
    """An image's teacher-forced tokens, its adapter and the estimated RESIDUAL bits with it."""

    tokens: list[torch.Tensor]  # (h, r, x, x_l) of every coded pixel: (M, d), (M, 3) × 3
    adapter: HeadAdapter | None
    bits: float  # estimated residual bits, the adapter's bytes included


def fit_residual(model: ResidualLM, x: np.ndarray, xl: np.ndarray, quality: int,
                 adapt_steps: int = DEFAULT_ADAPT_STEPS, on_step: Callable[[], object] | None = None) -> ResidualFit:
    """The bias-form adapter of ``x`` (none if ``adapt_steps`` = 0) and the estimated bits with it.

    The backbone states come from one teacher-forced pass (:meth:`ResidualLM.teacher_forced`, in
    chunks of patches), not from the KV-cached coding pass: the same function, so the same states up
    to float rounding, at a fraction of the time (the decoder only ever sees the adapter's integers,
    so where it was fitted does not matter for exactness). The base search (:mod:`.search`) compares
    its finalists by these bits (the coded size differs only by float rounding, the coder's
    windowed integer pmf and the ANS tail).
    """
    p = model.cfg.patch
    h, w = x.shape[:2]
    pad = ((0, -h % p), (0, -w % p), (0, 0))
    valid = np.pad(np.ones((h, w, 1), bool), pad)
    xlp = np.pad(xl, pad, mode="edge")
    xp = np.where(valid, np.pad(x, pad, mode="edge"), xlp)  # padding pixels: residual 0, as in coding
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1)[None].contiguous()  # noqa: E731
    with fixed_threads(1), torch.no_grad():
        hs, xs, xls, r = model.teacher_forced(t(xp), t(xlp), torch.tensor([model.quality_index(quality)]),
                                              chunk=ESTIMATE_CHUNK)
        hh, ww = valid.shape[0] // p, valid.shape[1] // p
        m = torch.from_numpy(valid[..., 0].reshape(hh, p, ww, p).transpose(0, 2, 1, 3).reshape(-1, p * p))
        tokens = [hs[m], r[m], xs[m], xls[m]]
        if adapt_steps <= 0:
            hs, r, xs, xls = tokens
            return ResidualFit(tokens, None, sum(float(gmm_bits(*model.head(hs, c, r), xs[:, c], xls[:, c]).sum())
                                                 for c in range(3)))
        adapter = fit_adapter(model, *tokens, adapt_steps, on_step=on_step)
        return ResidualFit(tokens, adapter, adapter_cost(model, *tokens, adapter))


def try_low_rank(model: ResidualLM, fit: ResidualFit, adapt_steps: int, adapter_rank: int,
                 on_step: Callable[[], object] | None = None) -> ResidualFit:
    """Try the adapter's low-rank form (fitted from the bias form); keep it when its estimated total is
    smaller. A no-op without an adapter, with ``adapter_rank`` = 0 or on a patch-local model."""
    if fit.adapter is None or adapter_rank <= 0 or not model.cfg.checkerboard:
        return fit
    wide = fit_adapter(model, *fit.tokens, adapt_steps, lr=LOW_RANK_LR, on_step=on_step,
                       start=fit.adapter.with_rank(adapter_rank))
    cost = adapter_cost(model, *fit.tokens, wide)
    return ResidualFit(fit.tokens, wide, cost) if cost < fit.bits else fit


def fit_residual_adapter(model: ResidualLM, x: np.ndarray, xl: np.ndarray, quality: int,
                         adapt_steps: int = DEFAULT_ADAPT_STEPS, adapter_rank: int = DEFAULT_ADAPTER_RANK,
                         on_step: Callable[[], object] | None = None) -> ResidualFit:
    """:func:`fit_residual` then :func:`try_low_rank`: the adapter :func:`encode_residual` codes with."""
    fit = fit_residual(model, x, xl, quality, adapt_steps, on_step)
    return try_low_rank(model, fit, adapt_steps, adapter_rank, on_step)


def image_crc(x: np.ndarray) -> int:
    return zlib.crc32(np.ascontiguousarray(x, dtype=np.uint8).tobytes())


def encode_residual(model: ResidualLM, x: np.ndarray, xl: np.ndarray, quality: int,
                    adapt_steps: int = DEFAULT_ADAPT_STEPS, adapter_rank: int = DEFAULT_ADAPTER_RANK,
                    adapter: HeadAdapter | None = None) -> bytes:
    """Code H×W×3 uint8 ``x`` given its base ``xl``; returns the RESIDUAL stream payload.

    With ``adapt_steps`` > 0 the head adapter is ``adapter`` if given (e.g. the one the base search
    fitted, :func:`fit_residual_adapter`), else fitted here the same way; ``adapter_rank`` > 0 (on a
    checkerboard model) also tries its low-rank form and keeps it when its estimated total is smaller.
    """
    if adapt_steps <= 0:
        adapter = None
    fit_here = adapt_steps > 0 and adapter is None
    fit_steps = adapt_steps * (2 if adapter_rank > 0 and model.cfg.checkerboard else 1) if fit_here else 0
    with fixed_threads(1), torch.no_grad():
        st = PatchStepper(model, xl, quality)
        xs = st.pad_image(x)
        L = st.p * st.p
        n_steps = len(st.phases()) * L
        bar = progress_bar(2 * n_steps + fit_steps, "lossless encode")
        if fit_here:
            adapter = fit_residual_adapter(model, x, xl, quality, adapt_steps, adapter_rank, bar.update).adapter
        runs = []  # per phase: (patch indices, backbone states per step, residuals per step)
        for ph in st.phases():
            sel = st.begin(ph)
            hs, rs = [], []
            for t in range(L):
                i, j = divmod(t, st.p)
                hs.append(st.step(t))
                rs.append(xs[sel, i, j] - st.xl[sel, i, j])
                st.record(t, rs[-1])
                bar.update()
            runs.append((sel, hs, rs))
        coder = AnsEncoder()
        for sel, hs, rs in reversed(runs):  # ANS is a stack: push in reverse decoding order
            for t in reversed(range(L)):
                bar.update()
                i, j = divmod(t, st.p)
                m = st.valid[sel, i, j]
                if not bool(m.any()):
                    continue
                for c in (2, 1, 0):
                    q = st.params(hs[t], c, rs[t], adapter)
                    pmf = integer_pmf(q[m], st.xl[sel[m], i, j, c]).numpy()
                    coder.encode_reverse(xs[sel[m], i, j, c].to(torch.int32).numpy(), pmf)
        bar.close()
    words = coder.to_bytes(ANS_WORDS)
    crc = struct.pack(">I", image_crc(x))
    plain, adapted = stream_versions(model)
    if adapter is None:
        return bytes([plain]) + crc + words
    ad = adapter.to_bytes()
    version = VERSION_CB_LOW_RANK if adapter.rank else adapted
    return bytes([version]) + crc + struct.pack(">H", len(ad)) + ad + words


def decode_residual(model: ResidualLM, xl: np.ndarray, quality: int, payload: bytes) -> np.ndarray:
    """Inverse of :func:`encode_residual`; raises FormatError on any inconsistency."""
    h, w = xl.shape[:2]
    plain, adapted = stream_versions(model)
    known = (VERSION_PLAIN, VERSION_ADAPTED, VERSION_CB_PLAIN, VERSION_CB_ADAPTED, VERSION_CB_LOW_RANK)
    if len(payload) < 5 or payload[0] not in known:
        raise FormatError("lossless: malformed residual stream header")
    ours = (plain, adapted, VERSION_CB_LOW_RANK) if model.cfg.checkerboard else (plain, adapted)
    if payload[0] not in ours:
        raise FormatError(f"lossless: residual stream version {payload[0]} was written by a model with another"
                          f" coding order than these weights ({plain}/{adapted}); decode it with the weights it was"
                          " made with")
    (crc,) = struct.unpack(">I", payload[1:5])
    start, adapter = 5, None
    if payload[0] in (adapted, VERSION_CB_LOW_RANK):
        if len(payload) < 7:
            raise FormatError("lossless: residual stream too short for its adapter")
        (alen,) = struct.unpack(">H", payload[5:7])
        if len(payload) < 7 + alen:
            raise FormatError("lossless: residual stream too short for its adapter")
        adapter = HeadAdapter.from_bytes(payload[7 : 7 + alen], model.d, model.head.k,
                                         low_rank=payload[0] == VERSION_CB_LOW_RANK)
        start = 7 + alen
    if (len(payload) - start) % 4:
        raise FormatError("lossless: malformed residual stream (not whole 32-bit words)")
    nwords = (len(payload) - start) // 4
    if nwords > 3 * h * w + 64:  # ≤ 24 bits per subpixel plus slack: anything larger is not ours
        raise FormatError("lossless: residual stream larger than any valid one")
    try:
        coder = AnsDecoder(payload[start:], ANS_WORDS)
    except FormatError as e:
        raise FormatError(f"lossless: residual stream: {e}") from None
    with fixed_threads(1), torch.no_grad():
        st = PatchStepper(model, xl, quality)
        out = st.xl.clone()
        bar = progress_bar(len(st.phases()) * st.p * st.p, "lossless decode")
        for ph in st.phases():
            sel = st.begin(ph)
            for t in range(st.p * st.p):
                bar.update()
                i, j = divmod(t, st.p)
                hid = st.step(t)
                m = st.valid[sel, i, j]
                r = torch.zeros(len(sel), 3, dtype=torch.long)
                for c in range(3):
                    q = st.params(hid, c, r, adapter)
                    if bool(m.any()):
                        pmf = integer_pmf(q[m], st.xl[sel[m], i, j, c]).numpy()
                        try:
                            sym = coder.decode(pmf)
                        except Exception as e:  # noqa: BLE001
                            raise FormatError(f"lossless: residual stream does not decode ({e})") from None
                        xv = torch.from_numpy(np.asarray(sym, dtype=np.int64))
                        out[sel[m], i, j, c] = xv
                        r[m, c] = xv - st.xl[sel[m], i, j, c]
                st.record(t, r)
        bar.close()
    if not coder.is_empty():
        raise FormatError("lossless: residual stream has trailing data")
    p = st.p
    hp, wp = h + st.pad[0][1], w + st.pad[1][1]
    img = out.reshape(hp // p, wp // p, p, p, 3).permute(0, 2, 1, 3, 4).reshape(hp, wp, 3)[:h, :w]
    x = img.to(torch.uint8).numpy()
    if image_crc(x) != crc:
        raise FormatError("lossless: decoded pixels fail the checksum (corrupted residual stream)")
    return np.ascontiguousarray(x)
