"""Typed errors: every failure a user can cause maps to one of these, so the CLI can exit cleanly."""

from __future__ import annotations


class SemcodecError(Exception):
    """Base class; the CLI prints the message and exits with ``exit_code``."""

    exit_code = 2


class FormatError(SemcodecError):
    """The bytes are not a valid .smc container (truncated, corrupted, wrong magic)."""

    exit_code = 3


class UnsupportedVersionError(FormatError):
    """The container was written by a format version this build cannot read."""


class ProfileMismatchError(SemcodecError):
    """The container needs a profile, or component configuration/weights, that this build does not have."""

    exit_code = 4


class MissingComponentError(SemcodecError):
    """A model/weights/backend needed by a profile is not installed or configured."""

    exit_code = 5


class ImageTooLargeError(SemcodecError):
    """Refused: the image exceeds the configured pixel cap (protects against huge allocations)."""

    exit_code = 6


class RateError(SemcodecError):
    """No operating point of the profile fits under the requested bitrate."""

    exit_code = 7
