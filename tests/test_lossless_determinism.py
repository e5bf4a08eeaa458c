"""Bit-exactness across processes and thread counts (encoder 2 threads vs a fresh 1-thread process)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import torch

from lossless_tiny import load_tiny, small_image, tiny_model_dir
from semcodec.lossless.coder import encode_residual

CHILD = textwrap.dedent("""
    import sys, numpy as np, torch
    torch.set_num_threads(int(sys.argv[2]))
    from semcodec.lossless.model import load_model
    from semcodec.lossless.coder import decode_residual, encode_residual
    d = np.load(sys.argv[1] + "/io.npz")
    m = load_model(sys.argv[1] + "/model")
    open(sys.argv[1] + "/child.bin", "wb").write(encode_residual(m, d["x"], d["xl"], 70))
    y = decode_residual(m, d["xl"], 70, bytes(d["payload"]))
    np.save(sys.argv[1] + "/decoded.npy", y)
""")


def test_fresh_process_and_thread_counts_bit_exact(tmp_path: Path):
    folder = tiny_model_dir(tmp_path)
    x = small_image(24, 20, seed=7)
    xl = np.clip(x.astype(int) + np.random.default_rng(1).integers(-6, 7, x.shape), 0, 255).astype(np.uint8)
    old = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        payload = encode_residual(load_tiny(folder), x, xl, 70)
    finally:
        torch.set_num_threads(old)
    np.savez(tmp_path / "io.npz", x=x, xl=xl, payload=np.frombuffer(payload, np.uint8))
    src = str(Path(__file__).resolve().parents[1] / "src")
    subprocess.run([sys.executable, "-c", CHILD, str(tmp_path), "1"], check=True, timeout=300,
                   env={**__import__("os").environ, "PYTHONPATH": src})
    assert (tmp_path / "child.bin").read_bytes() == payload  # same bytes from a 1-thread fresh process
    assert np.array_equal(np.load(tmp_path / "decoded.npy"), x)
