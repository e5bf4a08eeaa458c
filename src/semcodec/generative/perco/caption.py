"""Where PerCo's caption comes from: the user's ``--caption``, else a captioning VLM, else nothing.

The paper captions every image with BLIP-2, generation capped at 32 tokens. Here any VLM configured
for :mod:`semcodec.semantic` (``SEMCODEC_VLM``: BLIP-2, LLaVA, …, or an OpenAI-compatible endpoint)
fills that slot with the same 32-token cap. With neither a caption nor a VLM the file carries no
TEXT stream and the decoder conditions on the learned null embedding ∅ — what the UNet saw in the
10% of training steps without a caption — rather than on the embedding of an empty prompt.
"""

from __future__ import annotations

from ...profiles import EncodeRequest
from ..itc.caption import vlm_configured

#: BLIP-2's caption length in PerCo (generated tokens)
CAPTION_TOKENS = 32


def perco_caption(request: EncodeRequest, captioner: str = "auto") -> str:
    """The caption to send ("" = none: the decoder uses ∅)."""
    if request.caption is not None:
        return request.caption.strip()
    if captioner == "none" or not vlm_configured():
        return ""
    from ...semantic.captioners import ChatCaptioner, perco_style
    from ...semantic.config import SemanticConfig

    chat = SemanticConfig.from_env(max_new_tokens=CAPTION_TOKENS).vision_chat()
    if hasattr(chat, "max_tokens"):  # an OpenAI-compatible endpoint takes the cap per request
        chat.max_tokens = CAPTION_TOKENS
    return ChatCaptioner(chat, perco_style()).caption(request.image).strip()
