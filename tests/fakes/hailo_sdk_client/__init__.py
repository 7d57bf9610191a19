"""Contract fake of Hailo's Dataflow Compiler Python API (``hailo_sdk_client``), for tests only.

Installed only by a test fixture (``install(monkeypatch)`` puts it into ``sys.modules``); runtime code can never
import it. Every number it returns is synthetic (see :mod:`.runner.client_runner`).
"""
from .exposed_definitions import CalibrationDataType, InferenceContext, States
from .runner.client_runner import ClientRunner

__version__ = "3.33.0+contract-fake"

__all__ = ["CalibrationDataType", "ClientRunner", "InferenceContext", "States", "__version__"]
