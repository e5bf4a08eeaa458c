"""The object records of SEDIC semantics, shared by the analysis (VLM + Grounding DINO + SAM) and the
SEDIC profile (which also reads them from a semantics file, without boxes or scores)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class GroundedObject:
    """One object: name, short details and its H×W bool mask; box/score when a detector found it."""

    name: str
    details: str
    mask: np.ndarray  # H×W bool
    box: tuple[float, float, float, float] | None = None
    score: float | None = None

    @property
    def text(self) -> str:
        """The object's description as sent to the decoder (name + details)."""
        return f"{self.name}, {self.details}" if self.details else self.name


@dataclass
class SedicAnalysis:
    """An image's SEDIC semantics: the overall description and its objects."""

    overall: str
    objects: list[GroundedObject] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)  # VLM names Grounding DINO could not find
