"""CLIP-based metrics through open_clip, from a local model (no hub access at run time).

    clip-i2i   cos(E_img(reference), E_img(decoded))                  semantic fidelity, ↑
    clip-score 100·max(cos(E_img(decoded), E_txt(caption)), 0)        text alignment (Hessel et al. 2021), ↑
    clip-iqa   softmax(100·cos(E_img(decoded), E_txt[“Good photo.”, “Bad photo.”]))[good]
               no-reference quality (Wang, Chan, Loy, AAAI 2023, antonym-prompt zero-shot variant), ↑

This is the project's one CLIP loader: the training losses (``semcodec.train.losses``) load their model
here too. The model is chosen by ``$SEMCODEC_CLIP_MODEL`` (or passed explicitly):
  * a folder (or ``local-dir:FOLDER``) in open_clip's hub layout: ``open_clip_config.json`` with
    ``model_cfg`` (+ ``preprocess_cfg``) and ``open_clip_model.safetensors``;
  * ``hf-hub:org/name``: works only when the files are already in the local Hugging Face cache;
  * an open_clip architecture name (``ViT-B-32``) together with ``$SEMCODEC_CLIP_CHECKPOINT=<file>``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from .base import Metric, check_pair, torch_threads

ENV_MODEL = "SEMCODEC_CLIP_MODEL"
ENV_CKPT = "SEMCODEC_CLIP_CHECKPOINT"
IQA_PROMPTS = ("Good photo.", "Bad photo.")


def clip_spec(model: str | os.PathLike | None = None) -> tuple[str, str | None] | str:
    """(open_clip model name, checkpoint or None) for ``model`` (default ``$SEMCODEC_CLIP_MODEL``), or the
    reason it is unusable."""
    name = str(model or os.environ.get(ENV_MODEL, "")).strip()
    hint = (f"set {ENV_MODEL} to an open_clip model folder (open_clip_config.json + open_clip_model.safetensors),"
            f" or to an architecture name such as ViT-B-32 with {ENV_CKPT}=<checkpoint file>")
    if not name:
        return f"no CLIP model configured: {hint}"
    if name.startswith("hf-hub:"):
        return name, None
    folder = Path(name.removeprefix("local-dir:"))
    if name.startswith("local-dir:") or folder.is_dir():
        if not (folder / "open_clip_config.json").is_file():
            return f"{folder} has no open_clip_config.json: {hint}"
        return f"local-dir:{folder}", None
    ckpt = os.environ.get(ENV_CKPT, "").strip()
    if not ckpt or not Path(ckpt).is_file():
        return f"{ENV_MODEL}={name} needs {ENV_CKPT} pointing at its checkpoint file ({ckpt or 'unset'})"
    return name, ckpt


class CLIPModel:
    """An open_clip model + preprocessing + tokenizer, on CPU in eval mode, weights frozen (gradients
    still flow to the inputs, which the training losses rely on)."""

    def __init__(self, name: str, checkpoint: str | None = None):
        import open_clip

        self.model, _, self.preprocess = open_clip.create_model_and_transforms(
            name, pretrained=checkpoint, device="cpu", require_pretrained=True)
        self.model.eval().requires_grad_(False)
        self.tokenizer = open_clip.get_tokenizer(name)

    @property
    def preprocess_cfg(self) -> dict[str, Any]:
        """open_clip's final preprocessing settings (``size``, ``mean``, ``std``, ...)."""
        return dict(getattr(self.model.visual, "preprocess_cfg", {}) or {})

    def image_embedding(self, image: np.ndarray) -> torch.Tensor:
        from PIL import Image

        x = self.preprocess(Image.fromarray(image))[None]
        with torch.no_grad(), torch_threads(1):
            return F.normalize(self.model.encode_image(x).float(), dim=-1)[0]

    def text_embedding(self, texts: list[str]) -> torch.Tensor:
        with torch.no_grad(), torch_threads(1):
            return F.normalize(self.model.encode_text(self.tokenizer(texts)).float(), dim=-1)


_MODELS: dict[tuple[str, str | None], CLIPModel] = {}


def load_clip(model: str | os.PathLike | None = None) -> CLIPModel:
    """The CLIP model ``model`` (see :func:`clip_spec`), loaded once per process."""
    spec = clip_spec(model)
    if isinstance(spec, str):
        raise FileNotFoundError(spec)
    if spec not in _MODELS:
        _MODELS[spec] = CLIPModel(*spec)
    return _MODELS[spec]


def save_clip(model: torch.nn.Module, model_cfg: dict[str, Any], folder: str | os.PathLike,
              preprocess_cfg: dict[str, Any] | None = None) -> None:
    """Write ``model`` as an open_clip local folder (the layout :func:`load_clip` reads)."""
    import json

    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "open_clip_model.safetensors"))
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": dict(model_cfg),
                                                               "preprocess_cfg": dict(preprocess_cfg or {})}))


class _CLIPMetric(Metric):
    higher_is_better: ClassVar[bool] = True

    @classmethod
    def availability(cls) -> str | None:
        import importlib.util

        if importlib.util.find_spec("open_clip") is None:
            return "CLIP metrics need open_clip_torch: pip install 'semcodec[generative]'"
        spec = clip_spec()
        return spec if isinstance(spec, str) else None


class CLIPI2I(_CLIPMetric):
    description: ClassVar[str] = "cosine similarity of CLIP image embeddings (reference vs decoded)"

    def compute(self, reference: np.ndarray, decoded: np.ndarray, **context: Any) -> float:
        check_pair(reference, decoded)
        m = load_clip()
        return float(m.image_embedding(reference) @ m.image_embedding(decoded))


class CLIPScore(_CLIPMetric):
    kind: ClassVar[str] = "text"
    description: ClassVar[str] = "100·max(cos(image, caption), 0) of the decoded image (needs a caption)"

    def compute(self, reference: np.ndarray, decoded: np.ndarray, **context: Any) -> float:
        caption = context.get("caption")
        if not caption:
            raise ValueError("clip-score needs a caption for the image")
        m = load_clip()
        cos = float(m.text_embedding([caption])[0] @ m.image_embedding(decoded))
        return 100.0 * max(cos, 0.0)


class CLIPIQA(_CLIPMetric):
    kind: ClassVar[str] = "no-reference"
    description: ClassVar[str] = "CLIP-IQA: P('Good photo.' vs 'Bad photo.') of the decoded image"

    def compute(self, reference: np.ndarray, decoded: np.ndarray, **context: Any) -> float:
        m = load_clip()
        logits = 100.0 * (m.text_embedding(list(IQA_PROMPTS)) @ m.image_embedding(decoded))
        return float(torch.softmax(logits, dim=0)[0])
