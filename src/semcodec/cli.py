"""``semcodec`` command line (cwebp/avifenc conventions).

Core commands live here; each capability adds its own subcommands from its own module, listed in
``COMMAND_MODULES`` (each module exposes ``add_commands(subparsers)``), so the CLI grows without one
file knowing every feature.

Conventions (README, "CLI conventions"): ``-`` is stdin/stdout, ``-o/--output`` names the output,
``--json`` prints JSON on stdout, ``-q``/``-v`` work before or after the command name, every
``--help`` shows defaults, and every failure is one ``semcodec: error:`` line with a typed exit code.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from pathlib import Path
from typing import Any

from .errors import SemcodecError

STDIO = "-"
#: ``--bpp`` range accepted by every command (above 64 bpp nothing is left to compress)
MAX_BPP = 64.0

#: Modules contributing subcommands: each defines ``add_commands(subparsers) -> None``.
COMMAND_MODULES: list[str] = ["semcodec.train.cli", "semcodec.eval.cli", "semcodec.scale.cli", "semcodec.report.cli",
                              "semcodec.bench.cli", "semcodec.commands.lossless",
                              "semcodec.commands.diffbir", "semcodec.commands.resulic_nr"]


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


# ---- argument types: a bad value is a usage error (exit 2) before anything is imported ---------------
def bpp_value(text: str) -> float:
    """``--bpp``: a number in (0, 64]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of bits per pixel, got {text!r}") from None
    if not 0 < value <= MAX_BPP:
        raise argparse.ArgumentTypeError(f"must be in (0, {MAX_BPP:g}] bits per pixel, got {text}")
    return value


def profile_name(text: str) -> str:
    """``--profile``: a name of the profile table (checked without importing any profile)."""
    from .profiles.table import PROFILES

    if text not in PROFILES:
        raise argparse.ArgumentTypeError(PROFILES.unknown_message(text))
    return text


def hidden_alias(p: argparse.ArgumentParser, flag: str, dest: str, **kwargs: Any) -> None:
    """A former spelling of an option, still accepted but not shown in ``--help``."""
    p.add_argument(flag, dest=dest, help=argparse.SUPPRESS, default=argparse.SUPPRESS, **kwargs)


def rate_values(text: str) -> list[float]:
    """Comma-separated ``--bpp`` targets, each in (0, 64]."""
    return [bpp_value(x) for x in text.split(",") if x.strip()]


# ---- input and output paths ------------------------------------------------------------------------
def read_input(name: str, what: str) -> bytes | str:
    """``-`` reads stdin's bytes; a path is checked (a folder or a missing file is one clear error)."""
    if name == STDIO:
        return sys.stdin.buffer.read()
    path = Path(name)
    if path.is_dir():
        raise SemcodecError(f"{path} is a directory, not {what}")
    if not path.exists():
        raise SemcodecError(f"no such {what}: {path}")
    return name


def output_path(output: str | None, input_name: str, suffix: str) -> str:
    """Where to write: ``-o`` as given, else the input with ``suffix`` (stdout when the input is stdin).

    Refused before any coding work: an existing folder, and the input file itself (``x.png -o x.png``).
    """
    if output is None:
        output = STDIO if input_name == STDIO else str(Path(input_name).with_suffix(suffix))
    if output == STDIO:
        return output
    out = Path(output)
    if out.is_dir():
        raise SemcodecError(f"-o {out} is a directory; give a file name")
    if input_name != STDIO and out.exists() and os.path.samefile(out, input_name):
        raise SemcodecError(f"refusing to overwrite the input {input_name} with the output; choose another -o")
    parent = out.parent if str(out.parent) else Path(".")
    if parent.is_dir() and not os.access(parent, os.W_OK):
        raise SemcodecError(f"cannot write to {parent}: permission denied")
    return output


def write_output(output: str, data: bytes) -> None:
    from .image_io import atomic_write_bytes

    if output == STDIO:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    else:
        atomic_write_bytes(output, data)


def report(args: argparse.Namespace, output: str, line: str) -> None:
    """The one-line result: on stdout, or stderr when stdout carries the data."""
    if not args.quiet:
        print(line, file=sys.stderr if output == STDIO else sys.stdout)


def _caption(args: argparse.Namespace) -> str | None:
    if args.caption_file:
        return Path(args.caption_file).read_text(encoding="utf-8").rstrip("\n")
    return args.caption


