"""Environment switches and well-known paths. The environment is read here and nowhere else."""
from __future__ import annotations

import os
import socket
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
"""The checkout root (where ``fixtures/`` and ``golden/`` live)."""

SHARED_DIR = Path(os.environ.get("HAILO_QA_SHARED", REPO_ROOT.parent / "shared")).resolve()
"""Where the team's shared material lives (real models, HEFs, faces). ``shared:`` paths in the manifest resolve here.
Override with ``HAILO_QA_SHARED``."""

MANIFEST = Path(os.environ.get("HAILO_QA_MANIFEST", REPO_ROOT / "fixtures" / "models.toml"))
"""The default model manifest. Override with ``HAILO_QA_MANIFEST`` or ``--hqa-manifest``."""

GOLDEN_DIR = Path(os.environ.get("HAILO_QA_GOLDEN_DIR", REPO_ROOT / "golden"))
"""Root of the golden store. Override with ``HAILO_QA_GOLDEN_DIR`` or ``--hqa-golden-dir``."""

STATE_ENV = "HAILO_QA_STATE_DIR"
CHECKOUT_STATE_DIR = REPO_ROOT / ".hailo_qa"
"""The state folder's default place: inside the checkout."""


def _user_state_root() -> Path | None:
    """``$XDG_STATE_HOME`` or ``~/.local/state`` (None when this user has no home folder at all)."""
    xdg = os.environ.get("XDG_STATE_HOME", "")
    if os.path.isabs(xdg):
        return Path(xdg)
    try:
        return Path.home() / ".local" / "state"
    except (RuntimeError, KeyError):  # no HOME and no passwd entry (a bare uid)
        return None


def _writable_or_creatable(path: Path) -> bool:
    """Whether this user can use ``path`` as a folder: it is a writable folder, or its nearest existing ancestor is a
    writable folder. A *file* in the way counts as usable: that is a mistake to report, not to route around."""
    for p in (path, *path.parents):
        if p.exists():
            return not p.is_dir() or os.access(p, os.W_OK | os.X_OK)
    return False


def resolve_state_dir(env: dict | None = None) -> tuple[Path, Path | None]:
    """Where the state folder is: ``(folder, fallback_from)``.

    ``HAILO_QA_STATE_DIR`` when set (never second-guessed: a bad one is an error naming it); else the checkout's
    ``.hailo_qa``; else — a read-only checkout, or another user's ``.hailo_qa`` — a per-user folder
    ``$XDG_STATE_HOME/hailo-qa/<checkout>-<hash>`` (``~/.local/state/...``), and ``fallback_from`` is the checkout
    folder that could not be used (the command line and the pytest plugin announce it).
    """
    env = os.environ if env is None else env
    if env.get(STATE_ENV):
        return Path(env[STATE_ENV]), None
    if _writable_or_creatable(CHECKOUT_STATE_DIR):
        return CHECKOUT_STATE_DIR, None
    root = _user_state_root()
    if root is None:
        return CHECKOUT_STATE_DIR, None  # nowhere else to go: the commands' errors name the folder and the variable
    import hashlib

    tag = hashlib.sha256(str(REPO_ROOT).encode()).hexdigest()[:8]
    return root / "hailo-qa" / f"{REPO_ROOT.name}-{tag}", CHECKOUT_STATE_DIR


STATE_DIR, STATE_DIR_FALLBACK_FROM = resolve_state_dir()
"""Working state: history database, split/emulator caches, reports. Override with ``HAILO_QA_STATE_DIR``.
Default: the checkout's ``.hailo_qa``, or a per-user folder when this user cannot write there
(``STATE_DIR_FALLBACK_FROM`` is then the checkout folder; see :func:`resolve_state_dir`)."""


def state_dir_notice() -> str | None:
    """One line announcing the per-user fallback state folder, or None when the default one is in use."""
    if STATE_DIR_FALLBACK_FROM is None or STATE_DIR == STATE_DIR_FALLBACK_FROM:
        return None
    return (f"note: this user cannot write the checkout's state folder '{STATE_DIR_FALLBACK_FROM}' (a read-only "
            f"checkout or another user's); using '{STATE_DIR}' instead (set {STATE_ENV} to choose)")

HISTORY = os.environ.get("HAILO_QA_HISTORY") or str(STATE_DIR / "history.sqlite")
"""Where the history of every figure lives: an SQLite file (the embedded default) or a team server's URL
(``postgresql://user:password@host/db``). Override with ``HAILO_QA_HISTORY``, ``--hqa-history`` or ``--history``."""

HISTORY_DB = STATE_DIR / "history.sqlite" if "://" in HISTORY else Path(HISTORY)
"""The SQLite file of :data:`HISTORY` (the default file when ``HISTORY`` is a server URL). Kept for old callers."""



def _seconds(name: str, default: float) -> float:
    try:
        v = float(os.environ.get(name, default))
    except ValueError:
        return default
    return v if v > 0 and v < 1e6 else default


HISTORY_TIMEOUT_S = _seconds("HAILO_QA_HISTORY_TIMEOUT", 30.0)
"""How long a history write or connection waits for a lock or a server before it gives up with a clear error
(seconds). Override with ``HAILO_QA_HISTORY_TIMEOUT``."""

HISTORY_SPILL_DIR = Path(os.environ.get("HAILO_QA_HISTORY_SPILL", STATE_DIR / "history-unsent"))
"""Where rows go when the history cannot take them (locked, server gone): one SQLite file per process, pushed later
with ``hailo-qa history push``. Override with ``HAILO_QA_HISTORY_SPILL``."""

HOST = os.environ.get("HAILO_QA_HOST") or socket.gethostname()
"""The machine name stored with every history row (a build host, a Pi). Override with ``HAILO_QA_HOST``."""

HAILORT_LOG_DIR = STATE_DIR / "hailort"
"""Where HailoRT writes ``hailort.log`` when hailo-qa imports it and ``HAILORT_LOGGER_PATH`` is unset (HailoRT's
default is the current directory, i.e. the checkout). ``HAILORT_LOGGER_PATH=NONE`` turns the log off."""


def route_hailort_log() -> str:
    """Point HailoRT's log at :data:`HAILORT_LOG_DIR` unless ``HAILORT_LOGGER_PATH`` is set; returns where it goes.

    Must run before ``hailo_platform`` is first imported (HailoRT reads the variable when it creates its logger).
    """
    return os.environ.setdefault("HAILORT_LOGGER_PATH", str(HAILORT_LOG_DIR))


def hailort_log_location() -> str:
    """Where HailoRT's log goes now, in words (for error hints)."""
    where = os.environ.get("HAILORT_LOGGER_PATH", "")
    return "nowhere (HAILORT_LOGGER_PATH=NONE)" if where.upper() == "NONE" else f"{where or '.'}/hailort.log"


DEVICE_ID = os.environ.get("HAILO_QA_DEVICE") or None
"""A HailoRT device id (e.g. ``0000:01:00.0``) to use instead of the first one scanned."""

EMULATOR = os.environ.get("HAILO_QA_EMULATOR", "auto")
"""Emulator backend: ``auto`` (DFC if importable, else the built-in ORT one), ``dfc`` or ``ort``."""
