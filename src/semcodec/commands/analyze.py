"""CLI: ``semcodec analyze`` (what a semantic profile would send, and its bit cost)."""

from __future__ import annotations

import argparse
import json

from ..errors import SemcodecError


def _cmd_analyze(args: argparse.Namespace) -> int:
    from ..image_io import load_image
    from ..semantic.analysis import analyze_image
    from ..semantic.config import SemanticConfig
    from ..semantic.masks import MaskCoder
    from ..semantic.objects import SedicLimits

    image = load_image(args.input, args.max_pixels)
    cfg = SemanticConfig.from_env(vlm=args.vlm, chat_url=args.chat_url, chat_model=args.chat_model,
                                  llm=args.llm, grounding_dino=args.grounding_dino, sam=args.sam, device=args.device)
    decoded = load_image(args.decoded, args.max_pixels) if args.decoded else None
    if decoded is not None and decoded.shape != image.shape:
        raise SemcodecError("--decoded must have the same size as the input image")
    rep = analyze_image(image, args.profile, cfg, caption=args.caption, caption_file=args.caption_file,
                        image_path=args.input, decoded=decoded,
                        limits=SedicLimits(args.objects, args.detail_words, args.overall_words),
                        mask_coder=MaskCoder(args.mask_coder, args.mask_factor))
    h, w = image.shape[:2]
    s = rep.summary(w, h)
    if args.save_masks:
        from pathlib import Path

        from ..image_io import save_image

        for i, m in enumerate(rep.masks):
            save_image(Path(args.save_masks) / f"object{i + 1}.png", (m * 255).astype("uint8"))
    if args.json:
        print(json.dumps(s, indent=2))
        return 0
    print(f"{args.input}: {w}x{h}, profile {args.profile}, text coder {s['text_coder']}")
    for label, text in rep.texts.items():
        print(f"  {label:<9} {8 * s['text_payload_bytes'][label]:>6} bits  {text!r}")
    for o in rep.objects:
        print(f"  mask      {o['name']}: box {o['box']}, score {o['score']}, {o['mask_fraction']:.1%} of the image")
    if rep.mask_payload is not None:
        print(f"  masks     {8 * s['mask_payload_bytes']:>6} bits  ({len(rep.masks)} masks, "
              f"{args.mask_coder} at 1/{args.mask_factor})")
    for name in rep.dropped:
        print(f"  dropped   {name!r}: not confirmed by Grounding DINO")
    for note in rep.notes:
        print(f"  note      {note}")
    print(f"  total     {s['total_bits']:>6} bits = {s['total_bytes']} bytes with stream framing, {s['bpp']:.5f} bpp")
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    a = sub.add_parser("analyze", help="print the semantics a profile would send and their bit cost")
    a.add_argument("input")
    a.add_argument("--profile", choices=["itc", "resulic", "sedic"], default="sedic")
    cap = a.add_mutually_exclusive_group()
    cap.add_argument("--caption", help="use this text instead of a captioner (sedic: the overall description)")
    cap.add_argument("--caption-file", help="read the caption from a UTF-8 file")
    a.add_argument("--decoded", help="resulic: decoded base image, to send only the Srr residual")
    a.add_argument("--vlm", help="HF id/folder of a VLM (default $SEMCODEC_VLM)")
    a.add_argument("--chat-url", help="OpenAI-compatible base URL (default $SEMCODEC_CHAT_URL)")
    a.add_argument("--chat-model", help="model name on that server (default $SEMCODEC_CHAT_MODEL)")
    a.add_argument("--llm", help="HF id/folder of a chat LLM for Srr (default $SEMCODEC_LLM)")
    a.add_argument("--grounding-dino", help="HF id/folder (default $SEMCODEC_GROUNDING_DINO)")
    a.add_argument("--sam", help="HF id/folder (default $SEMCODEC_SAM)")
    a.add_argument("--device", help="torch device (default $SEMCODEC_DEVICE or cpu)")
    a.add_argument("--objects", type=int, default=3, help="SEDIC J: max objects")
    a.add_argument("--detail-words", type=int, default=12, help="SEDIC l_d")
    a.add_argument("--overall-words", type=int, default=30, help="SEDIC l_all")
    a.add_argument("--mask-coder", choices=["ctx", "ctx0", "rle"], default="ctx")
    a.add_argument("--mask-factor", type=int, choices=[1, 2, 4, 8], default=1)
    a.add_argument("--save-masks", help="write object masks as PNGs into this folder")
    a.add_argument("--max-pixels", type=int, default=None)
    a.add_argument("--json", action="store_true")
    a.set_defaults(func=_cmd_analyze)
