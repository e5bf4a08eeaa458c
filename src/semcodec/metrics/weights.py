"""Finding metric weights on disk. Nothing here downloads: a file is found or its absence is explained.

Search order for a file with one of the standard names:
  1. the metric's own environment variable (a file, or a folder holding one of the names),
  2. ``$SEMCODEC_METRIC_WEIGHTS`` (a folder),
  3. torch's hub cache (``$TORCH_HOME/hub/checkpoints``), where torchvision keeps its downloads,
  4. ``<shared weights>/metrics``.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import torch


def search_dirs() -> list[Path]:
    dirs = []
    if os.environ.get("SEMCODEC_METRIC_WEIGHTS"):
        dirs.append(Path(os.environ["SEMCODEC_METRIC_WEIGHTS"]))
    dirs.append(Path(torch.hub.get_dir()) / "checkpoints")
    from ..paths import shared_weights_dir

    shared = shared_weights_dir()
    if shared is not None:
        dirs.append(shared / "metrics")
    return dirs


def find_file(env_var: str | None, names: list[str]) -> Path | None:
    """First existing file among the candidates (see module docstring)."""
    if env_var and os.environ.get(env_var):
        p = Path(os.environ[env_var])
        if p.is_file():
            return p
        if p.is_dir():
            for n in names:
                if (p / n).is_file():
                    return p / n
        return None  # an explicit setting that points nowhere must not silently fall back
    for d in search_dirs():
        for n in names:
            if (d / n).is_file():
                return d / n
    return None


def package_file(package: str, relative: str) -> Path | None:
    """A data file shipped inside an installed package, located without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    for loc in spec.submodule_search_locations:
        p = Path(loc) / relative
        if p.is_file():
            return p
    return None


def missing(what: str, env_var: str | None, names: list[str], hint: str = "") -> str:
    where = f"set {env_var} to the file (or a folder holding it), or " if env_var else ""
    return (f"{what} not found: {where}put {' or '.join(names)} in $SEMCODEC_METRIC_WEIGHTS or"
            f" {Path(torch.hub.get_dir()) / 'checkpoints'}{'; ' + hint if hint else ''}")


def load_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Tensors only: safetensors, or a torch file read with ``weights_only=True`` (never arbitrary pickle)."""
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    sd = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("state_dict", "model"):
        if isinstance(sd, dict) and key in sd and isinstance(sd[key], dict):
            sd = sd[key]
    if not isinstance(sd, dict):
        raise ValueError(f"{path} does not hold a state dict")
    return sd
