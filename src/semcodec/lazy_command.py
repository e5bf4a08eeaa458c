"""Run a CLI subcommand from a module imported only when the command runs.

Subcommands are declared at start-up (``semcodec --help`` must stay fast), but their implementations
import torch, transformers or CompressAI; ``lazy("pkg.module:function")`` defers that import.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable


def lazy(target: str) -> Callable[[argparse.Namespace], int]:
    """``target`` = "module:function"; the function takes the parsed args; an int it returns is the exit
    code, anything else (None, a result path) means success."""
    module, _, name = target.partition(":")

    def run(args: argparse.Namespace) -> int:
        out = getattr(importlib.import_module(module), name)(args)
        return out if isinstance(out, int) else 0

    return run
