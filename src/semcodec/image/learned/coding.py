"""Real bitstreams for :class:`~semcodec.image.learned.models.LicSmall` through CompressAI's rANS coder.

Encoder (one analysis per scale, then a search over the rate parameter on *estimated* sizes)::

    img ─► pad to ×s ─► downscale ×s ─► pad to ×64 ─► g_a ─► y                          (once per scale)
    estimate(r):  y·gain(r) ─► h_a ─► z ─► ẑ = round(z − med) + med ─► h_s (1 thread) ─► σ index, μ (snapped)
                  bytes ≈ (−Σ log2 p_EB(ẑ) − Σ log2 N(ŷ; μ, σ_table)) / 8        (no entropy coder run)
    encode(r):    the estimate's ẑ, σ, μ ─► EB.compress / GC.compress ─► z_bytes, y_bytes  (1–2 times)

Decoder: z_bytes ─► EB ─► h_s (1 thread) ─► σ, μ ─► GC.decompress ─► ÷gain(r) ─► g_s ─► upsampler ×s ─► crop,
the last three strip by strip (``synthesize``): a 6324×6324 header would otherwise need 4.2 GB for
the 64-channel g_s activations at full resolution. Each strip is a band of full-width ŷ rows plus a
halo of ``HALO`` latent rows above and below; the halo is wider than the synthesis' receptive field
(g_s: about 2 latent pixels, the upsampler: 4 coding-resolution pixels), and on one thread every op
computes a pixel the same way whatever the number of rows, so the strips are bit-identical to a
whole-image synthesis (tested on Kodak at every scale).

Determinism: the hyperprior rule of ``entropy/hyperprior.py`` (h_s on one thread, σ -> table index,
CDF tables from the weights file), with the means snapped to a 1/64 grid (``MEAN_GRID``, part of
this format). The encoder reuses the estimate's h_s output only after checking that its ẑ equals
what the decoder gets from z_bytes. All transforms run under a fixed thread count
(``CODEC_THREADS``), so the decoded pixels never depend on the caller's.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ...determinism import fixed_threads
from ...entropy.hyperprior import decode_latents, encode_latents, gaussian_params
from ...errors import ImageTooLargeError
from .models import MEAN_GRID, LicSmall, downscale

#: Rate parameter resolution: r = rate_code / RATE_STEPS, r in [0, levels-1].
RATE_STEPS = 8
#: Torch threads for every transform of the codec, encoder and decoder alike, whatever the caller set.
#: One: the latents are small, and a second OpenMP thread costs more in barriers than it saves whenever
#: the other core is busy (measured on the shared 2-core CPU: 768×512 at 0.4 bpp encodes in 0.7 s on
#: one thread, 4.3 s on two; ×4-scale transforms run 3-10× slower on two). Fixed, so decoded pixels
#: never depend on the caller's thread setting.
CODEC_THREADS = 1
ALIGN = 64
#: Memory one synthesis strip may use (activations, halo included), and the hard limit for the
#: narrowest strip (one latent row and its halo) beyond which a very wide image is refused.
STRIP_BYTES = 500 << 20
MAX_STRIP_BYTES = 1200 << 20
#: Latent rows of context above and below each strip (see module docstring: more than the receptive field).
HALO = 4


def strip_bytes_per_pixel(scale: int) -> float:
    """Peak activation bytes per output pixel of a strip, measured on a forged 6324×6324 file: about
    240 at scale 1 (g_s's 64 channels at half resolution dominate) and 45 at scale 8 (the upsampler)."""
    return 40 + 200 / scale**2


#: rANS flush bytes per coded string (z and y), added to the likelihood estimate.
RANS_FLUSH = 4


def to_tensor(img: np.ndarray) -> Tensor:
    return torch.from_numpy(np.array(img, dtype=np.uint8, copy=True)).permute(2, 0, 1)[None].float() / 255.0


def to_uint8(x: Tensor) -> np.ndarray:
    return (x[0].clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).contiguous().numpy()


def coded_size(width: int, height: int, scale: int) -> tuple[int, int, int, int]:
    """(low-res w, h) and the padded (w, h) the network sees, for an image coded at ``scale``."""
    lw, lh = math.ceil(width / scale), math.ceil(height / scale)
    return lw, lh, math.ceil(lw / ALIGN) * ALIGN, math.ceil(lh / ALIGN) * ALIGN


def _pad_to(x: Tensor, h: int, w: int) -> Tensor:
    ph, pw = h - x.shape[-2], w - x.shape[-1]
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), mode="replicate")
    return x


def prepare(img: np.ndarray, scale: int) -> Tensor:
    """uint8 H×W×3 -> padded low-resolution 1×3×h×w tensor for the analysis transform."""
    h, w = img.shape[:2]
    lw, lh, pw, ph = coded_size(w, h, scale)
    x = _pad_to(to_tensor(img), lh * scale, lw * scale)
    return _pad_to(downscale(x, scale), ph, pw)


@dataclass
class Coded:
    scale: int
    rate_code: int
    z_bytes: bytes
    y_bytes: bytes


