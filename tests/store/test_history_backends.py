"""The history on both backends (SQLite file, live PostgreSQL server): concurrency, machines, faults, bad input.

The PostgreSQL server is started by ``tests/store/conftest.py`` from the distribution's binaries.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from hailo_qa.cli import main
from hailo_qa.store import history as H

pytest_plugins = ("pytester",)
TC = {"onnxruntime": "1.0-test"}


def mk(run="r1", value=1.0, **kw):
    kw.setdefault("model", "m")
    kw.setdefault("target", "emulator")
    kw.setdefault("metric", "snr_db")
    return H.make_row(run_id=run, value=value, git="", toolchain=TC, **kw)


# ------------------------------------------------------------------------------------------ both backends
def test_round_trip_and_queries_on_both_backends(history_target):
    with H.History(history_target) as h:
        h.record(mk("r1", 30.0, host="build-host", calib_size=64, config="int8"))
        h.record(mk("r2", 29.0, host="pi-1", target="hailo8", extra={"device": "0000:01:00.0"}, calib_size=64,
                    config="int8"))
        h.record_many([mk("r3", float(i), host="pi-1") for i in range(5)])
        h.record_outcome("r1", "t::a", "passed")
        h.record_outcome("r1", "t::a", "failed")  # replaced, not duplicated
        h.accept("r1")
        assert h.count() == 7 and [r.run_id for r in h.runs()] == ["r1", "r2", "r3"]
        assert [r.hosts for r in h.runs()] == [("build-host",), ("pi-1",), ("pi-1",)]
        assert h.outcomes("r1") == {"t::a": "failed"} and h.accepted_runs() == ["r1"]
        (d,) = h.rows(run_id="r2")
        assert (d.host, d.device, d.target, d.calib_size) == ("pi-1", "0000:01:00.0", "hailo8", 64)
        assert h.baseline_for(mk("r9", calib_size=64, config="int8").key).value == 30.0
        assert h.previous_for(mk("r3").key, before_run="r3") is None
        before = h.rows(run_id="r1")[0]
        assert h.record(before) is None and h.count() == 7  # the same row (same uid) is stored once


def _writer(target: str, worker: int, n: int, barrier, host: str = "", device: str = "") -> None:
    barrier.wait()
    with H.History(target, spill=None) as h:
        for k in range(n):
            h.record(H.make_row(run_id="shared", model=f"m{worker}", metric="snr_db", value=float(k),
                                target="hailo8" if device else "emulator", git="", toolchain=TC,
                                nodeid=f"w{worker}::{k}", host=host or f"worker{worker}",
                                extra={"device": device} if device else None))


def _run_writers(target: str, specs: list[tuple]) -> None:
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(len(specs))
    procs = [ctx.Process(target=_writer, args=(target, *s[:2], barrier, *s[2:])) for s in specs]
    for p in procs:
        p.start()
    for p in procs:
        p.join(300)
    assert [p.exitcode for p in procs] == [0] * len(procs)


def test_four_workers_1000_rows_each_lose_nothing(history_target):
    n = 1000  # as many rows as a busy session writes per worker
    _run_writers(history_target, [(w, n) for w in range(4)])  # the history is created concurrently by them
    with H.History(history_target) as h:
        assert h.count() == 4 * n
        for w in range(4):
            assert [r.value for r in h.rows(model=f"m{w}")] == [float(k) for k in range(n)]


def test_two_machines_write_one_history(history_target):
    """A build host (emulator rows) and a Pi (device rows) writing at the same time: every row kept with its machine."""
    n = 300
    _run_writers(history_target, [(0, n, "build-host"), (1, n, "pi-5", "0000:01:00.0")])
    with H.History(history_target) as h:
        host = h.rows(model="m0")
        pi = h.rows(model="m1")
        assert len(host) == len(pi) == n
        assert {(r.host, r.target, r.device) for r in host} == {("build-host", "emulator", "")}
        assert {(r.host, r.target, r.device) for r in pi} == {("pi-5", "hailo8", "0000:01:00.0")}
        assert h.runs()[0].hosts == ("build-host", "pi-5")


# --------------------------------------------------------------------------------------- server faults
def test_server_that_does_not_answer_is_a_bounded_clear_error():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(H.HistoryError) as ei:  # bounded: it says how long it tried
        H.History(f"postgresql://u:topsecret@127.0.0.1:{port}/db", timeout_s=1.5)
    msg = str(ei.value)
    assert "cannot be reached (tried for 1.5 s)" in msg and "Hint:" in msg and "topsecret" not in msg and "***" in msg


def test_wrong_credentials_and_missing_database(pg_server):
    with pytest.raises(H.HistoryError, match="refused the credentials") as ei:
        H.History(pg_server.url(password="wrong-pw"), timeout_s=5)
    assert "wrong-pw" not in str(ei.value)
    with pytest.raises(H.HistoryError, match="does not exist"):
        H.History(pg_server.url("no_such_db"), timeout_s=5)
    with pytest.raises(H.HistoryError, match="names backend 'mysql'"):
        H.History("mysql://u:p@h/db")


def test_server_gone_mid_run_loses_no_row(pg_server, pg_url, tmp_path):
    """Decision: fail loudly and keep the rows. Writes retry until the deadline; then the rows go to a local spill
    file named in the error, and ``history push`` sends them when the server is back (idempotently)."""
    spill = tmp_path / "unsent.sqlite"
    h = H.History(pg_url, timeout_s=2, spill=spill)
    try:
        h.record(mk("r1", 1.0))
        pg_server.stop("fast")
        try:
            with pytest.raises(H.HistoryError) as ei:
                h.record(mk("r1", 2.0))
            msg = str(ei.value)
            assert "cannot be reached" in msg and str(spill) in msg and "history push" in msg
            with pytest.raises(H.HistoryError):  # the run goes on failing loudly, still keeping every row
                h.record_many([mk("r1", 3.0), mk("r1", 4.0)])
        finally:
            pg_server.start()
    finally:
        h.close()
    with H.History(spill) as s:
        assert sorted(r.value for r in s.rows()) == [2.0, 3.0, 4.0]
    for _ in range(2):  # pushed twice, stored once
        assert main(["history", "push", "--history", str(spill), "--to", pg_url]) == 0
    with H.History(pg_url) as h:
        assert sorted(r.value for r in h.rows()) == [1.0, 2.0, 3.0, 4.0]


# -------------------------------------------------------------------------------------- push/pull/merge
def test_push_pull_merge_are_idempotent(pg_url, tmp_path, capsys):
    pi, host, merged, pulled = (str(tmp_path / f"{n}.sqlite") for n in ("pi", "host", "merged", "pulled"))
    with H.History(pi) as h:
        h.record_many([mk("pi-run", float(i), host="pi", target="hailo8") for i in range(10)])
        h.record_outcome("pi-run", "t::lat", "passed")
        h.accept("pi-run")
    with H.History(host) as h:
        h.record_many([mk("host-run", float(i), host="build") for i in range(7)])
    assert main(["history", "push", "--history", pi, "--to", pg_url]) == 0
    assert "10 row(s), 10 new, 0 already there" in capsys.readouterr().out
    assert main(["history", "push", "--history", pi, "--to", pg_url]) == 0
    assert "10 row(s), 0 new, 10 already there" in capsys.readouterr().out
    assert main(["history", "push", "--history", host, "--to", pg_url, "--run", "host-run"]) == 0
    assert main(["history", "pull", "--from", pg_url, "--history", pulled]) == 0
    assert main(["history", "merge", pi, host, pi, "--into", merged]) == 0
    for target in (pg_url, pulled, merged):
        with H.History(target) as h:
            assert h.count() == 17 and h.accepted_runs() == ["pi-run"]
            assert h.outcomes("pi-run") == {"t::lat": "passed"}
            assert {r.host for r in h.rows()} == {"pi", "build"}
    capsys.readouterr()
    assert main(["history", "push", "--history", pi, "--to", pg_url, "--run", "nope"]) == 2
    assert "run 'nope' has no rows" in capsys.readouterr().err
    assert main(["history", "push", "--history", str(tmp_path / "missing.sqlite"), "--to", pg_url]) == 2
    assert "does not exist" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------ bad input
def _make_v1(path: Path) -> None:
    """A history as hailo-qa 0.1 (schema 1) wrote it."""
    c = sqlite3.connect(path)
    c.executescript("""
    CREATE TABLE hqa_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE metrics (id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL, time TEXT NOT NULL,
        model TEXT NOT NULL, variant TEXT NOT NULL DEFAULT '', stage TEXT NOT NULL DEFAULT '', target TEXT NOT NULL,
        config TEXT NOT NULL DEFAULT '', calib_size INTEGER, metric TEXT NOT NULL, value REAL NOT NULL,
        backend TEXT NOT NULL DEFAULT '', backend_version TEXT NOT NULL DEFAULT '', hailo INTEGER NOT NULL DEFAULT 0,
        git_commit TEXT NOT NULL DEFAULT '', toolchain TEXT NOT NULL DEFAULT '{}', device TEXT NOT NULL DEFAULT '',
        nodeid TEXT NOT NULL DEFAULT '', extra TEXT NOT NULL DEFAULT '{}');
    CREATE TABLE baselines (run_id TEXT PRIMARY KEY, accepted_at TEXT NOT NULL, note TEXT NOT NULL DEFAULT '');
    CREATE TABLE outcomes (run_id TEXT NOT NULL, nodeid TEXT NOT NULL, outcome TEXT NOT NULL, time TEXT NOT NULL,
        PRIMARY KEY (run_id, nodeid));
    INSERT INTO hqa_meta VALUES ('schema', '1');
    INSERT INTO metrics (run_id, time, model, target, metric, value) VALUES ('old', 't0', 'm', 'emulator', 'snr', 1.5);
    INSERT INTO metrics (run_id, time, model, target, metric, value) VALUES ('old', 't1', 'm', 'emulator', 'cos', .9);
    """)
    c.commit()
    c.close()


def test_schema_1_history_is_migrated_in_place(tmp_path):
    p = tmp_path / "v1.sqlite"
    _make_v1(p)
    with pytest.raises(H.HistoryError, match="cannot be migrated"):
        H.History(p, readonly=True)
    with H.History(p) as h:
        rows = h.rows()
        assert [(r.run_id, r.metric, r.value, r.host) for r in rows] == [("old", "snr", 1.5, ""), ("old", "cos", .9, "")]
        assert len({r.uid for r in rows}) == 2 and all(len(r.uid) == 32 for r in rows)
        h.record(mk("new"))
    c = sqlite3.connect(p)
    assert c.execute("SELECT value FROM hqa_meta").fetchone() == ("2",)
    c.close()


def test_foreign_sqlite_file_is_refused_and_never_modified(tmp_path, capsys):
    p = tmp_path / "app.db"
    c = sqlite3.connect(p)
    c.executescript("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO customers VALUES (1,'a');")
    c.commit()
    c.close()
    before, mtime = p.read_bytes(), p.stat().st_mtime_ns
    for readonly in (False, True):
        with pytest.raises(H.HistoryError, match="another application") as ei:
            H.History(p, readonly=readonly)
        assert "customers" in str(ei.value) and "not modified" in str(ei.value)
    assert main(["report", "--history", str(p), "--out", str(tmp_path / "r")]) == 2
    assert main(["baseline", "accept", "--latest", "--history", str(p)]) == 2
    assert "another application" in capsys.readouterr().err
    assert p.read_bytes() == before and p.stat().st_mtime_ns == mtime
    assert sorted(x.name for x in tmp_path.iterdir()) == ["app.db"]  # no -wal/-shm/spill left beside it


@pytest.mark.parametrize("content", [b"", b"SQLite format 3\x00" + bytes(range(256)) * 40,
                                     b"SQLite format 3\x00" + b"\x10\x00\x01\x01" + b"\x00" * 4000])
def test_corrupt_or_truncated_file_is_a_clear_error(tmp_path, content, capsys):
    p = tmp_path / "h.sqlite"
    p.write_bytes(content)
    if not content:  # an empty file is a new history
        with H.History(p) as h:
            assert h.count() == 0
        return
    with pytest.raises(H.HistoryError) as ei:
        H.History(p)
    assert "Hint:" in str(ei.value)
    assert p.read_bytes() == content
    assert main(["report", "--history", str(p), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: history") and "Traceback" not in err


def test_directory_in_place_of_history_and_report_out_that_is_a_file(tmp_path, capsys):
    d = tmp_path / "hist.sqlite"
    d.mkdir()
    for argv in (["report", "--history", str(d)], ["baseline", "show", "--history", str(d)],
                 ["history", "push", "--history", str(d), "--to", str(tmp_path / "x.sqlite")]):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert str(d) in err and ("is not a file" in err or "does not exist" in err) and "Traceback" not in err
    db = tmp_path / "ok.sqlite"
    with H.History(db) as h:
        h.record(mk())
    out = tmp_path / "report-out"
    out.write_text("precious")
    assert main(["report", "--history", str(db), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "is not a folder" in err and "Hint:" in err and out.read_text() == "precious"


def _drop_file_override_capabilities() -> None:
    """Root ignores file modes; drop CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH and CAP_FOWNER from this process so a
    read-only file is read-only to it too (it stays uid 0 and can still read its own Python install)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                    ("inheritable", ctypes.c_uint32)]

    hdr, data = Header(0x20080522, 0), (Data * 2)()
    if libc.capget(ctypes.byref(hdr), data) != 0:
        raise OSError(ctypes.get_errno(), "capget")
    mask = ~((1 << 1) | (1 << 2) | (1 << 3)) & 0xFFFFFFFF
    data[0].effective &= mask
    data[0].permitted &= mask
    if libc.capset(ctypes.byref(hdr), data) != 0:
        raise OSError(ctypes.get_errno(), "capset")


