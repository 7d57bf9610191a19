"""CONTRACT FAKE of HailoRT 4.23's ``hailo_platform`` — tests only, never a runtime fallback.

Mirrors exactly the subset hailo-qa calls (names, signatures, exception classes, shapes without batch), per
hailo-ai/hailort@hailo8 ``bindings/python/platform/hailo_platform/pyhailort/pyhailort.py``. Its numbers are
synthetic (a deterministic function of the input) and its version says ``fake``. It refuses to import unless
``tests.fakes.install_fake_hailort`` put it there.
"""
import sys

if not getattr(sys, "_hailo_qa_fake_hailort_allowed", False):
    raise ImportError("tests/fakes/hailo_platform is a test-only contract fake; install it with "
                      "tests.fakes.install_fake_hailort(monkeypatch)")

from hailo_platform.pyhailort.pyhailort import (  # noqa: E402,F401
    HEF,
    Device,
    FormatType,
    HailoRTException,
    HailoRTInvalidHEFException,
    HailoRTNotFoundException,
    HailoRTPCIeDriverException,
    HailoRTTimeout,
    HailoSchedulingAlgorithm,
    VDevice,
)

__version__ = "4.23.0+fake"
