"""The SQLite history of every metric of every run, baselines, and the regression gate.

One row per recorded figure, with its provenance (run id, model, variant, stage, target, precision config,
calibration size, backend and version, git commit, toolchain versions, device, time, test nodeid).

Concurrency: pytest-xdist workers (and several machines on a shared disk that honours locks) write the same file.
The database runs in WAL mode with a ``busy_timeout``; each write is one short ``BEGIN IMMEDIATE`` transaction, retried
with backoff on ``database is locked``/``busy``. A file that is not a readable hailo-qa history is a
:class:`HistoryError`; it is never recreated over the user's data.

Regression gate: a metric is compared with the latest row for the same key
(model, variant, stage, target, config, calib_size, metric) from an *accepted* run (``hailo-qa baseline accept``).
Direction comes from the metric name (:func:`metric_direction`); tolerances from :func:`tolerance_for`.
"""
from __future__ import annotations

import datetime as _dt
import functools
import json
import math
import re
import secrets
import sqlite3
import subprocess
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hailo_qa import config
from hailo_qa.errors import InputDataError, InputFileError, RegressionError

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS hqa_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS metrics (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL, time TEXT NOT NULL,
    model TEXT NOT NULL, variant TEXT NOT NULL DEFAULT '', stage TEXT NOT NULL DEFAULT '',
    target TEXT NOT NULL, config TEXT NOT NULL DEFAULT '', calib_size INTEGER,
    metric TEXT NOT NULL, value REAL NOT NULL,
    backend TEXT NOT NULL DEFAULT '', backend_version TEXT NOT NULL DEFAULT '', hailo INTEGER NOT NULL DEFAULT 0,
    git_commit TEXT NOT NULL DEFAULT '', toolchain TEXT NOT NULL DEFAULT '{}', device TEXT NOT NULL DEFAULT '',
    nodeid TEXT NOT NULL DEFAULT '', extra TEXT NOT NULL DEFAULT '{}');
CREATE INDEX IF NOT EXISTS metrics_key ON metrics (model, target, metric, config, calib_size);
CREATE INDEX IF NOT EXISTS metrics_run ON metrics (run_id);
CREATE TABLE IF NOT EXISTS baselines (
    run_id TEXT PRIMARY KEY, accepted_at TEXT NOT NULL, note TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS outcomes (
    run_id TEXT NOT NULL, nodeid TEXT NOT NULL, outcome TEXT NOT NULL, time TEXT NOT NULL,
    PRIMARY KEY (run_id, nodeid));
"""

_COLUMNS = ("run_id", "time", "model", "variant", "stage", "target", "config", "calib_size", "metric", "value",
            "backend", "backend_version", "hailo", "git_commit", "toolchain", "device", "nodeid", "extra")

KEY_FIELDS = ("model", "variant", "stage", "target", "config", "calib_size", "metric")


class HistoryError(InputFileError):
    """The history database is unreadable, corrupt, not a hailo-qa history, or stays locked."""


def utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="microseconds")


def new_run_id() -> str:
    """A sortable, unique run id: ``20261121T120000Z-1a2b3c``."""
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


@functools.cache
def git_commit(repo: str | Path = config.REPO_ROOT) -> str:
    """``git rev-parse HEAD`` of ``repo``, or ``""`` when git or the repository is not there."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


@dataclass(frozen=True)
class MetricRow:
    """One recorded figure with its provenance. ``toolchain`` and ``extra`` are dicts (stored as JSON)."""

    run_id: str
    model: str
    metric: str
    value: float
    target: str
    variant: str = ""
    stage: str = ""
    config: str = ""
    calib_size: int | None = None
    backend: str = ""
    backend_version: str = ""
    hailo: bool = False
    git_commit: str = ""
    toolchain: Mapping[str, str] = field(default_factory=dict)
    device: str = ""
    nodeid: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)
    time: str = ""
    id: int | None = None

    @property
    def key(self) -> tuple:
        """(model, variant, stage, target, config, calib_size, metric): what a baseline is matched on."""
        return tuple(getattr(self, k) for k in KEY_FIELDS)

    def _params(self) -> tuple:
        d = asdict(self)
        d["toolchain"] = json.dumps(dict(self.toolchain), sort_keys=True)
        d["extra"] = json.dumps(dict(self.extra), sort_keys=True, default=str)
        d["hailo"] = int(self.hailo)
        d["time"] = self.time or utc_now()
        return tuple(d[c] for c in _COLUMNS)

    @classmethod
    def _from_sql(cls, r: sqlite3.Row) -> "MetricRow":
        d = {k: r[k] for k in r.keys()}
        d["toolchain"] = json.loads(d["toolchain"] or "{}")
        d["extra"] = json.loads(d["extra"] or "{}")
        d["hailo"] = bool(d["hailo"])
        return cls(**d)


