"""SEDIC object semantics from a VLM: up to J object names with short details, plus an overall line.

The VLM is asked for a fixed line format; :func:`parse_object_answer` also accepts what models
actually return (JSON, numbered or bulleted lists, ``name - details``, markdown bold, an
"Overall:"/"Scene:" line anywhere), then enforces J, l_d and l_all.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

import numpy as np

from ..captioners.base import limit_words
from ..chat import Chat


@dataclass(frozen=True)
class SedicLimits:
    max_objects: int = 3  # J
    detail_words: int = 12  # l_d
    overall_words: int = 30  # l_all


@dataclass
class ObjectDescription:
    name: str
    details: str = ""


@dataclass
class ObjectSemantics:
    overall: str
    objects: list[ObjectDescription] = field(default_factory=list)


def sedic_prompt(limits: SedicLimits) -> str:
    return (
        f"Look at this image and name its {limits.max_objects} most important objects (fewer if there are fewer), "
        "each with a one-to-three-word name. For each, give details (colour, shape, texture, pose) in at most "
        f"{limits.detail_words} words. Then describe the whole image in at most {limits.overall_words} words. "
        "Answer with exactly these lines and nothing else:\n"
        "Object 1: <name> | <details>\nObject 2: <name> | <details>\nOverall: <description>"
    )


_OVERALL = re.compile(r"^\s*(?:\**\s*)?(overall(?: description)?|scene|whole image|global(?: description)?|summary)"
                      r"\s*\**\s*[:\-]\s*(.*)$", re.I)
_ITEM = re.compile(r"^\s*(?:[-*•]|\d+[.)]|object\s*\d*\s*[:.)-]?)\s*(.*)$", re.I)


def _clean_name(name: str) -> str:
    name = re.sub(r"[*_`\"]", "", name).strip(" .:-")
    name = re.sub(r"^(?:an?|the)\s+", "", name, flags=re.I)
    return " ".join(name.split()[:4]).lower()


def _split_item(text: str) -> tuple[str, str]:
    text = text.strip()
    bold = re.match(r"^\*\*(.+?)\*\*\s*[:\-|–]?\s*(.*)$", text)
    if bold:
        return bold.group(1), bold.group(2)
    for sep in ("|", ":", " - ", " – ", " — ", "(", ","):
        if sep in text:
            name, details = text.split(sep, 1)
            return name, details.rstrip(")")
    return text, ""


def _from_json(answer: str) -> ObjectSemantics | None:
    m = re.search(r"\{.*\}", answer, re.S)
    if not m:
        return None
    try:
        data = json.loads(m.group(0))
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    overall = str(data.get("overall") or data.get("overall_description") or data.get("scene") or "")
    objs = []
    for item in data.get("objects") or []:
        if isinstance(item, dict):
            name = item.get("name") or item.get("object") or ""
            details = item.get("details") or item.get("description") or ""
            objs.append(ObjectDescription(str(name), str(details)))
        elif isinstance(item, str):
            objs.append(ObjectDescription(*_split_item(item)))
    return ObjectSemantics(overall, objs)


def parse_object_answer(answer: str, limits: SedicLimits | None = None) -> ObjectSemantics:
    """Parse a VLM answer into at most J unique named objects and an overall description."""
    limits = limits or SedicLimits()
    parsed = _from_json(answer)
    if parsed is None:
        overall_lines: list[str] = []
        objs: list[ObjectDescription] = []
        for line in answer.splitlines():
            if not line.strip():
                continue
            m = _OVERALL.match(line)
            if m:
                overall_lines.append(m.group(2))
                continue
            item = _ITEM.match(line)
            if item and item.group(1):
                objs.append(ObjectDescription(*_split_item(item.group(1))))
            elif ":" in line or "|" in line:
                objs.append(ObjectDescription(*_split_item(line)))
            else:
                overall_lines.append(line)
        parsed = ObjectSemantics(" ".join(overall_lines), objs)
    seen: set[str] = set()
    objects = []
    for o in parsed.objects:
        name = _clean_name(o.name)
        if not name or name in seen or name.startswith("overall"):
            continue
        seen.add(name)
        objects.append(ObjectDescription(name, limit_words(re.sub(r"[*_`]", "", o.details).strip(" .:-|"),
                                                           limits.detail_words)))
        if len(objects) == limits.max_objects:
            break
    return ObjectSemantics(limit_words(re.sub(r"[*_`]", "", parsed.overall).strip(), limits.overall_words), objects)


def describe_objects(image: np.ndarray, vlm: Chat, limits: SedicLimits | None = None) -> ObjectSemantics:
    limits = limits or SedicLimits()
    return parse_object_answer(vlm.ask(sedic_prompt(limits), [image]), limits)
