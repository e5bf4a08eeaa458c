"""Skip tests cleanly when an optional extra (pyproject ``[project.optional-dependencies]``) is missing."""

from __future__ import annotations

import pytest

#: importable module -> the extra that installs it
EXTRA_OF = {"diffusers": "generative", "open_clip": "generative", "peft": "lora", "ray": "ray",
            "lpips": "metrics", "DISTS_pytorch": "metrics"}


def require(module: str):
    """The module, or a skip of the calling test (module) naming the extra to install."""
    return pytest.importorskip(module, reason=f"{module} not installed: pip install -e '.[{EXTRA_OF[module]}]'")


def needs(module: str) -> pytest.MarkDecorator:
    """A skip mark for a test or parameter that needs ``module`` (an optional extra)."""
    import importlib.util

    return pytest.mark.skipif(importlib.util.find_spec(module) is None,
                              reason=f"{module} not installed: pip install -e '.[{EXTRA_OF[module]}]'")
