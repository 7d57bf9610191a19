"""The history of every metric of every run, baselines, and the regression gate — on SQLite or PostgreSQL.

One row per recorded figure, with its provenance (run id, model, variant, stage, target, precision config,
calibration size, backend and version, git commit, toolchain versions, device, machine, time, test nodeid).

Backends (one schema, SQLAlchemy Core, a version number and migrations in :data:`MIGRATIONS`):

- **SQLite** (a file path; the embedded default). WAL mode; each write is one short ``BEGIN IMMEDIATE``
  transaction retried on ``database is locked`` until a deadline (``timeout_s``), then a :class:`HistoryError`.
- **PostgreSQL** (``postgresql://user:password@host/db``; the team backend shared by build hosts and Pis).
  Connection and server errors are retried until the same deadline; inserts are idempotent (every row has a
  ``uid``), so a retry after a lost acknowledgement never stores a row twice.

Nothing already measured is lost: when a write cannot be made within the deadline, the rows go to a local *spill*
SQLite file (``config.HISTORY_SPILL_DIR``) and the :class:`HistoryError` names it; ``hailo-qa history push``
sends it on later (idempotently). A file that is not a hailo-qa history is refused before anything is written to it.

Regression gate: a metric is compared with the latest row for the same key
(model, variant, stage, target, config, calib_size, metric) from an *accepted* run (``hailo-qa baseline accept``).
Direction comes from the metric name (:func:`metric_direction`); tolerances from :func:`tolerance_for`.
"""
from __future__ import annotations

import datetime as _dt
import functools
import json
import math
import os
import re
import secrets
import sqlite3
import subprocess
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from hailo_qa import config
from hailo_qa.errors import InputDataError, InputFileError, RegressionError
from hailo_qa.fsutil import SHARED_STATE_HINT, file_in_the_way

SCHEMA_VERSION = 2

_META = sa.MetaData()
META = sa.Table("hqa_meta", _META, sa.Column("key", sa.Text, primary_key=True),
                sa.Column("value", sa.Text, nullable=False))
METRICS = sa.Table(
    "metrics", _META,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("uid", sa.Text, nullable=False),
    sa.Column("run_id", sa.Text, nullable=False), sa.Column("time", sa.Text, nullable=False),
    sa.Column("model", sa.Text, nullable=False), sa.Column("variant", sa.Text, nullable=False, server_default=""),
    sa.Column("stage", sa.Text, nullable=False, server_default=""), sa.Column("target", sa.Text, nullable=False),
    sa.Column("config", sa.Text, nullable=False, server_default=""), sa.Column("calib_size", sa.Integer),
    sa.Column("metric", sa.Text, nullable=False), sa.Column("value", sa.Float, nullable=False),
    sa.Column("backend", sa.Text, nullable=False, server_default=""),
    sa.Column("backend_version", sa.Text, nullable=False, server_default=""),
    sa.Column("hailo", sa.Integer, nullable=False, server_default="0"),
    sa.Column("git_commit", sa.Text, nullable=False, server_default=""),
    sa.Column("toolchain", sa.Text, nullable=False, server_default="{}"),
    sa.Column("device", sa.Text, nullable=False, server_default=""),
    sa.Column("host", sa.Text, nullable=False, server_default=""),
    sa.Column("nodeid", sa.Text, nullable=False, server_default=""),
    sa.Column("extra", sa.Text, nullable=False, server_default="{}"),
    sa.Index("metrics_key", "model", "target", "metric", "config", "calib_size"),
    sa.Index("metrics_run", "run_id"),
    sa.Index("metrics_uid", "uid", unique=True),
    sqlite_autoincrement=True)
BASELINES = sa.Table("baselines", _META, sa.Column("run_id", sa.Text, primary_key=True),
                     sa.Column("accepted_at", sa.Text, nullable=False),
                     sa.Column("note", sa.Text, nullable=False, server_default=""))
OUTCOMES = sa.Table("outcomes", _META, sa.Column("run_id", sa.Text, primary_key=True),
                    sa.Column("nodeid", sa.Text, primary_key=True), sa.Column("outcome", sa.Text, nullable=False),
                    sa.Column("time", sa.Text, nullable=False))


def _migrate_1_to_2(c: sa.Connection) -> None:
    """v2: the machine (``host``) and a unique ``uid`` per row (idempotent push/merge)."""
    c.exec_driver_sql("ALTER TABLE metrics ADD COLUMN host TEXT NOT NULL DEFAULT ''")
    c.exec_driver_sql("ALTER TABLE metrics ADD COLUMN uid TEXT")
    ids = [r[0] for r in c.exec_driver_sql("SELECT id FROM metrics WHERE uid IS NULL")]
    if ids:
        c.execute(sa.text("UPDATE metrics SET uid=:u WHERE id=:i"), [{"u": uuid.uuid4().hex, "i": i} for i in ids])
    c.exec_driver_sql("CREATE UNIQUE INDEX metrics_uid ON metrics (uid)")


