"""``semcodec report``: one self-contained HTML page from an eval results folder."""

from .html import build_report

__all__ = ["build_report"]
