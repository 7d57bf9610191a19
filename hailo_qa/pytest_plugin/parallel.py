"""pytest-xdist (``-n N``): the workers share a model's expensive work instead of each repeating it.

Registered by :mod:`hailo_qa.pytest_plugin.plugin` (``PLUGIN_MODULES``).

- **Scheduling.** Unless the user chose a ``--dist`` mode, ``-n N`` sends the tests of one test module on one
  manifest model (every test whose id names the model: ``hqa_model``/``hqa_variant`` parameters, per-model
  parametrizations) to one worker as one unit, so that module's fixtures for the model (split, calibration sets,
  face sets, float references) are built once; what modules share (splits, quantized models, noise analyses) comes
  from the one cache below. Units go out largest first (xdist's ``--loadscope-reorder``); other tests are units of
  one, sent as workers free up. Not one unit per model: YuNet, DEIMv2 and MobileFaceNet each take 52–57 s of a
  174 s cold ``pytest -m emulator``, so per-model units left one worker with two of them (1.28× instead of ~2×).
  (Our own scheduler rather than ``xdist_group`` marks with ``--dist loadgroup``: with pytest 9.2, xdist 3.8 cannot
  rename the items it groups, ``item._nodeid``, so its groups are silently ignored.)
- **One cache.** The controller decides the work folder (``--hqa-work-dir``, else the state folder's) and hands its
  absolute path to every worker (``workerinput``), so all workers of a run read and write one content-addressed
  cache (splits, quantized models, noise analyses), where a file lock makes a worker that needs an artefact another
  is building wait for it instead of building it again. Two unrelated runs may share the folder: every entry is
  keyed by the content it was made from and written atomically.
- **Threads.** Each worker gives optimized ONNX Runtime sessions (float and quantized inference) cores ÷ workers
  intra-op threads (:func:`hailo_qa.runners.onnxrt.set_default_threads`; ``HAILO_QA_ORT_THREADS`` overrides), so
  two workers on two cores run two busy threads, not four. A serial run keeps ONNX Runtime's default (one thread per
  core), and so do unoptimized sessions everywhere (calibration ranges: their last bits depend on the thread count,
  see :func:`hailo_qa.runners.onnxrt.session_options`), so a worker's results are a serial run's.
"""
from __future__ import annotations

import os
import re
from collections.abc import Iterable

import pytest

GROUP_PREFIX = "hqa-"
"""Work unit of a module's tests on a model: ``<module path>::hqa-<model name>``."""
_WORK_DIR = "hqa_work_dir"


def user_chose_dist(config: pytest.Config) -> bool:
    """Whether the command line (or ``addopts``) named a distribution mode (``--dist X``, ``-d``)."""
    ns = getattr(config, "known_args_namespace", None)
    return bool(getattr(ns, "distload", False)) or getattr(ns, "dist", "no") not in (None, "no")


def model_of(nodeid: str, names: Iterable[str]) -> str | None:
    """The manifest model a test runs on, read from its id: a model name that is a whole parameter id
    (``test_x[yunet]``, ``test_x[int8-calib16-yunet]``, ``test_x[mobilefacenet[int8-calib16@emulator]]``; the
    longest name first). None for a test of no model."""
    params = nodeid[nodeid.find("["):] if "[" in nodeid else ""
    for name in sorted(names, key=len, reverse=True):
        if params and re.search(rf"[\[-]{re.escape(name)}(?=[\]\[-])", params):
            return name
    return None


def unit_of(nodeid: str, names: Iterable[str]) -> str:
    """The work unit of a test: its module and model (``tests/test_x.py::hqa-yunet``) when its id names a manifest
    model, else the test itself."""
    name = model_of(nodeid, names)
    return f"{nodeid.split('::', 1)[0]}::{GROUP_PREFIX}{name}" if name else nodeid


def model_scheduler(config: pytest.Config, log):
    """xdist's ``loadscope`` scheduler with one work unit per test module and manifest model (:func:`unit_of`) and one
    per other test; units are sent largest first (``--loadscope-reorder``, xdist's default)."""
    from xdist.scheduler import LoadScopeScheduling

    from hailo_qa.pytest_plugin.plugin import get_session

    try:
        names = tuple(get_session(config).manifest.names())
    except Exception:  # noqa: BLE001 - a broken manifest is reported by the workers' collection, as without -n
        names = ()

    class ModelScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return unit_of(nodeid, names)

    return ModelScheduling(config, log)


@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """``-n N`` without a ``--dist`` choice: a module's tests of one manifest model on one worker
    (:func:`model_scheduler`)."""
    if user_chose_dist(config):
        return None
    return model_scheduler(config, log)


def worker_threads(workers: int, cores: int | None = None) -> int:
    """ONNX Runtime intra-op threads for each of ``workers`` workers: cores ÷ workers, at least 1."""
    if cores is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // max(1, workers))


def pytest_configure(config: pytest.Config) -> None:
    workerinput = getattr(config, "workerinput", None)
    if workerinput is None:
        return
    from pathlib import Path

    from hailo_qa.pytest_plugin.plugin import get_session
    from hailo_qa.runners.onnxrt import set_default_threads

    if _WORK_DIR in workerinput:
        get_session(config).work_dir = Path(workerinput[_WORK_DIR])
    set_default_threads(worker_threads(int(workerinput.get("workercount", 1))))


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node) -> None:
    """xdist controller: every worker gets this run's work folder (absolute: one cache for the whole run)."""
    from hailo_qa.pytest_plugin.plugin import get_session

    node.workerinput[_WORK_DIR] = str(get_session(node.config).work_dir.absolute())
