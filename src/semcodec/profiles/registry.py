"""Profiles are registered by decorator and looked up by name (CLI) or id (container header)."""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from typing import Any, TypeVar

from ..errors import MissingComponentError, ProfileMismatchError
from .base import Profile

P = TypeVar("P", bound=type[Profile])

_BY_NAME: dict[str, type[Profile]] = {}
_BY_ID: dict[int, type[Profile]] = {}

#: Modules whose import registers profiles. Each capability adds its module here.
PROFILE_MODULES: list[str] = [
    "semcodec.image.profiles",
    "semcodec.image.learned.profile",
    "semcodec.generative.perco.profile",
    "semcodec.generative.resulic.profile",
    "semcodec.generative.itc",
    "semcodec.generative.sedic",
    "semcodec.lossless.profile",
]

#: name -> (profile id, module registering it), so a lookup by name or id imports only that module
#: (the generative ones pull in diffusers). ``test_profile_index_matches_registry`` keeps it honest.
PROFILE_INDEX: dict[str, tuple[int, str]] = {
    "jpeg": (1, "semcodec.image.profiles"),
    "webp": (2, "semcodec.image.profiles"),
    "avif": (3, "semcodec.image.profiles"),
    "jxl": (4, "semcodec.image.profiles"),
    "j2k": (5, "semcodec.image.profiles"),
    "heif": (6, "semcodec.image.profiles"),
    "lic": (16, "semcodec.image.learned.profile"),
    "itc": (32, "semcodec.generative.itc"),
    "sedic": (33, "semcodec.generative.sedic"),
    "perco": (34, "semcodec.generative.perco.profile"),
    "resulic": (35, "semcodec.generative.resulic.profile"),
    "lossless": (48, "semcodec.lossless.profile"),
}

DEFAULT_PROFILE = "avif"

_loaded = False


def register_profile(cls: P) -> P:
    """Class decorator: make a profile reachable by ``cls.name`` and ``cls.profile_id``."""
    if cls.name in _BY_NAME and _BY_NAME[cls.name] is not cls:
        raise ValueError(f"profile name {cls.name!r} registered twice")
    if cls.profile_id in _BY_ID and _BY_ID[cls.profile_id] is not cls:
        raise ValueError(f"profile id {cls.profile_id} registered twice")
    _BY_NAME[cls.name] = cls
    _BY_ID[cls.profile_id] = cls
    return cls


def _load_all() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for mod in PROFILE_MODULES:
        importlib.import_module(mod)


def profile_classes() -> dict[str, type[Profile]]:
    _load_all()
    return dict(sorted(_BY_NAME.items(), key=lambda kv: kv[1].profile_id))


_INSTANCES: dict[str, Profile] = {}
_MAX_INSTANCES = 16


def _cached(cls: type[Profile], options: dict[str, Any]) -> Profile:
    """One instance per (profile, options) per process: heavy models load once per worker, not per image."""
    try:
        key = cls.name + json.dumps(options, sort_keys=True, default=str)
    except TypeError:
        return cls(**options)
    inst = _INSTANCES.get(key)
    if inst is None:
        if len(_INSTANCES) >= _MAX_INSTANCES:
            _INSTANCES.pop(next(iter(_INSTANCES)))
        inst = _INSTANCES[key] = cls(**options)
    return inst


def _load_for(name: str | None = None, profile_id: int | None = None) -> None:
    """Import just the module that registers ``name`` / ``profile_id``; everything if it is not indexed."""
    for pname, (pid, module) in PROFILE_INDEX.items():
        if pname == name or pid == profile_id:
            importlib.import_module(module)
            if (name is not None and name in _BY_NAME) or (profile_id is not None and profile_id in _BY_ID):
                return
    _load_all()


def get_profile(name: str, **options: Any) -> Profile:
    if name not in _BY_NAME:
        _load_for(name=name)
    try:
        cls = _BY_NAME[name]
    except KeyError:
        raise MissingComponentError(
            f"unknown profile {name!r}; available: {', '.join(sorted(_BY_NAME))}"
        ) from None
    reason = cls.availability_for(options)
    if reason:
        raise MissingComponentError(f"profile {name!r} is not available here: {reason}")
    return _cached(cls, options)


def profile_for_id(profile_id: int, **options: Any) -> Profile:
    if profile_id not in _BY_ID:
        _load_for(profile_id=profile_id)
    cls = _BY_ID.get(profile_id)
    if cls is None:
        raise ProfileMismatchError(
            f"this file was written with profile id {profile_id}, which this build of semcodec does not know;"
            " decode it with the semcodec version that wrote it"
        )
    reason = cls.availability_for(options)
    if reason:
        raise MissingComponentError(f"this file needs profile {cls.name!r}, not available here: {reason}")
    return _cached(cls, options)


def profile_factory(name: str) -> Callable[..., Profile]:
    return lambda **kw: get_profile(name, **kw)