@dataclass
class Trial:
    """One rate code's hyper path for a given y: what the entropy coder would need, plus its estimated size."""

    rate_code: int
    y: Tensor  # gained latent y·gain(r)
    z: Tensor
    z_hat: Tensor
    indexes: Tensor
    means: Tensor
    est_z_bytes: float
    est_y_bytes: float


class LicCoder:
    """Entropy-codes LicSmall latents; one instance per loaded model (the model must be ``update()``-d)."""

    def __init__(self, model: LicSmall) -> None:
        # channels_last: oneDNN's fastest layout for these convolutions (about 1.4× on g_s and the upsampler)
        self.model = model.eval().to(memory_format=torch.channels_last)

    @property
    def max_rate_code(self) -> int:
        return (self.model.levels - 1) * RATE_STEPS

    def _rate(self, rate_code: int) -> Tensor:
        return torch.tensor([rate_code / RATE_STEPS])

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        """The codec's fixed thread count (``CODEC_THREADS``) and no autograd."""
        with fixed_threads(CODEC_THREADS), torch.inference_mode():
            yield

    def analyse(self, img: np.ndarray, scale: int) -> Tensor:
        with self.running():
            return self.model.g_a(prepare(img, scale).contiguous(memory_format=torch.channels_last))

    def estimate(self, y: Tensor, scale: int, rate_code: int) -> Trial:
        """Size of the LATENT payload at ``rate_code`` from the model's likelihoods, without entropy coding."""
        with self.running():
            gain, _ = self.model.gains(self._rate(rate_code))
            yg = y * gain
            z = self.model.h_a(yg)
            z_hat, z_lik = self.model.entropy_bottleneck(z, training=False)
            indexes, means = gaussian_params(self.model, z_hat, mean_grid=MEAN_GRID)
            gc = self.model.gaussian_conditional
            y_hat = torch.round(yg - means) + means
            y_lik = gc.likelihood_lower_bound(gc._likelihood(y_hat, gc.scale_table[indexes.long()], means))
            z_bits, y_bits = float(-torch.log2(z_lik).sum()), float(-torch.log2(y_lik).sum())
        return Trial(rate_code, yg, z, z_hat, indexes, means, z_bits / 8 + RANS_FLUSH, y_bits / 8 + RANS_FLUSH)

    def encode_latent(self, y: Tensor, scale: int, rate_code: int, trial: Trial | None = None) -> Coded:
        """Really entropy-code ``y`` at ``rate_code`` (reusing ``trial``'s h_s output when it is valid)."""
        if trial is None or trial.rate_code != rate_code:
            trial = self.estimate(y, scale, rate_code)
        with self.running():
            z_bytes, y_bytes = encode_latents(self.model, trial.y, trial.z, mean_grid=MEAN_GRID,
                                              known=(trial.z_hat, trial.indexes, trial.means))
        return Coded(scale, rate_code, z_bytes, y_bytes)

    def decode(self, coded: Coded, width: int, height: int) -> np.ndarray:
        lw, lh, pw, ph = coded_size(width, height, coded.scale)
        zshape = (ph // ALIGN, pw // ALIGN)
        with self.running():
            y_hat = decode_latents(self.model, coded.z_bytes, coded.y_bytes, zshape, mean_grid=MEAN_GRID)
            _, inv_gain = self.model.gains(self._rate(coded.rate_code))
            return self.synthesize(y_hat * inv_gain, coded.scale, width, height)

    def synthesize(self, y: Tensor, scale: int, width: int, height: int, rows: int | None = None) -> np.ndarray:
        """g_s, upsampler and crop, a strip of ``rows`` latent rows at a time, into one uint8 image.

        Strips span the full padded width: oneDNN picks its transposed-convolution kernel by the
        input width, so column tiles change the last bits of the output, while row strips do not.
        Peak memory is one strip's activations (about ``STRIP_BYTES``, halo included).
        """
        lh, lw = y.shape[-2:]
        f = ALIGN // 4 * scale  # output pixels per latent pixel (g_s upsamples 16×, then ×scale)
        row_bytes = lw * f * f * strip_bytes_per_pixel(scale)  # one latent row of output
        if rows is None:
            rows = max(1, int(STRIP_BYTES // row_bytes))
        if (1 + 2 * HALO) * row_bytes > MAX_STRIP_BYTES:
            raise ImageTooLargeError(
                f"lic: a {width}x{height} image at scale {scale} is too wide for the synthesis to run one"
                f" strip at a time within {MAX_STRIP_BYTES >> 20} MB; this decoder refuses it")
        out = np.empty((height, width, 3), dtype=np.uint8)
        for t0 in range(0, min(lh, math.ceil(height / f)), rows):
            a0, a1 = max(0, t0 - HALO), min(lh, t0 + rows + HALO)
            x_low = self.model.g_s(y[..., a0:a1, :].contiguous(memory_format=torch.channels_last))
            x_hat = self.model.upsample(x_low, scale)
            del x_low
            r0, r1 = t0 * f, min(height, (t0 + rows) * f)
            out[r0:r1] = to_uint8(x_hat[..., r0 - a0 * f:r1 - a0 * f, :width])
            del x_hat
        return out
