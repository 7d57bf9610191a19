"""Atomic file writes: nothing already written (goldens, HARs, splits, reports) is ever left half-written.

Folders the user names (``--out``, the state and work folders, the golden store) are checked and created here, so a
path that is a file, a read-only folder or another user's folder is one :class:`~hailo_qa.errors.InputFileError`
naming the path, never an ``OSError`` traceback.
"""
from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, TypeVar

from hailo_qa.errors import InputFileError

T = TypeVar("T")


SHARED_STATE_HINT = ("a folder shared by several users needs group-writable files: make it a setgid group folder "
                     "(chgrp TEAM DIR; chmod 2775 DIR) and run hailo-qa with umask 002 — or give each user their "
                     "own HAILO_QA_STATE_DIR")
"""How to share a state folder between users (said wherever another user's file or folder cannot be written)."""


def file_in_the_way(path: str | Path, *, include_self: bool = True) -> Path | None:
    """The first of ``path`` (unless ``include_self`` is False) and its ancestors that exists but is not a folder."""
    p = Path(path)
    return next((a for a in ((p,) if include_self else ()) + tuple(p.parents) if a.exists() and not a.is_dir()),
                None)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def default_mode(mode: int = 0o777) -> int:
    """``mode`` as a plain ``open``/``mkdir`` would create it under the current umask (not ``mkstemp``'s 0600/0700)."""
    return mode & ~_umask()


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
    why = err.strerror or str(err) or type(err).__name__
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
    blocker = file_in_the_way(p)
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


def writable_dir(path: str | Path, what: str = "cache folder") -> Path:
    """:func:`ensure_dir`, then make sure this user can create files in it: a folder another user made (a shared
    state folder without group write) is one :class:`InputFileError` naming its owner and mode, not a
    ``PermissionError`` from deep inside a step."""
    p = ensure_dir(path, what)
    if not os.access(p, os.W_OK | os.X_OK):
        st = p.stat()
        raise InputFileError(f"{what} '{p}' is not writable by this user (uid {os.getuid()}): it belongs to uid "
                             f"{st.st_uid}, gid {st.st_gid}, mode {stat.filemode(st.st_mode)}",
                             note="expected a folder this user can create files in",
                             hint="set HAILO_QA_STATE_DIR (or --work-dir / --hqa-work-dir) to a folder of your own; "
                                  + SHARED_STATE_HINT)
    return p


def check_out_dir(path: str | Path, what: str = "--out") -> Path:
    """Check, without creating anything, that ``path`` is or can become a folder this user can write into.

    Commands call it before their work starts, so a bad ``--out`` fails in a second, not after an hour.
    """
    p = Path(path)
    blocker = file_in_the_way(p)
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


def state_subdir(sub: str, option: str | None = None) -> Path:
    """``config.STATE_DIR / sub``, checked (not created) before the work starts: the state folder, or the path to it,
    being a file, read-only or another user's is one :class:`InputFileError` naming the folder, ``HAILO_QA_STATE_DIR``
    and ``option`` (the command's own way to put this folder elsewhere, e.g. ``"--work-dir"``).
    """
    from hailo_qa import config

    path = config.STATE_DIR / sub
    try:
        check_out_dir(path, f"the {sub} folder under {config.STATE_ENV}" if sub else
                      f"the state folder ({config.STATE_ENV})")
    except InputFileError as err:
        other = f", or pass {option}" if option else ""
        blocked = " is a file" in err.what
        err.hint = (f"set {config.STATE_ENV} to a folder this user can write{other}"
                    + ("; or remove the file in the way" if blocked else f"; {SHARED_STATE_HINT}"))
        raise
    return path


# ------------------------------------------------------------------------------------------ files that change together
LOCK_TIMEOUT_S = 120.0
"""How long a writer or reader of a file group waits for another process's write to finish before giving up."""


