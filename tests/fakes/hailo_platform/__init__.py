"""CONTRACT FAKE of HailoRT 4.23's ``hailo_platform`` — tests only, never a runtime fallback.

Exports exactly what the real ``hailo_platform`` exports for the subset hailo-qa calls (``HailoRTTimeout`` and the
other subclasses are NOT exported: they live in ``hailo_platform.pyhailort.pyhailort``, as in HailoRT).
tests/fakes/test_conformance.py compares this package with the real binding. Its numbers are synthetic and its
version says ``fake``. It refuses to import unless ``tests.fakes.install_fake_hailort`` put it there.
"""
import sys

if not getattr(sys, "_hailo_qa_fake_hailort_allowed", False):
    raise ImportError("tests/fakes/hailo_platform is a test-only contract fake; install it with "
                      "tests.fakes.install_fake_hailort(monkeypatch)")

from hailo_platform.pyhailort.pyhailort import (  # noqa: E402,F401
    HEF,
    Device,
    FormatOrder,
    FormatType,
    HailoCommunicationClosedException,
    HailoRTException,
    HailoRTStreamAbortedByUser,
    HailoSchedulingAlgorithm,
    HailoStreamDirection,
    VDevice,
)

__version__ = "4.23.0+fake"
