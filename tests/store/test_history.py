"""History store: round trip with provenance, validation, corrupt files, locking, concurrency, regression gate."""
from __future__ import annotations

import multiprocessing as mp
import sqlite3
import threading
import time

import pytest

from hailo_qa.errors import InputDataError, RegressionError
from hailo_qa.runners.base import BackendInfo
from hailo_qa.store import history as H

TC = {"onnxruntime": "1.0-test"}


def row(run="r1", value=30.0, metric="snr_db", **kw):
    kw.setdefault("model", "m")
    kw.setdefault("target", "emulator")
    return H.make_row(run_id=run, metric=metric, value=value, git="abc123", toolchain=TC, **kw)


@pytest.fixture
def hist(tmp_path):
    with H.History(tmp_path / "h" / "history.sqlite") as h:
        yield h


def test_round_trip_keeps_provenance(hist):
    be = BackendInfo("ort-emulator", "0.1", "emulator", config="int8", details={"device": "cpu-x"})
    hist.record(H.make_row(run_id="r1", model="yunet", metric="cosine", value=0.99, target="emulator",
                           calib_size=64, variant="v2", stage="stage1", backend=be, extra={"k": [1, 2]},
                           nodeid="tests/t.py::x"))
    (r,) = hist.rows()
    assert (r.run_id, r.model, r.variant, r.stage, r.target, r.config, r.calib_size, r.metric, r.value) == (
        "r1", "yunet", "v2", "stage1", "emulator", "int8", 64, "cosine", 0.99)
    assert (r.backend, r.backend_version, r.hailo, r.device, r.nodeid) == (
        "ort-emulator", "0.1", False, "cpu-x", "tests/t.py::x")
    assert r.git_commit == H.git_commit() and "onnxruntime" in r.toolchain and r.extra == {"k": [1, 2]}
    assert r.time.endswith("+00:00") and r.id == 1
    journal = hist.conn.execute("PRAGMA journal_mode").fetchone()[0]
    assert journal == "wal"


@pytest.mark.parametrize("kw,match", [
    ({"value": float("nan")}, "finite"), ({"value": "abc"}, "finite"), ({"value": float("inf")}, "finite"),
    ({"model": ""}, "model"), ({"metric": ""}, "metric"), ({"calib_size": -1}, "calib_size"),
    ({"calib_size": 1.5}, "calib_size")])
def test_bad_records_are_rejected(kw, match):
    args = {"run_id": "r", "model": "m", "metric": "snr_db", "value": 1.0, "target": "t", "toolchain": TC, "git": ""}
    args.update(kw)
    with pytest.raises(InputDataError, match=match):
        H.make_row(**args)


def test_git_commit_tolerates_no_repo_and_no_git(tmp_path, monkeypatch):
    assert H.git_commit.__wrapped__(tmp_path) == ""

    def no_git(*a, **k):
        raise FileNotFoundError("git")
    monkeypatch.setattr(H.subprocess, "run", no_git)
    assert H.git_commit.__wrapped__(tmp_path) == ""


@pytest.mark.parametrize("content", [b"this is not sqlite at all, it is the user's notes" * 10,
                                     b"SQLite format 3\x00" + b"\xff" * 5000])
def test_corrupt_db_is_a_clear_error_and_never_overwritten(tmp_path, content):
    p = tmp_path / "history.sqlite"
    p.write_bytes(content)
    with pytest.raises(H.HistoryError) as ei:
        H.History(p)
    assert "Hint:" in str(ei.value) and "never overwrites" in str(ei.value)
    assert p.read_bytes() == content