@dataclass(frozen=True)
class RunSummary:
    """One run: id, first/last time, row count, git commit, whether it is an accepted baseline."""

    run_id: str
    started: str
    finished: str
    rows: int
    git_commit: str
    accepted: bool


def make_row(*, run_id: str, model: str, metric: str, value: float, target: str, config: str = "",
             calib_size: int | None = None, variant: str = "", stage: str = "", backend=None,
             extra: Mapping[str, Any] | None = None, nodeid: str = "", git: str | None = None,
             toolchain: Mapping[str, str] | None = None) -> MetricRow:
    """Validate inputs and build a :class:`MetricRow` (a BackendInfo fills backend, version, hailo and device).

    Raises:
        InputDataError: empty names, a value that is not a finite number, or a bad calib_size.
    """
    ctx = f"{model} | history"
    for label, v in (("model", model), ("metric", metric), ("target", target)):
        if not isinstance(v, str) or not v:
            raise InputDataError(f"history record has an empty or non-string {label} ({v!r})",
                                 note=f"expected a non-empty {label} name", hint=f"pass {label}='...'", context=ctx)
    try:
        fval = float(value)
    except (TypeError, ValueError):
        fval = math.nan
    if not math.isfinite(fval):
        raise InputDataError(f"metric '{metric}' has value {value!r}", note="expected a finite number",
                             hint="a NaN/Inf metric means the measurement failed: check the outputs for NaN",
                             context=ctx)
    if calib_size is not None and (isinstance(calib_size, bool) or not isinstance(calib_size, int) or calib_size < 0):
        raise InputDataError(f"calib_size is {calib_size!r}", note="expected a non-negative int or None",
                             hint="pass the calibration set size, e.g. 64", context=ctx)
    if toolchain is None:
        from hailo_qa import toolchain as tc

        toolchain = tc.versions()
    b_name = b_ver = device = ""
    hailo = False
    if backend is not None:
        b_name, b_ver, hailo = backend.name, backend.version, bool(backend.hailo)
        device = str(backend.details.get("device", "") or "")
        if not config:
            config = backend.config
    extra = dict(extra or {})
    device = str(extra.pop("device", "") or device)
    return MetricRow(run_id=run_id, model=model, metric=metric, value=fval, target=target, variant=variant,
                     stage=stage, config=config, calib_size=calib_size, backend=b_name, backend_version=b_ver,
                     hailo=hailo, git_commit=git_commit() if git is None else git, toolchain=dict(toolchain),
                     device=device, nodeid=nodeid, extra=extra)


