"""Environment switches and well-known paths. The environment is read here and nowhere else."""
from __future__ import annotations

import os
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

HISTORY_DB = Path(os.environ.get("HAILO_QA_HISTORY", STATE_DIR / "history.sqlite"))
"""The SQLite history of every figure. Override with ``HAILO_QA_HISTORY`` or ``--hqa-history``."""

DEVICE_ID = os.environ.get("HAILO_QA_DEVICE") or None
"""A HailoRT device id (e.g. ``0000:01:00.0``) to use instead of the first one scanned."""

EMULATOR = os.environ.get("HAILO_QA_EMULATOR", "auto")
"""Emulator backend: ``auto`` (DFC if importable, else the built-in ORT one), ``dfc`` or ``ort``."""