MIGRATIONS: dict[int, Callable[[sa.Connection], None]] = {1: _migrate_1_to_2}
"""``from_version → step`` bringing a history to ``from_version + 1``; applied in one transaction on open."""

_COLUMNS = ("uid", "run_id", "time", "model", "variant", "stage", "target", "config", "calib_size", "metric",
            "value", "backend", "backend_version", "hailo", "git_commit", "toolchain", "device", "host", "nodeid",
            "extra")

KEY_FIELDS = ("model", "variant", "stage", "target", "config", "calib_size", "metric")


class HistoryError(InputFileError):
    """The history is unreadable, corrupt, not a hailo-qa history, stays locked, or its server cannot be reached."""


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
    """One recorded figure with its provenance. ``toolchain`` and ``extra`` are dicts (stored as JSON).

    ``uid`` identifies the row across histories (push/merge store it once); ``host`` is the machine that measured it.
    """

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
    host: str = ""
    uid: str = ""

    @property
    def key(self) -> tuple:
        """(model, variant, stage, target, config, calib_size, metric): what a baseline is matched on."""
        return tuple(getattr(self, k) for k in KEY_FIELDS)

    def _params(self) -> dict[str, Any]:
        d = asdict(self)
        d["toolchain"] = json.dumps(dict(self.toolchain), sort_keys=True)
        d["extra"] = json.dumps(dict(self.extra), sort_keys=True, default=str)
        d["hailo"] = int(self.hailo)
        d["time"] = self.time or utc_now()
        d["uid"] = self.uid or uuid.uuid4().hex
        return {c: d[c] for c in _COLUMNS}

    @classmethod
    def _from_sql(cls, r) -> MetricRow:
        d = dict(r._mapping)
        d["toolchain"] = _json(d["toolchain"])
        d["extra"] = _json(d["extra"])
        d["hailo"] = bool(d["hailo"])
        d["host"] = d.get("host") or ""
        d["uid"] = d.get("uid") or ""
        return cls(**d)


@functools.lru_cache(maxsize=4096)
def _json(text: str | None) -> Mapping[str, Any]:
    """Parsed JSON of a row's toolchain/extra; cached, as thousands of rows share a few strings (read-only use)."""
    return json.loads(text or "{}")


@dataclass(frozen=True)
class RunSummary:
    """One run: id, first/last time, row count, git commit, whether it is an accepted baseline, its machines."""

    run_id: str
    started: str
    finished: str
    rows: int
    git_commit: str
    accepted: bool
    hosts: tuple[str, ...] = ()


def _device_text(device) -> str:
    """A device identity (``HailortRunner`` stores a dict) as the one short string a row keeps: its id and board."""
    if isinstance(device, Mapping):
        board = device.get("board_name") or ""
        return f"{device.get('device_id', '')}" + (f" ({board})" if board else "")
    return str(device)


