"""Profile ``lic`` (id 16): the shipped learned codec, offline, rate-targeted.

Streams: PARAMS (scale, rate code, length of the hyper-latent bytes) + LATENT (z bytes ‖ y bytes).
With a byte budget the encoder picks the downscale ``s`` from the calibrated policy in config.json
(``scale_policy``: the scale that measured best on Kodak for each bpp range), then the largest rate
code whose file fits; if even the lowest rate does not fit it tries the coarser scales, and raises
:class:`RateError` when nothing fits. With ``refine_steps > 0`` the chosen latent is then refined for
this image (:mod:`.refine`, encoder only: the decoder and the file format do not change).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from ...container import Stream, StreamKind, pack_params, stream_cost, unpack_params
from ...errors import FormatError, RateError, SemcodecError
from ...metrics.distortion import min_side, weighted_distortion
from ...profiles import EncodeRequest, Profile, Settings, option
from .coding import RATE_STEPS, Coded, LicCoder, Trial, to_tensor
from .refine import METHODS, LatentRefiner, RefineConfig
from .weights import load_lic, weights_folder, weights_missing

PARAMS_SCHEMA: list[tuple[str, Any]] = [("scale", "u"), ("rate", "u"), ("zlen", "u")]


def _streams_cost(scale: int, rate_code: int, zlen: int, latent_len: int) -> int:
    params = pack_params(PARAMS_SCHEMA, {"scale": scale, "rate": rate_code, "zlen": zlen})
    return stream_cost(len(params)) + stream_cost(latent_len)


def _cost(c: Coded) -> int:
    return _streams_cost(c.scale, c.rate_code, len(c.z_bytes), len(c.z_bytes) + len(c.y_bytes))


@dataclass(frozen=True)
class LicSettings(Settings):
    weights: str | None = option(None, "weights folder (default $SEMCODEC_LIC_WEIGHTS or the shipped weights)")
    scale: int | None = option(None, "force this downscale (one of the model's coding scales)", low=1)
    rate: int | None = option(None, "force this rate code (highest tried with --bpp)", low=0)
    refine_steps: int = option(2, "encoder-side latent refinement: gradient steps on R + λ·D for this image"
                               " (0 = off; decoder unchanged)", low=0)
    refine_lr: float = option(0.01, "Adam step size of the latent refinement (latent units)", low=0.0)
    refine_method: str = option("ste", "quantisation proxy of the refinement: straight-through rounding or"
                                " stochastic Gumbel annealing", choices=METHODS)


class LicProfile(Profile):
    description: ClassVar[str] = "learned codec (CompressAI hyperprior, gain units, learned upsampler), offline"
    Settings = LicSettings
    settings: LicSettings
    #: which shipped weights (:data:`~.weights.WEIGHT_SETS`) the profile loads by default
    weight_set: ClassVar[str] = "lic"

    def __init__(self, settings: LicSettings | None = None, **options: Any) -> None:
        super().__init__(settings, **options)
        self.folder = self.settings.weights or str(weights_folder(self.weight_set))
        self.model, self.cfg, self.digest = load_lic(self.folder)
        self.coder = LicCoder(self.model)
        self.force_scale = self.settings.scale
        self.force_rate = self.settings.rate
        if self.force_scale is not None and self.force_scale not in self.model.coding_scales:
            raise SemcodecError(f"option scale must be one of {', '.join(map(str, self.model.coding_scales))}")
        self.refine = RefineConfig(self.settings.refine_steps, self.settings.refine_lr, self.settings.refine_method)
        self.refiner = self._refiner()

    def _refiner(self) -> LatentRefiner | None:
        """The refiner for the distortion the weights were trained for (``train.terms`` in config.json),
        or None (no refinement) when refinement is off or the weights name a term without a weight-free
        differentiable function (LPIPS, CLIP: refining for another distortion would be a guess)."""
        train = self.cfg.get("train", {})
        distortion = weighted_distortion(train.get("terms", {}))
        if self.refine.steps <= 0 or distortion is None or "lam_min" not in train:
            return None
        return LatentRefiner(self.model, distortion, float(train["lam_min"]), float(train["lam_max"]),
                             min_side(train["terms"]))

    def _refines(self, img: np.ndarray) -> bool:
        return self.refiner is not None and min(img.shape[:2]) >= self.refiner.min_side

    @classmethod
    def availability(cls) -> str | None:
        return weights_missing(kind=cls.weight_set)

    def config(self) -> dict[str, Any]:
        return {"profile": self.name, "weights": self.digest, "model": self.cfg["model"], "bitstream": 1}

    # -- encoder ---------------------------------------------------------------------------------
    def _scale_order(self, bpp: float | None) -> list[int]:
        scales = sorted(self.model.coding_scales)
        if self.force_scale is not None:
            return [self.force_scale]
        first = int(self.cfg.get("default_scale", 2))
        if bpp is not None:
            for min_bpp, s in sorted(self.cfg.get("scale_policy", []), reverse=True):
                if bpp >= min_bpp:
                    first = int(s)
                    break
        return [s for s in scales if s >= first] or [scales[-1]]

    def encode(self, request: EncodeRequest) -> list[Stream]:
        img = request.image
        top = self.coder.max_rate_code
        if request.max_bytes is None:
            scale = self._scale_order(None)[0]
            if self.force_rate is not None:
                rate = self.force_rate
            else:
                q = 0.5 if request.quality is None else self.quality.check(float(request.quality), self.name)
                rate = round(q * top)
            rate = min(rate, top)
            y = self.coder.analyse(img, scale)
            if self._refines(img):
                y = self._refined(img, y, scale, rate)
            return self._streams(self.coder.encode_latent(y, scale, rate))
        budget = request.max_bytes
        bpp = 8 * budget / (request.width * request.height)
        for scale in self._scale_order(bpp):
            y = self.coder.analyse(img, scale)
            cap = top if self.force_rate is None else min(self.force_rate, top)
            best = self._search(y, scale, budget, cap)
            if best is not None:
                if self._refines(img):
                    best = self._refine_within(img, y, scale, budget, cap, best)
                return self._streams(best)
        raise RateError(f"lic: even the lowest rate does not fit in {budget} bytes"
                        f" ({request.width}x{request.height}, {bpp:.5f} bpp)")

    def _search(self, y: Any, scale: int, budget: int, top: int) -> Coded | None:
        """Largest rate code whose streams fit ``budget``, entropy-coding only two or three candidates.

        Sizes are monotone in the rate code, so a binary search over the *estimated* sizes (likelihoods,
        no coder run) proposes a code, which is then really coded. The open interval ``[lo, hi]`` of
        untested codes shrinks with every real coding: a fit moves ``lo`` above it, a miss moves ``hi``
        below it, and the next proposal uses the estimate shifted by the last measured error (or, if
        that says nothing in the interval fits, the lowest open code). So the result is exactly what an
        exhaustive search over real codings gives (tested), usually after two codings: the pick and
        the proof that the next code does not fit.
        """
        trials: dict[int, Trial] = {}

        def est(code: int) -> float:
            if code not in trials:
                trials[code] = self.coder.estimate(y, scale, code)
            t = trials[code]
            return _streams_cost(scale, code, math.ceil(t.est_z_bytes), math.ceil(t.est_z_bytes + t.est_y_bytes))

        def propose(lo: int, hi: int, shift: float) -> int | None:
            """Largest code in [lo, hi] whose shifted estimate fits, or None."""
            if est(lo) + shift > budget:
                return None
            while lo < hi:
                mid = (lo + hi + 1) // 2
                if est(mid) + shift <= budget:
                    lo = mid
                else:
                    hi = mid - 1
            return lo

        best: Coded | None = None
        lo, hi, shift = 0, top, 0.0
        code = propose(lo, hi, shift)
        code = 0 if code is None else code  # the estimate may be pessimistic: check the lowest rate for real
        while True:
            c = self.coder.encode_latent(y, scale, code, trials.get(code))
            real = _cost(c)
            shift = real - est(code)
            if real <= budget:
                best, lo = c, code + 1
            else:
                hi = code - 1
            if lo > hi:
                return best
            nxt = propose(lo, hi, shift)
            code = lo if nxt is None else nxt  # the estimate says "no": the lowest open code decides

    def _refined(self, img: np.ndarray, y: Any, scale: int, rate_code: int,
                 max_extra_bits: float | None = None) -> torch.Tensor:
        """Analysis latent ``y`` refined for coding at ``rate_code`` (returned without gain, like ``y``)."""
        with self.coder.running(), torch.inference_mode(False):
            gain, _ = self.model.gains(torch.tensor([rate_code / RATE_STEPS]))
            yg = self.refiner.refine(y.clone() * gain, to_tensor(img), scale, rate_code / RATE_STEPS, self.refine,
                                     max_extra_bits)
            return yg / gain

    def _refine_within(self, img: np.ndarray, y: Any, scale: int, budget: int, top: int, plain: Coded) -> Coded:
        """The refined file for ``budget``, or ``plain`` (the unrefined search's pick) when refining does not pay.

        Why this order (refine once at the plain pick's rate code c0, then search the rate code again on
        the refined latent) rather than a search with refinement inside: a refinement costs as much as
        several whole plain encodes, so the budget (issue 17: ≤ 1 s at 768×512 on one core) allows one.
        The refinement only keeps iterates whose estimated size stays within the bytes ``plain`` left
        free (measured, so the estimate's error cancels), so the refined latent still fits at c0 in all
        but rare cases; when it saves bytes, the search moves up to a higher code that now fits (the
        refined latent, ÷gain(c0), coded at ×gain(c)). Every candidate is really entropy-coded and kept
        only if its file fits, so ``--bpp`` is never exceeded; if the refined latent fits only below c0,
        ``plain`` is returned (a lower code would trade quality the refinement was meant to add).
        """
        slack_bits = 8.0 * (budget - _cost(plain))
        refined = self._refined(img, y, scale, plain.rate_code, slack_bits)
        best = self._search(refined, scale, budget, top)
        if best is None or best.rate_code < plain.rate_code:
            return plain
        return best

    def _streams(self, c: Coded) -> list[Stream]:
        params = pack_params(PARAMS_SCHEMA, {"scale": c.scale, "rate": c.rate_code, "zlen": len(c.z_bytes)})
        return [Stream(StreamKind.PARAMS, params), Stream(StreamKind.LATENT, c.z_bytes + c.y_bytes)]

    # -- decoder ---------------------------------------------------------------------------------
    def decode(self, streams: list[Stream], width: int, height: int,
               texts: Sequence[str] | None = None) -> np.ndarray:
        ps = [s for s in streams if s.kind == StreamKind.PARAMS]
        ls = [s for s in streams if s.kind == StreamKind.LATENT]
        if len(ps) != 1 or len(ls) != 1:
            raise FormatError("lic: expected one PARAMS and one LATENT stream")
        p = unpack_params(PARAMS_SCHEMA, ps[0].payload)
        scale, rate, zlen = int(p["scale"]), int(p["rate"]), int(p["zlen"])
        payload = ls[0].payload
        if scale not in self.model.coding_scales or rate > self.coder.max_rate_code or zlen > len(payload):
            raise FormatError(f"lic: invalid parameters scale={scale} rate={rate} zlen={zlen}")
        return self.coder.decode(Coded(scale, rate, payload[:zlen], payload[zlen:]), width, height)


@dataclass(frozen=True)
class LicMsssimSettings(LicSettings):
    weights: str | None = option(None, "weights folder (default $SEMCODEC_LIC_MSSSIM_WEIGHTS or the shipped weights)")


class LicMsssimProfile(LicProfile):
    """The same codec with weights optimised for MS-SSIM (1 − MS-SSIM) instead of MSE: pick it for MS-SSIM."""

    description: ClassVar[str] = "learned codec optimised for MS-SSIM (same network as lic), offline"
    Settings = LicMsssimSettings
    weight_set: ClassVar[str] = "lic-msssim"
