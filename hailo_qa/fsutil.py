"""Atomic file writes: nothing already written (goldens, HARs, splits, reports) is ever left half-written."""
from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


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
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=".tmp")
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
