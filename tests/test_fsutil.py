"""fsutil's build lock: a second process that needs a cache entry another one is building waits, then finds it."""
from __future__ import annotations

import multiprocessing
import time

from hailo_qa.fsutil import atomic_write, build_lock, build_once


def _build(entry, started, hold_s):
    with build_lock(entry) as locked:
        started.set()
        time.sleep(hold_s)
        if locked:
            atomic_write(entry, "built")


def _hold_in_child(entry, hold_s=1.0):
    ctx = multiprocessing.get_context("spawn")
    started = ctx.Event()
    proc = ctx.Process(target=_build, args=(entry, started, hold_s))
    proc.start()
    assert started.wait(60), "the child never took the lock"
    return proc


def test_a_second_builder_waits_for_the_first_and_finds_the_entry(tmp_path):
    entry = tmp_path / "cache" / "entry.onnx"
    proc = _hold_in_child(entry)
    t0 = time.monotonic()
    with build_lock(entry) as locked:
        waited = time.monotonic() - t0
        assert locked and entry.read_text() == "built"  # without the lock: not there yet, built twice
    proc.join(60)
    assert waited > 0.3
    assert [p.name for p in entry.parent.iterdir() if not p.name.startswith(".")] == ["entry.onnx"]


def test_a_build_that_takes_too_long_is_not_waited_for(tmp_path):
    entry = tmp_path / "entry.onnx"
    proc = _hold_in_child(entry, hold_s=1.5)
    with build_lock(entry, timeout=0.2) as locked:
        assert not locked and not entry.exists()  # the caller builds it itself (atomic writes keep that safe)
    proc.join(60)


def test_no_lock_where_none_can_be_made_is_not_an_error(tmp_path):
    (tmp_path / "file").write_text("a file where the cache folder should be")
    with build_lock(tmp_path / "file" / "entry.onnx") as locked:
        assert locked is False


def test_build_once_reads_the_entry_another_process_built_while_it_waited(tmp_path):
    """Absent at the first look, built by the child meanwhile: the look inside the lock finds it, no second build."""
    entry = tmp_path / "cache" / "entry.onnx"
    proc = _hold_in_child(entry)
    looks, builds = [], []

    def load():
        looks.append(entry.exists())
        return entry.read_text() if entry.exists() else None

    got = build_once(entry, load, lambda: builds.append(1) or "ours")
    proc.join(60)
    assert got == "built" and looks == [False, True] and builds == []


def test_build_once_builds_a_missing_entry_once_and_returns_a_present_one_unlocked(tmp_path):
    entry = tmp_path / "entry.txt"
    built = build_once(entry, lambda: None, lambda: atomic_write(entry, "new") and entry.read_text())
    assert built == "new" and entry.read_text() == "new"
    assert build_once(entry, entry.read_text, lambda: (_ for _ in ()).throw(AssertionError("rebuilt"))) == "new"