@contextlib.contextmanager
def folder_lock(folder: str | Path, *, exclusive: bool = True, timeout: float = LOCK_TIMEOUT_S):
    """Hold an advisory lock (``flock``) on ``folder`` itself: no lock file is left behind, and a killed holder's lock
    is released by the kernel. The wait is bounded: after ``timeout`` seconds an :class:`InputFileError` says who
    to look for.
    """
    fd = os.open(folder, os.O_RDONLY)
    try:
        if not _flock_within(fd, exclusive, timeout):
            raise InputFileError(f"'{folder}' stayed locked by another hailo-qa process for {timeout:.0f} s",
                                 note="expected the other writer (e.g. a parallel --hqa-update-golden run) "
                                      "to finish within that time",
                                 hint="wait for it or stop it, then re-run")
        yield
    finally:
        os.close(fd)  # releases the lock


def _flock_within(fd: int, exclusive: bool, timeout: float) -> bool:
    """``flock`` ``fd``, polling (no busy wait) for at most ``timeout`` seconds: whether the lock was taken."""
    import fcntl
    import time

    deadline = time.monotonic() + timeout
    mode = (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB
    while True:
        try:
            fcntl.flock(fd, mode)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)


BUILD_WAIT_S = 900.0
"""How long a process waits for another's build of the same cache entry before building it itself (a calibration
of a few thousand samples takes minutes)."""


@contextlib.contextmanager
def build_lock(path: str | Path, *, timeout: float = BUILD_WAIT_S):
    """Hold an exclusive lock while building the cache entry ``path`` (a file or a folder).

    A second process that needs the same entry (another pytest-xdist worker) waits here for the first one's build,
    then finds the entry made: callers look again inside the lock. The lock is the hidden file ``.<name>.lock``
    beside ``path``, left in place (removing it would race with a waiter); a killed holder's lock is released by the
    kernel. Yields True when locked, else False, and the caller builds unlocked (its atomic writes keep readers
    safe; at worst the entry is built twice): no ``fcntl``, a folder this user cannot create files in, a file system
    without locks, or another build that took longer than ``timeout`` seconds.
    """
    p = Path(path)
    fd = None
    try:
        import fcntl  # noqa: F401  (POSIX only)

        p.parent.mkdir(parents=True, exist_ok=True)
        lock = p.parent / f".{p.name}.lock"
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
        except PermissionError:  # another user's lock file in a shared state folder: a read fd locks as well
            fd = os.open(lock, os.O_RDONLY)
    except (ImportError, OSError):
        fd = None
    try:
        locked = False
        if fd is not None:
            try:
                locked = _flock_within(fd, True, timeout)
            except OSError:
                locked = False
        yield locked
    finally:
        if fd is not None:
            os.close(fd)  # releases the lock


def build_once(path: str | Path, load: Callable[[], T | None], build: Callable[[], T]) -> T:
    """The cache entry at ``path``: ``load()`` when it finds one, else ``build()`` under :func:`build_lock`.

    ``load`` is tried again inside the lock, so a process that waited for another's build of the same entry (a
    pytest-xdist worker) reads that build instead of repeating it. ``load`` returns None for an entry that is absent
    or unreadable; ``build`` writes the entry (atomically) and returns it.
    """
    hit = load()
    if hit is not None:
        return hit
    with build_lock(path):
        hit = load()
        return hit if hit is not None else build()


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _journal_path(files: list[Path]) -> Path:
    first = files[0]
    return first.parent / f".{first.name}.group-journal"


def _temps_of(final: Path) -> list[Path]:
    import glob

    return sorted(final.parent.glob(f".{glob.escape(final.name)}.*.tmp"))


