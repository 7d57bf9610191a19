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
