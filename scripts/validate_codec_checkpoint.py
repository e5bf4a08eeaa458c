"""Validation numbers of a `semcodec train-codec` checkpoint (8 BSDS500 val centre crops, estimated bpp/PSNR).

The same `semcodec.train.lic.validate` the trainer logs every --val-every steps, callable on any
checkpoint so two of them can be compared before one is exported (MODEL_CARD.md of weights/lic).

usage: python scripts/validate_codec_checkpoint.py CKPT.pt [--data ../shared/data/bsds500/val] > val.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from semcodec.image.learned.models import build_model
from semcodec.paths import shared_data_dir
from semcodec.train.data import CropSampler
from semcodec.train.lic import validate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint")
    ap.add_argument("--data", default=None, help="BSDS500 val folder (default: <shared data>/bsds500/val)")
    args = ap.parse_args()
    data = Path(args.data) if args.data else (shared_data_dir() or Path("../shared/data")) / "bsds500" / "val"
    torch.set_num_threads(1)
    ck = torch.load(args.checkpoint, map_location="cpu", weights_only=True)
    meta = ck["meta"]
    model = build_model(meta["model"], **meta["model_cfg"])
    model.load_state_dict(ck["model"], strict=False)
    crops = CropSampler(data, 256, None, seed=1)
    print(json.dumps({"step": ck["step"], "val": validate(model, crops, meta["scales"], model.levels)}))


if __name__ == "__main__":
    main()
