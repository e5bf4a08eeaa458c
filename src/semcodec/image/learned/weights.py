"""Loading shipped learned-codec weights (``src/semcodec/weights/lic*/``): safetensors + config.json.

The file holds the network *and* the entropy coder's quantised CDF tables, so the encoder and decoder
use byte-identical tables on every machine (they are never recomputed at load time).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch

from ...errors import MissingComponentError
from ...paths import PACKAGE_WEIGHTS
from .models import build_model

#: shipped weight sets, one per distortion the codec was optimised for (as CompressAI's zoo ships
#: ``mse`` and ``ms-ssim`` weights): profile name -> (folder in the package, environment override)
WEIGHT_SETS: dict[str, tuple[str, str]] = {
    "lic": ("lic", "SEMCODEC_LIC_WEIGHTS"),
    "lic-msssim": ("lic_msssim", "SEMCODEC_LIC_MSSSIM_WEIGHTS"),
}


def weights_folder(kind: str = "lic") -> Path:
    """The environment override of weight set ``kind`` if set (another trained ladder), else the shipped one."""
    sub, env_name = WEIGHT_SETS[kind]
    env = os.environ.get(env_name)
    return Path(env) if env else PACKAGE_WEIGHTS / sub


def weights_missing(folder: str | Path | None = None, kind: str = "lic") -> str | None:
    folder = Path(folder) if folder else weights_folder(kind)
    if not (folder / "model.safetensors").is_file() or not (folder / "config.json").is_file():
        return (f"learned-codec weights for {kind!r} not found in {folder} (model.safetensors + config.json);"
                f" reinstall semcodec, set ${WEIGHT_SETS[kind][1]}, or train them with"
                " `semcodec train lic --export DIR`")
    return None


@functools.lru_cache(maxsize=4)
def _load(folder: str) -> tuple[torch.nn.Module, dict[str, Any], str]:
    from safetensors.torch import load_file

    reason = weights_missing(folder)
    if reason:
        raise MissingComponentError(reason)
    path = Path(folder)
    cfg = json.loads((path / "config.json").read_text())
    model = build_model(cfg["model"], **cfg.get("model_cfg", {}))
    model.load_state_dict(load_file(str(path / "model.safetensors")))
    digest = hashlib.sha256((path / "model.safetensors").read_bytes()).hexdigest()[:16]
    return model.eval().requires_grad_(False), cfg, digest


def load_lic(folder: str | Path | None = None) -> tuple[torch.nn.Module, dict[str, Any], str]:
    """(model with CDF tables, config dict, short sha256 of the weights) — cached per folder."""
    return _load(str(Path(folder or weights_folder()).resolve()))


def save_lic(model: torch.nn.Module, cfg: dict[str, Any], folder: str | Path) -> None:
    """Write ``model.safetensors`` (CDF tables included: call ``model.update()`` first) + ``config.json``."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()}, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps(cfg, indent=2, default=list))
