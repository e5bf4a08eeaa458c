"""Learned image codecs (CompressAI): models, deterministic bitstreams, shipped weights, profile ``lic``."""
