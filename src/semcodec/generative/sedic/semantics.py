"""SEDIC's transmitted semantics: an overall description and ≤ 3 objects (name, details, binary mask).

Where they come from at the encoder, first match wins:

1. ``semantics=<file.json>``: ``{"overall": str, "objects": [{"name": str, "details": str,
   "mask": "mask.png"}]}`` (mask paths relative to the JSON file; non-zero pixels are the object);
2. the SEDIC analysis of :mod:`semcodec.semantic` (VLM object descriptions, Grounding DINO + SAM masks)
   when ``SEMCODEC_VLM`` (or ``SEMCODEC_CHAT_URL``), ``SEMCODEC_GROUNDING_DINO`` and ``SEMCODEC_SAM``
   are set (``analysis="none"`` turns this off); a user caption replaces the VLM's overall text;
3. the user caption as the overall description, no objects.

All texts travel in ONE TEXT stream (one framing, one coder context)::

    overall description \\n name_1: details_1 \\n name_2: details_2 ...
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from ...errors import FormatError, SemcodecError
from ...semantic.objects.records import GroundedObject, SedicAnalysis

MAX_OBJECTS = 3


def _clean(text: str) -> str:
    return " ".join(str(text).split())


def pack_texts(sem: SedicAnalysis) -> str:
    lines = [_clean(sem.overall)]
    for o in sem.objects:
        lines.append(f"{_clean(o.name).replace(':', ' ')}: {_clean(o.details)}".rstrip())
    return "\n".join(lines)


def unpack_texts(text: str, n_objects: int) -> tuple[str, list[tuple[str, str]]]:
    lines = text.split("\n")
    if len(lines) != n_objects + 1:
        raise FormatError(f"sedic: expected {n_objects + 1} description lines, found {len(lines)}")
    objs = []
    for line in lines[1:]:
        name, _, details = line.partition(":")
        objs.append((name.strip(), details.strip()))
    return lines[0], objs


def load_semantics_file(path: str | Path, width: int, height: int) -> SedicAnalysis:
    """Read a semantics JSON (see module doc); masks are resized to the image size (nearest)."""
    path = Path(path)
    try:
        spec = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise SemcodecError(f"cannot read SEDIC semantics {path}: {e}") from None
    objects = []
    for o in spec.get("objects", [])[:MAX_OBJECTS]:
        mpath = path.parent / o["mask"]
        try:
            m = Image.open(mpath).convert("L")
        except OSError as e:
            raise SemcodecError(f"cannot read mask {mpath}: {e}") from None
        if m.size != (width, height):
            m = m.resize((width, height), Image.Resampling.NEAREST)
        objects.append(GroundedObject(str(o["name"]), str(o.get("details", "")), np.asarray(m) > 0))
    return SedicAnalysis(str(spec.get("overall", "")), objects)


def configured_analysis() -> bool:
    """True when a VLM (or chat endpoint), Grounding DINO and SAM are all configured (SemanticConfig env)."""
    try:
        from ...semantic.config import SemanticConfig
    except ImportError:
        return False
    cfg = SemanticConfig.from_env()
    return bool((cfg.vlm or cfg.chat_url) and cfg.grounding_dino and cfg.sam)


def analyse(image: np.ndarray, caption: str | None, semantics: str | None, auto: bool = True, *,
            overall_words: int = 30, detail_words: int = 12) -> SedicAnalysis:
    """The encoder's semantics for ``image`` (order in the module doc); the word limits bound the VLM's
    overall description (l_all) and each object's details (l_d)."""
    h, w = image.shape[:2]
    if semantics:
        sem = load_semantics_file(semantics, w, h)
        if not sem.overall and caption:
            sem.overall = caption
        return sem
    if auto and configured_analysis():
        from ...semantic.config import SemanticConfig
        from ...semantic.objects import SedicLimits, analyze_sedic

        cfg = SemanticConfig.from_env()
        got = analyze_sedic(image, cfg.vision_chat(), cfg.grounder(), cfg.segmenter(),
                            SedicLimits(MAX_OBJECTS, detail_words, overall_words))
        for o in got.objects:
            o.mask = np.asarray(o.mask, dtype=bool)
        return SedicAnalysis(caption if caption is not None else got.overall, got.objects[:MAX_OBJECTS], got.dropped)
    return SedicAnalysis(caption or "")
