#!/usr/bin/env python3
"""Fuzz the ``.smc`` reader: mutated and truncated real files must only ever raise SemcodecError.

Seeds are real files written by the pipeline (every classical profile, with and without a caption).
Each variant is one of:

=============  =====================================================================================
bitflip        1-3 random bits flipped anywhere
byte           1-4 random bytes replaced
truncate       cut at a random length (including 0 and inside the header)
insert         1-8 random bytes inserted at a random position
delete         1-8 bytes deleted at a random position
length         a stream's length varint replaced (±small, random, huge, overlong/non-canonical)
header         a header field (size, profile id, stream count) edited with the header CRC fixed up,
               so parsing goes past the checksum
payload        payload bytes mutated *with the CRC32 fixed up*, so the mutation reaches the codec's
               own decoder (the container checksum cannot help there)
=============  =====================================================================================

For each variant, ``semcodec.decode`` and ``semcodec.describe`` must either succeed or raise a
:class:`~semcodec.errors.SemcodecError` subclass, within ``--timeout`` CPU seconds. The script lowers
the address-space limit (``--max-mem-mb``) so a huge allocation shows up as MemoryError (a failure)
instead of swapping, and reports peak RSS.

    python scripts/fuzz_container.py                  # 12000 variants
    python scripts/fuzz_container.py -n 2000 --seed 7
"""

from __future__ import annotations

import argparse
import collections
import resource
import sys
import time
from collections.abc import Callable, Iterator

import numpy as np

import semcodec
from semcodec.container.format import (
    FORMAT_VERSION,
    READ_VERSIONS,
    encode_header,
    encode_stream,
    parse_container,
)
from semcodec.entropy.varint import decode_uvarint, encode_uvarint
from semcodec.errors import SemcodecError

SEED_PROFILES = ("webp", "jpeg", "jxl", "j2k", "avif", "heif")
MUTATIONS = ("bitflip", "byte", "truncate", "insert", "delete", "length", "header", "payload")


def seed_image(h: int = 48, w: int = 64) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([128 + 90 * np.sin(x / 7) * np.cos(y / 9), 2 * x + y, 200 * ((x - 30) ** 2 + (y - 20) ** 2 < 150)], -1)
    return np.clip(img, 0, 255).astype(np.uint8)


def make_seeds(profiles: tuple[str, ...] = SEED_PROFILES) -> list[bytes]:
    """Real files: each available profile at a low rate, half of them with a caption stream."""
    from semcodec.profiles import profile_classes

    img = seed_image()
    seeds = []
    classes = profile_classes()
    for i, name in enumerate(profiles):
        if name not in classes or classes[name].availability():
            continue
        caption = "a red circle on a striped background" if i % 2 == 0 else None
        seeds.append(semcodec.compress(img, bpp=2.0, profile=name, caption=caption))
    return seeds


def _streams(data: bytes) -> tuple[int, list[tuple[int, int, int]]]:
    """(header length, [(length-varint offset, varint length, payload offset)]) of a valid file."""
    c = parse_container(data, max_pixels=None)
    header = pos = len(c.header_bytes())
    n = len(c.streams)
    out = []
    for _ in range(n):
        length, p = decode_uvarint(data, pos + 1)
        out.append((pos + 1, p - pos - 1, p))
        pos = p + length + 4
    return header, out


def _header(width: int, height: int, pid: int, chash: bytes, nstreams: int, version: int = FORMAT_VERSION) -> bytes:
    """A header with a valid checksum; an unknown ``version`` is written with the current layout."""
    head = bytearray(encode_header(width, height, pid, chash, nstreams, version if version in READ_VERSIONS
                                   else FORMAT_VERSION))
    head[2] = version
    return bytes(head)


