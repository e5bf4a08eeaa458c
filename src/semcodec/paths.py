"""Where shared data and packaged weights live. Data is never bundled: it is found by path."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

PACKAGE_WEIGHTS = Path(__file__).parent / "weights"


def shared_data_dir() -> Path | None:
    """``$SEMCODEC_DATA`` if set, else ``../shared/data`` beside the repo or the working directory."""
    env = os.environ.get("SEMCODEC_DATA")
    if env:
        p = Path(env)
        return p if p.is_dir() else None
    candidates = [
        Path.cwd() / "../shared/data",
        Path(__file__).resolve().parents[3] / "shared/data",  # src/semcodec/paths.py -> repo/.. (checkout)
        Path(__file__).resolve().parents[2] / "../shared/data",
    ]
    for c in candidates:
        if c.is_dir():
            return c.resolve()
    return None


def portable_paths(value: Any) -> Any:
    """``value`` (nested dicts/lists/strings) with the shared data folder written ``$SEMCODEC_DATA``:
    training and calibration records shipped beside weights must not name a machine's paths."""
    if isinstance(value, dict):
        return {k: portable_paths(v) for k, v in value.items()}
    if isinstance(value, list):
        return [portable_paths(v) for v in value]
    if isinstance(value, str):
        d = shared_data_dir()
        roots = {str(d), str(d.resolve())} if d else set()
        for root in sorted(roots | {"../shared/data"}, key=len, reverse=True):
            if value.startswith(root):
                return "$SEMCODEC_DATA" + value[len(root):]
    return value


def shared_weights_dir() -> Path | None:
    """``$SEMCODEC_WEIGHTS`` if set, else ``../shared/weights`` (only exists inside this workplace)."""
    env = os.environ.get("SEMCODEC_WEIGHTS")
    if env:
        p = Path(env)
        return p if p.is_dir() else None
    data = shared_data_dir()
    if data is not None and (data.parent / "weights").is_dir():
        return (data.parent / "weights").resolve()
    return None


def runs_dir() -> Path:
    """Where training runs go by default: ``$SEMCODEC_RUNS`` if set, else ``./runs``."""
    return Path(os.environ.get("SEMCODEC_RUNS") or "runs")


#: set to 1 to let semcodec download model files from the Hugging Face hub (off by default)
ALLOW_DOWNLOADS_ENV = "SEMCODEC_ALLOW_DOWNLOADS"


def downloads_allowed() -> bool:
    """Whether a hub id may be downloaded: only with ``$SEMCODEC_ALLOW_DOWNLOADS=1``.

    Every command (compress, decompress, eval, compress-dir) runs offline by default, from local
    folders and the local Hugging Face cache, so that what a file was coded with never depends on
    the network; opt in once to fill the cache."""
    return os.environ.get(ALLOW_DOWNLOADS_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def hub_offline_by_default() -> None:
    """Set ``HF_HUB_OFFLINE=1`` (libraries reading it at import) unless downloads are allowed."""
    if not downloads_allowed():
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
