"""pytest fixtures and hooks for goldens (``hqa_golden``) and the metric history (``hqa_history``).

Registered by :mod:`hailo_qa.pytest_plugin.plugin` (``PLUGIN_MODULES``). The run id is made once on the xdist controller (or the
single process) and handed to every worker through ``workerinput``, so all rows of one session share it.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

RUN_ID_KEY = pytest.StashKey[str]()
STORE_KEY = pytest.StashKey[object]()
RECORDED_KEY = pytest.StashKey[bool]()
_WORKERINPUT = "hqa_run_id"


def _session(cfg: pytest.Config):
    from hailo_qa.pytest_plugin.plugin import get_session

    return get_session(cfg)


def pytest_configure(config: pytest.Config) -> None:
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None and _WORKERINPUT in workerinput:
        run_id = workerinput[_WORKERINPUT]
    elif os.environ.get("PYTEST_XDIST_TESTRUNUID") and workerinput is not None:
        run_id = "xdist-" + os.environ["PYTEST_XDIST_TESTRUNUID"][:16]
    else:
        from hailo_qa.store.history import new_run_id

        run_id = new_run_id()
    config.stash[RUN_ID_KEY] = run_id


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node) -> None:
    """xdist controller: hand this session's run id to each worker."""
    node.workerinput[_WORKERINPUT] = node.config.stash[RUN_ID_KEY]


def run_id(config: pytest.Config) -> str:
    """This session's run id (shared by all xdist workers)."""
    return config.stash[RUN_ID_KEY]


def _store(config: pytest.Config):
    """The process's History (opened on first use), or None when history is off."""
    if STORE_KEY not in config.stash:
        path = _session(config).history
        if path is None:
            config.stash[STORE_KEY] = None
        else:
            from hailo_qa.errors import QAError
            from hailo_qa.store.history import History

            try:
                config.stash[STORE_KEY] = History(path)
            except QAError as err:  # fails each test that records (FAILED with the message), not an ERROR
                raise err.with_context("--hqa-history") from None
    return config.stash[STORE_KEY]


def pytest_terminal_summary(terminalreporter, exitstatus, config: pytest.Config) -> None:
    store = config.stash.get(STORE_KEY, None)
    if store is not None and getattr(store, "_spill", None) is not None:
        terminalreporter.write_line(
            f"hailo-qa: the history '{store.location}' could not take {store.spilled} write(s); they are kept in "
            f"'{store._spill.location}': hailo-qa history push --history {store._spill.location} --to "
            f"{store.location}", red=True)


def pytest_unconfigure(config: pytest.Config) -> None:
    store = config.stash.get(STORE_KEY, None)
    if store is not None:
        store.close()


class HistoryRecorder:
    """What the ``hqa_history`` fixture yields: ``record(...)`` appends one metric row for this test."""

    def __init__(self, store, *, run_id: str, nodeid: str, fail_on_regression: bool) -> None:
        self.store = store
        self.run_id = run_id
        self.nodeid = nodeid
        self.fail_on_regression = fail_on_regression
        self.recorded: list = []
        self.regressions: list = []  # RegressionErrors, failed at the end of the test (every metric recorded first)

    @property
    def enabled(self) -> bool:
        return self.store is not None

    def record(self, *, model: str, metric: str, value: float, target: str, config: str = "",
               calib_size: int | None = None, variant: str = "", stage: str = "", backend=None,
               extra: Mapping[str, Any] | None = None):
        """Append one metric to the history (a no-op when history is off).

        With ``--hqa-fail-on-regression`` the metric is then compared with its accepted baseline and a regression
        fails the test (:class:`~hailo_qa.errors.RegressionError` with baseline, new value, delta and run id) when
        it ends — not here, so the test's remaining metrics are still measured and recorded.

        Returns:
            The stored :class:`~hailo_qa.store.history.MetricRow`, or None when history is off.
        """
        __tracebackhide__ = True
        from hailo_qa.store.history import gate, make_row

        row = make_row(run_id=self.run_id, model=model, metric=metric, value=value, target=target, config=config,
                       calib_size=calib_size, variant=variant, stage=stage, backend=backend, extra=extra,
                       nodeid=self.nodeid)
        if self.store is None:
            return None
        from hailo_qa.store.history import HistoryError

        try:
            self.store.record(row)
        except HistoryError as err:  # locked past the deadline, server gone: the row is spilled, the test fails
            pytest.fail(f"HistoryError: {err}", pytrace=False)
        self.recorded.append(row)
        if self.fail_on_regression:
            from hailo_qa.errors import RegressionError

            try:
                gate(self.store, row)
            except RegressionError as err:
                self.regressions.append(err)
        return row