def _as_other_user(fn, *args) -> int:
    """Run ``fn(*args)`` in a child for which read-only files are read-only (root's file-override capabilities
    dropped). Returns the exit code."""
    ctx = mp.get_context("fork")

    def child():
        if os.geteuid() == 0:
            _drop_file_override_capabilities()
        sys.exit(fn(*args))
    p = ctx.Process(target=child)
    p.start()
    p.join(120)
    return p.exitcode


def _read_only_report(db: str, out: str) -> int:
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        show = main(["baseline", "show", "--history", db])
        rep = main(["report", "--history", db, "--out", out, "--quiet"])
        with H.History(db, readonly=True) as h:
            n = h.count()
        try:
            H.History(db).record(mk("x"))
            wrote = 1
        except H.HistoryError as e:
            wrote = 0 if "read-only" in str(e) or "readonly" in str(e) else 3
    return 0 if (show, rep, n, wrote) == (0, 0, 3, 0) else 10 + show * 4 + rep * 2 + wrote + 100 * (n != 3)


def test_report_and_baseline_show_work_on_a_read_only_history(tmp_path):
    root = Path(tempfile.mkdtemp(prefix="hqa-ro-"))
    try:
        os.chmod(root, 0o755)
        db = root / "history.sqlite"
        with H.History(db) as h:
            h.record_many([mk("r1", 1.0), mk("r2", 2.0), mk("r3", 3.0)])
        out = Path(tempfile.mkdtemp(prefix="hqa-ro-out-"))
        os.chmod(out, 0o777)
        from hailo_qa.store import report as R

        with H.History(db) as h:  # import everything a report needs before the child drops its rights
            R.write_report(h, tmp_path / "warm", progress=None)
        os.chmod(db, 0o444)
        os.chmod(root, 0o555)
        before = db.read_bytes()
        assert _as_other_user(_read_only_report, str(db), str(out / "rep")) == 0
        assert (out / "rep" / "report.html").is_file() and db.read_bytes() == before
    finally:
        os.chmod(root, 0o755)
        import shutil

        shutil.rmtree(root, ignore_errors=True)


