"""Where the caption of a generative profile comes from.

Order: the user's caption (``--caption``), else the configured captioner of :mod:`semcodec.semantic`
(an LMM such as LLaVA-NeXT, with ITC's ≤ 50-word prompt), else the empty string (the restoration then
runs unconditioned, still deterministic).
"""

from __future__ import annotations

from ...profiles import EncodeRequest

ITC_WORD_LIMIT = 50


def caption_for(request: EncodeRequest, captioner: str | None, word_limit: int = ITC_WORD_LIMIT) -> str:
    if request.caption is not None:
        return request.caption
    if not captioner:
        return ""
    from ...semantic.captioners import caption_image  # type: ignore[import-not-found]

    return caption_image(request.image, captioner, word_limit=word_limit)
