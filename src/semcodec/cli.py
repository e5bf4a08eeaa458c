"""``semcodec`` command line (cwebp/avifenc conventions).

Core commands live here; each capability adds its own subcommands from its own module, listed in
``COMMAND_MODULES`` (each module exposes ``add_commands(subparsers)``), so the CLI grows without one
file knowing every feature.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path
from typing import Any

from .errors import SemcodecError

#: Modules contributing subcommands: each defines ``add_commands(subparsers) -> None``.
COMMAND_MODULES: list[str] = ["semcodec.train.cli", "semcodec.eval.cli", "semcodec.scale.cli", "semcodec.report.cli",
                              "semcodec.bench.cli", "semcodec.commands.lossless",
                              "semcodec.commands.diffbir"]


def parse_options(pairs: list[str] | None) -> dict[str, Any]:
    """``--set key=value`` profile options; values are parsed as JSON when possible (numbers, bools)."""
    out: dict[str, Any] = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise SemcodecError(f"--set expects key=value, got {pair!r}")
        key, raw = pair.split("=", 1)
        try:
            out[key.replace("-", "_")] = json.loads(raw)
        except json.JSONDecodeError:
            out[key.replace("-", "_")] = raw
    return out


def _cmd_compress(args: argparse.Namespace) -> int:
    from .image_io import atomic_write_bytes
    from .pipeline import compress, describe
    from .progress import shown

    caption = args.caption
    if args.caption_file:
        caption = Path(args.caption_file).read_text(encoding="utf-8").rstrip("\n")
    with shown(not args.quiet):  # long codecs (lossless) draw a bar on a terminal
        data = compress(
            args.input,
            bpp=args.bpp,
            quality=args.quality,
            profile=args.profile,
            caption=caption,
            max_pixels=args.max_pixels,
            **parse_options(args.set),
        )
    out = Path(args.output) if args.output else Path(args.input).with_suffix(".smc")
    atomic_write_bytes(out, data)
    if not args.quiet:
        d = describe(data, args.max_pixels)
        print(f"{out}: {d['file_bytes']} bytes, {d['bpp']:.5f} bpp ({d['width']}x{d['height']}, profile {d['profile']})")
    return 0


#: ``analyze`` flags that configure the semantic models profiles read from the environment
_ANALYZE_ENV = {"vlm": "SEMCODEC_VLM", "chat_url": "SEMCODEC_CHAT_URL", "chat_model": "SEMCODEC_CHAT_MODEL",
                "llm": "SEMCODEC_LLM", "grounding_dino": "SEMCODEC_GROUNDING_DINO", "sam": "SEMCODEC_SAM",
                "device": "SEMCODEC_DEVICE"}


def _cmd_analyze(args: argparse.Namespace) -> int:
    """What ``compress`` with the same arguments would write: every stream's kind and size (and texts)."""
    import os

    from .container import Container, Stream, StreamKind
    from .image_io import load_image
    from .pipeline import analyse
    from .profiles import get_profile
    from .text import decode_text_stream

    for flag, env in _ANALYZE_ENV.items():
        if getattr(args, flag):
            os.environ[env] = getattr(args, flag)
    caption = args.caption
    if args.caption_file:
        caption = Path(args.caption_file).read_text(encoding="utf-8").rstrip("\n")
    image = load_image(args.input, args.max_pixels)
    h, w = image.shape[:2]
    name = args.profile or "sedic"
    prof = get_profile(name, **parse_options(args.set))
    sent = analyse(image, bpp=args.bpp, quality=args.quality, profile=prof, caption=caption)
    header = len(Container(w, h, prof.profile_id, bytes(4),
                           [Stream(StreamKind[s.kind.upper()], s.payload) for s in sent]).header_bytes())
    rows = []
    for i, s in enumerate(sent):
        row = {"index": i, "kind": s.kind, "payload_bytes": s.payload_bytes, "bytes": s.bytes, "bpp": 8 * s.bytes / (w * h)}
        if s.kind == "text":
            row["text"] = decode_text_stream(s.payload)
        rows.append(row)
    total = header + sum(r["bytes"] for r in rows)
    summary = {"profile": name, "width": w, "height": h, "header_bytes": header, "streams": rows,
               "total_bytes": total, "total_bits": 8 * total, "bpp": 8 * total / (w * h)}
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(f"{args.input}: {w}x{h}, profile {name}")
    print(f"  {'header':<10}{8 * header:>8} bits")
    for r in rows:
        text = f"  {r['text']!r}" if "text" in r else ""
        print(f"  {r['kind']:<10}{8 * r['bytes']:>8} bits{text}")
    print(f"  {'total':<10}{8 * total:>8} bits = {total} bytes, {summary['bpp']:.5f} bpp")
    return 0


