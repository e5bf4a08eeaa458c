"""Load the parts of a latent diffusion model by HF hub id or local folder (``from_pretrained``).

Every loader takes the *source* (``"stabilityai/stable-diffusion-2-1-base"`` or a local folder such as ``path/to/sd21``) and a
subfolder (the diffusers pipeline layout: ``unet/ vae/ text_encoder/ tokenizer/ scheduler/``). A bare
``save_pretrained`` folder works too: when ``source/<subfolder>`` is absent but ``source`` itself holds
a config, the folder is used directly. A hub id is resolved to its snapshot in the local Hugging Face
cache (downloaded first only with ``$SEMCODEC_ALLOW_DOWNLOADS=1``); a missing model raises
:class:`MissingComponentError` saying what to set.

:func:`component_identity` fingerprints what was loaded so a profile can put it into
``Profile.config()`` from the files' content: a file decoded with different weights then fails the header
hash check instead of silently producing another image, and the same weights match however they are named.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
from pathlib import Path
from typing import Any

import torch

from ...errors import MissingComponentError

HASH_FULL_LIMIT = 64 << 20  # files up to 64 MiB are hashed whole
HASH_EDGE = 4 << 20  # bigger ones: size + first and last 4 MiB (a changed tensor changes its bytes' hash
#                      only if it lies there, but any re-export changes the safetensors header at the front)

_CONFIG_NAMES = ("config.json", "scheduler_config.json", "tokenizer_config.json", "tokenizer.json")

SCHEDULER_KINDS = {
    "ddim": "DDIMScheduler",
    "ddpm": "DDPMScheduler",
    "euler": "EulerDiscreteScheduler",
    "dpm": "DPMSolverMultistepScheduler",
    "pndm": "PNDMScheduler",
}


def _resolve(source: str | os.PathLike, subfolder: str | None, revision: str | None = None) -> tuple[str, str | None]:
    """``(local folder, None)`` to hand to ``from_pretrained``: a folder as given, a hub id as its snapshot
    in the local Hugging Face cache (:func:`hub_snapshot`), so what is loaded is what is fingerprinted."""
    src = Path(source).expanduser()
    if not src.is_dir():
        if str(source).startswith((".", "/", "~")) or os.sep in str(source) and str(source).count("/") > 1:
            raise MissingComponentError(f"model folder {source} does not exist")
        src = hub_snapshot(str(source), subfolder, revision)
    if subfolder and (src / subfolder).is_dir():
        return str(src / subfolder), None
    if any((src / n).is_file() for n in _CONFIG_NAMES) or any(src.glob("*.safetensors")):
        return str(src), None
    if subfolder:
        raise MissingComponentError(f"{source} has neither a {subfolder}/ folder nor a model config")
    raise MissingComponentError(f"{source} holds no model config (config.json)")


#: weight files of other precisions/variants: never downloaded, never fingerprinted
_VARIANTS = ("*.fp16.*", "*.non_ema.*", "*.ema.*", "*.bf16.*")
_CONFIG_SUFFIXES = (".json", ".txt", ".model")
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pth", ".ckpt")


def hub_snapshot(repo_id: str, subfolder: str | None, revision: str | None = None) -> Path:
    """The snapshot folder of ``repo_id`` in the local HF cache; downloaded first (config, tokenizer files
    and the safetensors weights of ``subfolder``, else its .bin weights) when
    ``$SEMCODEC_ALLOW_DOWNLOADS=1``. A missing snapshot is a :class:`MissingComponentError` naming the part."""
    from huggingface_hub import snapshot_download

    from ...paths import ALLOW_DOWNLOADS_ENV, downloads_allowed

    what = subfolder or "model"
    kw: dict[str, Any] = {"revision": revision, "ignore_patterns": list(_VARIANTS)}
    try:
        if not downloads_allowed():
            return Path(snapshot_download(repo_id, local_files_only=True, **kw))
        prefix = f"{subfolder}/" if subfolder else ""
        snap = Path(snapshot_download(repo_id, allow_patterns=[prefix + "*" + x for x in (*_CONFIG_SUFFIXES,
                                                                                         ".safetensors")], **kw))
        folder = snap / subfolder if subfolder and (snap / subfolder).is_dir() else snap
        if (folder / "config.json").is_file() and not any(folder.glob("*.safetensors")):
            snapshot_download(repo_id, allow_patterns=[prefix + "*.bin"], **kw)
        return snap
    except Exception as e:  # not cached, no network, unknown repo or revision
        hint = (f"downloads are off: run once with {ALLOW_DOWNLOADS_ENV}=1 to fill the Hugging Face cache"
                if not downloads_allowed() else "the hub could not be reached or has no such repository")
        raise MissingComponentError(
            f"the {what} of {repo_id}{'@' + revision if revision else ''} is not in the local Hugging Face cache"
            f" ({type(e).__name__}); {hint}, or point --set model=... at a local folder") from None


def _wrap(what: str, source: Any, err: Exception) -> MissingComponentError:
    return MissingComponentError(
        f"could not load the {what} from {source!s}: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}."
        " Point the profile at a diffusers model folder or hub id (e.g. --set model=/path/to/sd-2-1"
        " or SEMCODEC_SD_MODEL; ControlNet: --set controlnet=... or SEMCODEC_CONTROLNET)"
    )


def _prepare(model: Any) -> Any:
    model.eval()
    model.requires_grad_(False)
    return model


def _load_config(cls: Any, path: str, subfolder: str | None, revision: str | None) -> dict[str, Any]:
    kw: dict[str, Any] = {"subfolder": subfolder} if subfolder else {}
    if revision:
        kw["revision"] = revision
    return dict(cls.load_config(path, **kw))


def load_unet(source: str | os.PathLike, subfolder: str | None = "unet", *, revision: str | None = None,
              dtype: torch.dtype = torch.float32, cls: Any = None) -> Any:
    """A ``UNet2DConditionModel`` (or ``cls``, e.g. a subclass with extra input channels)."""
    from diffusers import UNet2DConditionModel

    path, sub = _resolve(source, subfolder, revision)
    try:
        model = (cls or UNet2DConditionModel).from_pretrained(path, subfolder=sub, revision=revision, torch_dtype=dtype)
    except (OSError, ValueError) as e:
        raise _wrap("UNet", source, e) from None
    return _prepare(model)


def load_controlnet(source: str | os.PathLike, subfolder: str | None = None, *, revision: str | None = None,
                    dtype: torch.dtype = torch.float32, kind: str | None = None) -> Any:
    """A pixel-hint ``ControlNetModel`` or a latent-condition :class:`.LatentControlNetModel` (DiffBIR's
    IRControlNet, see ``semcodec convert-diffbir``); ``kind`` ("latent"/"pixel") must match the folder,
    which decides by default."""
    from diffusers import ControlNetModel

    from .latent_control import LatentControlNetModel, control_kind_of

    path, sub = _resolve(source, subfolder, revision)
    try:
        found = control_kind_of(_load_config(ControlNetModel, path, sub, revision))
        if kind is not None and kind != found:
            raise MissingComponentError(f"the ControlNet at {source} takes a {found} condition, not control={kind}")
        cls = LatentControlNetModel if found == "latent" else ControlNetModel
        model = cls.from_pretrained(path, subfolder=sub, revision=revision, torch_dtype=dtype)
    except (OSError, ValueError) as e:
        raise _wrap("ControlNet", source, e) from None
    return _prepare(model)


def load_vae(source: str | os.PathLike, subfolder: str | None = "vae", *, revision: str | None = None,
             dtype: torch.dtype = torch.float32) -> Any:
    """``AutoencoderKL``, ``AutoencoderTiny`` or another diffusers ``Autoencoder*`` named by its config."""
    import diffusers

    path, sub = _resolve(source, subfolder, revision)
    try:
        config = _load_config(diffusers.AutoencoderKL, path, sub, revision)
        name = str(config.get("_class_name", "AutoencoderKL"))
        if not name.startswith("Autoencoder") or not hasattr(diffusers, name):
            raise ValueError(f"config names class {name!r}, not a diffusers autoencoder")
        model = getattr(diffusers, name).from_pretrained(path, subfolder=sub, revision=revision, torch_dtype=dtype)
    except (OSError, ValueError) as e:
        raise _wrap("VAE", source, e) from None
    return _prepare(model)


def load_text_encoder(source: str | os.PathLike, subfolder: str | None = "text_encoder", *,
                      revision: str | None = None, dtype: torch.dtype = torch.float32) -> Any:
    """The prompt encoder: ``CLIPTextModel`` for SD 1.x/2.x, any transformers ``AutoModel`` otherwise."""
    from transformers import AutoConfig, AutoModel, CLIPTextModel

    path, sub = _resolve(source, subfolder, revision)
    kw: dict[str, Any] = {"subfolder": sub or ""}
    if revision:
        kw["revision"] = revision
    try:
        config = AutoConfig.from_pretrained(path, **kw)
        cls = CLIPTextModel if config.model_type == "clip_text_model" else AutoModel
        model = cls.from_pretrained(path, dtype=dtype, **kw)
    except (OSError, ValueError) as e:
        raise _wrap("text encoder", source, e) from None
    return _prepare(model)


def load_tokenizer(source: str | os.PathLike, subfolder: str | None = "tokenizer", *,
                   revision: str | None = None) -> Any:
    """The tokenizer matching the text encoder (``CLIPTokenizer`` for SD)."""
    from transformers import AutoTokenizer

    path, sub = _resolve(source, subfolder, revision)
    kw: dict[str, Any] = {"subfolder": sub or ""}
    if revision:
        kw["revision"] = revision
    try:
        return AutoTokenizer.from_pretrained(path, **kw)
    except (OSError, ValueError) as e:
        raise _wrap("tokenizer", source, e) from None


def load_scheduler(source: str | os.PathLike, subfolder: str | None = "scheduler", *, revision: str | None = None,
                   kind: str | None = None) -> Any:
    """The noise scheduler from its saved config; ``kind`` ("ddim", "ddpm", ...) swaps the class, keeping
    the model's beta schedule and prediction type (how diffusers pipelines swap samplers)."""
    import diffusers

    path, sub = _resolve(source, subfolder, revision)
    try:
        config = _load_config(diffusers.DDIMScheduler, path, sub, revision)
    except (OSError, ValueError) as e:
        raise _wrap("scheduler", source, e) from None
    name = SCHEDULER_KINDS.get(kind, kind) if kind else str(config.get("_class_name", "DDIMScheduler"))
    cls = getattr(diffusers, name, None)
    if cls is None or not name.endswith("Scheduler"):
        raise MissingComponentError(f"unknown scheduler {name!r}; use one of {', '.join(SCHEDULER_KINDS)}")
    return cls.from_config(config)


