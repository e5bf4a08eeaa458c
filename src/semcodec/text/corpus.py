"""Training text for the caption LM, built ONLY from the training captions.

Sources (``../shared/data/captions``): Flickr8k (all 40,460 captions) and the COCO train2017 subset
(25,349 captions). COCO val2017 and ``long_descriptions_dev.json`` are evaluation sets and are never read
here.

Two kinds of documents are produced, each ending in the end-of-text token::

    short:      one caption, as written ("A man riding a wave on top of a surfboard.")
    paragraph:  one image's 5 captions woven into an LMM-style description:
                [opening] caption 1. [connector] caption 2. ... [closing remark]

The paragraphs teach the model the shape of long "The image features ..." descriptions (openings,
connectors like "In the background,", closing remarks about atmosphere) using only training captions
plus a small hand-written phrase list below (generic phrasing, written for this project, not copied from
any evaluation text). A fresh random paragraph realisation is drawn every epoch (seeded), so the model
sees varied openings instead of memorising one.
"""

from __future__ import annotations

import csv
import random
import re
from collections import defaultdict
from pathlib import Path

OPENINGS = [
    "The image shows ", "The image features ", "The image depicts ", "The image captures ",
    "This image shows ", "This image features ", "This image depicts ", "This image captures ",
    "The photo shows ", "The photograph shows ", "The photograph captures ", "This picture shows ",
    "The picture shows ", "The scene shows ", "The image presents ", "In this image, there is ",
    "In the image, there is ", "In the image, we can see ", "In this picture, we see ",
    "The image is a close-up of ", "The image displays ", "This is a photo of ",
]
OPEN_SETTINGS = [
    "In the heart of a busy city, ", "In the center of the image, ", "In the middle of the scene, ",
    "On a bright and sunny day, ", "In a quiet neighborhood, ", "In the foreground of the image, ",
    "In this captivating scene, ", "In this vibrant image, ", "In a cozy indoor setting, ",
    "Under a clear blue sky, ", "In the heart of the image, ",
]
CONNECTORS = [
    "", "", "", "In the background, ", "In the foreground, ", "Additionally, ", "Nearby, ",
    "Furthermore, ", "Moreover, ", "Next to it, ", "On the left side of the image, ",
    "On the right side of the image, ", "In the center of the scene, ", "It appears that ",
    "The scene also shows ", "There is also ", "We can also see ", "Close by, ", "Further back, ",
    "At the same time, ", "Around them, ", "To the side, ", "Behind them, ", "Overall, ",
    "The image also features ", "In addition, ", "Meanwhile, ",
]
TAILS = [
    "adding a touch of color to the scene", "creating a sense of depth",
    "which adds to the lively atmosphere", "suggesting a relaxed and casual moment",
    "making it the focal point of the image", "adding to the overall charm of the scene",
    "which creates a pleasant contrast", "giving the scene a warm and inviting feel",
    "hinting at the activity taking place", "contributing to the overall composition",
    "suggesting that this is a popular spot", "capturing a moment of everyday life",
]
CLOSINGS = [
    "The overall scene conveys a sense of calm and everyday life.",
    "The image captures a moment of daily life.",
    "The atmosphere of the scene is lively and engaging.",
    "The colors in the image are vibrant, adding to the overall appeal of the scene.",
    "Overall, the image gives a glimpse into an ordinary day.",
    "The composition draws the viewer's attention to the main subject.",
    "The scene is peaceful, and the lighting suggests it was taken during the day.",
    "The image evokes a sense of joy and activity.",
    "The setting appears to be outdoors, with natural light illuminating the scene.",
    "The setting appears to be indoors, with soft lighting throughout the room.",
    "The image is a snapshot of a simple, everyday moment.",
    "The overall mood of the image is relaxed and cheerful.",
    "There are no visible texts or logos in the image.",
    "The background is slightly blurred, keeping the focus on the main subject.",
    "This image beautifully captures the essence of the moment.",
    "The scene tells a story of leisure and companionship.",
    "The image has a natural, candid quality.",
    "The details in the image suggest a busy and interesting environment.",
]


def _clean_flickr(s: str) -> str:
    """Flickr8k captions are pre-tokenised ("a dog , running ."); restore normal punctuation."""
    s = s.strip()
    s = re.sub(r"\s+([.,!?;:])", r"\1", s)
    s = re.sub(r"\s+'s\b", "'s", s)
    s = re.sub(r"\s+", " ", s)
    if s and s[0].islower():
        s = s[0].upper() + s[1:]
    return s


def load_training_captions(data_dir: Path) -> dict[str, list[str]]:
    """image key -> captions, from Flickr8k and the COCO train2017 subset only."""
    caps = data_dir / "captions"
    groups: dict[str, list[str]] = defaultdict(list)
    for line in (caps / "flickr8k_captions.txt").read_text(encoding="utf-8").splitlines():
        if "\t" not in line:
            continue
        key, cap = line.split("\t", 1)
        cap = _clean_flickr(cap)
        if cap:
            groups["f:" + key.split("#")[0]].append(cap)
    with (caps / "coco_captions_train2017_subset.csv").open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            cap = " ".join(row["caption"].split())
            if cap:
                groups["c:" + row["image_id"]].append(cap)
    return dict(groups)


def _sentence(cap: str) -> str:
    cap = cap.strip()
    return cap if cap.endswith((".", "!", "?")) else cap + "."


def _lower_first(cap: str) -> str:
    if len(cap) > 1 and cap[0].isupper() and not cap[1].isupper():
        return cap[0].lower() + cap[1:]
    return cap


def make_paragraph(caps: list[str], rng: random.Random) -> str:
    """Weave one image's captions into an LMM-style description (see module docstring)."""
    caps = list(caps)
    rng.shuffle(caps)
    out: list[str] = []
    first = caps[0].rstrip(". ")
    r = rng.random()
    if r < 0.6:
        out.append(_sentence(rng.choice(OPENINGS) + _lower_first(first)))
    elif r < 0.8:
        out.append(_sentence(rng.choice(OPEN_SETTINGS) + _lower_first(first)))
    else:
        out.append(_sentence(first))
    for cap in caps[1:]:
        body = cap.rstrip(". ")
        if rng.random() < 0.25:
            body = body + ", " + rng.choice(TAILS)
        conn = rng.choice(CONNECTORS)
        out.append(_sentence(conn + _lower_first(body) if conn else body))
    for _ in range(rng.choice([0, 1, 1, 2])):
        out.append(rng.choice(CLOSINGS))
    return " ".join(out)


def build_documents(groups: dict[str, list[str]], epoch: int, seed: int, coco_repeat: int = 2,
                    paragraph_p: float = 1.0) -> list[str]:
    """All documents of one epoch, shuffled deterministically from (seed, epoch)."""
    rng = random.Random(seed * 1000003 + epoch)
    docs: list[str] = []
    for key in sorted(groups):
        caps = groups[key]
        docs.extend(caps * (coco_repeat if key.startswith("c:") else 1))
        para = make_paragraph(caps, rng)
        if rng.random() < paragraph_p:
            docs.append(para)
    rng.shuffle(docs)
    return docs