def test_locked_history_cli_waits_bounded_then_clear_error_and_keeps_the_rows(tmp_path):
    db = tmp_path / "h.sqlite"
    with H.History(db) as h:
        h.record(mk("r1"))
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # a stuck writer (a database browser with an open transaction)
    try:
        env = {**os.environ, "HAILO_QA_HISTORY_TIMEOUT": "2", "PYTHONPATH": str(Path(__file__).parents[2])}
        # a hang would trip the subprocess timeout; the message shows the 2 s deadline was the one applied
        r = subprocess.run([sys.executable, "-m", "hailo_qa", "baseline", "accept", "--latest", "--history",
                            str(db)], capture_output=True, text=True, timeout=300, env=env)
        assert r.returncode == 2 and "stayed locked for 2 s" in r.stderr and "Traceback" not in r.stderr
        h = H.History(db, timeout_s=0.5)  # opening an up-to-date history needs no write lock
        with pytest.raises(H.HistoryError) as ei:
            h.record_many([mk("r2", float(i)) for i in range(5)])
        h.close()
        assert "stayed locked" in str(ei.value) and "nothing was lost" in str(ei.value)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    (spill,) = tmp_path.glob("h.sqlite.unsent-*.sqlite")
    assert main(["history", "push", "--history", str(spill), "--to", str(db)]) == 0
    with H.History(db) as h:
        assert [r.run_id for r in h.runs()] == ["r1", "r2"] and h.count() == 6


