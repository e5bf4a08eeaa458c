"""Files written with the lossless weights of an earlier release keep decoding after a weights update:
the decoder falls back to the packaged earlier weights whose fingerprint the file names."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

import semcodec
from lossless_tiny import small_image, tiny_model_dir
from semcodec.errors import ProfileMismatchError
from semcodec.lossless import profile as lp


@pytest.fixture
def releases(tmp_path: Path, monkeypatch):
    """(old, new) weight folders; new is the packaged default, old is not packaged yet."""
    old = tiny_model_dir(tmp_path / "old", seed=1)
    new = tiny_model_dir(tmp_path / "new", seed=2)
    monkeypatch.delenv("SEMCODEC_LOSSLESS_WEIGHTS", raising=False)
    monkeypatch.setattr(lp, "DEFAULT_WEIGHTS", new)
    monkeypatch.setattr(lp, "EARLIER_WEIGHTS", tmp_path / "earlier")
    from semcodec.profiles import registry

    monkeypatch.setattr(registry, "_INSTANCES", {})  # profiles built here must not outlive the patch
    return old, new


def test_file_of_earlier_weights_decodes_with_the_packaged_earlier_weights(releases, tmp_path: Path):
    old, _ = releases
    x = small_image(16, 24, seed=4)
    data = semcodec.compress(x, profile="lossless", weights=str(old), adapt_steps=2)
    with pytest.raises(ProfileMismatchError):  # the new default weights alone cannot decode it
        semcodec.decode(data)
    shutil.copytree(old, tmp_path / "earlier" / "r1")
    assert np.array_equal(semcodec.decode(data).image, x)


def test_no_fallback_when_weights_are_given_explicitly(releases, tmp_path: Path):
    old, new = releases
    x = small_image(16, 24, seed=4)
    data = semcodec.compress(x, profile="lossless", weights=str(old), adapt_steps=2)
    shutil.copytree(old, tmp_path / "earlier" / "r1")
    with pytest.raises(ProfileMismatchError):
        semcodec.decode(data, weights=str(new))
    new_file = semcodec.compress(x, profile="lossless", adapt_steps=2)  # the default (new) weights
    assert np.array_equal(semcodec.decode(new_file).image, x)