@pytest.fixture
def hqa_history(request: pytest.FixtureRequest) -> HistoryRecorder:
    """Record metrics into the SQLite history (``--hqa-history PATH|off``), with provenance and run id.

    Example::

        def test_snr(hqa_model, hqa_history):
            snr = ...
            hqa_history.record(model=hqa_model.name, metric="snr_db", value=snr, target="emulator",
                               config="int8", calib_size=64, backend=runner.backend)
    """
    cfg = request.config
    rec = HistoryRecorder(_store(cfg), run_id=run_id(cfg), nodeid=request.node.nodeid,
                          fail_on_regression=_session(cfg).fail_on_regression)
    request.node.stash[RECORDED_KEY] = rec
    return rec


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call):
    report = yield
    rec = item.stash.get(RECORDED_KEY, None)
    if rec is not None and rec.regressions and report.when == "call":
        text = "\n\n".join(f"RegressionError: {e}" for e in rec.regressions)
        if report.passed:
            report.outcome, report.longrepr = "failed", text
        else:
            report.sections.append(("hailo_qa regressions", text))
    if rec is not None and rec.store is not None and rec.recorded and (
            report.when == "call" or (report.when != "call" and report.failed)):
        outcome = report.outcome if report.when == "call" else "error"
        try:
            rec.store.record_outcome(rec.run_id, item.nodeid, outcome)
        except Exception as err:  # never hide the test's own result behind a bookkeeping failure
            report.sections.append(("hailo_qa history", f"could not record outcome: {err}"))
    return report


class GoldenChecker:
    """What the ``hqa_golden`` fixture yields."""

    def __init__(self, root: Path, mode: str) -> None:
        self.root = root
        self.mode = mode
        self.outcomes: list = []

    def check(self, outputs: Mapping, *, model, target: str, name: str, backend,
              provenance: dict | None = None, atol: float = 0.0, rtol: float = 0.0,
              min_cosine: float | None = None):
        """Compare ``outputs`` with ``golden/<model>/<target>/<name>.npz`` (see :func:`hailo_qa.store.golden.check_golden`).

        Fails the test when the golden was created, rewritten (``--hqa-update-golden``), refused (provenance
        differs) or differs; passes on a match or with ``--hqa-regen-all``.

        Returns:
            The :class:`~hailo_qa.store.golden.GoldenOutcome` when the test may go on.
        """
        __tracebackhide__ = True
        from hailo_qa.errors import QAError
        from hailo_qa.store.golden import check_golden

        try:
            outcome = check_golden(outputs, root=self.root, model=model, target=target, name=name,
                                   backend=backend, provenance=provenance, atol=atol, rtol=rtol,
                                   min_cosine=min_cosine, mode=self.mode)
        except QAError as err:
            pytest.fail(f"{type(err).__name__}: {err}", pytrace=False)
        self.outcomes.append(outcome)
        if not outcome.passed:
            pytest.fail(outcome.message, pytrace=False)
        return outcome


@pytest.fixture
def hqa_golden(request: pytest.FixtureRequest) -> GoldenChecker:
    """Golden outputs with pytest-regressions semantics, stored under ``golden/<model>/<target>/``.

    A missing golden is created and the test fails ("golden created: ...; re-run to compare"); a mismatch writes
    ``<name>.obtained.npz`` and fails with per-output statistics; a golden from another model/stage/calibration is
    refused. ``--hqa-update-golden`` rewrites (tests fail naming the files), ``--hqa-regen-all`` rewrites (pass).

    Example::

        def test_float_golden(hqa_model, hqa_golden):
            with OnnxrtRunner(hqa_model.file) as r:
                out = r.infer(feeds)
            hqa_golden.check(out, model=hqa_model, target="float", name="sample0", backend=r.backend,
                             atol=1e-5)
    """
    s = _session(request.config)
    mode = "regen" if s.regen_all else "update" if s.update_golden else "compare"
    return GoldenChecker(Path(s.golden_dir), mode)