def make_row(*, run_id: str, model: str, metric: str, value: float, target: str, config: str = "",
             calib_size: int | None = None, variant: str = "", stage: str = "", backend=None,
             extra: Mapping[str, Any] | None = None, nodeid: str = "", git: str | None = None,
             toolchain: Mapping[str, str] | None = None, host: str | None = None) -> MetricRow:
    """Validate inputs and build a :class:`MetricRow` (a BackendInfo fills backend, version, hailo and device).

    ``host`` defaults to :data:`hailo_qa.config.HOST` (``HAILO_QA_HOST`` or the machine's name).

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
        device = _device_text(backend.details.get("device", "") or "")
        if not config:
            config = backend.config
    extra = dict(extra or {})
    device = str(extra.pop("device", "") or device)
    return MetricRow(run_id=run_id, model=model, metric=metric, value=fval, target=target, variant=variant,
                     stage=stage, config=config, calib_size=calib_size, backend=b_name, backend_version=b_ver,
                     hailo=hailo, git_commit=git_commit() if git is None else git, toolchain=dict(toolchain),
                     device=device, nodeid=nodeid, extra=extra, host=config_host() if host is None else host,
                     uid=uuid.uuid4().hex, time=utc_now())


def config_host() -> str:
    return config.HOST


# --------------------------------------------------------------------------------------------------------- store
def is_url(target: str | Path) -> bool:
    return isinstance(target, str) and "://" in target


def display(target: str | Path) -> str:
    """``target`` as it may be printed: a URL with its password hidden, or the path."""
    t = str(target)
    if not is_url(t):
        return t
    try:
        return sa.make_url(t).render_as_string(hide_password=True)
    except (sa.exc.ArgumentError, ValueError):  # ValueError: a port that is not a number
        return re.sub(r"//([^:/@]*):[^@]*@", r"//\1:***@", t)


def _engine_url(target: str) -> sa.URL:
    try:
        url = sa.make_url(target)
    except (sa.exc.ArgumentError, ValueError) as err:  # ValueError: a port that is not a number
        raise HistoryError(f"history URL '{display(target)}' cannot be parsed: {err}",
                           note="expected postgresql://user:password@host[:port]/database or an SQLite file path",
                           hint="check the URL given to --hqa-history / --history / HAILO_QA_HISTORY") from None
    if url.drivername in ("postgresql", "postgres", "postgresql+psycopg"):
        return url.set(drivername="postgresql+psycopg")
    if url.drivername == "sqlite" and url.database:
        return url
    raise HistoryError(f"history URL '{url.render_as_string(hide_password=True)}' names backend "
                       f"'{url.drivername}'", note="expected postgresql://... (a team server) or an SQLite file path",
                       hint="pass a postgresql:// URL or a file path")


def _refuse_blocked(p: Path) -> None:
    blocker = file_in_the_way(p, include_self=False)
    if blocker is not None:
        raise HistoryError(f"history '{p}' cannot be opened: '{blocker}' is a file, not a folder",
                           note="expected the history file in a folder (or a path that does not exist yet)",
                           hint="remove or rename that file, or set HAILO_QA_STATE_DIR / pass --history PATH "
                                "elsewhere")


def require_history_file(path: str | Path, *, note: str, hint: str) -> None:
    """Refuse a history path that is not an existing file: a file in the way of its folder is named as such."""
    p = Path(path)
    _refuse_blocked(p)
    if not p.is_file():
        raise HistoryError(f"history '{p}' does not exist", note=note, hint=hint)


class History:
    """The history (SQLite file or PostgreSQL server). Open one per process; every call is one short transaction.

    Args:
        target: an SQLite file path (created with its directory when absent), ``sqlite:///path``, or
            ``postgresql://user:password@host[:port]/database``.
        readonly: open for reading only (``report``, ``baseline show``): the history is never written or migrated
            and a read-only file works. Defaults to False.
        timeout_s: how long a write or a connection waits for a lock or a server before a :class:`HistoryError`.
            Defaults to ``config.HISTORY_TIMEOUT_S`` (``HAILO_QA_HISTORY_TIMEOUT``, 30 s).
        spill: the local SQLite file that takes rows the history could not take in time. Defaults to a per-process
            file under ``config.HISTORY_SPILL_DIR``; None for no spill (the error then says the rows were not
            stored).
        retries, busy_timeout_ms: kept for old callers; the deadline is ``timeout_s``.

    Raises:
        HistoryError: not a readable hailo-qa history (corrupt, another application's database, a directory, a
            newer schema), a server that cannot be reached or refuses the credentials, or a lock that outlasts
            ``timeout_s``.
    """

    def __init__(self, target: str | Path, *, readonly: bool = False, timeout_s: float | None = None,
                 spill: str | Path | None | bool = True, retries: int | None = None,
                 busy_timeout_ms: int | None = None) -> None:
        self.readonly = readonly
        self.timeout_s = float(timeout_s if timeout_s is not None else
                               (busy_timeout_ms * max(retries or 1, 1) / 1000 if busy_timeout_ms else
                                config.HISTORY_TIMEOUT_S))
        self._engine: sa.Engine | None = None
        self._deferred = False
        self._down: HistoryError | None = None
        self._spill_target = spill
        self._spill: History | None = None
        self.spilled = 0
        if is_url(str(target)) and not str(target).startswith("sqlite:"):
            self.url = _engine_url(str(target))
            self.path = None
            self.kind = "postgresql"
            self.location = self.url.set(drivername="postgresql").render_as_string(hide_password=True)
        else:
            t = str(target)
            if t.startswith("sqlite:"):
                t = _engine_url(t).database
            self.path = Path(t)
            self.url = None
            self.kind = "sqlite"
            self.location = str(self.path)
        try:
            if self.kind == "sqlite":
                self._open_sqlite()
            else:
                self._open_server()
            self._init_schema()
        except BaseException:
            self.close()
            raise

    # opening -----------------------------------------------------------------------------------------------
    def _hint(self) -> str:
        if self.kind == "sqlite":
            return (f"move '{self.path}' aside (hailo-qa never overwrites or alters a file that is not its history),"
                    " or pass --hqa-history PATH / --history PATH for a new one")
        return "pass another database in the URL, or ask the server's administrator"

    def _open_sqlite(self) -> None:
        p, hint = self.path, self._hint()
        _refuse_blocked(p)
        if p.exists() and not p.is_file():
            raise HistoryError(f"history '{p}' is not a file", note="expected an SQLite database", hint=hint)
        exists = p.is_file() and p.stat().st_size > 0
        if exists:
            try:
                with p.open("rb") as f:
                    head = f.read(16)
            except OSError as err:
                raise HistoryError(f"history '{p}' cannot be read: {err}", note="expected a readable file",
                                   hint="check its permissions") from None
            if head != b"SQLite format 3\x00":
                raise HistoryError(f"history '{p}' is not an SQLite database (header {head[:15]!r})",
                                   note="expected the SQLite file written by hailo-qa", hint=hint)
            self._refuse_foreign_sqlite()
        elif self.readonly and p.is_file():
            raise HistoryError(f"history '{p}' is empty (0 bytes)", note="expected the SQLite file a pytest run "
                               "with the hailo_qa plugin writes", hint="run the tests first, or pass --history PATH")
        elif self.readonly:
            raise HistoryError(f"history '{p}' does not exist", note="expected the SQLite file a pytest run "
                               "with the hailo_qa plugin writes", hint="run the tests first, or pass --history PATH")
        else:
            try:
                p.parent.mkdir(parents=True, exist_ok=True)
                # created here, not by SQLite (which makes it 0644 whatever the umask): a history in a shared,
                # group-writable state folder stays writable by the group (0666 & ~umask, like any other file)
                os.close(os.open(p, os.O_CREAT | os.O_WRONLY, 0o666))
            except OSError as err:
                raise HistoryError(f"history '{p}' cannot be created ({err.strerror or err})",
                                   note="expected a folder this user can create files in",
                                   hint="pass --hqa-history PATH / --history PATH elsewhere, or set "
                                        "HAILO_QA_STATE_DIR to a folder of your own") from err
        ro = self.readonly
        uri = self._ro_uri() if ro else p.resolve().as_uri()
        busy_ms = int(min(self.timeout_s, 1.0) * 1000)

        def connect():
            conn = sqlite3.connect(uri, uri=True, timeout=busy_ms / 1000, isolation_level=None,
                                   check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout={busy_ms}")
            return conn

        eng = sa.create_engine("sqlite://", creator=connect, poolclass=sa.pool.SingletonThreadPool)

        @sa.event.listens_for(eng, "begin")
        def _begin(c):  # one short write transaction, taking the write lock up front
            c.exec_driver_sql("BEGIN" if ro or self._deferred else "BEGIN IMMEDIATE")
        self._engine = eng
        if not ro:
            mode = self._retry(lambda: self._raw_sqlite().execute("PRAGMA journal_mode=WAL").fetchone()[0],
                               what="set WAL mode on")
            self._raw_sqlite().execute("PRAGMA synchronous=NORMAL")
            if str(mode).lower() != "wal":
                raise HistoryError(f"history '{p}' cannot use WAL mode (got {mode})",
                                   note="expected a local file system", hint="put the history on a local disk")

    def _ro_uri(self) -> str:
        """A read-only URI; ``immutable`` when nobody here can write beside the file (no -shm can be made)."""
        p = self.path
        immutable = not os.access(p.parent, os.W_OK) and not Path(f"{p}-wal").exists()
        return p.resolve().as_uri() + "?mode=ro" + ("&immutable=1" if immutable else "")

    def _raw_sqlite(self) -> sqlite3.Connection:
        with self.engine.connect() as c:
            return c.connection.dbapi_connection

    def _refuse_foreign_sqlite(self) -> None:
        """Refuse (read-only look, nothing written) an SQLite file that holds tables but no hailo-qa history."""
        p = self.path
        try:
            c = sqlite3.connect(self._ro_uri(), uri=True, timeout=self.timeout_s)
            try:
                tables = {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type='table'")}
                schema = (c.execute("SELECT value FROM hqa_meta WHERE key='schema'").fetchone()
                          if "hqa_meta" in tables else None)
            finally:
                c.close()
        except sqlite3.DatabaseError as err:
            if "locked" in str(err).lower() or "busy" in str(err).lower():
                return  # a writer holds it: the bounded retries below decide
            raise HistoryError(f"history '{p}' cannot be used: {err}",
                               note="expected a readable SQLite database written by hailo-qa",
                               hint=self._hint()) from None
        if tables and schema is None:
            shown = ", ".join(sorted(tables)[:6]) + (" ..." if len(tables) > 6 else "")
            raise HistoryError(f"'{p}' is an SQLite database of another application (tables: {shown})",
                               note="expected a hailo-qa history (it has a 'hqa_meta' table); the file was not "
                                    "modified", hint=self._hint())

    def _open_server(self) -> None:
        try:
            import psycopg  # noqa: F401
        except ImportError:
            raise HistoryError(f"history '{self.location}' needs the PostgreSQL driver psycopg",
                               note="expected psycopg 3 to be installed",
                               hint="pip install 'psycopg[binary]>=3.1'") from None
        t = max(1, int(math.ceil(min(self.timeout_s, 10))))
        opts = f"-c lock_timeout={int(self.timeout_s * 1000)}"
        if self.readonly:
            opts += " -c default_transaction_read_only=on"
        self._engine = sa.create_engine(self.url, pool_pre_ping=True, pool_size=1, max_overflow=2,
                                        connect_args={"connect_timeout": t, "options": opts,
                                                      "application_name": "hailo-qa"})

    def _init_schema(self) -> None:
        def step(c: sa.Connection) -> int:
            if self.kind == "postgresql" and not self.readonly:  # one creator at a time across machines
                c.exec_driver_sql("SELECT pg_advisory_xact_lock(7271839)")
            insp = sa.inspect(c)
            tables = set(insp.get_table_names())
            if "hqa_meta" not in tables:
                if self.kind == "postgresql" and tables & {"metrics", "baselines", "outcomes"}:
                    raise HistoryError(f"database '{self.location}' has tables named like hailo-qa's but no "
                                       "hqa_meta table", note="expected a hailo-qa history or an empty database; "
                                       "nothing was modified", hint=self._hint())
                if self.readonly:
                    return SCHEMA_VERSION if self.kind == "sqlite" and not tables else -1
                _META.create_all(c)
                c.execute(META.insert().values(key="schema", value=str(SCHEMA_VERSION)))
                return SCHEMA_VERSION
            got = c.execute(sa.select(META.c.value).where(META.c.key == "schema")).scalar()
            try:
                version = int(got)
            except (TypeError, ValueError):
                raise HistoryError(f"history '{self.location}' has no readable schema version ({got!r})",
                                   note="expected the hqa_meta table hailo-qa writes", hint=self._hint()) from None
            if version > SCHEMA_VERSION or version < 1:
                raise HistoryError(f"history '{self.location}' has schema {got}", note=f"expected {SCHEMA_VERSION}",
                                   hint="use the hailo-qa version that wrote it, or start a new history")
            if version < SCHEMA_VERSION:
                if self.readonly:
                    raise HistoryError(f"history '{self.location}' has schema {version}",
                                       note=f"expected {SCHEMA_VERSION}; a read-only history cannot be migrated",
                                       hint="open it once with write access (any hailo-qa run that records) "
                                            "to migrate it")
                for v in range(version, SCHEMA_VERSION):
                    MIGRATIONS[v](c)
                c.execute(META.update().where(META.c.key == "schema").values(value=str(SCHEMA_VERSION)))
            return SCHEMA_VERSION

        def current(c: sa.Connection) -> bool:
            return "hqa_meta" in sa.inspect(c).get_table_names() and c.execute(
                sa.select(META.c.value).where(META.c.key == "schema")).scalar() == str(SCHEMA_VERSION)

        # an up-to-date history opens without the write lock (a writer may hold it)
        up_to_date = self._retry(lambda: self._in_tx(current, write=False), what="open")
        version = SCHEMA_VERSION if up_to_date else self._retry(lambda: self._in_tx(step), what="open")
        if version == -1:
            raise HistoryError(f"history '{self.location}' holds no hailo-qa history",
                               note="expected a database a hailo-qa run has written to",
                               hint="record into it first (pytest --hqa-history URL), or check the URL")
        if self.kind == "sqlite" and self.path.stat().st_size > 0:
            bad = self._retry(lambda: self._in_tx(lambda c: c.exec_driver_sql("PRAGMA quick_check").scalar(),
                                                  write=False), what="check")
            if bad != "ok":
                raise HistoryError(f"history '{self.location}' failed SQLite's integrity check: {bad}",
                                   note="expected an intact database", hint=self._hint())

    # plumbing ----------------------------------------------------------------------------------------------
    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None
        if self._spill is not None:
            self._spill.close()
            self._spill = None

    def __enter__(self) -> History:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def engine(self) -> sa.Engine:
        if self._engine is None:
            raise HistoryError(f"history '{self.location}' is closed", hint="open a new History(path)")
        return self._engine

    @property
    def conn(self) -> sqlite3.Connection:
        """The raw sqlite3 connection (SQLite only; for PRAGMAs in tests)."""
        return self._raw_sqlite()

    def _in_tx(self, fn, *, write: bool = True):
        self._deferred = not write
        try:
            with self.engine.begin() as c:
                return fn(c)
        finally:
            self._deferred = False

    def _retryable(self, err: sa.exc.DBAPIError) -> bool:
        msg = str(err.orig).lower()
        if self.kind == "sqlite":
            return "locked" in msg or "busy" in msg
        return bool(err.connection_invalidated) or isinstance(err, sa.exc.OperationalError) and not any(
            w in msg for w in ("password authentication", "does not exist", "permission denied", "read-only"))

    def _retry(self, fn, *, what: str = "write to"):
        """Run ``fn`` until it succeeds, retrying locks and lost connections until ``timeout_s`` has passed."""
        deadline = time.monotonic() + self.timeout_s
        delay = 0.01
        while True:
            try:
                return fn()
            except sa.exc.DBAPIError as err:
                retry = self._retryable(err)
                if retry and time.monotonic() + delay < deadline:
                    time.sleep(delay)
                    delay = min(delay * 2, 0.5)
                    continue
                raise self._error(err, what, retried=retry) from err
            except sqlite3.DatabaseError as err:
                if ("locked" in str(err).lower() or "busy" in str(err).lower()) and \
                        time.monotonic() + delay < deadline:
                    time.sleep(delay)
                    delay = min(delay * 2, 0.5)
                    continue
                raise self._error(err, what, retried=True) from err

    def _error(self, err: Exception, what: str, *, retried: bool) -> HistoryError:
        orig = getattr(err, "orig", err)
        first = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
        msg = first.lower()
        if self.kind == "sqlite":
            if "locked" in msg or "busy" in msg:
                return HistoryError(f"history '{self.location}' stayed locked for {self.timeout_s:g} s: {first}",
                                    note=f"expected the lock to clear within {self.timeout_s:g} s",
                                    hint="another process holds a long transaction on it (a stuck run, a database "
                                         "browser?); close it, or raise HAILO_QA_HISTORY_TIMEOUT")
            if "readonly" in msg or "read-only" in msg:
                return HistoryError(f"history '{self.location}' is read-only: {first}",
                                    note="expected write access to record results",
                                    hint="make the file and its directory writable, or pass --hqa-history PATH "
                                         "elsewhere ('hailo-qa report' only reads); " + SHARED_STATE_HINT)
            return HistoryError(f"cannot {what} history '{self.location}': {first}",
                                note="expected a readable SQLite database written by hailo-qa", hint=self._hint())
        if "password authentication" in msg or "authentication failed" in msg:
            return HistoryError(f"history server '{self.location}' refused the credentials: {first}",
                                note="expected a user and password the server accepts",
                                hint="check the user and password in the URL (or PGPASSWORD / ~/.pgpass)")
        if "does not exist" in msg and "database" in msg:
            return HistoryError(f"history database '{self.location}' does not exist: {first}",
                                note="expected an existing database on the server",
                                hint="create it (createdb NAME) or fix the database name in the URL")
        if retried:
            return HistoryError(f"history server '{self.location}' cannot be reached (tried for "
                                f"{self.timeout_s:g} s): {first}",
                                note="expected a PostgreSQL server answering at that address",
                                hint="is the server running and reachable from this machine? check host and port "
                                     "in the URL, or raise HAILO_QA_HISTORY_TIMEOUT")
        return HistoryError(f"cannot {what} history '{self.location}': {first}",
                            note="expected a hailo-qa history the user may read and write", hint=self._hint())

    # writing -----------------------------------------------------------------------------------------------
    def _insert(self, table: sa.Table, keys: list[str]):
        if self.engine.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        return insert(table).on_conflict_do_nothing(index_elements=keys)

    def _spill_history(self) -> History | None:
        if self._spill_target is None or self._spill_target is False:
            return None
        if self._spill is None:
            name = f"unsent-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}.sqlite"
            if self._spill_target is not True:
                path = Path(self._spill_target)
            elif self.kind == "sqlite":  # beside the history, where the user looks
                path = self.path.with_name(f"{self.path.name}.{name}")
            else:
                path = config.HISTORY_SPILL_DIR / name
            self._spill = History(path, spill=None, timeout_s=self.timeout_s)
        return self._spill

    def _write(self, fn, *, spill: Callable[[History], Any] | None = None) -> Any:
        """One write transaction; when it cannot be made in time the rows go to the spill file (if ``spill``)."""
        if self.readonly:
            raise HistoryError(f"history '{self.location}' was opened read-only", note="expected a writable History",
                               hint="open History(target) without readonly=True")
        try:
            if self._down is not None:
                raise self._down
            return self._retry(lambda: self._in_tx(fn))
        except HistoryError as err:
            if spill is None:
                raise
            self._down = err
            try:
                sp = self._spill_history()
                if sp is None:
                    raise err
                spill(sp)
            except HistoryError as err2:
                if err2 is err:
                    raise
                raise HistoryError(err.what + f"; the rows could not be kept locally either: {err2.what}",
                                   note=err.note, hint=err.hint) from err
            self.spilled += 1
            raise HistoryError(err.what, note=(err.note or "") + "; nothing was lost: this run's rows are kept in "
                               f"'{sp.location}'", hint=(err.hint or "") + f"; then send them with: hailo-qa "
                               f"history push --history {sp.location} --to {self.location}") from None

    def record(self, row: MetricRow) -> int | None:
        """Append one row; returns its id (None when a row with the same ``uid`` is already stored)."""
        p = row._params()
        return self._write(lambda c: (c.execute(self._insert(METRICS, ["uid"]).values(**p).returning(METRICS.c.id))
                                      .scalar()), spill=lambda sp: sp.record(MetricRow(**{**asdict(row),
                                          "uid": p["uid"], "time": p["time"]})))

    def record_many(self, rows: Iterable[MetricRow]) -> int:
        """Append rows in one transaction; returns how many were given (rows already stored are kept once)."""
        rows = list(rows)
        params = [r._params() for r in rows]
        if params:
            self._write(lambda c: c.execute(self._insert(METRICS, ["uid"]), params),
                        spill=lambda sp: sp.record_many([MetricRow(**{**asdict(r), "uid": p["uid"], "time": p["time"]})
                                                         for r, p in zip(rows, params)]))
        return len(params)

    def record_outcome(self, run_id: str, nodeid: str, outcome: str) -> None:
        """Store a test's outcome (``passed``/``failed``/``skipped``) for the report's result column."""
        vals = {"run_id": run_id, "nodeid": nodeid, "outcome": outcome, "time": utc_now()}

        def upsert(c):
            c.execute(OUTCOMES.delete().where(OUTCOMES.c.run_id == run_id, OUTCOMES.c.nodeid == nodeid))
            c.execute(OUTCOMES.insert().values(**vals))
        self._write(upsert, spill=lambda sp: sp.record_outcome(run_id, nodeid, outcome))

    def accept(self, run_id: str, note: str = "") -> None:
        """Make ``run_id`` an accepted baseline.

        Raises:
            HistoryError: no rows for that run id.
        """
        if not self._query(sa.select(METRICS.c.id).where(METRICS.c.run_id == run_id).limit(1)):
            runs = [r.run_id for r in self.runs()][-5:]
            from hailo_qa.errors import did_you_mean

            raise HistoryError(f"run '{run_id}' has no rows in history '{self.location}'",
                               note=f"latest runs: {', '.join(runs) or 'none'}",
                               hint=did_you_mean(run_id, runs) or "list runs with 'hailo-qa baseline show'")

        def upsert(c):
            c.execute(BASELINES.delete().where(BASELINES.c.run_id == run_id))
            c.execute(BASELINES.insert().values(run_id=run_id, accepted_at=utc_now(), note=note))
        self._write(upsert)

    # reading -----------------------------------------------------------------------------------------------
    def _query(self, stmt, params: Mapping | None = None) -> list:
        def q():
            with self.engine.connect() as c:
                return list(c.execute(stmt, params or {}))
        return self._retry(q, what="read")

    def rows(self, *, run_id: str | None = None, model: str | None = None, metric: str | None = None
             ) -> list[MetricRow]:
        """Rows in insertion order, optionally filtered."""
        stmt = sa.select(METRICS)
        for col, v in (("run_id", run_id), ("model", model), ("metric", metric)):
            if v is not None:
                stmt = stmt.where(METRICS.c[col] == v)
        return [MetricRow._from_sql(r) for r in self._query(stmt.order_by(METRICS.c.id))]

    def count(self) -> int:
        return self._query(sa.select(sa.func.count()).select_from(METRICS))[0][0]

    def runs(self) -> list[RunSummary]:
        """Runs in chronological order (by first row)."""
        acc = {r[0] for r in self._query(sa.select(BASELINES.c.run_id))}
        m = METRICS.c
        q = (sa.select(m.run_id, sa.func.min(m.time), sa.func.max(m.time), sa.func.count(), sa.func.max(m.git_commit),
                       sa.func.min(m.id).label("i")).group_by(m.run_id).order_by(sa.literal_column("i")))
        hosts: dict[str, set[str]] = {}
        for run, host in self._query(sa.select(m.run_id, m.host).distinct()):
            hosts.setdefault(run, set()).add(host)
        return [RunSummary(r[0], r[1], r[2], r[3], r[4] or "", r[0] in acc, tuple(sorted(hosts.get(r[0], ()))))
                for r in self._query(q)]

    def latest_run(self) -> str | None:
        r = self._query(sa.select(METRICS.c.run_id).order_by(METRICS.c.id.desc()).limit(1))
        return r[0][0] if r else None

    def accepted_runs(self) -> list[str]:
        return [r[0] for r in self._query(sa.select(BASELINES.c.run_id).order_by(BASELINES.c.accepted_at))]

    def baselines(self) -> list[dict[str, str]]:
        return [dict(r._mapping) for r in self._query(sa.select(BASELINES).order_by(BASELINES.c.accepted_at))]

    def outcomes(self, run_id: str | None = None) -> dict:
        """``nodeid → outcome`` of ``run_id``; with no run, ``(run_id, nodeid) → outcome`` of every run."""
        if run_id is None:
            return {(r[0], r[1]): r[2] for r in self._query(sa.select(OUTCOMES.c.run_id, OUTCOMES.c.nodeid,
                                                                         OUTCOMES.c.outcome))}
        return {r[0]: r[1] for r in self._query(sa.select(OUTCOMES.c.nodeid, OUTCOMES.c.outcome)
                                               .where(OUTCOMES.c.run_id == run_id))}

    def _latest_for_key(self, key: tuple, *conds) -> MetricRow | None:
        c = METRICS.c
        model, variant, stage, target, cfg, calib, metric = key
        stmt = (sa.select(METRICS).where(c.model == model, c.variant == variant, c.stage == stage, c.target == target,
                                         c.config == cfg, c.calib_size.is_(None) if calib is None else
                                         c.calib_size == calib, c.metric == metric, *conds)
                .order_by(c.id.desc()).limit(1))
        r = self._query(stmt)
        return MetricRow._from_sql(r[0]) if r else None

    def baseline_for(self, key: tuple, *, exclude_run: str | None = None) -> MetricRow | None:
        """The latest row for ``key`` from an accepted run (other than ``exclude_run``)."""
        c = METRICS.c
        conds = [c.run_id.in_(sa.select(BASELINES.c.run_id))]
        if exclude_run is not None:
            conds.append(c.run_id != exclude_run)
        return self._latest_for_key(key, *conds)

    def previous_for(self, key: tuple, *, before_run: str) -> MetricRow | None:
        """The latest row for ``key`` from any run recorded before ``before_run``'s first row."""
        c = METRICS.c
        first = sa.select(sa.func.coalesce(sa.func.min(c.id), 10**15)).where(c.run_id == before_run).scalar_subquery()
        return self._latest_for_key(key, c.run_id != before_run, c.id < first)


