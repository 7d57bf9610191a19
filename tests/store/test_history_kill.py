"""History writers killed with ``kill -9`` at random moments, many times, on both backends (and during a schema
migration): every batch is all or nothing, every row is complete, every batch the writer saw committed is there,
and SQLite's ``PRAGMA integrity_check`` says ok. (The quick version, 12 kills on SQLite, is in
``test_history_backends.py``.)
"""
from __future__ import annotations

import itertools
import multiprocessing as mp
import os
import random
import shutil
import signal
import sqlite3
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from hailo_qa.store import history as H

BATCH = 20

CTX = mp.get_context("fork")  # the children start with hailo_qa imported: a kill round costs milliseconds


def _writer(target: str, tag: str, ack_fd: int) -> None:
    """Record batches forever; after each batch and its outcome commit, say so on ``ack_fd`` (one short write)."""
    with H.History(target, spill=None) as h:
        for k in itertools.count():
            run = f"{tag}-{k}"
            h.record_many([H.make_row(run_id=run, model="m", metric="snr_db", value=float(i), target="emulator",
                                      calib_size=i, git="", toolchain={"onnxruntime": "1"},
                                      extra={"i": i, "run": run}) for i in range(BATCH)])
            h.record_outcome(run, "t::x", "passed")
            os.write(ack_fd, f"{run}\n".encode())


def _check(target: str, acknowledged: set[str], verified: set[str]) -> int:
    """The history after a kill: every batch whole and complete, nothing acknowledged missing. Returns #batches.

    Every batch is counted in SQL each time; batches not seen before (``verified`` grows) are read row by row."""
    if not H.is_url(target):
        with sqlite3.connect(target) as c:
            assert c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    with H.History(target, readonly=True) as h:
        with h.engine.connect() as c:
            per_run = {r[0]: tuple(r[1:]) for r in c.execute(sa.text(
                "SELECT run_id, COUNT(*), COUNT(DISTINCT value), MIN(value), MAX(value), COUNT(DISTINCT uid) "
                "FROM metrics GROUP BY run_id"))}
            dup_uids = c.execute(sa.text("SELECT COUNT(*) - COUNT(DISTINCT uid) FROM metrics")).scalar()
            done = {r[0] for r in c.execute(sa.select(H.OUTCOMES.c.run_id))}
        whole = (BATCH, BATCH, 0.0, float(BATCH - 1), BATCH)
        assert all(v == whole for v in per_run.values()), {k: v for k, v in per_run.items() if v != whole}
        assert dup_uids == 0
        assert acknowledged <= set(per_run), sorted(acknowledged - set(per_run))[:3]  # nothing committed was lost
        assert done <= set(per_run)  # an outcome is only ever written after its batch
        for run in set(per_run) - verified:  # each row exactly as written
            rs = h.rows(run_id=run)
            assert all((r.model, r.metric, r.target, r.calib_size, dict(r.extra), dict(r.toolchain))
                       == ("m", "snr_db", "emulator", int(r.value), {"i": int(r.value), "run": run},
                           {"onnxruntime": "1"}) for r in rs), run
            assert all(len(r.uid) == 32 for r in rs)
            verified.add(run)
    return len(per_run)


def _kill_writers(target: str, rounds: int, seed: int) -> list[int]:
    rng = random.Random(seed)
    acknowledged: set[str] = set()
    verified: set[str] = set()
    counts = []
    for k in range(rounds):
        writers = []
        for j in range(2):  # two writers: one of them usually holds the lock when killed
            r, w = os.pipe()
            p = CTX.Process(target=_writer, args=(target, f"w{k}-{j}", w), daemon=True)
            p.start()
            os.close(w)
            writers.append((p, os.fdopen(r)))
        for _, acks in writers:  # at least one batch committed by each, then kill at a random moment
            line = acks.readline()
            assert line, "a writer died before its first batch"
            acknowledged.add(line.strip())
        time.sleep(rng.uniform(0, 0.3))
        for p, _ in writers:
            os.kill(p.pid, signal.SIGKILL)
        for p, acks in writers:
            p.join()
            assert p.exitcode == -signal.SIGKILL
            acknowledged.update(x.strip() for x in acks.read().splitlines() if x.strip())
            acks.close()
        counts.append(_check(target, acknowledged, verified))
    assert counts == sorted(counts)
    return counts


@pytest.mark.slow
def test_sqlite_history_writers_killed_60_times(tmp_path):
    counts = _kill_writers(str(tmp_path / "h.sqlite"), rounds=30, seed=15)
    assert counts[-1] >= 60  # 30 rounds x 2 writers, each acknowledged at least one batch


@pytest.mark.slow
def test_postgresql_history_writers_killed_24_times(pg_url):
    counts = _kill_writers(pg_url, rounds=12, seed=16)
    assert counts[-1] >= 24


# --------------------------------------------------------------------------------------- kill -9 in a migration
def _open(db: str) -> None:
    H.History(db, spill=None).close()


def _make_big_v1(path: Path, rows: int) -> None:
    from tests.store.test_history_backends import _make_v1

    _make_v1(path)
    with sqlite3.connect(path) as c:
        c.executemany("INSERT INTO metrics (run_id, time, model, target, metric, value) VALUES (?, 't', 'm', "
                      "'emulator', 'snr', ?)", ((f"r{i // 100}", float(i)) for i in range(rows)))


@pytest.mark.slow
def test_schema_migration_killed_at_random_moments_leaves_schema_1_or_2_whole(tmp_path):
    """Migration 1 → 2 (new columns, a uid per row, a unique index) is one transaction: a kill at any moment leaves
    the old schema or the new one, with every row, and the next open migrates it."""
    v1 = tmp_path / "v1.sqlite"
    n = 20_000
    _make_big_v1(v1, n - 2)
    shutil.copy(v1, tmp_path / "timed.sqlite")
    t0 = time.monotonic()
    _open(str(tmp_path / "timed.sqlite"))
    took = time.monotonic() - t0  # how long a migration takes here: the kills are spread over 1.3 times that
    rng = random.Random(17)
    seen = {"1": 0, "2": 0}
    for k in range(12):
        db = tmp_path / f"h{k}.sqlite"
        shutil.copy(v1, db)
        p = CTX.Process(target=_open, args=(str(db),), daemon=True)
        p.start()
        time.sleep(rng.uniform(0, 1.3 * took))
        os.kill(p.pid, signal.SIGKILL)
        p.join()
        with sqlite3.connect(db) as c:
            assert c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            schema = c.execute("SELECT value FROM hqa_meta WHERE key='schema'").fetchone()[0]
            cols = {r[1] for r in c.execute("PRAGMA table_info(metrics)")}
            assert c.execute("SELECT COUNT(*) FROM metrics").fetchone()[0] == n
            if schema == "1":
                assert "uid" not in cols and "host" not in cols
            else:
                assert schema == "2" and {"uid", "host"} <= cols
                assert c.execute("SELECT COUNT(DISTINCT uid) FROM metrics WHERE uid IS NOT NULL").fetchone()[0] == n
        seen[schema] += 1
        with H.History(db) as h:  # the next open finishes the job
            assert h.count() == n
    assert seen["1"] >= 1 and seen["2"] >= 1, seen  # kills landed on both sides of the commit
