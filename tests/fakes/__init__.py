"""Contract fakes for vendor packages (tests only). Install them through a fixture, never import them directly.

Example::

    def test_x(monkeypatch):
        hp, state = install_fake_hailort(monkeypatch)
"""
from __future__ import annotations

import importlib
import sys
from pathlib import Path

FAKES_DIR = Path(__file__).resolve().parent


def install_fake_hailort(monkeypatch):
    """Make ``import hailo_platform`` return the contract fake for the rest of this test; returns (module, state).

    Uses ``monkeypatch`` so ``sys.path``/``sys.modules`` are restored afterwards; the fake refuses to import
    without the flag this sets.
    """
    for name in [m for m in sys.modules if m == "hailo_platform" or m.startswith("hailo_platform.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(sys, "_hailo_qa_fake_hailort_allowed", True, raising=False)
    monkeypatch.syspath_prepend(str(FAKES_DIR))
    hp = importlib.import_module("hailo_platform")
    fake = importlib.import_module("hailo_platform._fake")
    # the modules must not outlive the test: re-insert them through monkeypatch so undo removes them
    for name in [m for m in sys.modules if m == "hailo_platform" or m.startswith("hailo_platform.")]:
        mod = sys.modules.pop(name)
        monkeypatch.setitem(sys.modules, name, mod)
    return hp, fake.reset()


VENDOR_HAILORT = "hailort-4.23.0"
"""The real HailoRT build in ``../shared/vendor/`` (see its README) that the fakes are checked against."""


def real_hailort():
    """The real ``hailo_platform`` binding, or a skip naming why it is absent (never the contract fake)."""
    import pytest

    if getattr(sys, "_hailo_qa_fake_hailort_allowed", False):
        raise RuntimeError("real_hailort() called while the contract fake is installed")
    try:
        hp = importlib.import_module("hailo_platform")
    except ImportError as err:
        pytest.skip(f"the real HailoRT binding (hailo_platform) is not installed ({err}); .ci/run installs it from "
                    f"../shared/vendor/{VENDOR_HAILORT}/ when present")
    if "fake" in str(getattr(hp, "__version__", "")) or str(FAKES_DIR) in str(getattr(hp, "__file__", "")):
        raise RuntimeError(f"hailo_platform resolves to the contract fake ({hp.__file__}) outside install_fake_hailort")
    return hp


def hailortcli_exe() -> str:
    """``hailortcli`` from PATH or from ``../shared/vendor/``, or a skip naming why there is none."""
    import shutil

    import pytest

    from hailo_qa import config

    exe = shutil.which("hailortcli")
    if exe:
        return exe
    vendored = config.SHARED_DIR / "vendor" / VENDOR_HAILORT / "bin" / "hailortcli"
    if vendored.is_file():
        return str(vendored)
    pytest.skip(f"hailortcli is neither on PATH nor at {vendored}")
