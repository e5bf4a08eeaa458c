"""Names Grounding DINO could not confirm are taken out of the overall description too.

A name the VLM hallucinated would otherwise still be drawn by the decoder's overall-description
stages. The rule is deliberately simple and predictable (no language model):

- every occurrence of the name as whole words, case-insensitive, with an optional plural ``s``/``es``
  and an optional determiner before it (a, an, the, some, two, three, several, many) is removed;
- together with the connector that joins it to the rest: the one just before it (``,``, ``and``,
  ``or``, ``with``), else the one just after it (``,``, ``and``, ``or``);
- then runs of spaces collapse, spaces before punctuation go, and the text is trimmed of leading
  ``, ; : .`` and a leading ``and``/``or``/``with``, and of trailing ``, ; :``.

    "a cat and a dog on a mat" − dog  →  "a cat on a mat"
    "two dogs, a cat and a ball" − dogs → "a cat and a ball"
"""

from __future__ import annotations

import re

_DETERMINER = r"(?:(?:a|an|the|some|two|three|several|many)\s+)?"
_BEFORE = r"(?:\s*,\s*|\s+(?:and|or|with)\s+)"
_AFTER = r"(?:\s*,\s*|\s+(?:and|or)\s+)?"


def _phrase(name: str) -> str | None:
    words = name.lower().split()
    if not words:
        return None
    if words[-1].endswith("s") and len(words[-1]) > 3:  # "dogs" also matches "dog"
        words[-1] = words[-1][:-1]
    return rf"\b{_DETERMINER}" + r"\s+".join(map(re.escape, words)) + r"(?:e?s)?\b"


def remove_names(text: str, names: list[str]) -> str:
    """``text`` without the phrases naming ``names`` (rule in the module doc)."""
    for name in names:
        phrase = _phrase(name)
        if phrase is None:
            continue
        text = re.sub(_BEFORE + phrase, "", text, flags=re.I)
        text = re.sub(phrase + _AFTER, "", text, flags=re.I)
    text = re.sub(r"\s+([,.;:!?])", r"\1", " ".join(text.split())).lstrip(" ,;:.")
    return re.sub(r"^(?:and|or|with)\s+", "", text, flags=re.I).rstrip(" ,;:")
