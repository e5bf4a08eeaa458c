"""A pretrained HF causal LM (tiny random Llama saved with save_pretrained) + peft LoRA as backbone."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file

from extras import needs
from lossless_tiny import small_image
from semcodec.lossless.coder import decode_residual, encode_residual
from semcodec.lossless.model import LosslessConfig, ResidualLM, load_model, save_model


def _tiny_llama(folder: Path) -> Path:
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, vocab_size=64, max_position_embeddings=64)
    LlamaForCausalLM(cfg).save_pretrained(folder / "llm")
    return folder / "llm"


@needs("peft")
def test_lora_backbone_trains_saves_and_codes_exactly(tmp_path: Path):
    llm = _tiny_llama(tmp_path)
    cfg = LosslessConfig(patch=4, conv_channels=8, conv_layers=1, qualities=[70], default_quality=70,
                         backbone_pretrained=str(llm),
                         lora={"r": 4, "lora_alpha": 8, "target_modules": ["q_proj", "v_proj"]})
    model = ResidualLM(cfg)
    frozen = {n: p.detach().clone() for n, p in model.backbone.named_parameters() if not p.requires_grad}
    assert frozen and any("lora_" in n for n, p in model.named_parameters() if p.requires_grad)
    # one optimisation step: LoRA and our embeddings/head move, the pretrained weights do not
    x = torch.from_numpy(small_image(16, 16)).permute(2, 0, 1)[None]
    xl = (x.int() + 3).clamp(0, 255).to(torch.uint8)
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    loss = model(x, xl, torch.tensor([0])).mean()
    loss.backward()
    opt.step()
    for n, p in model.backbone.named_parameters():
        if n in frozen:
            assert torch.equal(p, frozen[n]), n
    save_model(model, tmp_path / "w")
    keys = load_file(str(tmp_path / "w" / "model.safetensors")).keys()
    assert any("lora_" in k for k in keys)
    assert not any(k.startswith("backbone.") and "lora_" not in k for k in keys)  # no LLM copy
    loaded = load_model(tmp_path / "w")
    img = small_image(10, 14, seed=2)
    base = np.clip(img.astype(int) - 4, 0, 255).astype(np.uint8)
    payload = encode_residual(loaded, img, base, 70)
    assert payload == encode_residual(model.eval(), img, base, 70)  # reloaded weights == trained ones
    assert np.array_equal(decode_residual(load_model(tmp_path / "w"), base, 70, payload), img)
