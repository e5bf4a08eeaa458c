"""How long the CLI takes before and around the coding work (issue 19 targets), wall and CPU.

    python scripts/bench_cli_startup.py [--repeats 5] [--image IMG]

Each command runs ``--repeats`` times in a fresh ``python -m semcodec`` process after one untimed warm-up
run (compiled caches and the ``profiles`` listing filled: a warm install); the table gives the median
wall and CPU seconds (user + system of the child). ``--caption`` rows are compared with the same command
without a caption.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

CAPTION = "a red barn in a green field under a blue sky with a few white clouds"


def timed(argv: list[str]) -> tuple[float, float, int]:
    """Wall and CPU seconds of one ``python -m semcodec ...`` run, and its exit code."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "semcodec", *argv], capture_output=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, proc.returncode


def measure(argv: list[str], repeats: int) -> tuple[float, float, int]:
    timed(argv)  # warm-up: numba caches, the profile listing, the OS page cache
    runs = [timed(argv) for _ in range(repeats)]
    return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs), runs[-1][2]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5, help="timed runs per command (median reported)")
    ap.add_argument("--image", help="input image (default: a 256x256 test image)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        img = Path(args.image) if args.image else d / "in.png"
        if not args.image:
            rng = np.random.default_rng(0)
            Image.fromarray(rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)).save(img)
        plain, capt = d / "plain.smc", d / "caption.smc"
        rows = [
            ("semcodec --help", ["--help"], "< 1 s"),
            ("semcodec profiles", ["profiles"], "≤ 2 s"),
            ("usage error (profile 'Avif')", ["compress", str(img), "--profile", "Avif"], "≤ 1 s"),
            ("usage error (--bpp 100)", ["compress", str(img), "--bpp", "100"], "≤ 1 s"),
            ("compress jpeg", ["compress", str(img), "-o", str(plain), "--profile", "jpeg", "-q"], ""),
            ("compress jpeg --caption", ["compress", str(img), "-o", str(capt), "--profile", "jpeg", "-q",
                                         "--caption", CAPTION], "≤ +1 s"),
            ("decompress jpeg", ["decompress", str(plain), "-o", str(d / "p.png"), "-q"], ""),
            ("decompress jpeg + caption", ["decompress", str(capt), "-o", str(d / "c.png"), "-q"], "≤ +1 s"),
        ]
        results = {}
        print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}, {args.repeats} runs each (median)\n")
        print("| command | wall s | CPU s | exit | target |")
        print("|---|---|---|---|---|")
        for name, argv, target in rows:
            wall, cpu, code = measure(argv, args.repeats)
            results[name] = (wall, cpu)
            extra = ""
            if "caption" in name:
                base = results["compress jpeg" if name.startswith("compress") else "decompress jpeg"]
                extra = f" (+{wall - base[0]:.2f} wall, +{cpu - base[1]:.2f} CPU)"
            print(f"| {name} | {wall:.2f} | {cpu:.2f} | {code} | {target}{extra} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