# --------------------------------------------------------------------------- identity


_ID_CACHE: dict[tuple[str, str], str] = {}


def _hash_file(path: Path, h: Any) -> None:
    size = path.stat().st_size
    h.update(f"{path.name}:{size}:".encode())
    with path.open("rb") as f:
        if size <= HASH_FULL_LIMIT:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        else:
            h.update(f.read(HASH_EDGE))
            f.seek(size - HASH_EDGE)
            h.update(f.read(HASH_EDGE))


def identity_files(folder: Path) -> list[Path]:
    """What a fingerprint covers: config and tokenizer files, and the weights ``from_pretrained`` loads
    (the safetensors files when there are any, else .bin/.pth/.ckpt; other precisions/variants never),
    so a full local clone and a cache holding only the loaded files give the same fingerprint."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and not any(
        part.startswith(".") for part in p.relative_to(folder).parts))
    configs = [p for p in files if p.suffix in _CONFIG_SUFFIXES]
    weights = [p for p in files if p.suffix in _WEIGHT_SUFFIXES and not _is_variant(p)]
    safetensors = [p for p in weights if p.suffix == ".safetensors"]
    return sorted(configs + (safetensors or weights))


def _is_variant(path: Path) -> bool:
    return any(fnmatch.fnmatch(path.name, pat) for pat in _VARIANTS)


def component_identity(source: str | os.PathLike, subfolder: str | None = None, *,
                       revision: str | None = None) -> str:
    """Short stable fingerprint of a component's *content*: sha256 over :func:`identity_files` (names,
    sizes, contents; files over 64 MiB by size + first/last 4 MiB). A hub id is resolved to its snapshot
    files first, so a model named by hub id, by its cache folder or by a copy fingerprints the same."""
    key = (str(source), f"{subfolder}@{revision}")
    if key in _ID_CACHE:
        return _ID_CACHE[key]
    folder = Path(_resolve(source, subfolder, revision)[0])
    h = hashlib.sha256()
    for p in identity_files(folder):
        _hash_file(p, h)
    ident = "sha256:" + h.hexdigest()[:16]
    _ID_CACHE[key] = ident
    return ident
