"""The captioner contract and the seed papers' caption styles (prompts in our own words).

    image ──► Captioner.caption(image, prompt=None) ──► text (≤ style.max_words words)

Word limits are enforced after generation (models overshoot), cutting at a sentence end when one
falls in the last third of the allowed words.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class CaptionStyle:
    name: str
    prompt: str
    max_words: int | None


def itc_style() -> CaptionStyle:
    """Murai et al. (ITC): a compact description of at most 50 words."""
    return CaptionStyle("itc", "Describe this image in a single paragraph of no more than 50 words. Name the "
                        "main objects with their colours and positions, then the background.", 50)


def resulic_style() -> CaptionStyle:
    """ResULIC: about 40 words of visible content, no feelings or atmosphere."""
    return CaptionStyle("resulic", "Describe what is visible in this image in about 40 words: objects, "
                        "colours, textures, layout and background. Report only what can be seen; do not "
                        "mention feelings, mood or atmosphere.", 40)


def sedic_style(l_all: int = 30) -> CaptionStyle:
    """SEDIC: the overall description of the whole scene, at most ``l_all`` words."""
    return CaptionStyle("sedic", f"Describe the whole scene of this image in at most {l_all} words: the setting, "
                        "the main objects and the background.", l_all)


def perco_style() -> CaptionStyle:
    """PerCo: a BLIP-2-style short caption; the cap is 32 generated tokens, not words (set by the caller)."""
    return CaptionStyle("perco", "Write a short caption of this image.", None)


STYLES = {"itc": itc_style, "resulic": resulic_style, "sedic": sedic_style, "perco": perco_style}


def limit_words(text: str, max_words: int | None) -> str:
    """Collapse whitespace and keep at most ``max_words`` words (prefer ending on a full sentence)."""
    words = text.split()
    if max_words is None or len(words) <= max_words:
        return " ".join(words)
    kept = words[:max_words]
    for i in range(len(kept) - 1, (2 * max_words) // 3 - 1, -1):
        if re.search(r"[.!?]$", kept[i]):
            return " ".join(kept[: i + 1])
    return " ".join(kept).rstrip(",;:") + "."


class Captioner(ABC):
    """Turns an image into text. ``prompt`` overrides the style's prompt (same word limit)."""

    name: str = "captioner"
    max_words: int | None = None

    @abstractmethod
    def caption(self, image: np.ndarray, prompt: str | None = None) -> str: ...