def _cmd_decompress(args: argparse.Namespace) -> int:
    from .image_io import atomic_write_bytes, save_image
    from .pipeline import decode
    from .progress import shown

    data = Path(args.input).read_bytes()
    with shown(not args.quiet):
        decoded = decode(data, max_pixels=args.max_pixels, **parse_options(args.set))
    out = Path(args.output) if args.output else Path(args.input).with_suffix(".png")
    save_image(out, decoded.image)
    if args.caption_out:
        atomic_write_bytes(args.caption_out, "\n".join(decoded.texts).encode("utf-8"))
    if not args.quiet:
        print(f"{out}: {decoded.image.shape[1]}x{decoded.image.shape[0]}")
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    from .pipeline import describe

    d = describe(Path(args.input).read_bytes(), args.max_pixels)
    if args.json:
        print(json.dumps(d, indent=2))
        return 0
    print(f"{args.input}: {d['width']}x{d['height']}, profile {d['profile']} (config {d['config_hash']})")
    print(f"  {'stream':<14}{'bytes':>9}{'bpp':>11}{'share':>8}")
    print(f"  {'header':<14}{d['header_bytes']:>9}{8 * d['header_bytes'] / (d['width'] * d['height']):>11.5f}"
          f"{d['header_bytes'] / d['file_bytes']:>8.1%}")
    for s in d["streams"]:
        label = f"{s['index']}:{s['kind']}" + (f"/{s['text_coder']}" if "text_coder" in s else "")
        print(f"  {label:<14}{s['bytes']:>9}{s['bpp']:>11.5f}{s['bytes'] / d['file_bytes']:>8.1%}")
    print(f"  {'total':<14}{d['file_bytes']:>9}{d['bpp']:>11.5f}{1:>8.0%}")
    return 0


def _cmd_profiles(args: argparse.Namespace) -> int:
    from .profiles import DEFAULT_PROFILE, profile_classes

    rows = []
    classes = profile_classes()
    for name, cls in classes.items():
        reason = cls.availability()
        rows.append({"name": name, "id": cls.profile_id, "available": reason is None,
                     "reason": reason, "description": cls.description, "default": name == DEFAULT_PROFILE,
                     "quality": cls.quality.as_dict(), "options": cls.Settings.schema()})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for r in rows:
        mark = "ok " if r["available"] else "-- "
        star = " (default)" if r["default"] else ""
        print(f"{mark}{r['name']:<12}{r['description']}{star}")
        print(f"    --quality: {classes[r['name']].quality.text()}")
        if r["options"]:
            print(f"    --set: {', '.join(o['name'] for o in r['options'])}")
        if not r["available"]:
            print(f"    unavailable: {r['reason']}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="semcodec", description=__doc__.splitlines()[0])
    p.add_argument("--version", action="version", version="semcodec 0.1.0")
    sub = p.add_subparsers(dest="command", required=True)

    def common(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--max-pixels", type=int, default=None, help="refuse images above this many pixels")
        sp.add_argument("--set", action="append", metavar="KEY=VALUE",
                        help="profile option (repeatable; `semcodec profiles --json` lists each profile's options)")
        sp.add_argument("-q", "--quiet", action="store_true")

    from .profiles.table import quality_table

    c = sub.add_parser("compress", help="image -> .smc", epilog=quality_table(),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    c.add_argument("input")
    c.add_argument("-o", "--output", help="output .smc (default: input with .smc suffix)")
    rate = c.add_mutually_exclusive_group()
    rate.add_argument("--bpp", type=float, help="target bits per pixel (file size never above it)")
    rate.add_argument("--quality", type=float, help="profile-specific quality instead of a rate target"
                      " (meaning and range per profile below)")
    c.add_argument("--profile", default=None, help="profile name (default avif; see `semcodec profiles`)")
    cap = c.add_mutually_exclusive_group()
    cap.add_argument("--caption", help="text to carry in the file (coded with the best text coder)")
    cap.add_argument("--caption-file", help="read the caption from a UTF-8 file")
    common(c)
    c.set_defaults(func=_cmd_compress)

    a = sub.add_parser("analyze", help="what a profile would send for an image: streams, texts and bit costs",
                       epilog=quality_table(), formatter_class=argparse.RawDescriptionHelpFormatter)
    a.add_argument("input")
    a.add_argument("--profile", default="sedic", help="profile name (default sedic)")
    rate = a.add_mutually_exclusive_group()
    rate.add_argument("--bpp", type=float, help="target bits per pixel, as for compress")
    rate.add_argument("--quality", type=float, help="profile-specific quality, as for compress")
    cap = a.add_mutually_exclusive_group()
    cap.add_argument("--caption", help="the caption (sedic: the overall description)")
    cap.add_argument("--caption-file", help="read the caption from a UTF-8 file")
    for flag, env in _ANALYZE_ENV.items():
        a.add_argument("--" + flag.replace("_", "-"), help=f"semantic model setting (default ${env})")
    a.add_argument("--json", action="store_true")
    common(a)
    a.set_defaults(func=_cmd_analyze)

    d = sub.add_parser("decompress", help=".smc -> image")
    d.add_argument("input")
    d.add_argument("-o", "--output", help="output image (default: input with .png suffix)")
    d.add_argument("--caption-out", help="write the text streams here (UTF-8, one per line)")
    common(d)
    d.set_defaults(func=_cmd_decompress)

    i = sub.add_parser("info", help="streams, bytes and bpp of a .smc file")
    i.add_argument("input")
    i.add_argument("--json", action="store_true")
    i.add_argument("--max-pixels", type=int, default=None)
    i.set_defaults(func=_cmd_info)

    pr = sub.add_parser("profiles", help="list profiles and why unavailable ones are missing")
    pr.add_argument("--json", action="store_true")
    pr.set_defaults(func=_cmd_profiles)

    for mod in COMMAND_MODULES:
        importlib.import_module(mod).add_commands(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    import warnings

    # CompressAI still calls torch.jit.script at import; the deprecation is theirs, not the user's concern
    warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.*is deprecated", category=FutureWarning)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except SemcodecError as e:
        print(f"semcodec: error: {e}", file=sys.stderr)
        return e.exit_code
    except FileNotFoundError as e:
        print(f"semcodec: error: {e.strerror}: {e.filename}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("semcodec: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