LOCKED_TEST = """
def test_records(hqa_history):
    hqa_history.record(model="m", metric="snr_db", value=1.0, target="emulator")
"""


def test_locked_history_under_pytest_fails_the_test_and_keeps_the_row(pytester, monkeypatch):
    db = pytester.path / "h.sqlite"
    with H.History(db) as h:
        h.record(mk("r1"))
    pytester.makepyfile(test_lk=LOCKED_TEST)
    monkeypatch.setenv("HAILO_QA_HISTORY_TIMEOUT", "2")
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        r = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--hqa-history", str(db), timeout=300)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    r.assert_outcomes(failed=1)  # failed, not errored, and not hung
    out = r.stdout.str()
    assert "HistoryError" in out and "stayed locked for 2 s" in out and "history push" in out
    assert "Traceback" not in out
    (spill,) = pytester.path.glob("h.sqlite.unsent-*.sqlite")
    with H.History(spill) as s:
        assert [(x.model, x.value) for x in s.rows()] == [("m", 1.0)]


# --------------------------------------------------------------------------------------------- kill -9
KILL_WRITER = """
import os, sys, itertools
from hailo_qa.store import history as H
with H.History(sys.argv[1]) as h:
    for k in itertools.count():
        h.record_many([H.make_row(run_id=f"{os.getpid()}-{k}", model="m", metric="snr_db", value=float(i), target="t", git="",
                                  toolchain={}) for i in range(20)])
        h.record_outcome(f"{os.getpid()}-{k}", "t::x", "passed")
        print(k, flush=True)
"""


