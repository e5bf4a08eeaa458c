#!/usr/bin/env python3
"""Fuzz the ``.smc`` reader and every profile's decoder with mutated real files, in bounded workers.

Seeds are real files written by the pipeline: every classical profile (half with a caption), ``lic``,
``lossless`` (a 16×16 crop, once with each adapter form), ``resulic`` (TAEF2 latent codec, when its weights are found), one file
per available text coder carrying a caption in it, and ``itc``/``sedic`` on the tiny random Stable
Diffusion of ``generative/components/tiny.py`` (sedic with two object masks). Each variant is one of:

=============  =====================================================================================
bitflip        1-3 random bits flipped anywhere                                               (raw)
byte           1-4 random bytes replaced                                                      (raw)
truncate       cut at a random length (including 0 and inside the header)                     (raw)
boundary       cut at a header/stream boundary, or 1-2 bytes either side of one               (raw)
insert         1-8 random bytes inserted at a random position                                 (raw)
delete         1-8 bytes deleted at a random position                                         (raw)
length         a stream's length varint replaced (±small, random, huge, overlong)             (raw)
header         a header field (size, profile id, stream count, version) edited, header CRC fixed
payload        payload bytes mutated, the stream's CRC-32 fixed: the mutation reaches the codec
splice         a stream replaced by (or appended from) another seed's stream, CRCs intact
=============  =====================================================================================

Every variant is decoded (``describe`` then ``decode``) in a worker process with a memory limit
(the parent kills it when its RSS grows ``--max-mem-mb`` above the warmed-up worker; an address-space
limit further out is the backstop) and a CPU-time limit per variant (``--timeout``; a wall-clock
backstop kills a worker stuck inside one C call). Outcomes:

``identical``  decoded; image and texts equal the seed's
``explained``  decoded to something else, and that is what a valid file says: the variant passes every
               checksum of the format (a *repaired* kind), its parsed header and streams differ from
               the seed's only where the mutation wrote, and each difference in the output has a
               cause there (texts differ only if a TEXT stream changed; the image differs only if the
               header, a non-TEXT stream, or a TEXT stream of a profile that reads captions changed)
``error``      a SemcodecError (clean refusal)
failures       ``unexplained`` (any other different decode: silent corruption), ``crash`` (another
               exception, or the worker died), ``hang`` (over the CPU or wall limit), ``memory``
               (killed over the RSS limit, or MemoryError / a failed allocation)

    python scripts/fuzz_container.py -n 2000 --seed 7            # classical seeds only (fast)
    nice -n 19 python scripts/fuzz_container.py --all --minutes 40 -n 1000000   # the long campaign

Each variant is decoded with a per-file decode-work budget (``--work-budget``, default half the CPU
limit in units of ~1 ms), so a decoder that charges its work honestly refuses an expensive file
before the CPU limit: a ``hang`` means a decoder's charge is missing or too low. Long campaigns run in
chunks (one ``--seed`` each, ``--json`` to save its counts) summed by ``--merge a.json b.json ...``.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import json
import os
import pickle
import resource
import select
import signal
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from semcodec.container.format import (
    FORMAT_VERSION,
    READ_VERSIONS,
    encode_header,
    encode_stream,
    parse_container,
)
from semcodec.entropy.varint import decode_uvarint, encode_uvarint

SEED_PROFILES = ("webp", "jpeg", "jxl", "j2k", "avif", "heif")
RAW = ("bitflip", "byte", "truncate", "boundary", "insert", "delete", "length")
REPAIRED = ("header", "payload", "splice")
MUTATIONS = RAW + REPAIRED
OK = ("identical", "explained", "error")
FAILURES = ("unexplained", "crash", "hang", "memory")
CAPTION = "a red circle on a striped background"
#: how often the parent samples a worker's RSS while it decodes
POLL_S = 0.02


@dataclass
class Seed:
    label: str  # profile, or text-<coder>
    data: bytes
    options: dict[str, Any] = field(default_factory=dict)


def seed_image(h: int = 48, w: int = 64) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([128 + 90 * np.sin(x / 7) * np.cos(y / 9), 2 * x + y, 200 * ((x - 30) ** 2 + (y - 20) ** 2 < 150)], -1)
    return np.clip(img, 0, 255).astype(np.uint8)


def _available(name: str) -> bool:
    from semcodec.profiles import profile_classes

    classes = profile_classes()
    return name in classes and not classes[name].availability()


def make_seeds(profiles: tuple[str, ...] = SEED_PROFILES) -> list[bytes]:
    """Classical seed files: each available profile at a low rate, half of them with a caption stream."""
    return [s.data for s in classical_seeds(profiles)]


def classical_seeds(profiles: tuple[str, ...] = SEED_PROFILES) -> list[Seed]:
    import semcodec

    img = seed_image()
    return [Seed(name, semcodec.compress(img, bpp=2.0, profile=name, caption=CAPTION if i % 2 == 0 else None))
            for i, name in enumerate(profiles) if _available(name)]


def text_seeds() -> list[Seed]:
    """A webp file plus one caption per available text coder (each coder's decoder gets fuzzed)."""
    import semcodec
    from semcodec.container import Container, Stream, StreamKind
    from semcodec.text import TEXT_CODERS, encode_text_stream, get_text_coder

    base = parse_container(semcodec.compress(seed_image(16, 16), bpp=8.0, profile="webp"), max_pixels=None)
    out = []
    for name, cls in sorted(TEXT_CODERS.load_all().items()):
        if cls.availability():
            continue
        try:
            payload = encode_text_stream(CAPTION, get_text_coder(name))
        except Exception:  # a coder that cannot code this caption (e.g. not in its index) is skipped
            continue
        streams = [*base.streams, Stream(StreamKind.TEXT, payload)]
        out.append(Seed(f"text-{name}", Container(16, 16, base.profile_id, base.config_hash, streams).to_bytes()))
    return out


def low_rank_lossless(img: np.ndarray) -> bytes:
    """A lossless file whose RESIDUAL stream carries the adapter's low-rank form (version 5).

    The encoder keeps that form only when it pays for its bytes, never on so small an image, so the
    choice is made for it here (the same way scripts/make_golden_lossless_v5.py does).
    """
    import semcodec
    import semcodec.lossless.coder as coder

    cost = coder.adapter_cost
    coder.adapter_cost = lambda model, *tokens: -float(tokens[-1].rank)
    try:
        return semcodec.compress(img, profile="lossless", quality=30)
    finally:
        coder.adapter_cost = cost


def learned_seeds(workdir: Path) -> list[Seed]:
    """lic, lossless (16×16 crop), resulic (TAEF2), itc and sedic (tiny random SD + masks), if they run here."""
    import semcodec

    seeds = []
    img = seed_image()
    if _available("lic"):
        seeds.append(Seed("lic", semcodec.compress(img, quality=0.3, profile="lic", caption=CAPTION)))
    if _available("lossless"):
        seeds.append(Seed("lossless", semcodec.compress(img[:16, :16], profile="lossless")))
        seeds.append(Seed("lossless-v5", low_rank_lossless(img[:16, :16])))
    if _available("resulic"):
        seeds.append(Seed("resulic", semcodec.compress(seed_image(32, 32), bpp=2.0, profile="resulic")))
    try:
        from semcodec.generative.components.tiny import build_tiny_sd
    except ImportError:
        return seeds
    sd = workdir / "tiny_sd"
    if not sd.exists():
        build_tiny_sd(sd)
    opts = {"model": str(sd), "controlnet": str(sd / "controlnet"), "base_profile": "webp"}
    small = seed_image(32, 32)
    seeds.append(Seed("itc", semcodec.compress(small, bpp=3.0, profile="itc", caption=CAPTION, steps=2, seed=7,
                                               **opts), opts))
    from PIL import Image

    objects = []
    for name, box in (("circle", (8, 24, 2, 14)), ("stripe", (4, 16, 18, 30))):
        m = np.zeros((32, 32), np.uint8)
        m[box[0]:box[1], box[2]:box[3]] = 255
        Image.fromarray(m).save(workdir / f"{name}.png")
        objects.append({"name": name, "details": f"a {name}", "mask": f"{name}.png"})
    (workdir / "sem.json").write_text(json.dumps({"overall": CAPTION, "objects": objects}))
    seeds.append(Seed("sedic", semcodec.compress(small, bpp=4.0, profile="sedic", semantics=str(workdir / "sem.json"),
                                                 steps=2, seed=11, mask_factor=4, **opts), opts))
    return seeds


# -- mutations -------------------------------------------------------------------------------------

def _streams(data: bytes) -> tuple[int, list[tuple[int, int, int]]]:
    """(header length, [(length-varint offset, varint length, payload offset)]) of a valid file."""
    c = parse_container(data, max_pixels=None)
    header = pos = len(c.header_bytes())
    out = []
    for _ in range(len(c.streams)):
        length, p = decode_uvarint(data, pos + 1)
        out.append((pos + 1, p - pos - 1, p))
        pos = p + length + 4
    return header, out


def _frames(data: bytes) -> tuple[int, list[tuple[int, int]]]:
    """(header length, [(start, end)] of each framed stream: kind byte .. CRC) of a valid file."""
    header, streams = _streams(data)
    out = []
    for off, _, poff in streams:
        plen, _ = decode_uvarint(data, off)
        out.append((off - 1, poff + plen + 4))
    return header, out


def _header(width: int, height: int, pid: int, chash: bytes, nstreams: int, version: int = FORMAT_VERSION) -> bytes:
    """A header with a valid checksum; an unknown ``version`` is written with the current layout."""
    head = bytearray(encode_header(width, height, pid, chash, nstreams, version if version in READ_VERSIONS
                                   else FORMAT_VERSION))
    head[2] = version
    return bytes(head)


def mutate(data: bytes, kind: str, rng: np.random.Generator, donors: list[bytes] | None = None) -> bytes:
    b = bytearray(data)
    n = len(b)
    if kind == "bitflip":
        for _ in range(rng.integers(1, 4)):
            i = int(rng.integers(n))
            b[i] ^= 1 << int(rng.integers(8))
    elif kind == "byte":
        for _ in range(rng.integers(1, 5)):
            b[int(rng.integers(n))] = int(rng.integers(256))
    elif kind == "truncate":
        return bytes(b[: int(rng.integers(n))])
    elif kind == "boundary":
        header, frames = _frames(data)
        cuts = [header] + [s for s, _ in frames[1:]] + [frames[-1][1] - 4] if frames else [header]
        cut = int(rng.choice(cuts)) + int(rng.integers(-2, 3))
        return bytes(b[: max(0, min(cut, n - 1))])
    elif kind == "insert":
        i = int(rng.integers(n + 1))
        b[i:i] = rng.integers(0, 256, int(rng.integers(1, 9)), dtype=np.uint8).tobytes()
    elif kind == "delete":
        i = int(rng.integers(n))
        del b[i : i + int(rng.integers(1, 9))]
    elif kind == "length":
        _, streams = _streams(data)
        off, vlen, _ = streams[int(rng.integers(len(streams)))]
        old, _ = decode_uvarint(data, off)
        choice = int(rng.integers(5))
        if choice == 0:
            new = encode_uvarint(max(0, old + int(rng.choice([-3, -2, -1, 1, 2, 3]))))
        elif choice == 1:
            new = encode_uvarint(int(rng.integers(0, 1 << 20)))
        elif choice == 2:
            new = encode_uvarint(int(rng.integers(1 << 28, 1 << 34)))
        elif choice == 3:
            new = bytes([0x80 | (old & 0x7F)]) + bytes([0x80] * int(rng.integers(0, 5))) + b"\x00"
        else:
            new = b"\xff" * int(rng.integers(1, 8))
        b[off : off + vlen] = new
    elif kind == "header":
        c = parse_container(data, max_pixels=None)
        header_len, _ = _streams(data)
        fields = [c.width, c.height, c.profile_id, len(c.streams)]
        j = int(rng.integers(4))
        fields[j] = int(rng.choice([0, 1, fields[j] + 1, max(0, fields[j] - 1), int(rng.integers(0, 1 << 16)),
                                    (1 << 34) - 1, 65, 10**6]))
        version = c.version if rng.random() < 0.9 else int(rng.integers(256))
        return _header(fields[0], fields[1], fields[2], c.config_hash, fields[3], version) + bytes(b[header_len:])
    elif kind == "payload":
        _, streams = _streams(data)
        off, _, poff = streams[int(rng.integers(len(streams)))]
        plen, _ = decode_uvarint(data, off)
        if plen == 0:
            return bytes(b)
        payload = bytearray(b[poff : poff + plen])
        op = int(rng.integers(3))
        if op == 0:
            for _ in range(rng.integers(1, 5)):
                i = int(rng.integers(plen))
                payload[i] ^= 1 << int(rng.integers(8))
        elif op == 1:
            for _ in range(rng.integers(1, 9)):
                payload[int(rng.integers(plen))] = int(rng.integers(256))
        else:
            i = int(rng.integers(plen))
            payload[i : i + int(rng.integers(1, 33))] = rng.integers(0, 256, 32, dtype=np.uint8).tobytes()[
                : len(payload[i : i + 32])
            ]
        return bytes(b[: off - 1]) + encode_stream(b[off - 1], bytes(payload), data[2]) + bytes(b[poff + plen + 4 :])
    elif kind == "splice":
        return _splice(data, rng, donors or [data])
    return bytes(b)


def _splice(data: bytes, rng: np.random.Generator, donors: list[bytes]) -> bytes:
    """Replace one framed stream by a donor's (same kind preferred), or append one (header count fixed)."""
    donor = donors[int(rng.integers(len(donors)))]
    header, frames = _frames(data)
    _, dframes = _frames(donor)
    s, e = frames[int(rng.integers(len(frames)))]
    same = [f for f in dframes if donor[f[0]] == data[s]]
    ds, de = (same or dframes)[int(rng.integers(len(same or dframes)))]
    piece = donor[ds:de]
    if donor[2] != data[2]:  # other container version: re-frame with this file's stream CRC rule
        plen, p = decode_uvarint(donor, ds + 1)
        piece = encode_stream(donor[ds], donor[p : p + plen], data[2])
    if rng.random() < 0.8 or len(frames) >= 64:
        return data[:s] + piece + data[e:]
    c = parse_container(data, max_pixels=None)
    head = _header(c.width, c.height, c.profile_id, c.config_hash, len(frames) + 1, c.version)
    return head + data[header:] + piece


def variants(seeds: list[Seed], count: int, seed: int) -> Iterator[tuple[int, str, bytes]]:
    """(seed index, kind, variant): a random seed, kinds cycling, donors for splices from every seed."""
    rng = np.random.default_rng(seed)
    donors = [s.data for s in seeds]
    for i in range(count):
        k = int(rng.integers(len(seeds)))
        kind = MUTATIONS[i % len(MUTATIONS)]
        yield k, kind, mutate(seeds[k].data, kind, rng, donors)


# -- the worker ------------------------------------------------------------------------------------

def _digest(a: Any) -> str:
    return hashlib.sha256(a if isinstance(a, bytes) else pickle.dumps(a)).hexdigest()[:24]


def decode_once(data: bytes, options: dict[str, Any], work_budget: float | None = None) -> dict[str, Any]:
    """describe + decode: {"status": "ok", image/texts digests, shape} or the error class; never raises."""
    import semcodec
    from semcodec.errors import SemcodecError

    try:
        semcodec.describe(data)
        d = semcodec.pipeline.decode(data, work_budget=work_budget, **options)
        return {"status": "ok", "image": _digest(d.image.tobytes()), "shape": d.image.shape, "texts": _digest(d.texts)}
    except SemcodecError as e:
        return {"status": "error", "error": type(e).__name__}
    except _CpuLimit:
        return {"status": "hang", "error": "CPU limit"}
    except MemoryError as e:
        return {"status": "memory", "error": f"MemoryError {e}"[:300]}
    except RuntimeError as e:
        if "allocate" in str(e) or "memory" in str(e).lower():
            return {"status": "memory", "error": f"{type(e).__name__}: {e}"[:300]}
        return {"status": "crash", "error": f"{type(e).__name__}: {e}"[:300]}
    except Exception as e:  # the thing we hunt for
        return {"status": "crash", "error": f"{type(e).__name__}: {e}"[:300]}


class _CpuLimit(BaseException):
    """Raised by the SIGPROF timer: not an Exception, so no decoder's except clause swallows it."""


def _on_cpu_limit(signum: int, frame: Any) -> None:
    raise _CpuLimit


def _send(fd: int, obj: Any) -> None:
    blob = pickle.dumps(obj)
    os.write(fd, struct.pack("<I", len(blob)) + blob)


def _read_exact(fd: int, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = os.read(fd, n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return buf


def _recv(fd: int) -> Any:
    (n,) = struct.unpack("<I", _read_exact(fd, 4))
    return pickle.loads(_read_exact(fd, n))


def _peak_rss_mb() -> float:
    """This process's RSS high-water mark (VmHWM). Not ``ru_maxrss``: Linux carries that across
    fork + exec, so a worker started by a big parent (a long pytest run) would report the parent's peak."""
    with open("/proc/self/status") as f:
        return next(int(t.split()[1]) for t in f if t.startswith("VmHWM:")) / 1024


def _vm_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


def worker_main() -> None:
    """Protocol on fds 0/1 (stdout moved to stderr): setup, then one variant per request."""
    out = os.dup(1)
    os.dup2(2, 1)
    setup = _recv(0)
    for k, v in setup.get("env", {}).items():
        os.environ[k] = v
    refs = [decode_once(d, o) for d, o in setup["seeds"]]  # warm-up: models load before the limit
    # The parent kills the worker when its RSS grows by mem_mb (an allocation failing inside oneDNN
    # segfaults instead of raising, so the address-space limit is only a backstop, further out).
    limit = _vm_bytes() + (4 * setup["mem_mb"] + 4096) * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    signal.signal(signal.SIGPROF, _on_cpu_limit)
    _send(out, refs)
    while True:
        try:
            index, data = _recv(0)
        except EOFError:
            return
        t0 = time.process_time()
        signal.setitimer(signal.ITIMER_PROF, setup["timeout"])
        try:
            res = decode_once(data, setup["seeds"][index][1], setup.get("work_budget"))
        except _CpuLimit:
            res = {"status": "hang", "error": "CPU limit"}
        finally:
            signal.setitimer(signal.ITIMER_PROF, 0)
        res["cpu"] = time.process_time() - t0
        res["rss_mb"] = _peak_rss_mb()
        _send(out, res)


class Worker:
    """One decoding subprocess; restarted after it dies or is killed for a hang."""

    def __init__(self, seeds: list[Seed], timeout: float, mem_mb: int, wall: float,
                 work_budget: float | None = None) -> None:
        self.seeds, self.timeout, self.mem_mb, self.wall = seeds, timeout, mem_mb, wall
        self.work_budget = work_budget
        self.proc: subprocess.Popen | None = None
        self.refs: list[dict] = []
        self.peak_rss_mb = 0.0
        self.restarts = -1
        self.base_rss_mb = 0.0

    def _start(self) -> None:
        # one compute thread: on a loaded machine a second OpenMP thread spin-waits and its CPU time counts
        # against the per-variant CPU limit (ITIMER_PROF), which showed up as rare false "hangs"
        env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--worker"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
        self.restarts += 1
        _send(self.proc.stdin.fileno(), {"seeds": [(s.data, s.options) for s in self.seeds],
                                         "timeout": self.timeout, "mem_mb": self.mem_mb,
                                         "work_budget": self.work_budget})
        self.base_rss_mb = 0.0
        self.refs = self._read(wall=1800)
        self.base_rss_mb = self._rss_mb()

    def _rss_mb(self) -> float:
        try:
            with open(f"/proc/{self.proc.pid}/status") as f:
                line = next(t for t in f if t.startswith("VmRSS:"))
            return int(line.split()[1]) / 1024
        except (OSError, StopIteration):
            return 0.0

    def _read(self, wall: float) -> Any:
        """The worker's next answer; kills it over the wall time (TimeoutError) or the RSS limit (MemoryError)."""
        fd = self.proc.stdout.fileno()
        end = time.monotonic() + wall
        while True:
            ready, _, _ = select.select([fd], [], [], POLL_S)
            if ready:
                return _recv(fd)
            rss = self._rss_mb()
            self.peak_rss_mb = max(self.peak_rss_mb, rss)
            if self.base_rss_mb and rss > self.base_rss_mb + self.mem_mb:
                raise MemoryError(f"worker RSS {rss:.0f} MB > {self.base_rss_mb:.0f} + {self.mem_mb} MB")
            if time.monotonic() > end:
                raise TimeoutError

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def check(self, index: int, data: bytes) -> dict[str, Any]:
        if self.proc is None:
            self._start()
        try:
            _send(self.proc.stdin.fileno(), (index, data))
            res = self._read(self.wall)
        except TimeoutError:
            self.stop()
            return {"status": "hang", "error": f"no answer in {self.wall:.0f} s wall"}
        except MemoryError as e:
            self.stop()
            return {"status": "memory", "error": str(e)}
        except (EOFError, BrokenPipeError, OSError):
            code = self.proc.wait()
            self.proc = None
            return {"status": "crash", "error": f"worker died (exit {code})"}
        self.peak_rss_mb = max(self.peak_rss_mb, res.get("rss_mb", 0.0))
        return res


# -- classification --------------------------------------------------------------------------------

def _uses_caption(seed: Seed) -> bool:
    return seed.label in ("itc", "sedic", "resulic")


def explain(original: bytes, variant: bytes, ref: dict, res: dict, seed: Seed) -> bool:
    """True if a different decode of a checksum-valid variant is caused by what the variant changed."""
    try:
        a, b = parse_container(original, max_pixels=None), parse_container(variant, max_pixels=None)
    except Exception:
        return False
    head_changed = (a.width, a.height, a.profile_id, a.version) != (b.width, b.height, b.profile_id, b.version)
    pa, pb = [(s.kind, s.payload) for s in a.streams], [(s.kind, s.payload) for s in b.streams]
    changed = [s for x, y in zip(pa, pb, strict=False) if x != y for s in (x, y)] + pb[len(pa):] + pa[len(pb):]
    text_changed = any(k.name == "TEXT" for k, _ in changed)
    other_changed = any(k.name != "TEXT" for k, _ in changed)
    if not (head_changed or changed):
        return False  # same container, different output: nondeterminism
    if res["texts"] != ref["texts"] and not text_changed:
        return False
    if res["image"] != ref["image"]:
        return head_changed or other_changed or (text_changed and _uses_caption(seed))
    return True


def classify(kind: str, seed: Seed, ref: dict, variant: bytes, res: dict) -> str:
    status = res["status"]
    if status != "ok":
        return status
    if (res["image"], res["texts"]) == (ref.get("image"), ref.get("texts")):
        return "identical"
    if kind in REPAIRED and explain(seed.data, variant, ref, res, seed):
        return "explained"
    return "unexplained"


def run(count: int, seed: int, timeout: float, log: Callable[[str], None] = print, *, seeds: list[Seed] | None = None,
        mem_mb: int = 2048, minutes: float | None = None, wall: float | None = None,
        work_budget: float | None = None) -> dict:
    seeds = seeds if seeds is not None else classical_seeds()
    stats: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    failures: list[tuple[str, str, str, bytes]] = []
    budget = work_budget if work_budget is not None else 500.0 * timeout
    worker = Worker(seeds, timeout, mem_mb, wall or max(60.0, 20 * timeout), budget)
    worst, done, t0 = 0.0, 0, time.time()
    try:
        worker.check(0, seeds[0].data)
        bad_refs = [s.label for s, r in zip(seeds, worker.refs, strict=True) if r["status"] != "ok"]
        if bad_refs:
            raise RuntimeError(f"seed files do not decode in the worker: {bad_refs}")
        for k, kind, data in variants(seeds, count, seed):
            if minutes is not None and time.time() - t0 > 60 * minutes:
                break
            res = worker.check(k, data)
            outcome = classify(kind, seeds[k], worker.refs[k], data, res)
            worst = max(worst, res.get("cpu", 0.0))
            stats[seeds[k].label][outcome] += 1
            stats[f"kind:{kind}"][outcome] += 1
            if outcome == "error":
                stats[f"error:{seeds[k].label}"][res["error"]] += 1
            done += 1
            if outcome in FAILURES:
                failures.append((seeds[k].label, kind, f"{outcome}: {res.get('error', '')}", data))
                log(f"FAIL [{seeds[k].label}/{kind}] {outcome}: {res.get('error', '')}")
    finally:
        worker.stop()
    return {"stats": stats, "failures": failures, "worst_s": worst, "seeds": len(seeds), "count": done,
            "peak_rss_mb": worker.peak_rss_mb, "restarts": worker.restarts, "seconds": time.time() - t0}


def merge(results: list[dict]) -> dict:
    """Sum the counts of several runs (chunks with different ``--seed``); times add, worst/peak take the max."""
    stats: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for r in results:
        for k, c in r["stats"].items():
            stats[k].update(c)
    return {"stats": stats, "failures": [f for r in results for f in r["failures"]],
            "worst_s": max(r["worst_s"] for r in results), "seeds": max(r["seeds"] for r in results),
            "count": sum(r["count"] for r in results), "peak_rss_mb": max(r["peak_rss_mb"] for r in results),
            "restarts": sum(r["restarts"] for r in results), "seconds": sum(r["seconds"] for r in results)}


def to_json(res: dict, **extra: Any) -> str:
    """The counts of a run (failing variants as labels only; ``--save-failures`` keeps their bytes)."""
    return json.dumps({**{k: v for k, v in res.items() if k != "failures"}, **extra,
                       "stats": {k: dict(c) for k, c in res["stats"].items()},
                       "failures": [[label, kind, problem, b""] for label, kind, problem, _ in res["failures"]]},
                      default=str, indent=1)


def from_json(text: str) -> dict:
    res = json.loads(text)
    res["stats"] = {k: collections.Counter(c) for k, c in res["stats"].items()}
    return res


def report(res: dict) -> str:
    lines = [f"{res['count']} variants from {res['seeds']} seed files in {res['seconds']:.0f} s; slowest"
             f" {res['worst_s'] * 1000:.0f} ms CPU; worker peak RSS {res['peak_rss_mb']:.0f} MB;"
             f" worker restarts {res['restarts']}", "",
             "| seed | " + " | ".join((*OK, *FAILURES)) + " | total |", "|---" * (len(OK) + len(FAILURES) + 2) + "|"]
    stats = res["stats"]
    total: collections.Counter = collections.Counter()
    for label in sorted(k for k in stats if ":" not in k) + sorted(k for k in stats if k.startswith("kind:")):
        c = stats[label]
        if not label.startswith("kind:"):
            total.update(c)
        lines.append(f"| {label} | " + " | ".join(str(c[o]) for o in (*OK, *FAILURES)) + f" | {sum(c.values())} |")
    lines.append("| **all** | " + " | ".join(str(total[o]) for o in (*OK, *FAILURES)) + f" | {sum(total.values())} |")
    errs = collections.Counter()
    for k, c in stats.items():
        if k.startswith("error:"):
            errs.update(c)
    lines += ["", "errors: " + ", ".join(f"{k} {v}" for k, v in errs.most_common()),
              f"{len(res['failures'])} failures"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", "--count", type=int, default=12000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--all", action="store_true", help="every profile that runs here, not only the classical ones")
    ap.add_argument("--minutes", type=float, default=None, help="stop after this many minutes")
    ap.add_argument("--timeout", type=float, default=10.0, help="max CPU seconds per variant")
    ap.add_argument("--max-mem-mb", type=int, default=2048, help="address space a worker may add after warm-up")
    ap.add_argument("--wall", type=float, default=None,
                    help="wall-clock backstop per variant in seconds (default 20 × --timeout; raise it on a loaded"
                         " machine at nice 19, where CPU time trails wall time)")
    ap.add_argument("--work-budget", type=float, default=None,
                    help="decode-work budget per variant in units of ~1 ms (default: 500 × --timeout)")
    ap.add_argument("--save-failures", default=None, help="folder to write failing variants to")
    ap.add_argument("--json", default=None, help="also write this run's counts to this JSON file")
    ap.add_argument("--merge", nargs="+", default=None, metavar="JSON",
                    help="print the summed report of earlier runs' --json files (runs nothing)")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        worker_main()
        return 0
    if args.merge:
        runs = [from_json(Path(f).read_text()) for f in args.merge]
        for f, r in zip(args.merge, runs, strict=True):
            print(f"{f}: seed {r.get('seed')}, {r['count']} variants in {r['seconds']:.0f} s")
        res = merge(runs)
        print(report(res))
        return 1 if res["failures"] else 0
    with tempfile.TemporaryDirectory() as tmp:
        seeds = classical_seeds() + (text_seeds() + learned_seeds(Path(tmp)) if args.all else [])
        print("seeds: " + ", ".join(f"{s.label} ({len(s.data)} B)" for s in seeds), flush=True)
        res = run(args.count, args.seed, args.timeout, seeds=seeds, mem_mb=args.max_mem_mb, minutes=args.minutes,
                  log=lambda m: print(m, flush=True), work_budget=args.work_budget, wall=args.wall)
    print(report(res))
    if args.json:
        Path(args.json).write_text(to_json(res, seed=args.seed, argv=sys.argv[1:]))
    if args.save_failures and res["failures"]:
        folder = Path(args.save_failures)
        folder.mkdir(parents=True, exist_ok=True)
        for i, (label, kind, problem, data) in enumerate(res["failures"]):
            (folder / f"{i:04d}_{label}_{kind}.smc").write_bytes(data)
            (folder / f"{i:04d}_{label}_{kind}.txt").write_text(problem)
    return 1 if res["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
