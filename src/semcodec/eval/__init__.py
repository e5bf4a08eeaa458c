"""Rate-distortion evaluation: per-unit work, resumable results, summaries, BD-rate, plots, report."""

from .bdrate import BDResult, bd_metric, bd_rate
from .runner import EvalConfig, run_eval, summarise
from .unit import evaluate_unit

__all__ = ["BDResult", "EvalConfig", "bd_metric", "bd_rate", "evaluate_unit", "run_eval", "summarise"]
