"""``semcodec profiles`` tells a user without weights what to set, instantly and without model libraries."""

from __future__ import annotations

import json
import os
import subprocess
import sys

CHECK = """
import json, sys, time
from semcodec.profiles import profile_class
classes = {n: profile_class(n) for n in ("itc", "sedic", "perco", "resulic")}
loaded = sorted(m for m in ("diffusers", "transformers") if m in sys.modules)
t = time.perf_counter()
out = {n: c.availability() for n, c in classes.items()}
out["itc_with_model"] = classes["itc"].availability_for({"model": "some/sd"})
out["perco_with_unet"] = classes["perco"].availability_for({"unet": "dir"})
seconds = time.perf_counter() - t
print(json.dumps({"reasons": out, "seconds": seconds, "loaded_before": loaded,
                  "loaded": sorted(m for m in ("diffusers", "transformers") if m in sys.modules)}))
"""


def _run(**env: str) -> dict:
    base = {k: v for k, v in os.environ.items() if not k.startswith("SEMCODEC_") or k == "SEMCODEC_TAEF2"}
    res = subprocess.run([sys.executable, "-c", CHECK], env={**base, **env}, capture_output=True, text=True,
                         check=True, timeout=300)
    return json.loads(res.stdout.strip().splitlines()[-1])


def test_generative_profiles_say_which_weights_to_set_without_loading_model_libraries():
    got = _run()
    r = got["reasons"]
    assert r["itc"] == r["sedic"] == "needs weights: set SEMCODEC_SD_MODEL or --set model=..."
    assert r["perco"] == "needs weights: set SEMCODEC_PERCO_MODEL or --set model=..."
    assert r["itc_with_model"] is None and r["perco_with_unet"] is None
    assert got["loaded_before"] == [] and got["loaded"] == []  # neither the profile classes nor the check
    assert got["seconds"] <= 1.0


def test_configured_weights_make_the_profiles_available():
    r = _run(SEMCODEC_SD_MODEL="stabilityai/stable-diffusion-2-1-base", SEMCODEC_PERCO_MODEL="runs/perco")["reasons"]
    assert r["itc"] is None and r["sedic"] is None and r["perco"] is None