def test_history_writer_killed_at_random_points_keeps_an_intact_database(tmp_path):
    db = tmp_path / "h.sqlite"
    script = tmp_path / "writer.py"
    script.write_text(KILL_WRITER)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    rng = random.Random(14)
    counts = []
    for _ in range(12):
        p = subprocess.Popen([sys.executable, str(script), str(db)], stdout=subprocess.PIPE, env=env, text=True)
        assert p.stdout.readline()  # at least one batch committed, then kill at a random moment
        time.sleep(rng.uniform(0, 0.15))
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
        p.stdout.close()
        c = sqlite3.connect(db)
        try:
            assert c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            per_run = c.execute("SELECT run_id, COUNT(*) FROM metrics GROUP BY run_id").fetchall()
        finally:
            c.close()
        assert all(n == 20 for _, n in per_run)  # each batch all or nothing
        counts.append(len(per_run))
    assert counts == sorted(counts) and counts[-1] >= 12
    with H.History(db) as h:
        assert h.count() == 20 * counts[-1]


# ------------------------------------------------------------------- done-when: two machines, one server
MACHINE_TEST = """
import os
from hailo_qa.runners.base import BackendInfo

def test_figures(hqa_history):
    pi = os.environ["HAILO_QA_HOST"] == "pi-5"
    for model, snr, p95 in (("yunet", 31.5, 4.2), ("mtcnn_onet", 27.0, 1.3)):
        if pi:
            be = BackendInfo("hailort", "4.23", "hailo8", hailo=True, details={"device": "0000:01:00.0"})
            hqa_history.record(model=model, metric="latency_p95_ms", value=p95, target="hailo8", config="int8",
                               calib_size=64, backend=be)
        else:
            be = BackendInfo("ort-emulator", "0.1", "emulator", config="int8")
            hqa_history.record(model=model, metric="snr_db", value=snr, target="emulator", config="int8",
                               calib_size=64, backend=be)
"""


