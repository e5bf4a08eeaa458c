"""The rows of ``semcodec profiles``, cached so the listing takes well under a second.

Listing a profile's options and availability imports its module, and the learned and generative
ones import torch, CompressAI or diffusers (10-40 s). The rows depend only on the installed code, the
installed packages, the environment and the weight folders, so they are stored once and reused while
a stat of all of those is unchanged:

- every file of the semcodec package (code and packaged weights): path, size, mtime;
- every ``sys.path`` folder's mtime (installing, upgrading or removing a package changes it);
- the environment variables profiles read (``SEMCODEC_*``, ``HF_*``, ``TRANSFORMERS_*``, ...), and
  for a variable naming a path, a stat of that tree; the shared weights folder and the Hugging Face
  cache (new snapshots), and the working directory (``../shared`` is found from it).

``semcodec profiles --refresh`` recomputes. A stale row can only mislead the listing: ``compress``
always checks the chosen profile itself.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

from ..paths import shared_weights_dir

ENV_PREFIXES = ("SEMCODEC_", "HF_", "HUGGINGFACE_", "TRANSFORMERS_", "DIFFUSERS_", "TORCH_", "CUDA_")
ENV_NAMES = ("HOME", "XDG_CACHE_HOME", "PATH")
#: variables naming folders no availability check looks into (the cache itself, runs, image data)
ENV_NOT_WALKED = ("SEMCODEC_CACHE", "SEMCODEC_RUNS", "SEMCODEC_DATA")
#: bump when the row layout changes
ROWS_VERSION = 1
#: cached listings kept (one per installation/environment state)
KEEP = 8


def compute_rows() -> list[dict[str, Any]]:
    """Import every profile and ask it (slow: the reference the cache stands for)."""
    from ..profiles import DEFAULT_PROFILE, profile_classes

    rows = []
    for name, cls in profile_classes().items():
        reason = cls.availability()
        rows.append({"name": name, "id": cls.profile_id, "available": reason is None,
                     "reason": reason, "description": cls.description, "default": name == DEFAULT_PROFILE,
                     "quality": cls.quality.as_dict(), "options": cls.Settings.schema()})
    return rows


def _tree(root: Path, depth: int, out: list[str]) -> None:
    """``path size mtime`` of ``root`` and everything below it, ``depth`` levels deep."""
    try:
        st = root.stat()
    except OSError:
        out.append(f"{root} -")
        return
    out.append(f"{root} {st.st_size} {st.st_mtime_ns}")
    if depth <= 0 or not root.is_dir():
        return
    try:
        children = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError:
        return
    for child in children:
        if child.name != "__pycache__":
            _tree(Path(child.path), depth - 1, out)


def state_key() -> str:
    """A hash of everything the rows depend on (see the module docstring)."""
    import semcodec

    from ..profiles.table import PROFILES

    parts: list[str] = [str(ROWS_VERSION), sys.executable, sys.version, os.getcwd()]
    parts += [f"{name} {entry.id} {entry.target}" for name, entry in PROFILES.items()]  # plugins, tests
    _tree(Path(semcodec.__file__).parent, 8, parts)
    cwd = os.getcwd()
    for entry in sys.path:
        if entry and entry != cwd:  # the working folder's mtime changes with every file written there
            _tree(Path(entry), 0, parts)
    env = sorted((k, v) for k, v in os.environ.items() if k.startswith(ENV_PREFIXES) or k in ENV_NAMES)
    for k, v in env:
        parts.append(f"{k}={v}")
        if k.startswith(ENV_PREFIXES) and k not in ENV_NOT_WALKED and os.sep in v:  # a weights or model folder
            _tree(Path(v), 3, parts)
    hf = Path(os.environ.get("HF_HOME") or Path.home() / ".cache/huggingface") / "hub"
    _tree(hf, 3, parts)
    shared = shared_weights_dir()
    if shared is not None:
        _tree(shared, 3, parts)
    return hashlib.sha256("\n".join(parts).encode("utf-8", "surrogateescape")).hexdigest()[:32]


def cache_dir() -> Path:
    """``$SEMCODEC_CACHE``, else ``$XDG_CACHE_HOME/semcodec`` (``~/.cache/semcodec``)."""
    if os.environ.get("SEMCODEC_CACHE"):
        return Path(os.environ["SEMCODEC_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "semcodec"


def profile_rows(refresh: bool = False) -> list[dict[str, Any]]:
    """The listing; from the cache when nothing it depends on has changed."""
    path = cache_dir() / f"profiles-{state_key()}.json"
    if not refresh:
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            pass
    rows = compute_rows()
    try:
        from ..image_io import atomic_write_bytes

        atomic_write_bytes(path, json.dumps(rows).encode("utf-8"))
        stale = sorted(path.parent.glob("profiles-*.json"), key=lambda f: f.stat().st_mtime)[:-KEEP]
        for old in stale:  # a few states (several environments) stay cached, old ones go
            old.unlink(missing_ok=True)
    except OSError:  # a read-only home: list without caching
        pass
    return rows