def test_unusable_location_is_a_clear_error(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(H.HistoryError, match="cannot be opened: '.*/file' is a file, not a folder"):
        H.History(tmp_path / "file" / "h.sqlite")
    with pytest.raises(H.HistoryError, match="cannot be opened: '.*/file' is a file, not a folder"):
        H.History(tmp_path / "file" / "deeper" / "h.sqlite", readonly=True)
    with pytest.raises(H.HistoryError, match="is not a file"):
        H.History(tmp_path)


def test_foreign_sqlite_schema_version_is_refused(tmp_path):
    p = tmp_path / "h.sqlite"
    with H.History(p):
        pass
    c = sqlite3.connect(p)
    c.execute("UPDATE hqa_meta SET value='99' WHERE key='schema'")
    c.commit()
    c.close()
    with pytest.raises(H.HistoryError, match="schema 99"):
        H.History(p)


def test_runs_accept_baseline_previous(hist):
    hist.record(row("r1", 30.0))
    hist.record(row("r2", 31.0))
    hist.record(row("r3", 29.0))
    assert [r.run_id for r in hist.runs()] == ["r1", "r2", "r3"] and hist.latest_run() == "r3"
    key = row("r3").key
    assert hist.baseline_for(key) is None
    hist.accept("r1")
    assert hist.baseline_for(key, exclude_run="r3").value == 30.0
    hist.accept("r2")
    assert hist.baseline_for(key, exclude_run="r3").run_id == "r2"
    assert hist.previous_for(key, before_run="r3").value == 31.0
    assert hist.previous_for(key, before_run="r1") is None
    assert [r.accepted for r in hist.runs()] == [True, True, False]
    other = row("r3", metric="snr_db", calib_size=128).key  # a different key has no baseline
    assert hist.baseline_for(other) is None
    with pytest.raises(H.HistoryError, match="has no rows") as ei:
        hist.accept("r9")
    assert "r1" in str(ei.value)


@pytest.mark.parametrize("metric,direction", [
    ("snr_db", "higher"), ("cosine_p5", "higher"), ("top1_agreement", "higher"), ("accuracy", "higher"),
    ("fps", "higher"), ("conformal_coverage", "higher"), ("p95_latency_ms", "lower"), ("max_abs_error", "lower"),
    ("ece", "lower"), ("lsb_error", "lower"), ("latency_cov", "lower"), ("node_count", None)])
def test_metric_direction(metric, direction):
    assert H.metric_direction(metric) == direction


@pytest.mark.parametrize("metric,base,new,regressed", [
    ("snr_db", 30.0, 29.8, False),   # within 1 %
    ("snr_db", 30.0, 29.0, True),
    ("snr_db", 30.0, 40.0, False),   # improvement
    ("latency_ms", 10.0, 10.9, False),  # within 10 % timing tolerance
    ("latency_ms", 10.0, 11.5, True),
    ("latency_ms", 10.0, 5.0, False),
    ("node_count", 10.0, 1.0, False),   # unknown direction: not gated
])
def test_check_regression(metric, base, new, regressed):
    b, n = row("r1", base, metric), row("r2", new, metric)
    reg = H.check_regression(n, b)
    assert (reg is not None) == regressed
    if reg:
        msg = reg.message()
        assert f"baseline {base:.6g} (run r1)" in msg and f"new {new:.6g}" in msg and "delta" in msg


def test_extra_overrides_direction_and_tolerance():
    b = row("r1", 1.0, "weird", extra={"direction": "lower", "rel_tol": 0.5})
    assert H.check_regression(row("r2", 1.4, "weird", extra={"direction": "lower", "rel_tol": 0.5}), b) is None
    assert H.check_regression(row("r2", 1.6, "weird", extra={"direction": "lower", "rel_tol": 0.5}), b) is not None


def test_gate_raises_with_delta_and_hint(hist):
    hist.record(row("r1", 30.0))
    hist.accept("r1")
    bad = row("r2", 25.0)
    hist.record(bad)
    with pytest.raises(RegressionError) as ei:
        H.gate(hist, bad)
    msg = str(ei.value)
    assert "baseline 30 (run r1)" in msg and "new 25" in msg and "delta -5" in msg
    assert "baseline accept --run r2" in msg
    H.gate(hist, row("r2", 29.9))  # within tolerance: no error


def test_lock_held_by_another_connection_is_retried(tmp_path):
    p = tmp_path / "h.sqlite"
    with H.History(p, busy_timeout_ms=20, retries=40) as h:
        other = sqlite3.connect(p, isolation_level=None, check_same_thread=False)
        other.execute("BEGIN IMMEDIATE")
        t = threading.Timer(0.3, lambda: other.execute("COMMIT"))
        t.start()
        try:
            h.record(row("r1"))  # waits for the lock through retries
        finally:
            t.join()
            other.close()
        assert h.count() == 1


def test_lock_never_released_is_a_clear_error(tmp_path):
    p = tmp_path / "h.sqlite"
    with H.History(p, busy_timeout_ms=10, retries=2) as h:
        other = sqlite3.connect(p, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(H.HistoryError, match="stayed locked"):
                h.record(row("r1"))
        finally:
            other.execute("ROLLBACK")
            other.close()


def _writer(path: str, worker: int, n: int, barrier) -> None:
    barrier.wait()
    with H.History(path) as h:
        for k in range(n):
            h.record(H.make_row(run_id="shared", model=f"m{worker}", metric="snr_db", value=float(k),
                                target="t", git="", toolchain=TC, nodeid=f"w{worker}::{k}"))


def test_four_processes_lose_no_rows(tmp_path):
    p = tmp_path / "history.sqlite"  # created concurrently by the workers themselves
    ctx = mp.get_context("fork")
    n = 150
    barrier = ctx.Barrier(4)
    procs = [ctx.Process(target=_writer, args=(str(p), w, n, barrier)) for w in range(4)]
    for pr in procs:
        pr.start()
    for pr in procs:
        pr.join(120)
    assert [pr.exitcode for pr in procs] == [0] * 4
    with H.History(p) as h:
        assert h.count() == 4 * n
        for w in range(4):
            vals = [r.value for r in h.rows(model=f"m{w}")]
            assert vals == [float(k) for k in range(n)]  # each worker's rows all there, in its order


def test_record_many_is_one_transaction(hist):
    assert hist.record_many([row("r1", float(i)) for i in range(50)]) == 50
    assert hist.count() == 50
    hist.record_outcome("r1", "t::x", "passed")
    assert hist.outcomes("r1") == {"t::x": "passed"}


def test_new_run_ids_sort_by_time_and_are_unique():
    a = H.new_run_id()
    time.sleep(1.01)
    b = H.new_run_id()
    assert a < b and len({H.new_run_id() for _ in range(50)}) == 50