def test_build_host_and_pi_write_one_server_and_the_report_shows_both(pg_url, tmp_path):
    """Done-when of the issue: two pytest sessions presenting as a build host and a Pi write to one PostgreSQL
    history at the same time; ``hailo-qa report --history postgresql://...`` shows their rows side by side,
    summary first."""
    (tmp_path / "test_machine.py").write_text(MACHINE_TEST)
    repo = str(Path(__file__).parents[2])
    procs = []
    for host in ("build-host", "pi-5"):
        env = {**os.environ, "HAILO_QA_HOST": host, "PYTHONPATH": repo, "HAILORT_LOGGER_PATH": "NONE"}
        env.pop("PYTEST_XDIST_WORKER", None)
        env.pop("PYTEST_XDIST_TESTRUNUID", None)
        procs.append(subprocess.Popen([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p",
                                       "no:xdist", "--hqa-history", pg_url, "test_machine.py"], cwd=tmp_path,
                                      env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    outs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    out = tmp_path / "report"
    r = subprocess.run([sys.executable, "-m", "hailo_qa", "report", "--history", pg_url, "--out", str(out),
                        "--quiet"], capture_output=True, text=True, env={**os.environ, "PYTHONPATH": repo},
                       timeout=300)
    assert r.returncode == 0, r.stderr
    md = (out / "report.md").read_text()
    assert md.index("## Summary") < md.index("## Latest value of every figure")
    assert "(postgresql): 2 run(s) from 2 machine(s) (build-host, pi-5)" in md
    summary = md[md.index("## Summary"):md.index("\n## ", md.index("## Summary") + 5)]
    (yunet,) = [ln for ln in summary.splitlines() if ln.startswith("| yunet |")]
    assert "| pass |" in yunet
    assert "build-host: ort-emulator@0.1 (emulator)" in yunet and "pi-5: hailort@4.23 (hailo8 0000:01:00.0)" in yunet
    rows = [ln for ln in md.splitlines() if ln.startswith("| yunet | ")]
    assert any("| emulator | int8 | 64 | snr_db | 31.5 |" in ln and "| build-host |" in ln for ln in rows)
    assert any("| hailo8 | int8 | 64 | latency_p95_ms | 4.2 |" in ln and "| pi-5 (0000:01:00.0) |" in ln
               for ln in rows)
    assert "yunet: INT8 vs INT16" not in md and (out / "report.html").read_text().count("<figure>") == 0
