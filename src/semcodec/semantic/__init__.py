"""Semantic analysis (encoder side of the generative profiles).

    captioners/   image → text (HF VLM, OpenAI-compatible endpoint, user text/file, EXIF/XMP)
    srr.py        ResULIC semantic residual retrieval (only what the decoded base misses)
    objects/      SEDIC: VLM object names + details → Grounding DINO confirmation → SAM masks
    masks/        MASK stream: context-adaptive binary arithmetic coding (+ RLE baseline)
    config.py     every backend's configuration in one place (SEMCODEC_* env vars)
    analysis.py   what each profile would send and its bit cost (``semcodec analyze``)
"""
