"""hailo-qa: validation and regression for neural networks deployed on the Hailo-8 NPU.

The package follows the flow a model takes (``../shared/ARCHITECTURE.md``), one subpackage per stage::

    graph/    ONNX in → lint findings, Stage 1 (device) + Stage 2 (host), the equivalence proof
    quant/    Stage 1 + data → calibration sets, model scripts, noise analysis, quantization error
    runners/  one small file per backend: ONNX Runtime, the built-in emulator, the DFC, HailoRT, host pipeline
    hw/       HEFs and devices: reading HEFs, device discovery, latency, the compile pipeline
    evaluate/ pure metric functions, output comparators, embeddings, faces, the deployment checklist
    store/    goldens, the history of every figure, reports
    jobs/     jobs across stages (``hailo-qa validate``)
    pytest_plugin/, commands/ + cli.py   the two faces: pytest and the command line

Dependencies point one way, down this list of layers (a test enforces it)::

    cli, commands, pytest_plugin  →  jobs  →  store  →  hw  →  quant  →  graph  →  evaluate  →  runners  →  core

where *core* is the top-level modules every stage uses (``errors``, ``config``, ``manifest``, ``inputs``,
``options``, ``fsutil``, ``toolchain``). Each subpackage exports its public names lazily (``from hailo_qa.quant import
calib_set_for_model``); importing the package imports nothing heavy.
"""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings
from collections.abc import Callable, Mapping

from hailo_qa.errors import QAError

__all__ = ["QAError"]
__version__ = "0.1.0"


def lazy_exports(package: str, exports: Mapping[str, str]) -> tuple[Callable, Callable, list[str]]:
    """``(__getattr__, __dir__, __all__)`` for a subpackage that exports ``name → module`` lazily (PEP 562).

    A name is imported from ``package.module`` on first access, so ``import hailo_qa.hw`` stays cheap.
    """
    names = sorted(exports)

    def __getattr__(name: str):
        mod = exports.get(name)
        if mod is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{mod}"), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(names) | set(vars(sys.modules[package])))

    return __getattr__, __dir__, names


MOVED_MODULES: dict[str, str] = {
    # the pre-0.2 flat layout → the stage subpackages; kept for one release (see README "Layout")
    "hailo_qa.calib": "hailo_qa.quant.calib",
    "hailo_qa.model_script": "hailo_qa.quant.model_script",
    "hailo_qa.noise": "hailo_qa.quant.noise",
    "hailo_qa.quant_eval": "hailo_qa.quant.evaluation",
    "hailo_qa.runners.emulator": "hailo_qa.quant.emulator",
    "hailo_qa.hef": "hailo_qa.hw.hef",
    "hailo_qa.device": "hailo_qa.hw.device",
    "hailo_qa.latency": "hailo_qa.hw.latency",
    "hailo_qa.compile": "hailo_qa.hw.compile",
    "hailo_qa.metrics": "hailo_qa.evaluate.metrics",
    "hailo_qa.compare": "hailo_qa.evaluate.compare",
    "hailo_qa.embedding": "hailo_qa.evaluate.embedding",
    "hailo_qa.faces": "hailo_qa.evaluate.faces",
    "hailo_qa.deploy": "hailo_qa.evaluate.deploy",
    "hailo_qa.golden": "hailo_qa.store.golden",
    "hailo_qa.history": "hailo_qa.store.history",
    "hailo_qa.report": "hailo_qa.store.report",
    "hailo_qa.plugin": "hailo_qa.pytest_plugin.plugin",
    "hailo_qa.pytest_emulator": "hailo_qa.pytest_plugin.emulator",
    "hailo_qa.pytest_golden": "hailo_qa.pytest_plugin.golden",
    "hailo_qa.pytest_hw": "hailo_qa.pytest_plugin.hw",
    "hailo_qa.hostops": "hailo_qa.runners.hostops",
    "hailo_qa.validate": "hailo_qa.jobs.validate",
}
"""Old module path → new home. ``import hailo_qa.calib`` still works for one release, with a DeprecationWarning."""


class _MovedModuleFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Resolves an old module path to the module at its new home (the same module object, not a copy)."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in MOVED_MODULES:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec):
        new = MOVED_MODULES[spec.name]
        warnings.warn(f"{spec.name} moved to {new}; the old path goes away in the next release",
                      DeprecationWarning, stacklevel=3)
        return importlib.import_module(new)

    def exec_module(self, module) -> None:
        pass


if not any(isinstance(f, _MovedModuleFinder) for f in sys.meta_path):
    sys.meta_path.append(_MovedModuleFinder())