# --------------------------------------------------------------------------------------------------------- store
class History:
    """The history database. Open one per process; every call uses one short transaction.

    Args:
        path: the SQLite file. Created (with its directory) when absent.
        retries: attempts on ``database is locked`` beyond ``busy_timeout``. Defaults to 20.
        busy_timeout_ms: SQLite's own wait for a lock. Defaults to 30000.

    Raises:
        HistoryError: the file exists but is not a readable hailo-qa history.
    """

    def __init__(self, path: str | Path, *, retries: int = 20, busy_timeout_ms: int = 30000) -> None:
        self.path = Path(path)
        self.retries = retries
        self._conn: sqlite3.Connection | None = None
        hint = (f"move '{self.path}' aside (hailo-qa never overwrites a history), or pass --hqa-history "
                f"PATH / --history PATH for a new one")
        if self.path.exists() and not self.path.is_file():
            raise HistoryError(f"history '{self.path}' is not a file", note="expected an SQLite database",
                               hint=hint)
        if self.path.is_file() and self.path.stat().st_size > 0:
            with self.path.open("rb") as f:
                head = f.read(16)
            if head != b"SQLite format 3\x00":
                raise HistoryError(f"history '{self.path}' is not an SQLite database (header {head[:15]!r})",
                                   note="expected the SQLite file written by hailo-qa", hint=hint)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise HistoryError(f"cannot create the directory of history '{self.path}': {err}",
                               note="expected a writable directory", hint="pass --hqa-history PATH elsewhere") from err
        try:
            conn = sqlite3.connect(self.path, timeout=busy_timeout_ms / 1000, isolation_level=None)
            conn.row_factory = sqlite3.Row
            self._conn = conn
            self._retry(lambda: conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}"))
            self._retry(lambda: conn.execute("PRAGMA journal_mode=WAL"))
            conn.execute("PRAGMA synchronous=NORMAL")
            with self._tx() as c:
                for stmt in filter(None, (s.strip() for s in _SCHEMA.split(";"))):
                    c.execute(stmt)
                c.execute("INSERT OR IGNORE INTO hqa_meta (key, value) VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
                got = c.execute("SELECT value FROM hqa_meta WHERE key='schema'").fetchone()[0]
            if int(got) != SCHEMA_VERSION:
                raise HistoryError(f"history '{self.path}' has schema {got}", note=f"expected {SCHEMA_VERSION}",
                                   hint="use the hailo-qa version that wrote it, or start a new history")
            bad = conn.execute("PRAGMA quick_check").fetchone()[0]
            if bad != "ok":
                raise HistoryError(f"history '{self.path}' failed SQLite's integrity check: {bad}",
                                   note="expected an intact database", hint=hint)
        except sqlite3.DatabaseError as err:
            self.close()
            raise HistoryError(f"history '{self.path}' cannot be used: {err}",
                               note="expected a readable SQLite database written by hailo-qa", hint=hint) from err
        except BaseException:
            self.close()
            raise

    # plumbing ----------------------------------------------------------------------------------------------
    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> "History":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise HistoryError(f"history '{self.path}' is closed", hint="open a new History(path)")
        return self._conn

    def _retry(self, fn):
        delay = 0.01
        for attempt in range(self.retries + 1):
            try:
                return fn()
            except sqlite3.OperationalError as err:
                msg = str(err).lower()
                if ("locked" not in msg and "busy" not in msg) or attempt == self.retries:
                    if "locked" in msg or "busy" in msg:
                        raise HistoryError(f"history '{self.path}' stayed locked: {err}",
                                           note=f"expected the lock to clear within {self.retries} retries",
                                           hint="is another process holding a long transaction on it?") from err
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 0.5)

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Cursor]:
        c = self.conn.cursor()
        self._retry(lambda: c.execute("BEGIN IMMEDIATE"))
        try:
            yield c
        except BaseException:
            c.execute("ROLLBACK")
            raise
        else:
            self._retry(lambda: c.execute("COMMIT"))

    def _write(self, fn) -> Any:
        def attempt():
            with self._tx() as c:
                return fn(c)
        return self._retry(attempt)

    def _query(self, sql: str, params: Iterable = ()) -> list[sqlite3.Row]:
        try:
            return self._retry(lambda: self.conn.execute(sql, tuple(params)).fetchall())
        except sqlite3.DatabaseError as err:
            raise HistoryError(f"history '{self.path}' cannot be read: {err}", note="expected an intact database",
                               hint="move it aside and start a new history") from err

    # writing -----------------------------------------------------------------------------------------------
    def record(self, row: MetricRow) -> int:
        """Append one row; returns its id."""
        sql = f"INSERT INTO metrics ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"
        return self._write(lambda c: c.execute(sql, row._params()).lastrowid)

    def record_many(self, rows: Iterable[MetricRow]) -> int:
        """Append rows in one transaction; returns how many."""
        params = [r._params() for r in rows]
        sql = f"INSERT INTO metrics ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"
        self._write(lambda c: c.executemany(sql, params))
        return len(params)

    def record_outcome(self, run_id: str, nodeid: str, outcome: str) -> None:
        """Store a test's outcome (``passed``/``failed``/``skipped``) for the report's result column."""
        self._write(lambda c: c.execute(
            "INSERT OR REPLACE INTO outcomes (run_id, nodeid, outcome, time) VALUES (?, ?, ?, ?)",
            (run_id, nodeid, outcome, utc_now())))

    def accept(self, run_id: str, note: str = "") -> None:
        """Make ``run_id`` an accepted baseline.

        Raises:
            HistoryError: no rows for that run id.
        """
        if not self._query("SELECT 1 FROM metrics WHERE run_id=? LIMIT 1", (run_id,)):
            runs = [r.run_id for r in self.runs()][-5:]
            from hailo_qa.errors import did_you_mean

            raise HistoryError(f"run '{run_id}' has no rows in history '{self.path}'",
                               note=f"latest runs: {', '.join(runs) or 'none'}",
                               hint=did_you_mean(run_id, runs) or "list runs with 'hailo-qa baseline show'")
        self._write(lambda c: c.execute("INSERT OR REPLACE INTO baselines (run_id, accepted_at, note) "
                                        "VALUES (?, ?, ?)", (run_id, utc_now(), note)))

    # reading -----------------------------------------------------------------------------------------------
    def rows(self, *, run_id: str | None = None, model: str | None = None, metric: str | None = None
             ) -> list[MetricRow]:
        """Rows in insertion order, optionally filtered."""
        where, params = [], []
        for col, v in (("run_id", run_id), ("model", model), ("metric", metric)):
            if v is not None:
                where.append(f"{col}=?")
                params.append(v)
        sql = "SELECT * FROM metrics" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY id"
        return [MetricRow._from_sql(r) for r in self._query(sql, params)]

    def count(self) -> int:
        return self._query("SELECT COUNT(*) FROM metrics")[0][0]

    def runs(self) -> list[RunSummary]:
        """Runs in chronological order (by first row)."""
        acc = {r[0] for r in self._query("SELECT run_id FROM baselines")}
        q = ("SELECT run_id, MIN(time) s, MAX(time) f, COUNT(*) n, MAX(git_commit) g, MIN(id) i FROM metrics "
             "GROUP BY run_id ORDER BY i")
        return [RunSummary(r["run_id"], r["s"], r["f"], r["n"], r["g"] or "", r["run_id"] in acc)
                for r in self._query(q)]

    def latest_run(self) -> str | None:
        r = self._query("SELECT run_id FROM metrics ORDER BY id DESC LIMIT 1")
        return r[0][0] if r else None

    def accepted_runs(self) -> list[str]:
        return [r[0] for r in self._query("SELECT run_id FROM baselines ORDER BY accepted_at")]

    def outcomes(self, run_id: str) -> dict[str, str]:
        return {r[0]: r[1] for r in self._query("SELECT nodeid, outcome FROM outcomes WHERE run_id=?", (run_id,))}

    def _latest_for_key(self, key: tuple, extra_where: str, params: tuple) -> MetricRow | None:
        model, variant, stage, target, cfg, calib, metric = key
        sql = ("SELECT * FROM metrics WHERE model=? AND variant=? AND stage=? AND target=? AND config=? AND "
               "calib_size IS ? AND metric=? " + extra_where + " ORDER BY id DESC LIMIT 1")
        r = self._query(sql, (model, variant, stage, target, cfg, calib, metric) + params)
        return MetricRow._from_sql(r[0]) if r else None

    def baseline_for(self, key: tuple, *, exclude_run: str | None = None) -> MetricRow | None:
        """The latest row for ``key`` from an accepted run (other than ``exclude_run``)."""
        return self._latest_for_key(key, "AND run_id IN (SELECT run_id FROM baselines) AND run_id IS NOT ?",
                                    (exclude_run,))

    def previous_for(self, key: tuple, *, before_run: str) -> MetricRow | None:
        """The latest row for ``key`` from any run recorded before ``before_run``'s first row."""
        return self._latest_for_key(
            key, "AND run_id IS NOT ? AND id < (SELECT COALESCE(MIN(id), 1e18) FROM metrics WHERE run_id=?)",
            (before_run, before_run))