def _cmd_compress(args: argparse.Namespace) -> int:
    from .pipeline import compress, describe
    from .progress import shown

    source = read_input(args.input, "image file")
    out = output_path(args.output, args.input, ".smc")
    with shown(not args.quiet):  # long codecs (lossless) draw a bar on a terminal
        data = compress(source, bpp=args.bpp, quality=args.quality, profile=args.profile, caption=_caption(args),
                        max_pixels=args.max_pixels, **parse_options(args.set))
    write_output(out, data)
    d = describe(data, args.max_pixels)
    name = "<stdout>" if out == STDIO else out
    report(args, out, f"{name}: {d['file_bytes']} bytes, {d['bpp']:.5f} bpp ({d['width']}x{d['height']},"
                      f" profile {d['profile']})")
    if args.bpp is not None and d["bpp"] < args.bpp / 2 and not args.quiet:
        print(f"semcodec: notice: target {args.bpp:g} bpp not reached: profile {d['profile']} spends at most"
              f" {d['bpp']:.4f} bpp on this image (its highest quality)", file=sys.stderr)
    return 0


#: ``analyze`` flags that configure the semantic models profiles read from the environment
_ANALYZE_ENV = {"vlm": "SEMCODEC_VLM", "chat_url": "SEMCODEC_CHAT_URL", "chat_model": "SEMCODEC_CHAT_MODEL",
                "llm": "SEMCODEC_LLM", "grounding_dino": "SEMCODEC_GROUNDING_DINO", "sam": "SEMCODEC_SAM",
                "device": "SEMCODEC_DEVICE"}


def _cmd_analyze(args: argparse.Namespace) -> int:
    """What ``compress`` with the same arguments would write: every stream's kind and size (and texts)."""
    from .container import Container, Stream, StreamKind
    from .image_io import load_image
    from .pipeline import analyse
    from .profiles import get_profile
    from .text import decode_text_stream

    for flag, env in _ANALYZE_ENV.items():
        if getattr(args, flag):
            os.environ[env] = getattr(args, flag)
    caption = _caption(args)
    image = load_image(read_input(args.input, "image file"), args.max_pixels)
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
    from .image_io import encode_png, save_image
    from .pipeline import decode, read_smc
    from .progress import shown

    data = read_smc(read_input(args.input, ".smc file"))
    out = output_path(args.output, args.input, ".png")
    caption_out = output_path(args.caption_out, args.input, ".txt") if args.caption_out else None
    with shown(not args.quiet):
        decoded = decode(data, max_pixels=args.max_pixels, **parse_options(args.set))
    if out == STDIO:
        write_output(out, encode_png(decoded.image))
    else:
        save_image(out, decoded.image)
    if caption_out:
        write_output(caption_out, "\n".join(decoded.texts).encode("utf-8"))
    report(args, out, f"{'<stdout>' if out == STDIO else out}: {decoded.image.shape[1]}x{decoded.image.shape[0]}")
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    from .pipeline import describe, read_smc

    d = describe(read_smc(read_input(args.input, ".smc file")), args.max_pixels)
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
    from .commands.profile_list import profile_rows
    from .profiles.quality import Quality

    rows = profile_rows(refresh=args.refresh)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for r in rows:
        mark = "ok " if r["available"] else "-- "
        star = " (default)" if r["default"] else ""
        print(f"{mark}{r['name']:<12}{r['description']}{star}")
        q = r["quality"]
        print(f"    --quality: {Quality(q['meaning'], q['min'], q['max'], q['default'], q['integer'], q['clamped']).text()}")
        if r["options"]:
            print(f"    --set: {', '.join(o['name'] for o in r['options'])}")
        if not r["available"]:
            print(f"    unavailable: {r['reason']}")
    return 0


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Every option's default in ``--help`` (like ``ArgumentDefaultsHelpFormatter``), except where the
    default is empty or the help already says it; epilogs keep their line breaks."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if (action.option_strings and action.default not in (None, False, [], argparse.SUPPRESS)
                and "default" not in text and "%(default)" not in text):
            text += " (default: %(default)s)"
        return text


