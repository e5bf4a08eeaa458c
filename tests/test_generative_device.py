"""Device and dtype leaks, caught without a GPU.

On a GPU, a tensor a profile creates on the CPU (noise, masks, index maps, z_c) fails the first
time it meets a model output. The same mistake is visible on the CPU in the dtype: with every model
part loaded in float64, a tensor created with torch's default float32 that meets a model-side tensor
in one operation is exactly a tensor that would have stayed on the CPU. A torch function mode records
every such operation (0-dim tensors excepted, as CUDA accepts CPU scalars), and forward pre-hooks on
every model part check that everything reaching the networks is in the bundle's dtype and device.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from torch.overrides import TorchFunctionMode

from semcodec.generative.components import bundle as bundle_module
from semcodec.generative.components.bundle import DiffusionComponents
from semcodec.generative.components.tiny import build_tiny_sd
from semcodec.profiles import EncodeRequest

WANT = torch.float64
#: what ``Module.to(dtype)`` runs internally when it converts parameters (not a computation)
CONVERSIONS = {"_has_compatible_shallow_copy_type", "__set__", "__get__"}


def _tensors(obj: Any) -> list[torch.Tensor]:
    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, (list, tuple)):
        return [t for o in obj for t in _tensors(o)]
    if isinstance(obj, dict):
        return [t for o in obj.values() for t in _tensors(o)]
    return []


class LeakDetector(TorchFunctionMode):
    """Records every torch operation mixing a float64 tensor with another floating dtype (ndim > 0)."""

    def __init__(self) -> None:
        super().__init__()
        self.leaks: list[str] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        kwargs = kwargs or {}
        floats = [t for t in _tensors((args, kwargs)) if t.is_floating_point() and t.dim() > 0]
        dtypes = {t.dtype for t in floats}
        if WANT in dtypes and len(dtypes) > 1 and getattr(func, "__name__", "") not in CONVERSIONS:
            self.leaks.append(f"{getattr(func, '__name__', func)}: {[(tuple(t.shape), t.dtype) for t in floats]}")
        return func(*args, **kwargs)


@pytest.fixture
def float64_models(monkeypatch):
    """Every bundle loads its parts in float64; returns the parts whose inputs were checked."""
    checked: list[str] = []
    monkeypatch.setattr(bundle_module, "torch_dtype", lambda _d: WANT)
    original = DiffusionComponents._get

    def hook(part: str, bundle: DiffusionComponents):
        def check(_module, args, kwargs):
            for t in _tensors((args, kwargs)):
                assert t.device == torch.device(bundle.device), f"{part} got a tensor on {t.device}"
                assert not t.is_floating_point() or t.dtype == WANT, f"{part} got {t.dtype} {tuple(t.shape)}"
            checked.append(part)
        return check

    def _get(self: DiffusionComponents, part: str) -> Any:
        fresh = part not in self._cache
        obj = original(self, part)
        if fresh and isinstance(obj, torch.nn.Module):
            for module in (obj, *obj.children()):
                module.register_forward_pre_hook(hook(part, self), with_kwargs=True)
        return obj

    monkeypatch.setattr(DiffusionComponents, "_get", _get)
    return checked


@pytest.fixture(scope="module")
def tiny_sd(tmp_path_factory) -> Path:
    return build_tiny_sd(tmp_path_factory.mktemp("device_sd"))


def _image(h: int = 32, w: int = 32) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([120 + 70 * np.cos(x / 6), 80 + 4 * y, 50 + 3 * x], -1)
    return np.clip(img + np.random.default_rng(1).normal(0, 5, img.shape), 0, 255).astype(np.uint8)


def _roundtrip(prof: Any, caption: str | None = "a red barn") -> np.ndarray:
    detector = LeakDetector()
    with detector:
        streams = prof.encode(EncodeRequest(_image(), caption=caption))
        out = prof.decode(streams, 32, 32)
    assert not detector.leaks, "tensors left outside the models' dtype/device:\n" + "\n".join(detector.leaks[:10])
    assert out.shape == (32, 32, 3) and out.dtype == np.uint8
    return out


@pytest.mark.parametrize("mode", ["img2img", "controlnet"])
def test_itc_keeps_every_tensor_on_the_models_dtype(tiny_sd, float64_models, mode):
    from semcodec.generative.itc.profile import ItcProfile

    opts = {"controlnet": str(tiny_sd / "controlnet")} if mode == "controlnet" else {}
    _roundtrip(ItcProfile(model=str(tiny_sd), base_profile="webp", steps=2, mode=mode, **opts))
    assert {"unet", "vae", "text_encoder"} <= set(float64_models)
    assert mode == "img2img" or "controlnet" in float64_models


@pytest.mark.parametrize("orag", ["sequential", "parallel"])
def test_sedic_keeps_every_tensor_on_the_models_dtype(tiny_sd, float64_models, tmp_path, orag):
    from semcodec.generative.sedic.profile import SedicProfile

    mask = np.zeros((32, 32), bool)
    mask[4:20, 6:26] = True
    Image.fromarray(mask.astype(np.uint8) * 255).save(tmp_path / "cat.png")
    (tmp_path / "sem.json").write_text(json.dumps({"overall": "a cat on a mat", "objects": [
        {"name": "cat", "details": "a small ginger cat", "mask": "cat.png"}]}))
    prof = SedicProfile(model=str(tiny_sd), controlnet=str(tiny_sd / "controlnet"), base_profile="webp", steps=2,
                        t_prime=0, semantics=str(tmp_path / "sem.json"), mask_factor=4, orag=orag, object_steps=2)
    _roundtrip(prof)
    assert {"unet", "vae", "controlnet"} <= set(float64_models)


def test_perco_keeps_every_tensor_on_the_models_dtype(tiny_sd, float64_models, tmp_path):
    from semcodec.generative.components import load_unet
    from semcodec.generative.perco.head import PercoHead
    from semcodec.generative.perco.profile import PercoProfile
    from semcodec.generative.perco.unet import expand_unet_inputs

    head = PercoHead(latent_channels=4, rate="0.0508", width=8, blocks=1, code_dim=4, text_len=32, text_dim=16)
    head.save(tmp_path / "perco")
    expand_unet_inputs(load_unet(tiny_sd), head.D).save_pretrained(tmp_path / "unet")
    prof = PercoProfile(model=str(tiny_sd), unet=str(tmp_path / "unet"), head=str(tmp_path / "perco"), steps=2,
                        captioner="none")
    _roundtrip(prof)
    _roundtrip(prof, caption=None)  # no caption: the learned ∅ alone
    assert {"unet", "vae", "text_encoder"} <= set(float64_models)


@pytest.mark.parametrize("adapter", [False, True])
def test_resulic_keeps_every_tensor_on_the_models_dtype(tiny_sd, float64_models, tmp_path, adapter):
    from semcodec.generative.latent.codec import LatentHyperprior
    from semcodec.generative.resulic.denoiser import build_adapter
    from semcodec.generative.resulic.profile import ResulicProfile

    torch.manual_seed(0)
    LatentHyperprior(4, 16, 8).save(tmp_path / "codec")
    opts = {}
    if adapter:  # the visual adapter on z_c, loaded through the bundle in its dtype
        from semcodec.generative.components import load_unet

        build_adapter(load_unet(tiny_sd)).save_pretrained(tmp_path / "adapter")
        opts["adapter"] = str(tmp_path / "adapter")
    prof = ResulicProfile(model=str(tiny_sd), codec=str(tmp_path / "codec"), steps=2, guidance=2.0, **opts)
    _roundtrip(prof)
    assert {"unet", "vae", "text_encoder"} <= set(float64_models)
    assert adapter == ("controlnet" in float64_models)


def test_resulic_adapter_trainer_keeps_every_tensor_on_the_models_dtype(tiny_sd, float64_models, tmp_path):
    import random

    from semcodec.generative.latent.codec import LatentHyperprior
    from semcodec.train.resulic_cdm import CDMTrainer

    torch.manual_seed(0)
    codec = LatentHyperprior(4, 16, 8)
    codec.update(force=True)
    trainer = CDMTrainer(DiffusionComponents.from_sources(str(tiny_sd)), codec, random.Random(0))
    assert next(trainer.adapter.parameters()).dtype == WANT
    detector = LeakDetector()
    with detector:
        loss, _ = trainer.loss(trainer.batch(np.stack([_image(), _image()]), ["a red barn", ""]))
        loss.backward()
    assert not detector.leaks, "\n".join(detector.leaks[:10])
    assert {"unet", "vae", "text_encoder"} <= set(float64_models)
