"""What vendor toolchain pieces are present, found lazily and without side effects at import.

Nothing here imports ``hailo_sdk_client`` or ``hailo_platform`` at module import; each probe does it on call and
caches the answer for the process.
"""
from __future__ import annotations

import functools
import importlib
import importlib.metadata as md
import shutil
from dataclasses import dataclass


@dataclass(frozen=True)
class Component:
    """One piece of the toolchain: whether it was found, its version, and why not if it was not."""

    name: str
    found: bool
    version: str | None = None
    reason: str | None = None

    def describe(self) -> str:
        if self.found:
            return f"{self.name}={self.version or '?'}"
        return f"{self.name}=absent"


def _dist_version(*names: str) -> str | None:
    for n in names:
        try:
            return md.version(n)
        except md.PackageNotFoundError:
            continue
    return None


def _probe_module(module: str, label: str, dists: tuple[str, ...]) -> Component:
    try:
        mod = importlib.import_module(module)
    except ImportError as err:
        return Component(label, False, reason=f"{module} is not installed ({err.__class__.__name__}: {err})")
    except Exception as err:  # a broken vendor install must not break collection
        return Component(label, False, reason=f"importing {module} failed: {err.__class__.__name__}: {err}")
    version = getattr(mod, "__version__", None) or _dist_version(*dists)
    return Component(label, True, version=str(version) if version else None)


@functools.cache
def dfc() -> Component:
    """The Hailo Dataflow Compiler (``hailo_sdk_client``)."""
    return _probe_module("hailo_sdk_client", "dfc", ("hailo_dataflow_compiler", "hailo-dataflow-compiler"))


@functools.cache
def hailort() -> Component:
    """HailoRT's Python binding (``hailo_platform``)."""
    return _probe_module("hailo_platform", "hailort", ("hailort", "hailo_platform"))


def hailortcli() -> str | None:
    """Path of the ``hailortcli`` program, if on PATH."""
    return shutil.which("hailortcli")


def onnxruntime_version() -> str:
    import onnxruntime

    return onnxruntime.__version__


def versions() -> dict[str, str]:
    """Versions of every component that produces numbers (for provenance)."""
    import numpy
    import onnx

    out = {"onnx": onnx.__version__, "onnxruntime": onnxruntime_version(), "numpy": numpy.__version__}
    try:
        out["hailo_qa"] = md.version("hailo-qa")
    except md.PackageNotFoundError:
        out["hailo_qa"] = "dev"
    for comp in (dfc(), hailort()):
        if comp.found:
            out[comp.name] = comp.version or "?"
    return out


def require_emulator(backend: str, *, option: str = "--backend") -> None:
    """Refuse, once and before any work, an emulator backend that cannot run here (``dfc`` without the DFC).

    Raises:
        EnvironmentProblem: ``backend`` is ``dfc`` and ``hailo_sdk_client`` is not importable.
    """
    from hailo_qa.errors import EnvironmentProblem

    comp = dfc()
    if backend == "dfc" and not comp.found:
        raise EnvironmentProblem(f"{option} dfc asks for the Hailo Dataflow Compiler emulator, but hailo_sdk_client "
                                 "is not importable", note=comp.reason or "expected the Hailo Dataflow Compiler wheel",
                                 hint=f"install the DFC (Hailo Developer Zone; see README 'Vendor toolchain'), or use "
                                      f"{option} ort (hailo-qa's built-in approximation) / auto")
