"""Profiles: named compositions of coders. See :mod:`semcodec.profiles.base` for the contract and
:mod:`semcodec.profiles.table` for the one table that registers them."""

from .base import EncodeRequest, Profile, SentStream
from .quality import Quality
from .registry import DEFAULT_PROFILE, get_profile, profile_class, profile_classes, profile_for_id
from .settings import Settings, option
from .table import PROFILES

__all__ = [
    "DEFAULT_PROFILE",
    "PROFILES",
    "EncodeRequest",
    "Profile",
    "Quality",
    "SentStream",
    "Settings",
    "get_profile",
    "option",
    "profile_class",
    "profile_classes",
    "profile_for_id",
]