# ------------------------------------------------------------------------------------------------ regression gate
_HIGHER = ("snr", "cosine", "agreement", "accuracy", "fps", "coverage", "match_rate", "top1", "margin", "psnr")
_LOWER = ("latency", "error", "ece", "lsb", "_ms", "p95", "p99", "size_mb", "hef_mb")


def metric_direction(metric: str, extra: Mapping[str, Any] | None = None) -> str | None:
    """``"higher"`` or ``"lower"`` is better for ``metric``, or None when unknown.

    ``extra["direction"]`` overrides. Otherwise: names containing snr/cosine/agreement/accuracy/fps/coverage/
    match_rate/top1/margin are higher-is-better; latency/error/ece/lsb/_ms/p95/p99/cov (as a word) lower-is-better.
    """
    if extra and extra.get("direction") in ("higher", "lower"):
        return extra["direction"]
    m = metric.lower()
    if any(t in m for t in _HIGHER):
        return "higher"
    if any(t in m for t in _LOWER) or "cov" in re.split(r"[^a-z0-9]+", m) or m.endswith("_s"):
        return "lower"
    return None


@dataclass(frozen=True)
class Tolerance:
    """Allowed slack: ``max(abs, rel * |baseline|)``."""

    rel: float = 0.01
    abs: float = 1e-9

    def allowed(self, baseline: float) -> float:
        return max(self.abs, self.rel * abs(baseline))