def copy_history(src: History, dst: History, *, runs: Iterable[str] | None = None) -> tuple[int, int]:
    """Copy rows, outcomes and baselines of ``src`` (all runs, or ``runs``) into ``dst``, idempotently.

    A row already in ``dst`` (same ``uid``) is stored once; outcomes and baselines are keyed by run. Returns
    ``(rows_given, rows_new)``.
    """
    wanted = None if runs is None else set(runs)
    rows = [r for r in src.rows() if wanted is None or r.run_id in wanted]
    before = dst.count()
    for k in range(0, len(rows), 2000):
        dst.record_many(rows[k:k + 2000])
    outs = [(run, node, o) for (run, node), o in src.outcomes().items() if wanted is None or run in wanted]
    if outs:
        def put(c):
            for run, node, o in outs:
                c.execute(OUTCOMES.delete().where(OUTCOMES.c.run_id == run, OUTCOMES.c.nodeid == node))
                c.execute(OUTCOMES.insert().values(run_id=run, nodeid=node, outcome=o, time=utc_now()))
        dst._write(put)
    accepted = set(dst.accepted_runs())
    for b in src.baselines():
        if (wanted is None or b["run_id"] in wanted) and b["run_id"] not in accepted:
            dst._write(lambda c, b=b: c.execute(BASELINES.insert().values(**b)))
    return len(rows), dst.count() - before


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
