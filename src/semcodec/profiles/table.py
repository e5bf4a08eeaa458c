"""The profile table: the one place a profile is registered (name, id, class, meaning of ``--quality``).

Ids are written into every file header: never change or reuse one. Ranges (docs/format.md): 1-15
classical, 16-31 learned, 32-47 generative, 48-63 lossless; 250-255 are left to tests and plugins.
This module imports no profile: ``semcodec compress --help`` reads the quality column from here.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..registry import Entry, Registry
from .quality import Quality


@dataclass(frozen=True)
class ProfileEntry(Entry):
    quality: Quality = Quality("profile-specific")


def _classical(pid: int, cls: str, meaning: str, low: int, high: int, default: int) -> ProfileEntry:
    return ProfileEntry(pid, f"semcodec.image.profiles:{cls}", Quality(meaning, low, high, str(default)))


_BASE = Quality("passed on to the base profile (--set base_profile=NAME; default lic, else avif)")

PROFILES: Registry = Registry("profile", {
    "jpeg": _classical(1, "JpegProfile", "libjpeg quality", 1, 100, 75),
    "webp": _classical(2, "WebpProfile", "libwebp quality", 0, 100, 75),
    "avif": _classical(3, "AvifProfile", "libavif quality", 0, 100, 60),
    "jxl": _classical(4, "JxlProfile", "libjxl quality", 0, 100, 75),
    "j2k": _classical(5, "J2kProfile", "target PSNR in dB", 15, 80, 35),
    "heif": _classical(6, "HeifProfile", "x265 quality", 0, 100, 50),
    "lic": ProfileEntry(16, "semcodec.image.learned.profile:LicProfile", Quality(
        "rate ladder position (0 = lowest rate, 1 = highest)", 0, 1, "0.5", integer=False, clamp=True)),
    "lic-msssim": ProfileEntry(17, "semcodec.image.learned.profile:LicMsssimProfile", Quality(
        "rate ladder position (0 = lowest rate, 1 = highest)", 0, 1, "0.5", integer=False, clamp=True)),
    "itc": ProfileEntry(32, "semcodec.generative.itc.profile:ItcProfile", _BASE),
    "sedic": ProfileEntry(33, "semcodec.generative.sedic.profile:SedicProfile", _BASE),
    "perco": ProfileEntry(34, "semcodec.generative.perco.profile:PercoProfile", Quality(
        "index of the paper's rate point (0 = 0.0019 … 6 = 0.1250 bpp map at 512²); must be the model's",
        0, 6, "the model's rate point")),
    "resulic": ProfileEntry(35, "semcodec.generative.resulic.profile:ResulicProfile", Quality(
        "q-step index of the latent codec (0: finest)", 0, 24, "4")),
    "lossless": ProfileEntry(48, "semcodec.lossless.profile:LosslessProfile", Quality(
        "quality of the lossy base image", 0, 100, "picked per image")),
}, id_range=range(1, 256))

DEFAULT_PROFILE = "avif"


def quality_table() -> str:
    """One line per profile (for ``compress --help``): name, id and what ``--quality`` means."""
    rows = [f"  {name:<9}{e.id:>3}  {e.quality.text()}" for name, e in PROFILES.items()
            if isinstance(e, ProfileEntry)]
    return "profiles (name, id, --quality):\n" + "\n".join(rows)
