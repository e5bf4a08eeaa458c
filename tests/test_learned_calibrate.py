"""The lic scale policy is calibrated for the metric its weights were trained for."""

from __future__ import annotations

import math

from semcodec.image.learned.calibrate import _score, metric_of


def test_metric_follows_training_terms() -> None:
    assert metric_of({"train": {"terms": {"ms-ssim": 1.0}}}) == "ms-ssim"
    assert metric_of({"train": {"terms": {"mse": 1.0}}}) == "psnr"
    assert metric_of({"train": {"terms": {"mse": 0.5, "ms-ssim": 0.5}}}) == "both"
    assert metric_of({}) == "both"  # weights without a record keep the old mixed score


def test_scores() -> None:
    assert _score(30.0, 0.9, "psnr") == 30.0
    assert math.isclose(_score(30.0, 0.9, "ms-ssim"), 10.0)  # −10·log10(1 − 0.9)
    assert math.isclose(_score(30.0, 0.99, "both"), 50.0)