def mutate(data: bytes, kind: str, rng: np.random.Generator) -> bytes:
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
        c = semcodec.pipeline.open_container(data)
        header_len, _ = _streams(data)
        fields = [c.width, c.height, c.profile_id, len(c.streams)]
        j = int(rng.integers(4))
        fields[j] = int(rng.choice([0, 1, fields[j] + 1, max(0, fields[j] - 1), int(rng.integers(0, 1 << 16)),
                                    (1 << 34) - 1, 65, 10**6]))
        version = c.version if rng.random() < 0.9 else int(rng.integers(256))
        return _header(fields[0], fields[1], fields[2], c.config_hash, fields[3], version) + bytes(b[header_len:])
    elif kind == "payload":
        _, streams = _streams(data)
        _, _, poff = streams[int(rng.integers(len(streams)))]
        plen, _ = decode_uvarint(data, [s for s in streams if s[2] == poff][0][0])
        if plen == 0:
            return bytes(b)
        payload = bytearray(b[poff : poff + plen])
        version = data[2]
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
        kind_at = [s[0] - 1 for s in streams if s[2] == poff][0]
        return bytes(b[:kind_at]) + encode_stream(b[kind_at], bytes(payload), version) + bytes(b[poff + plen + 4 :])
    return bytes(b)


def variants(seeds: list[bytes], count: int, seed: int) -> Iterator[tuple[str, bytes]]:
    rng = np.random.default_rng(seed)
    for i in range(count):
        kind = MUTATIONS[i % len(MUTATIONS)]
        yield kind, mutate(seeds[int(rng.integers(len(seeds)))], kind, rng)


def check_one(data: bytes, timeout: float) -> tuple[str | None, str]:
    """``(problem, outcome)``: problem is ``None`` if the reader behaved (decoded, or raised a
    SemcodecError, in time); outcome names what ``decode`` did (``decoded`` or the error class).

    Time is the process's CPU time, not wall time: a reader that spins is caught either way, while a
    machine busy with other jobs (a CI runner, a training run) does not turn slow wall clocks into
    false alarms."""
    t0 = time.process_time()
    problem, outcome = None, "decoded"
    for fn in (semcodec.describe, semcodec.decode):
        try:
            fn(data)
        except SemcodecError as e:
            outcome = type(e).__name__
        except Exception as e:  # the thing we hunt for
            problem = f"{fn.__name__} raised {type(e).__name__}: {e}"
            break
    elapsed = time.process_time() - t0
    if problem is None and elapsed > timeout:
        problem = f"took {elapsed:.2f} s (> {timeout} s)"
    return problem, outcome


def run(count: int, seed: int, timeout: float, log: Callable[[str], None] = print) -> dict:
    seeds = make_seeds()
    stats: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    failures: list[tuple[str, str, bytes]] = []
    worst = 0.0
    for kind, data in variants(seeds, count, seed):
        t0 = time.process_time()
        problem, outcome = check_one(data, timeout)
        worst = max(worst, time.process_time() - t0)
        stats[kind]["bad" if problem else "ok"] += 1
        stats[kind][outcome] += 1
        if problem:
            failures.append((kind, problem, data))
            log(f"FAIL [{kind}] {problem}")
    return {"stats": stats, "failures": failures, "worst_s": worst, "seeds": len(seeds)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", "--count", type=int, default=12000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=5.0, help="max CPU seconds per variant")
    ap.add_argument("--max-mem-mb", type=int, default=6000, help="address-space limit for this process")
    args = ap.parse_args(argv)
    if args.max_mem_mb:
        limit = args.max_mem_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    t0 = time.time()
    res = run(args.count, args.seed, args.timeout)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{args.count} variants from {res['seeds']} seed files in {time.time() - t0:.0f} s;"
          f" slowest {res['worst_s'] * 1000:.0f} ms; peak RSS {peak:.0f} MB")
    for kind in MUTATIONS:
        c = res["stats"][kind]
        detail = ", ".join(f"{k} {v}" for k, v in sorted(c.items()) if k not in ("ok", "bad"))
        print(f"  {kind:<9} {c['ok']:>6} ok {c['bad']:>4} bad   ({detail})")
    print(f"{len(res['failures'])} failures")
    return 1 if res["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
