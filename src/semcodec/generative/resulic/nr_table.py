"""The bitrate → N_r table of ResULIC's CDM (the paper aligns each rate point with a start step).

The paper trains one CDM per rate point with a fixed N_r (the worse z_c, the later the start). Our codec
has one latent codec with a ladder of quantiser steps (q index k), so the mapping is a table keyed by
k, fitted per diffusion model by ``semcodec calibrate-resulic-nr`` (for each k, the N_r whose decode
minimises the chosen distortion on a folder of images) and stored next to the model as JSON::

    {"format": "semcodec-resulic-nr", "version": 1, "codec": "sha256:…", "sampler": "paper",
     "steps": 4, "metric": "mse", "points": [{"q_index": k, "bpp": mean bpp, "n_r": N_r,
     "distortion": {"N_r candidate": mean distortion, …}}, …]}

Only the encoder reads it: the chosen N_r travels in PARAMS, so a file never depends on the table.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TABLE_NAME = "resulic_nr.json"
FORMAT = "semcodec-resulic-nr"


@dataclass
class NrTable:
    codec: str
    points: list[dict[str, Any]]
    sampler: str = "paper"
    steps: int = 4
    metric: str = "mse"
    extra: dict[str, Any] = field(default_factory=dict)

    def n_r_for(self, q_index: int) -> int:
        """N_r of the nearest calibrated rate point (ties: the coarser point, i.e. the later start)."""
        if not self.points:
            raise ValueError("empty N_r table")
        best = min(self.points, key=lambda p: (abs(int(p["q_index"]) - q_index), -int(p["q_index"])))
        return int(best["n_r"])

    def to_json(self) -> str:
        return json.dumps({"format": FORMAT, "version": 1, "codec": self.codec, "sampler": self.sampler,
                           "steps": self.steps, "metric": self.metric, **self.extra,
                           "points": sorted(self.points, key=lambda p: int(p["q_index"]))}, indent=1)

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(self.to_json() + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path) -> NrTable:
        d = json.loads(Path(path).read_text())
        if d.get("format") != FORMAT or d.get("version") != 1:
            raise ValueError(f"{path} is not a semcodec ResULIC N_r table")
        known = {"format", "version", "codec", "sampler", "steps", "metric", "points"}
        return cls(codec=str(d["codec"]), points=list(d["points"]), sampler=str(d.get("sampler", "paper")),
                   steps=int(d.get("steps", 4)), metric=str(d.get("metric", "mse")),
                   extra={k: v for k, v in d.items() if k not in known})


def default_table_path(model: str | None) -> Path | None:
    """``resulic_nr.json`` inside the model folder (None for a hub id or no model)."""
    if not model or not Path(model).is_dir():
        return None
    return Path(model) / TABLE_NAME
