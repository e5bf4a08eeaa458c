"""Tiny *random* Stable-Diffusion-shaped models of the real classes, for tests and smoke runs.

``build_tiny_sd(folder)`` writes a diffusers pipeline layout (``unet/ vae/ text_encoder/ tokenizer/
scheduler/`` and ``controlnet/``) with ``save_pretrained``, so tests load it through exactly the same
``from_pretrained`` code path as real SD 2.1 weights. The tokenizer is a real ``CLIPTokenizer`` over a
byte-level vocabulary (256 byte symbols, their end-of-word forms, start/end tokens; no merges), so any
text tokenises without a downloaded vocabulary. Nothing here is a stand-in: only the sizes are tiny.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import torch

MAX_TOKENS = 32


def _byte_level_vocab() -> dict[str, int]:
    from tokenizers.pre_tokenizers import ByteLevel

    alphabet = sorted(ByteLevel.alphabet())
    vocab: dict[str, int] = {}
    for c in alphabet:
        vocab[c] = len(vocab)
    for c in alphabet:
        vocab[c + "</w>"] = len(vocab)
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    return vocab


def build_tiny_sd(folder: str | Path, *, seed: int = 0, vae: str = "kl", latent_channels: int = 4,
                  controlnet: bool = True, cross_dim: int = 16, prediction_type: str = "epsilon") -> Path:
    """Write a tiny random SD pipeline (+ ControlNet) to ``folder``; returns the folder.

    ``prediction_type="v_prediction"`` gives a v model (as SD 2.1-768). Geometry: VAE factor 4 (3 blocks) and a 2-level UNet, so a 32×32 image is an 8×8 latent and image
    sides must be multiples of 8.
    """
    from diffusers import AutoencoderKL, AutoencoderTiny, ControlNetModel, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        sample_size=8, in_channels=latent_channels, out_channels=latent_channels, layers_per_block=1,
        block_out_channels=(8, 16), down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=cross_dim,
        attention_head_dim=2, norm_num_groups=4,
    )
    unet.save_pretrained(folder / "unet")
    if controlnet:
        cn = ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=(4, 8, 8))
        cn.save_pretrained(folder / "controlnet")
    if vae == "kl":
        ae = AutoencoderKL(
            in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 3,
            up_block_types=("UpDecoderBlock2D",) * 3, block_out_channels=(8, 8, 8),
            latent_channels=latent_channels, norm_num_groups=4, layers_per_block=1, sample_size=32,
        )
    elif vae == "tiny":
        ae = AutoencoderTiny(
            encoder_block_out_channels=(8, 8, 8), decoder_block_out_channels=(8, 8, 8),
            num_encoder_blocks=(1, 1, 1), num_decoder_blocks=(1, 1, 1), latent_channels=latent_channels,
        )
    else:
        raise ValueError(f"vae must be 'kl' or 'tiny', got {vae!r}")
    ae.save_pretrained(folder / "vae")
    vocab = _byte_level_vocab()
    bos, eos = vocab["<|startoftext|>"], vocab["<|endoftext|>"]
    text = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(vocab), hidden_size=cross_dim, intermediate_size=2 * cross_dim, num_hidden_layers=2,
        num_attention_heads=2, max_position_embeddings=MAX_TOKENS, projection_dim=cross_dim,
        bos_token_id=bos, eos_token_id=eos, pad_token_id=eos,
    ))
    text.save_pretrained(folder / "text_encoder")
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "vocab.json").write_text(json.dumps(vocab))
        (Path(tmp) / "merges.txt").write_text("#version: 0.2\n")
        tok = CLIPTokenizer(str(Path(tmp) / "vocab.json"), str(Path(tmp) / "merges.txt"),
                            model_max_length=MAX_TOKENS)
        tok.save_pretrained(folder / "tokenizer")
    DDIMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, clip_sample=False,
                  set_alpha_to_one=False, steps_offset=1, prediction_type=prediction_type,
                  ).save_pretrained(folder / "scheduler")
    return folder
