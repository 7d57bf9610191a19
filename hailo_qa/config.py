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

STATE_DIR = Path(os.environ.get("HAILO_QA_STATE_DIR", REPO_ROOT / ".hailo_qa"))
"""Working state: history database, split/emulator caches, reports. Override with ``HAILO_QA_STATE_DIR``."""

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