def _recover_locked(files: list[Path]) -> None:
    """Finish (roll forward) a committed group write, and remove temps of one killed before its commit point."""
    import json

    journal = _journal_path(files)
    if journal.is_file():
        try:
            entries = json.loads(journal.read_text(encoding="utf-8"))["files"]
        except (OSError, ValueError, KeyError, TypeError):
            entries = []  # cannot happen (the journal is written atomically); treat as not committed
        for tmp_name, final_name in entries:
            tmp = journal.parent / tmp_name
            if tmp.is_file() and "/" not in tmp_name and "/" not in final_name:
                os.replace(tmp, journal.parent / final_name)
        _fsync_dir(journal.parent)
        journal.unlink()
    for final in (*files, journal):
        for tmp in _temps_of(final):
            with contextlib.suppress(OSError):
                tmp.unlink()
    _fsync_dir(files[0].parent)


def _needs_recovery(files: list[Path]) -> bool:
    journal = _journal_path(files)
    return journal.exists() or any(_temps_of(f) for f in (*files, journal))


def recover_group(files: list[Path] | tuple[Path, ...]) -> None:
    """Bring a file group written by :func:`atomic_write_group` to a complete state after a crash or ``kill -9``.

    Cheap when nothing is pending (two stats, no lock). Called by readers before they read the group.

    Raises:
        InputFileError: a pending write cannot be finished (a read-only folder) or the folder stays locked.
    """
    files = [Path(f) for f in files]
    if not files[0].parent.is_dir() or not _needs_recovery(files):
        return
    try:
        with folder_lock(files[0].parent):
            _recover_locked(files)
    except OSError as err:
        raise InputFileError(f"'{files[0].parent}' holds an interrupted update of {files[0].name} that cannot be "
                             f"finished ({err.strerror or err})",
                             note="expected a writable folder to complete or roll back the update",
                             hint="make the folder writable and re-run, or restore the files from version control") \
            from err


@contextlib.contextmanager
def group_read_lock(files: list[Path] | tuple[Path, ...]):
    """Finish any interrupted write of the group, then hold a shared lock while the caller reads it."""
    files = [Path(f) for f in files]
    recover_group(files)
    if not files[0].parent.is_dir():
        yield
        return
    with folder_lock(files[0].parent, exclusive=False):
        yield


def atomic_write_group(contents: "dict[Path, bytes]") -> None:
    """Replace several files in one folder so that they change together: after a crash or ``kill -9`` at any
    moment, readers (through :func:`recover_group`) see either every old file or every new one — never a mix — and
    no temp file stays behind.

    Protocol (all under an exclusive lock on the folder): finish any earlier interrupted write; write each file to a
    temp file and fsync it; atomically write a journal naming the temps (the commit point); ``os.replace`` each temp;
    delete the journal. A crash before the commit point leaves only temps (removed by the next recovery: the old
    files stand); a crash after it leaves the journal (the next recovery finishes the renames: the new files stand).

    Args:
        contents: final path → bytes. All paths must be in the same folder.
    """
    import json

    files = [Path(p) for p in contents]
    folder = files[0].parent
    if any(f.parent != folder for f in files):
        raise ValueError("atomic_write_group: every file must be in the same folder")
    for f in files:
        if f.is_dir():
            raise InputFileError(f"cannot write '{f}': it is a folder", note="expected a file path (or nothing) there",
                                 hint="remove or rename the folder, or choose another path")
    ensure_dir(folder)
    try:
        with folder_lock(folder):
            _recover_locked(files)
            temps: dict[Path, Path] = {}
            try:
                for final, data in contents.items():
                    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{Path(final).name}.", suffix=".tmp")
                    temps[Path(final)] = Path(tmp)
                    os.chmod(tmp, 0o666 & ~_umask())
                    with os.fdopen(fd, "wb") as fh:
                        fh.write(data)
                        fh.flush()
                        os.fsync(fh.fileno())
                journal = _journal_path(files)
                atomic_write(journal, json.dumps({"files": [[t.name, f.name] for f, t in temps.items()]}),
                             fsync=True)
                _fsync_dir(folder)
            except BaseException:
                for tmp in temps.values():
                    with contextlib.suppress(OSError):
                        tmp.unlink()
                raise
            _recover_locked(files)  # the renames, then the journal goes
    except InputFileError:
        raise
    except OSError as err:
        raise _unwritable(folder, err) from err
