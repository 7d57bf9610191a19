"""Atomic file writes: nothing already written (goldens, HARs, splits, reports) is ever left half-written.

Folders the user names (``--out``, the state and work folders, the golden store) are checked and created here, so a
path that is a file, a read-only folder or another user's folder is one :class:`~hailo_qa.errors.InputFileError`
naming the path, never an ``OSError`` traceback.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from hailo_qa.errors import InputFileError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str | Path, data: bytes | str | Callable[[BinaryIO], object], *, fsync: bool = False,
                 replace: Callable[[str, str], None] | None = None) -> Path:
    """Write ``data`` to ``path`` through a unique temp file in the same folder, then ``os.replace`` it.

    A crash or an error at any point leaves the previous file untouched and no temp file behind; concurrent
    writers (xdist workers) never share a temp name. The file gets the usual permissions (0666 & ~umask), not
    ``mkstemp``'s 0600.

    Args:
        path: the destination (its folder is created).
        data: bytes, text (UTF-8), or a callable that writes into the open binary file.
        fsync: flush to disk before the rename (goldens). Defaults to False.
        replace: the rename function (tests inject failures). Defaults to ``os.replace``.
    """
    p = Path(path)
    if p.is_dir():
        raise InputFileError(f"cannot write '{p}': it is a folder", note="expected a file path (or nothing) there",
                             hint="remove or rename the folder, or choose another path")
    ensure_dir(p.parent)
    try:
        fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=".tmp")
    except OSError as err:
        raise _unwritable(p.parent, err) from err
    try:
        os.chmod(tmp, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
            if callable(data):
                data(f)
            else:
                f.write(data.encode("utf-8") if isinstance(data, str) else data)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        (replace or os.replace)(tmp, p)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return p


def _unwritable(folder: Path, err: OSError) -> InputFileError:
    why = err.strerror or type(err).__name__
    return InputFileError(f"cannot write into '{folder}' ({why})",
                          note="expected a folder this user can create files in",
                          hint="choose a writable path (--out, --work-dir, --hqa-golden-dir, HAILO_QA_STATE_DIR), or "
                               "fix the folder's permissions")


def ensure_dir(path: str | Path, what: str = "folder") -> Path:
    """Create ``path`` (and its parents) if needed; a file in the way or a read-only parent is an InputFileError.

    Args:
        path: the folder.
        what: how to name it in the error, e.g. ``"--out"`` or ``"the state folder"``. Defaults to ``"folder"``.
    """
    p = Path(path)
    if p.is_dir():
        return p
    blocker = next((a for a in (p, *p.parents) if a.exists() and not a.is_dir()), None)
    if blocker is not None:
        raise InputFileError(f"{what} '{p}' cannot be created: '{blocker}' is a file, not a folder",
                             note="expected a folder (or a path that does not exist yet)",
                             hint="remove or rename the file, or choose another path")
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InputFileError(f"{what} '{p}' cannot be created ({err.strerror or type(err).__name__})",
                             note="expected a path this user can create (a read-only checkout or another user's "
                                  "folder cannot hold it)",
                             hint="choose a writable path (e.g. set HAILO_QA_STATE_DIR, or pass --out/--work-dir)") \
            from err
    return p


def check_out_dir(path: str | Path, what: str = "--out") -> Path:
    """Check, without creating anything, that ``path`` is or can become a folder this user can write into.

    Commands call it before their work starts, so a bad ``--out`` fails in a second, not after an hour.
    """
    p = Path(path)
    blocker = next((a for a in (p, *p.parents) if a.exists() and not a.is_dir()), None)
    if blocker is not None:
        raise InputFileError(f"{what} '{p}' is not a folder: '{blocker}' is a file",
                             note="expected a folder (or a path that does not exist yet)",
                             hint="remove or rename the file, or choose another path")
    existing = next(a for a in (p, *p.parents) if a.exists())
    if not os.access(existing, os.W_OK | os.X_OK):
        raise InputFileError(f"{what} '{p}' is not writable ('{existing}' is read-only for this user)",
                             note="expected a folder this user can create files in",
                             hint="choose a writable path, or fix the folder's permissions")
    return p
