"""``semcodec text-bench``: every text coder on a caption set, as in Murai et al. Table I.

For each coder: every text is encoded to a TEXT stream and decoded from it (round trip checked
exactly), and we report total bits (the TEXT stream = header byte with coder id + text check, then the
coder's payload: what the container stores, before stream framing), bits per character, saving vs raw
UTF-8 (stream bits vs 8 x UTF-8 bytes), the same saving without the header's 4-bit coder id ("coder
only": the coder's output plus its 4-bit text check), and mean encode / decode ms per text. The Witten-Bell 6-gram row is an ideal code length (no coder), trained on the same training
captions as the caption LM.

Sets: ``coco-val`` (all 25,014 COCO val2017 captions), ``long`` (101 detailed GPT-4V descriptions,
~250 words), ``long60`` (the same, cut to their first 60 words: LMM-style 40-60-word captions), or a
text file with one caption per line.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from ..paths import shared_data_dir
from ..text.base import (
    TEXT_CODERS,
    decode_text_stream,
    encode_text_stream,
    get_text_coder,
    text_coder_classes,
)


def load_set(name: str) -> list[str]:
    data = shared_data_dir()
    if name in ("coco-val", "long", "long60"):
        if data is None:
            raise SystemExit("shared data not found: set SEMCODEC_DATA")
        caps = data / "captions"
        if name == "coco-val":
            anns = json.loads((caps / "coco_captions_val2017.json").read_text())["annotations"]
            return [a["caption"] for a in anns]
        d = json.loads((caps / "long_descriptions_dev.json").read_text())
        texts = [v[0] for _, v in sorted(d.items())]
        return texts if name == "long" else [" ".join(t.split()[:60]) for t in texts]
    return [ln for ln in Path(name).read_text(encoding="utf-8").splitlines() if ln.strip()]


def bench_coder(name: str, texts: list[str]) -> dict:
    coder = get_text_coder(name)
    coder.decode(coder.encode("warm up the model and caches."))
    bits = payload = 0
    t_enc = t_dec = c_enc = c_dec = 0.0
    bad = 0
    for t in texts:
        a, ca = time.perf_counter(), time.process_time()
        p = encode_text_stream(t, coder)
        b, cb = time.perf_counter(), time.process_time()
        back = decode_text_stream(p)
        c, cc = time.perf_counter(), time.process_time()
        t_enc += b - a
        t_dec += c - b
        c_enc += cb - ca
        c_dec += cc - cb
        bits += 8 * len(p)
        payload += 8 * len(p) - 4  # without the header's 4-bit coder id (its 4-bit text check stays)
        bad += back != t
    n = len(texts)
    return {"coder": name, "bits": bits, "payload_bits": payload, "enc_ms": 1000 * t_enc / n, "dec_ms": 1000 * t_dec / n,
            "enc_cpu_ms": 1000 * c_enc / n, "dec_cpu_ms": 1000 * c_dec / n, "roundtrip_failures": bad}


def ngram_row(texts: list[str], order: int = 6) -> dict:
    from ..text.corpus import load_training_captions
    from ..text.ngram import WittenBellNgram

    data = shared_data_dir()
    train = [c for caps in load_training_captions(data).values() for c in caps]
    m = WittenBellNgram(order).fit(train)
    a = time.perf_counter()
    bits = sum(m.bits(t) for t in texts)
    ms = 1000 * (time.perf_counter() - a) / len(texts)
    return {"coder": f"char {order}-gram WB (ideal)", "bits": round(bits), "payload_bits": round(bits), "enc_ms": ms, "dec_ms": float("nan"),
            "enc_cpu_ms": float("nan"), "dec_cpu_ms": float("nan"), "roundtrip_failures": 0}


def run(args: argparse.Namespace) -> int:
    texts = load_set(args.set)
    if args.every > 1:
        texts = texts[:: args.every]  # evenly spaced subset, e.g. every 10th COCO caption
    if args.limit:
        texts = texts[: args.limit]
    raw_bits = 8 * sum(len(t.encode("utf-8")) for t in texts)
    chars = sum(len(t) for t in texts)
    names = args.coders.split(",") if args.coders else [
        n for n, c in sorted(text_coder_classes().items(), key=lambda kv: kv[1].coder_id) if c.availability() is None]
    rows = []
    for n in names:
        rows.append(bench_coder(n, texts))
        print(f"  done {n}", flush=True)
    if not args.no_ngram:
        rows.append(ngram_row(texts))
    sub = f" (every {args.every}th)" if args.every > 1 else ""
    print(f"\nset {args.set}{sub}: {len(texts)} texts, {chars} chars, {raw_bits} raw UTF-8 bits "
          f"(coders: {', '.join(TEXT_CODERS.names())})")
    hdr = (f"| {'coder':28s} | {'total bits':>10s} | {'bits/char':>9s} | {'saving vs raw':>13s} | "
           f"{'coder only':>10s} | {'enc ms wall/cpu':>15s} | {'dec ms wall/cpu':>15s} | round trip |")
    print(hdr)
    print("|" + "|".join("-" * (len(c)) for c in hdr.split("|")[1:-1]) + "|")
    for r in rows:
        enc = f"{r['enc_ms']:.2f}/{r['enc_cpu_ms']:.2f}"
        dec = f"{r['dec_ms']:.2f}/{r['dec_cpu_ms']:.2f}"
        ok = "ok" if not r["roundtrip_failures"] else f"{r['roundtrip_failures']} FAIL"
        print(f"| {r['coder']:28s} | {r['bits']:10d} | {r['bits'] / chars:9.3f} | {100 * (1 - r['bits'] / raw_bits):12.1f}% "
              f"| {100 * (1 - r['payload_bits'] / raw_bits):9.1f}% | {enc:>15s} | {dec:>15s} | {ok:10s} |")
    print("(bits = TEXT stream: 1 header byte (coder id + 4-bit text check) + coder payload; 'coder only' = "
          "saving without the 4-bit id; wall ms on a shared machine, cpu = process time)")
    if args.json:
        Path(args.json).write_text(json.dumps({"set": args.set, "n": len(texts), "chars": chars,
                                               "raw_bits": raw_bits, "rows": rows}, indent=1))
    return 1 if any(r["roundtrip_failures"] for r in rows) else 0


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--set", default="coco-val", help="coco-val | long | long60 | FILE (one caption per line)")
    p.add_argument("--coders", default=None, help="comma list (default: every available coder)")
    p.add_argument("--every", type=int, default=1, help="only every K-th text (evenly spaced subset)")
    p.add_argument("--limit", type=int, default=None, help="only the first N texts")
    p.add_argument("--no-ngram", action="store_true", help="skip the Witten-Bell 6-gram baseline row")
    p.add_argument("--json-out", dest="json", default=None, metavar="PATH", help="also write the rows as JSON here")
    p.add_argument("--json", dest="json", default=argparse.SUPPRESS, help=argparse.SUPPRESS)  # former spelling
