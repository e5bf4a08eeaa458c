"""Learned image codecs (CompressAI): models, deterministic bitstreams, shipped weights, profile ``lic``."""

from ...registry import Entry, Registry

#: Learned image models by name (the ``model`` of a weights folder's config.json, ``train-codec --model``).
MODELS: Registry = Registry("learned model", {
    "lic-small": Entry(None, "semcodec.image.learned.models:LicSmall"),
    "lic-checkerboard": Entry(None, "semcodec.image.learned.models:LicCheckerboard"),
    "bmshj2018-hyperprior": Entry(None, "semcodec.image.learned.models:bmshj2018_hyperprior"),
    "mbt2018-mean": Entry(None, "semcodec.image.learned.models:mbt2018_mean"),
    "cheng2020-attn": Entry(None, "semcodec.image.learned.models:cheng2020_attn"),
})
