"""The lazy profile index must agree with what the profile modules actually register."""

from semcodec.profiles import registry


def test_profile_index_matches_registry():
    classes = registry.profile_classes()  # imports every module in PROFILE_MODULES
    # other tests may register throw-away profiles (ids >= 250) from their own modules: skip those
    classes = {n: c for n, c in classes.items() if c.__module__.startswith("semcodec.")}
    assert {name: cls.profile_id for name, cls in classes.items()} == {
        name: pid for name, (pid, _) in registry.PROFILE_INDEX.items()
    }
    for name, (_, module) in registry.PROFILE_INDEX.items():
        assert classes[name].__module__.startswith(module), (name, classes[name].__module__)
        assert module in registry.PROFILE_MODULES or any(m.startswith(module) for m in registry.PROFILE_MODULES)


def test_lookup_by_name_imports_only_its_module():
    import subprocess
    import sys

    code = ("import sys, semcodec; from semcodec.profiles import get_profile; get_profile('jpeg');"
            "print('diffusers' in sys.modules, 'semcodec.generative.itc' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120).stdout.split()
    assert out == ["False", "False"]
