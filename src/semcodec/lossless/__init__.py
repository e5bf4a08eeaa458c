"""Learned lossless coding with a lossy "visual prompt" (after Du et al., LLM-driven lossless image
compression with visual prompts), sized for a CPU.

::

    x ──► base codec (HEIF 4:4:4 q) ──► IMAGE stream ──► x_l ─┐
                                                             ▼
    r = x − x_l ──► ResidualLM (convs over x_l + pixel/residual embeddings ──► causal HF transformer
                    over each 8×8 patch ──► channel-conditional K=5 Gaussian mixtures)
                    patches in two checkerboard phases: ■ patches first, then □ patches, whose
                    border pixels see the decoded ■ neighbours (left, up, right, down)
                ──► per-image head adapter (fitted by the encoder, sent in the stream)
                ──► integer pmfs ──► constriction ANS ──► RESIDUAL stream

Modules: ``base_codec`` (pluggable lossy bases), ``model`` (ResidualLM, config, weights I/O),
``mixture`` (discretised GMM: training bits and exact integer pmfs), ``adapter`` (per-image head
adapter: ~450 int8 numbers the encoder fits to the image), ``search`` (per-image base choice by
real file size), ``coder`` (patch-parallel KV-cached coding), ``profile`` (profile ``lossless``, id 48). Trained by
``semcodec.train.lossless`` (``semcodec train lossless``), measured by ``semcodec.bench.lossless``
(``semcodec lossless-bench``): tools above this package.

Where this differs from the paper and why (a 2-core CPU instead of an A100 and a 7B LLM):
- a small GPT-2 (6 layers, width 64) trained on BSDS500 and ImageNet samples (2× box-downsampled,
  which removes most JPEG artefacts, plus full-resolution windows off the JPEG grid) instead of a
  LoRA-tuned LLM;
  a pretrained LLM + LoRA (peft) still plugs in through ``LosslessConfig.backbone_pretrained``/``lora``;
- 8×8 patches (64 sequential steps per image) instead of 16×16, one token per pixel with R, G, B
  predicted channel-conditionally by the head (3× fewer transformer steps than a token per subpixel);
- the lossy patch is added to the tokens position-wise instead of being a prefix prompt, and the
  causal neighbours' residuals are embedded into every token;
- patches are coded in parallel (so decoding takes seconds, not hours) in two checkerboard phases:
  the second half of the patches sees the first half's residuals across its borders (the paper
  codes patches independently);
- HEIF/HEVC via pillow-heif stands in for BPG (both HEVC intra);
- the pmf is computed exactly on a 64-value window around the mixture mean, the rest of the mass
  is spread evenly (speed; exactness is unaffected);
- the encoder searches the base per image (``search``): qualities 20–70 in steps of 10 (the model
  conditions on the nearest trained quality) are ranked by the estimated total (base bytes +
  teacher-forced residual bits on tiles), the best two get a whole-image teacher-forced estimate
  with their fitted adapter and only the better is coded (with that adapter); the IMAGE stream
  names codec and quality, so the decoder does not search;
- an addition, not in the paper: the encoder fits a small adapter of the mixture head to each image
  (on teacher-forced backbone states; the coding pass's states do not depend on it) and sends it; it corrects
  the small model's miscalibration on images unlike its training set. A low-rank form (a rank-4
  update of the head's first layer) is tried next and kept when it pays for its bytes.
"""