class Parser(argparse.ArgumentParser):
    """The parser of ``semcodec`` and of every subcommand (``add_subparsers`` reuses this class):
    defaults shown in ``--help``, and ``-q``/``-v`` accepted after the command name as well as before."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        kwargs.setdefault("conflict_handler", "resolve")  # a command may declare its own -q with its own help
        super().__init__(*args, **kwargs)
        add_verbosity(self, argparse.SUPPRESS)


def add_verbosity(p: argparse.ArgumentParser, default: Any) -> None:
    """``-q``/``-v``; subcommands use SUPPRESS so the value given before the command name stays."""
    p.add_argument("-q", "--quiet", action="store_true", default=default, help="print only errors")
    p.add_argument("-v", "--verbose", action="store_true", default=default,
                   help="log progress details; show the traceback of an error")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="semcodec", description=__doc__.splitlines()[0], formatter_class=HelpFormatter)
    p.add_argument("--version", action="version", version="semcodec 0.1.0")
    add_verbosity(p, False)
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)

    def common(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--max-pixels", type=int, default=None,
                        help="refuse images above this many pixels (default: $SEMCODEC_MAX_PIXELS or 2^28)")
        sp.add_argument("--set", action="append", metavar="KEY=VALUE",
                        help="profile option (repeatable; `semcodec profiles --json` lists each profile's options)")

    from .profiles.table import DEFAULT_PROFILE, quality_table

    c = sub.add_parser("compress", help="image -> .smc", epilog=quality_table())
    c.add_argument("input", help="image file, or - for stdin")
    c.add_argument("-o", "--output", help="output .smc, or - for stdout (default: input with .smc suffix;"
                   " stdout when the input is stdin)")
    rate = c.add_mutually_exclusive_group()
    rate.add_argument("--bpp", type=bpp_value, help="target bits per pixel in (0, 64]; the file is never larger")
    rate.add_argument("--quality", type=float, help="profile-specific quality instead of a rate target"
                      " (meaning and range per profile below; default: the profile's)")
    c.add_argument("--profile", type=profile_name, default=DEFAULT_PROFILE, help="see `semcodec profiles`")
    cap = c.add_mutually_exclusive_group()
    cap.add_argument("--caption", help="text to carry in the file (coded with the best text coder)")
    cap.add_argument("--caption-file", help="read the caption from a UTF-8 file")
    common(c)
    c.set_defaults(func=_cmd_compress)

    a = sub.add_parser("analyze", help="what a profile would send for an image: streams, texts and bit costs",
                       epilog=quality_table())
    a.add_argument("input", help="image file, or - for stdin")
    a.add_argument("--profile", type=profile_name, default="sedic", help="see `semcodec profiles`")
    rate = a.add_mutually_exclusive_group()
    rate.add_argument("--bpp", type=bpp_value, help="target bits per pixel in (0, 64], as for compress")
    rate.add_argument("--quality", type=float, help="profile-specific quality, as for compress")
    cap = a.add_mutually_exclusive_group()
    cap.add_argument("--caption", help="the caption (sedic: the overall description)")
    cap.add_argument("--caption-file", help="read the caption from a UTF-8 file")
    for flag, env in _ANALYZE_ENV.items():
        a.add_argument("--" + flag.replace("_", "-"), help=f"semantic model setting (default ${env})")
    a.add_argument("--json", action="store_true", help="print JSON on stdout")
    common(a)
    a.set_defaults(func=_cmd_analyze)

    d = sub.add_parser("decompress", help=".smc -> image")
    d.add_argument("input", help=".smc file, or - for stdin")
    d.add_argument("-o", "--output", help="output image (format from the suffix, PNG otherwise), or - for PNG on"
                   " stdout (default: input with .png suffix; stdout when the input is stdin)")
    d.add_argument("--caption-out", help="write the text streams here (UTF-8, one per line; - for stdout)")
    common(d)
    d.set_defaults(func=_cmd_decompress)

    i = sub.add_parser("info", help="streams, bytes and bpp of a .smc file")
    i.add_argument("input", help=".smc file, or - for stdin")
    i.add_argument("--json", action="store_true", help="print JSON on stdout")
    i.add_argument("--max-pixels", type=int, default=None, help="refuse headers above this many pixels")
    i.set_defaults(func=_cmd_info)

    pr = sub.add_parser("profiles", help="list profiles and why unavailable ones are missing")
    pr.add_argument("--json", action="store_true", help="print JSON on stdout")
    pr.add_argument("--refresh", action="store_true",
                    help="recompute instead of using the cached listing (see README, CLI conventions)")
    pr.set_defaults(func=_cmd_profiles)

    for mod in COMMAND_MODULES:
        importlib.import_module(mod).add_commands(sub)
    return p


def _os_error(e: OSError) -> str:
    """``[Errno 13] Permission denied: 'x'`` -> ``permission denied: x`` (one line, no traceback)."""
    what = (e.strerror or str(e)).rstrip(".")
    what = what[:1].lower() + what[1:]
    names = [str(n) for n in (e.filename, e.filename2) if n is not None]
    return f"{what}: {' -> '.join(names)}" if names else what


def main(argv: list[str] | None = None) -> int:
    import warnings

    # CompressAI still calls torch.jit.script at import; the deprecation is theirs, not the user's concern
    warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.*is deprecated", category=FutureWarning)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # a usage error (2, message printed by argparse), --help or --version (0)
        return int(e.code or 0) if not isinstance(e.code, str) else 2
    if args.verbose:
        import logging

        logging.basicConfig(level=logging.INFO, format="semcodec: %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except SemcodecError as e:
        _traceback(args)
        print(f"semcodec: error: {e}", file=sys.stderr)
        return e.exit_code
    except BrokenPipeError:  # `semcodec ... | head`: the reader left; end quietly, as cat and grep do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except OSError as e:  # missing file, a folder where a file is expected, permissions, full disk
        _traceback(args)
        print(f"semcodec: error: {_os_error(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("semcodec: interrupted", file=sys.stderr)
        return 130


def _traceback(args: argparse.Namespace) -> None:
    if getattr(args, "verbose", False):
        import traceback

        traceback.print_exc()


if __name__ == "__main__":
    sys.exit(main())
