"""Profiles looked up by name (CLI) or id (container header) through :data:`.table.PROFILES`.

A lookup imports only the module of that profile (the generative ones pull in diffusers). Instances
are cached per (profile, options), so heavy models load once per process.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

from ..errors import MissingComponentError, ProfileMismatchError
from .base import Profile
from .table import DEFAULT_PROFILE, PROFILES

__all__ = ["DEFAULT_PROFILE", "get_profile", "profile_class", "profile_classes", "profile_factory",
           "profile_for_id"]


#: optional packages (pyproject extras) a profile module may import at its top -> the extra
OPTIONAL_PACKAGES = {"diffusers": "generative", "open_clip": "generative", "huggingface_hub": "generative",
                     "peft": "lora"}


def _not_installed(name: str, package: str) -> type[Profile]:
    """A stand-in class for a profile whose module needs an optional package that is not installed:
    it lists like the others and is unavailable with a reason naming the extra."""
    entry = PROFILES.entry(name)
    reason = f"needs {package}, not installed: pip install 'semcodec[{OPTIONAL_PACKAGES[package]}]'"

    def refuse(self, *args: Any, **kwargs: Any) -> Any:
        raise MissingComponentError(f"profile {name!r}: {reason}")

    attrs: dict[str, Any] = {"availability": classmethod(lambda cls: reason), "encode": refuse, "decode": refuse,
                             "description": f"(needs the '{OPTIONAL_PACKAGES[package]}' extra)"}
    cls = type(f"NotInstalled_{name}", (Profile,), attrs)
    cls.name, cls.profile_id = name, int(entry.id)
    if getattr(entry, "quality", None) is not None:
        cls.quality = entry.quality
    return cls


def profile_class(name: str) -> type[Profile]:
    """The class of profile ``name`` (imports its module only); unknown names list the valid ones."""
    try:
        return PROFILES.get(name)
    except ModuleNotFoundError as e:
        package = (e.name or "").split(".")[0]
        if package not in OPTIONAL_PACKAGES:
            raise
        return _not_installed(name, package)


def profile_classes() -> dict[str, type[Profile]]:
    """Every profile, imported, ordered by id (a stand-in for one whose optional extra is missing)."""
    classes = {name: profile_class(name) for name, _ in PROFILES.items()}
    return dict(sorted(classes.items(), key=lambda kv: kv[1].profile_id))


_INSTANCES: dict[str, Profile] = {}
_MAX_INSTANCES = 16


def _cached(cls: type[Profile], options: dict[str, Any]) -> Profile:
    """One instance per (profile, options, SEMCODEC_* environment) per process: heavy models load once per
    worker, not per image. The environment is part of the key because profiles read their default
    weights and models from it."""
    env = {k: v for k, v in os.environ.items() if k.startswith("SEMCODEC_")}
    try:
        key = cls.name + json.dumps([options, env], sort_keys=True, default=str)
    except TypeError:
        return cls(**options)
    inst = _INSTANCES.get(key)
    if inst is None:
        if len(_INSTANCES) >= _MAX_INSTANCES:
            _INSTANCES.pop(next(iter(_INSTANCES)))
        inst = _INSTANCES[key] = cls(**options)
    return inst


def _available(cls: type[Profile], options: dict[str, Any], what: str) -> Profile:
    reason = cls.availability_for(options)
    if reason:
        raise MissingComponentError(f"{what}: {reason}")
    return _cached(cls, options)


def get_profile(name: str, **options: Any) -> Profile:
    cls = profile_class(name)
    return _available(cls, options, f"profile {name!r} is not available here")


def profile_for_id(profile_id: int, **options: Any) -> Profile:
    name = PROFILES.name_for_id(profile_id)
    if name is None:
        raise ProfileMismatchError(
            f"this file was written with profile id {profile_id}, which this build of semcodec does not know;"
            " decode it with the semcodec version that wrote it"
        )
    cls = profile_class(name)
    return _available(cls, options, f"this file needs profile {name!r}, not available here")


def profile_factory(name: str) -> Callable[..., Profile]:
    return lambda **kw: get_profile(name, **kw)
