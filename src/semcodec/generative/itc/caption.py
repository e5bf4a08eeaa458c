"""Where the caption of a generative profile comes from.

Order: the user's caption (``--caption``), else the captioner of :mod:`semcodec.semantic` when a
vision-language model is configured (``SEMCODEC_VLM``: LLaVA-NeXT etc., or ``SEMCODEC_CHAT_URL`` for an
OpenAI-compatible server) with ITC's ≤ 50-word prompt, else the empty string (the restoration then
runs unconditioned, still deterministic). ``captioner="none"`` never calls a model.
"""

from __future__ import annotations

from ...profiles import EncodeRequest


def vlm_configured() -> bool:
    try:
        from ...semantic.config import SemanticConfig
    except ImportError:
        return False
    cfg = SemanticConfig.from_env()
    return bool(cfg.vlm or cfg.chat_url)


def caption_for(request: EncodeRequest, captioner: str = "auto") -> str:
    if request.caption is not None:
        return request.caption
    if captioner == "none" or not vlm_configured():
        return ""
    from ...semantic.captioners import make_captioner

    return make_captioner("itc").caption(request.image)