def tolerance_for(metric: str, extra: Mapping[str, Any] | None = None) -> Tolerance:
    """Default tolerance per metric: 10% for timing (latency/fps, noisy), 1% otherwise.

    ``extra["rel_tol"]`` / ``extra["abs_tol"]`` override.
    """
    m = metric.lower()
    base = Tolerance(0.10) if any(t in m for t in ("latency", "fps", "_ms", "p95", "p99")) else Tolerance(0.01)
    extra = extra or {}
    return Tolerance(float(extra.get("rel_tol", base.rel)), float(extra.get("abs_tol", base.abs)))


@dataclass(frozen=True)
class Regression:
    """A metric that got worse than its baseline by more than the tolerance."""

    row: MetricRow
    baseline: MetricRow
    direction: str
    allowed: float

    @property
    def delta(self) -> float:
        return self.row.value - self.baseline.value

    def message(self) -> str:
        r, b = self.row, self.baseline
        pct = f" ({self.delta / abs(b.value) * 100:+.2f}%)" if b.value else ""
        where = "/".join(x for x in (r.model, r.variant, r.stage, r.target, r.config,
                                     f"calib{r.calib_size}" if r.calib_size is not None else "") if x)
        return (f"{where}: metric '{r.metric}' regressed: baseline {b.value:.6g} (run {b.run_id}) -> new "
                f"{r.value:.6g}, delta {self.delta:+.6g}{pct}; allowed {self.allowed:.3g} "
                f"({self.direction} is better)")


def check_regression(row: MetricRow, baseline: MetricRow | None, *, tolerance: Tolerance | None = None
                     ) -> Regression | None:
    """A :class:`Regression` when ``row`` is worse than ``baseline`` beyond tolerance, else None.

    None when there is no baseline or the metric's direction is unknown.
    """
    if baseline is None:
        return None
    direction = metric_direction(row.metric, row.extra)
    if direction is None:
        return None
    allowed = (tolerance or tolerance_for(row.metric, row.extra)).allowed(baseline.value)
    worse = (baseline.value - row.value) if direction == "higher" else (row.value - baseline.value)
    return Regression(row, baseline, direction, allowed) if worse > allowed else None


def gate(history: History, row: MetricRow) -> None:
    """Raise :class:`RegressionError` when ``row`` regressed against its accepted baseline."""
    reg = check_regression(row, history.baseline_for(row.key, exclude_run=row.run_id))
    if reg is not None:
        raise RegressionError(reg.message(),
                              note="expected no worse than the last accepted baseline within tolerance",
                              hint="fix the regression, or accept this run as the new baseline: "
                                   f"hailo-qa baseline accept --run {row.run_id}")
