"""Random-weight Stable Diffusion 2.1 models at their true size, built from the real configs.

Weights are the expensive part of checking the generative profiles; shapes, head counts, channel
counts, dtypes and memory are not. ``build_random_sd(configs, folder)`` reads the published SD 2.1
configs (``unet/ vae/ text_encoder/ scheduler/`` + the CLIP tokenizer, no weight files), builds each
model at full size with random weights (``from_config``), and writes a diffusers pipeline folder the
profiles load through their normal ``from_pretrained`` code, exactly as they would load real weights.
Added beside it: a DiffBIR-style latent ControlNet (``controlnet/``), a PerCo UNet with the extra
index-map inputs and its head (``perco/``), and an untrained 4-channel latent codec (``codec/``).

Models are built and saved one at a time and freed before the next, so the peak memory of building
is one model (the fp32 SD 2.1 UNet, ~3.5 GB), not the set.
"""

from __future__ import annotations

import gc
import os
import shutil
from pathlib import Path

import torch

CONFIGS_ENV = "SEMCODEC_SD21_CONFIGS"
SD21 = "stable-diffusion-2-1-base"
#: PerCo rate point built at real size (32×32 grid per 64×64 latent, V = 8196: the non-power-of-two one)
PERCO_RATE = "0.0508"


def sd21_configs_dir() -> Path | None:
    """``$SEMCODEC_SD21_CONFIGS``, else ``configs/stable-diffusion-2-1-base`` beside the shared data."""
    from ...paths import shared_data_dir

    env = os.environ.get(CONFIGS_ENV)
    if env:
        return Path(env) if Path(env).is_dir() else None
    data = shared_data_dir()
    folder = data.parent / "configs" / SD21 if data is not None else None
    return folder if folder is not None and (folder / "unet" / "config.json").is_file() else None


def _save(model: torch.nn.Module, folder: Path, dtype: torch.dtype) -> None:
    model.to(dtype).save_pretrained(folder)
    del model
    gc.collect()


def build_random_sd(configs: str | Path, folder: str | Path, *, seed: int = 0, dtype: torch.dtype = torch.float16,
                    controlnet: bool = True, perco: bool = True, codec: bool = True) -> Path:
    """Write the random real-size model folder; weights stored in ``dtype`` (fp16 halves disk and time,
    the profiles load them in their own dtype like any fp16 checkpoint)."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    configs, folder = Path(configs), Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for part in ("tokenizer", "scheduler"):
        shutil.copytree(configs / part, folder / part, dirs_exist_ok=True)
    if (configs / "model_index.json").is_file():
        shutil.copy(configs / "model_index.json", folder / "model_index.json")
    torch.manual_seed(seed)
    _save(AutoencoderKL.from_config(AutoencoderKL.load_config(str(configs / "vae"))), folder / "vae", dtype)
    _save(CLIPTextModel(CLIPTextConfig.from_pretrained(str(configs / "text_encoder"))), folder / "text_encoder",
          dtype)
    unet_cfg = UNet2DConditionModel.load_config(str(configs / "unet"))
    unet = UNet2DConditionModel.from_config(unet_cfg)
    if controlnet:
        from .latent_control import LatentControlNetModel

        _save(LatentControlNetModel.from_unet_config(unet), folder / "controlnet", dtype)
    _save(unet, folder / "unet", dtype)
    del unet
    gc.collect()
    if perco:
        from ..perco.head import PercoHead
        from ..perco.rates import CODE_DIM

        in_ch = int(unet_cfg["in_channels"]) + CODE_DIM
        _save(UNet2DConditionModel.from_config(unet_cfg, in_channels=in_ch, out_channels=unet_cfg["in_channels"]),
              folder / "perco" / "unet", dtype)
        text = CLIPTextConfig.from_pretrained(str(configs / "text_encoder"))
        PercoHead(latent_channels=int(unet_cfg["in_channels"]), rate=PERCO_RATE, text_len=int(text.max_position_embeddings),
                  text_dim=int(text.hidden_size)).save(folder / "perco" / "perco")
    if codec:
        from ..latent.codec import LatentHyperprior

        LatentHyperprior(int(unet_cfg["in_channels"])).save(folder / "codec")
    return folder
