"""Generative profiles at true SD 2.1 size on the CPU: time, peak memory and shape checks.

``python -m semcodec.bench.real_size`` builds random-weight SD 2.1-base models from the real configs
(:mod:`semcodec.generative.components.real_size`, no weights needed), then runs each generative
profile's encode + decode (2 steps, 128×128 px) in its own process, so every row's peak memory is that
profile's alone::

    build (child) ─► folder: unet vae text_encoder tokenizer scheduler controlnet(latent) perco/ codec/
    per profile (child): get_profile ─► compress ─► decode with the same profile ─► JSON row

Each row: encode/decode seconds, peak RSS, parameter count of the models the profile loaded and their
memory in fp32 and fp16/bf16, and the checks that matter at real size (attention maps at the real head
counts for SEDIC's ORAG, PerCo's extra UNet inputs, ResULIC's codec on 4-channel latents).

``sedic-objects`` decodes with the sequential ORAG (SEDIC's Algorithm 1: stage 0, one stage per object,
a final stage), its object stages at the benchmark's step count, so the row stays short; its checks
report the cross-attention layers the guidance reads (``up-mid``: SD 2.1's ``up_blocks.2``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

PROFILES = ("itc", "sedic", "sedic-objects", "perco", "resulic", "resulic-adapter")
CAPTION = "a red house beside a green tree under a blue sky"


def sample_image(size: int = 128) -> np.ndarray:
    """A smooth synthetic photo-like image (deterministic)."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    img = np.stack([128 + 90 * np.sin(x / 17) * np.cos(y / 23), 100 + 0.8 * x - 0.3 * y,
                    60 + 120 * (((x - 70) ** 2 + (y - 40) ** 2) < 600)], -1)
    img += np.random.default_rng(0).normal(0, 4, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def profile_options(name: str, folder: Path, steps: int, work: Path) -> tuple[str, dict[str, Any]]:
    """(profile id, options) of one benchmark row, pointing at the random real-size folder."""
    if name in ("itc", "sedic", "sedic-objects"):
        opts: dict[str, Any] = {"model": str(folder), "controlnet": str(folder / "controlnet"), "steps": steps,
                                "base_profile": "jpeg"}
        if name == "sedic-objects":
            from PIL import Image

            size = 128
            mask = np.zeros((size, size), np.uint8)
            mask[size // 4 : 3 * size // 4, size // 8 : size // 2] = 255
            Image.fromarray(mask).save(work / "house.png")
            (work / "sem.json").write_text(json.dumps({"overall": CAPTION, "objects": [
                {"name": "house", "details": "red walls", "mask": "house.png"}]}))
            opts["semantics"] = str(work / "sem.json")
            opts["object_steps"] = steps  # the sequential ORAG's object stages, as short as the others
        return ("sedic" if name.startswith("sedic") else name), opts
    if name == "perco":
        return "perco", {"model": str(folder), "unet": str(folder / "perco" / "unet"),
                         "head": str(folder / "perco" / "perco"), "steps": steps}
    if name in ("resulic", "resulic-adapter"):
        opts = {"model": str(folder), "codec": str(folder / "codec"), "steps": steps, "guidance": 2.0,
                "adapter": "off"}
        if name == "resulic-adapter":  # the latent ControlNet folder has the adapter's class and shape
            opts["adapter"] = str(folder / "controlnet")
        return "resulic", opts
    raise ValueError(f"unknown benchmark profile {name!r}; one of {', '.join(PROFILES)}")


def _models(prof: Any) -> dict[str, Any]:
    """The torch modules a profile instance has loaded (by slot name)."""
    bundle = getattr(prof, "components", None) or getattr(prof, "bundle", None)
    out = {k: v for k, v in getattr(bundle, "_cache", {}).items() if hasattr(v, "parameters")}
    for attr in ("_head", "_codec"):
        if getattr(prof, attr, None) is not None:
            out[attr.strip("_")] = getattr(prof, attr)
    return out


def _checks(name: str, prof: Any, image: np.ndarray) -> dict[str, Any]:
    """Shape facts that only real sizes test: attention head counts, PerCo inputs, ResULIC latents."""
    import torch

    if name.startswith("sedic"):
        from ..generative.sedic.attention import AttentionStore, captured_layers, install_capture

        bundle = prof.components
        cond = bundle.encode_prompt([CAPTION])
        control = bundle.control_image(image)
        z = torch.zeros(1, int(bundle.unet.config.in_channels), *control.shape[-2:])
        place = prof.sampler.attn_place
        store = AttentionStore()
        with install_capture(bundle.unet, store, place), torch.no_grad():
            store.recording = True
            bundle.eps(z, torch.tensor(500), cond, control)
        maps = sorted({(int(m.shape[0]), int(m.shape[1]), int(m.shape[2])) for m in store.maps})
        blocks = sorted({".".join(n.split(".")[:2]) for n in captured_layers(bundle.unet, place)})
        return {"control": tuple(control.shape), "orag": prof.sampler.mode, "attn_place": place,
                "attn_blocks": blocks, "attention_maps": maps,
                "aggregate": tuple(store.aggregate(*control.shape[-2:]).shape)}
    if name == "perco":
        from ..generative.latent.vq import index_bits

        z = prof.space.encode(image)
        grid = prof.head.grid(*z.shape[-2:])
        return {"unet_in": int(prof.bundle.unet.conv_in.in_channels), "unet_out": int(prof.bundle.unet.config.out_channels),
                "code_dim": prof.head.D, "rate": prof.head.rate.name, "V": prof.head.V, "grid": list(grid),
                "latent_bytes": (index_bits(grid[0] * grid[1], prof.head.V) + 7) // 8}
    if name.startswith("resulic"):
        z = prof.space.encode(image)
        payload = prof.codec.compress_latent(z, 4)
        out: dict[str, Any] = {"latent": tuple(z.shape), "codec_channels": int(prof.codec.config["latent_channels"]),
                               "decoded": tuple(prof.codec.decompress_latent(payload, *z.shape[-2:]).shape)}
        if name == "resulic-adapter":  # one adapter pass on z_c: a residual per UNet skip + the middle block
            b = prof.bundle
            z = b.place(z)
            down, mid = b.controlnet(z, torch.tensor(500), encoder_hidden_states=b.encode_prompt([CAPTION]),
                                     controlnet_cond=z, return_dict=False)
            out.update(residuals=len(down), mid=tuple(mid.shape), adapter_in=int(b.controlnet.conv_in.in_channels))
        return out
    return {"control": tuple(prof.components.control_image(image).shape)}


def run_profile(name: str, folder: str | Path, size: int = 128, steps: int = 2) -> dict[str, Any]:
    """Encode + decode one profile on the real-size folder; returns the benchmark row (in this process)."""
    from ..container import StreamKind
    from ..pipeline import compress, open_container
    from ..profiles import profile_class

    folder = Path(folder)
    image = sample_image(size)
    with tempfile.TemporaryDirectory() as tmp:
        pid, opts = profile_options(name, folder, steps, Path(tmp))
        t0 = time.perf_counter()
        prof = profile_class(pid)(**opts)  # not get_profile: its per-process cache would keep every model set
        data = compress(image, bpp=2.0, profile=prof, caption=CAPTION)
        t1 = time.perf_counter()
        container = open_container(data)
        if prof.fingerprint() != container.config_hash:
            raise AssertionError("fingerprint differs between encoder and decoder")
        from ..text import decode_text_stream

        texts = [decode_text_stream(s.payload) for s in container.streams_of(StreamKind.TEXT)]
        out = prof.decode(container.streams, container.width, container.height, texts=texts)
        t2 = time.perf_counter()
        import torch

        with torch.no_grad():
            checks = _checks(name, prof, image)
    params = {k: sum(p.numel() for p in m.parameters()) for k, m in _models(prof).items()}
    n = sum(params.values())
    return {
        "profile": name, "size": size, "steps": steps, "bytes": len(data), "shape": list(out.shape),
        "encode_s": round(t1 - t0, 2), "decode_s": round(t2 - t1, 2),
        "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
        "params_m": {k: round(v / 1e6, 1) for k, v in params.items()}, "params_total_m": round(n / 1e6, 1),
        "param_gb_fp32": round(4 * n / 2**30, 2), "param_gb_fp16": round(2 * n / 2**30, 2),
        "finite": bool(np.isfinite(out.astype(np.float32)).all()), "checks": checks,
    }


def _child(args: list[str], timeout: float) -> str:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-m", "semcodec.bench.real_size", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"real_size {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return done.stdout


def build_in_child(configs: Path, folder: Path, timeout: float = 1800) -> float:
    """Build the random folder in a child process (its memory goes away with it); returns seconds."""
    t = time.perf_counter()
    _child(["--build", str(folder), "--configs", str(configs)], timeout)
    return time.perf_counter() - t


def run_in_child(name: str, folder: Path, size: int, steps: int, timeout: float = 1800) -> dict[str, Any]:
    out = _child(["--run", name, "--folder", str(folder), "--size", str(size), "--steps", str(steps)], timeout)
    return json.loads(out.strip().splitlines()[-1])


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| profile | encode s | decode s | peak RSS GB | params M | fp32 GB | fp16/bf16 GB | checks |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['profile']} | {r['encode_s']} | {r['decode_s']} | {r['peak_rss_gb']} | {r['params_total_m']}"
                     f" | {r['param_gb_fp32']} | {r['param_gb_fp16']} | {json.dumps(r['checks'])} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    from ..generative.components.real_size import build_random_sd, sd21_configs_dir

    p = argparse.ArgumentParser(prog="python -m semcodec.bench.real_size", description=__doc__.splitlines()[0])
    p.add_argument("--profiles", default=",".join(PROFILES), help=f"comma list of {', '.join(PROFILES)}")
    p.add_argument("--configs", default=None, help="SD 2.1-base config folder (default: the shared configs)")
    p.add_argument("--folder", default=None, help="reuse (or keep) the random model folder here")
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--steps", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", action="store_true")
    p.add_argument("--build", default=None, help=argparse.SUPPRESS)
    p.add_argument("--run", default=None, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    import torch

    torch.set_num_threads(a.threads)
    configs = Path(a.configs) if a.configs else sd21_configs_dir()
    if a.build:
        build_random_sd(configs, a.build)
        return
    if a.run:
        print(json.dumps(run_profile(a.run, a.folder, a.size, a.steps)))
        return
    if configs is None:
        raise SystemExit("SD 2.1-base configs not found: pass --configs or set SEMCODEC_SD21_CONFIGS")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(a.folder) if a.folder else Path(tmp) / "sd21-random"
        build_s = None
        if not (folder / "unet").is_dir():
            build_s = round(build_in_child(configs, folder), 1)
        rows = [run_in_child(n, folder, a.size, a.steps) for n in a.profiles.split(",")]
    if a.json:
        print(json.dumps({"build_s": build_s, "rows": rows}, indent=2))
    else:
        print(f"random SD 2.1-base at true size, {a.size}x{a.size} px, {a.steps} steps, CPU, {a.threads} threads"
              + (f"; building the folder took {build_s} s" if build_s is not None else ""))
        print(table(rows))


if __name__ == "__main__":
    main()
