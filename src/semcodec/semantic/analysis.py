"""What each seed profile's encoder would send for one image, and what it costs (``semcodec analyze``).

    itc      caption (≤ 50 words)                                   → TEXT
    resulic  caption (40 words, no feelings); with a decoded base
             image, only the Srr residual                           → TEXT
    sedic    overall (≤ l_all) + per confirmed object "name, details"
             (≤ J objects, ≤ l_d words) → TEXT ×(1+J); SAM masks    → MASK

Costs are real payload sizes: text via :func:`semcodec.text.base.encode_text_stream` (best available
text coder), masks via :class:`semcodec.semantic.masks.MaskCoder`, plus container framing per stream.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..container import stream_cost
from ..errors import MissingComponentError
from ..text.base import best_text_coder, encode_text_stream
from .captioners import make_captioner
from .config import SemanticConfig
from .masks import MaskCoder
from .objects import SedicLimits, analyze_sedic

PROFILES = ("itc", "resulic", "sedic")


@dataclass
class AnalysisReport:
    profile: str
    texts: dict[str, str] = field(default_factory=dict)  # label -> text that would be sent
    text_payload_bytes: dict[str, int] = field(default_factory=dict)
    masks: list[np.ndarray] = field(default_factory=list)
    mask_payload: bytes | None = None
    objects: list[dict[str, Any]] = field(default_factory=list)  # name, box, score (sedic)
    dropped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    text_coder: str = ""

    @property
    def total_bytes(self) -> int:
        """Bytes in a container, framing included (header excluded)."""
        n = sum(stream_cost(b) for b in self.text_payload_bytes.values())
        return n + (stream_cost(len(self.mask_payload)) if self.mask_payload is not None else 0)

    def summary(self, width: int, height: int) -> dict[str, Any]:
        return {"profile": self.profile, "text_coder": self.text_coder, "texts": self.texts,
                "text_payload_bytes": self.text_payload_bytes,
                "mask_payload_bytes": len(self.mask_payload) if self.mask_payload is not None else 0,
                "objects": self.objects, "dropped": self.dropped, "notes": self.notes,
                "total_bytes": self.total_bytes, "total_bits": 8 * self.total_bytes,
                "bpp": 8 * self.total_bytes / (width * height)}


def analyze_image(image: np.ndarray, profile: str, config: SemanticConfig | None = None, *,
                  caption: str | None = None, caption_file: str | Path | None = None,
                  image_path: str | Path | None = None, decoded: np.ndarray | None = None,
                  limits: SedicLimits | None = None, mask_coder: MaskCoder | None = None) -> AnalysisReport:
    if profile not in PROFILES:
        raise ValueError(f"analyze supports {', '.join(PROFILES)}; got {profile!r}")
    config = config or SemanticConfig.from_env()
    mask_coder = mask_coder or MaskCoder()
    rep = AnalysisReport(profile, text_coder=best_text_coder().name)
    if profile in ("itc", "resulic"):
        cap = make_captioner(profile, config, text=caption, text_file=caption_file, image_path=image_path)
        text = cap.caption(image)
        if profile == "resulic" and decoded is not None:
            from .srr import semantic_residual

            srr = semantic_residual(image, decoded, make_captioner("resulic", config), config.text_chat(),
                                    caption_original=text)
            rep.notes.append(f"caption of the decoded base image: {srr.caption_decoded}")
            rep.texts["residual"] = srr.residual
        else:
            rep.texts["caption"] = text
    else:
        missing = config.missing_for_sedic()
        if missing:
            raise MissingComponentError("SEDIC object analysis is not configured; set " + "; ".join(missing))
        res = analyze_sedic(image, config.vision_chat(), config.grounder(), config.segmenter(), limits)
        rep.texts["overall"] = caption if caption is not None else res.overall
        for i, obj in enumerate(res.objects):
            rep.texts[f"object{i + 1}"] = obj.text
            rep.objects.append({"name": obj.name, "box": [round(v, 1) for v in obj.box], "score": round(obj.score, 3),
                                "mask_fraction": round(float(obj.mask.mean()), 4)})
        rep.dropped = res.dropped
        rep.masks = [o.mask for o in res.objects]
        if rep.masks:
            rep.mask_payload = mask_coder.encode(rep.masks)
    rep.text_payload_bytes = {k: len(encode_text_stream(v)) for k, v in rep.texts.items()}
    return rep
