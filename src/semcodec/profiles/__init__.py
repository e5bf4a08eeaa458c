"""Profiles: named compositions of coders. See :mod:`semcodec.profiles.base` for the contract."""

from .base import EncodeRequest, Profile
from .registry import (
    DEFAULT_PROFILE,
    get_profile,
    profile_classes,
    profile_for_id,
    register_profile,
)

__all__ = [
    "DEFAULT_PROFILE",
    "EncodeRequest",
    "Profile",
    "get_profile",
    "profile_classes",
    "profile_for_id",
    "register_profile",
]
