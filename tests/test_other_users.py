"""A read-only checkout and a second user: hailo-qa run (command line and pytest) as non-root users.

Everything else in the suite runs as whoever runs pytest (root in CI), so these run the command line in a subprocess
as uid 65534 (``nobody``) and uid 4242 (a bare uid with no passwd entry), sharing group 4243. The child keeps one
capability, ``CAP_DAC_READ_SEARCH`` (``setpriv --ambient-caps``), only so it can *read* the Python environment when
that lives in root's home (``/root/.pyenv`` here); writing is checked as for any user — ``access(2)`` and every
``open``/``mkdir`` for writing ignore that capability. Skipped, with the reason, when not root.

- **Read-only checkout** (a copy of ``hailo_qa/`` and its manifest that the user cannot write): the default state
  folder ``<checkout>/.hailo_qa`` cannot be made, so hailo-qa uses ``$XDG_STATE_HOME/hailo-qa/<checkout>-<hash>``
  and says so; an explicit ``HAILO_QA_STATE_DIR`` that is read-only, or no home to fall back to, is one error naming
  the folder and the variable (exit 2).
- **Shared state folder** (setgid, group-writable, umask 002): user B validates after user A — B writes into the
  split and emulator caches and the history A created. A cache folder B cannot write is one error naming its owner
  and mode (exit 2), not a ``PermissionError``.
"""
from __future__ import annotations

import os
import shutil
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from onnx import numpy_helper

from tests.graph.models import conv_topk, save

REPO = Path(__file__).resolve().parent.parent
A_UID, B_UID, TEAM_GID = 65534, 4242, 4243
SETPRIV = shutil.which("setpriv")

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0,
    reason=f"runs hailo-qa as uids {A_UID} and {B_UID}: needs root to switch users (running as uid {os.geteuid()})")


def run_as(uid: int, argv: list[str], *, home: Path | None, env: dict[str, str] | None = None, gid: int = TEAM_GID,
           umask: int = 0o022, pythonpath: Path = REPO, cwd: Path | None = None,
           timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``python argv...`` as ``uid``:``gid`` (no supplementary groups) with a clean environment."""
    child_env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(pythonpath), "HAILORT_LOGGER_PATH": "NONE",
                 "HAILO_QA_SHARED": os.environ.get("HAILO_QA_SHARED", str(REPO.parent / "shared")),
                 "PYTHONDONTWRITEBYTECODE": "1", "MPLCONFIGDIR": "/tmp", **(env or {})}
    if home is not None:
        home.mkdir(parents=True, exist_ok=True)
        os.chown(home, uid, gid)
        child_env["HOME"] = str(home)
    cmd = [sys.executable, *argv]
    if SETPRIV:
        cmd = [SETPRIV, f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "--inh-caps=+dac_read_search",
               "--ambient-caps=+dac_read_search", "/bin/sh", "-c", f"umask {umask:03o}; exec \"$@\"", "sh", *cmd]
        return subprocess.run(cmd, env=child_env, capture_output=True, text=True, timeout=timeout, cwd=cwd)
    return subprocess.run(cmd, env=child_env, capture_output=True, text=True, timeout=timeout, cwd=cwd, user=uid,
                          group=gid, extra_groups=[], umask=umask)


def _manifest(folder: Path, names: tuple[str, ...] = ("m",)) -> Path:
    """A manifest of tiny models (conv → relu → reducemax → topk) with .npy samples and calibration data."""
    rng = np.random.default_rng(0)
    for d in ("samples", "calib"):
        (folder / d).mkdir(parents=True, exist_ok=True)
        for k in range(3):
            np.save(folder / d / f"s{k}.npy", rng.uniform(0, 1, (1, 3, 8, 8)).astype(np.float32))
    text = ""
    for i, name in enumerate(names):
        model = conv_topk(batch=1)
        w = np.random.default_rng(i + 1).normal(size=(4, 3, 3, 3)).astype(np.float32)
        model.graph.initializer[0].CopyFrom(numpy_helper.from_array(w, "w"))  # other weights: other caches
        save(model, folder / f"{name}.onnx")
        text += (f'[models.{name}]\nfile = "{name}.onnx"\nsamples = ["samples/*.npy"]\n'
                 f'[[models.{name}.inputs]]\nname = "images"\nshape = [1, 3, 8, 8]\nrange = [0.0, 1.0]\n'
                 f'[models.{name}.calibration]\nsource = "calib"\nsizes = [2]\n')
    (folder / "models.toml").write_text(text)
    return folder / "models.toml"


def _lines(proc: subprocess.CompletedProcess) -> list[str]:
    return proc.stderr.strip().splitlines()


def _assert_error(proc: subprocess.CompletedProcess, first: str) -> None:
    lines = _lines(proc)
    assert proc.returncode == 2, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    assert "Traceback" not in proc.stdout + proc.stderr
    errors = [ln for ln in lines if ln.startswith("error: ")]
    assert errors and errors[0].startswith(first), f"expected an error starting with:\n  {first}\ngot:\n{proc.stderr}"
    assert any(ln.startswith("Hint: ") for ln in lines), proc.stderr


@pytest.fixture
def tmp_path():
    """A temp folder every user can reach (pytest's own lives under a 0700 folder of root's)."""
    import tempfile

    path = Path(tempfile.mkdtemp(prefix="hqa-users-"))
    path.chmod(0o755)
    yield path
    for p in path.rglob("*"):
        if p.is_dir() and not p.is_symlink():
            p.chmod(0o755)
    shutil.rmtree(path, ignore_errors=True)


# ----------------------------------------------------------------------------------------- a read-only checkout
@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A copy of the package and a manifest of one tiny model, root-owned and read-only for everybody else."""
    root = tmp_path / "checkout"
    shutil.copytree(REPO / "hailo_qa", root / "hailo_qa", ignore=shutil.ignore_patterns("__pycache__"))
    _manifest(root / "fixtures")
    for p in (root, *root.rglob("*")):
        p.chmod(0o555 if p.is_dir() else 0o444)
    return root


@pytest.mark.slow
def test_read_only_checkout_falls_back_to_a_per_user_state_folder_and_says_so(checkout, tmp_path):
    home = tmp_path / "home-a"
    proc = run_as(A_UID, ["-m", "hailo_qa", "validate"], home=home, pythonpath=checkout, cwd=home)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    states = list((home / ".local" / "state" / "hailo-qa").glob("checkout-*"))
    assert len(states) == 1, list(home.rglob("*"))
    state = states[0]
    assert (f"note: this user cannot write the checkout's state folder '{checkout / '.hailo_qa'}' (a read-only "
            f"checkout or another user's); using '{state}' instead (set HAILO_QA_STATE_DIR to choose)") in _lines(proc)
    assert not (checkout / ".hailo_qa").exists()
    with sqlite3.connect(state / "history.sqlite") as c:  # the figures went to the per-user history
        assert c.execute("SELECT COUNT(*) FROM metrics WHERE model='m' AND metric='validate_pass'").fetchone() == (1,)
    assert list((state / "validate").glob("validate-*.json")) and list((state / "work" / "splits").iterdir())


def test_read_only_checkout_without_a_home_is_one_error_naming_the_folder_and_the_variable(checkout, tmp_path):
    # uid 4242 has no passwd entry, and no HOME: there is no per-user folder to fall back to
    proc = run_as(B_UID, ["-m", "hailo_qa", "validate"], home=None, pythonpath=checkout, cwd="/")
    _assert_error(proc, f"error: the work folder under HAILO_QA_STATE_DIR '{checkout / '.hailo_qa' / 'work'}' is "
                        f"not writable ('{checkout}' is read-only for this user)")
    assert "set HAILO_QA_STATE_DIR to a folder this user can write, or pass --work-dir" in proc.stderr


@pytest.mark.parametrize("command", [["validate"], ["emulate", "m", "--backend", "ort"], ["report"],
                                     ["sweep-calib", "m", "--sizes", "2", "--backend", "ort"], ["compile", "m"],
                                     ["checklist", "m"]])
def test_an_explicit_read_only_state_folder_is_an_error_not_a_fallback(checkout, tmp_path, command):
    state = tmp_path / "state"
    state.mkdir()
    state.chmod(0o755)  # root's: read-only for the user
    home = tmp_path / "home-a"
    proc = run_as(A_UID, ["-m", "hailo_qa", *command], home=home, pythonpath=checkout, cwd=home,
                  env={"HAILO_QA_STATE_DIR": str(state)})
    sub = {"validate": "work", "emulate": "work", "report": "report", "sweep-calib": "sweeps/m-int8",
           "compile": "compile", "checklist": "work"}[command[0]]
    _assert_error(proc, f"error: the {sub} folder under HAILO_QA_STATE_DIR '{state / sub}' is not writable")
    assert "set HAILO_QA_STATE_DIR to a folder this user can write" in proc.stderr
    assert not list(home.glob(".local/state/hailo-qa/*")) and list(state.iterdir()) == []


def test_lint_and_split_with_a_read_only_state_folder_name_it_and_no_cache_opts_out(checkout, tmp_path):
    """The cache of proven prepared graphs lives in the state folder: one this user cannot write is the error every
    command gives (before the work), and ``--no-cache`` lints and splits without it."""
    state = tmp_path / "state"
    state.mkdir()
    state.chmod(0o755)  # root's: read-only for the user
    home = tmp_path / "home-a"
    model = str(checkout / "fixtures" / "m.onnx")
    for argv in (["lint", model], ["split", model, "--out", str(home / "o"), "--no-int8-error"]):
        proc = run_as(A_UID, ["-m", "hailo_qa", *argv], home=home, pythonpath=checkout, cwd=home,
                      env={"HAILO_QA_STATE_DIR": str(state)})
        _assert_error(proc, f"error: the work folder under HAILO_QA_STATE_DIR '{state / 'work'}' is not writable")
        proc = run_as(A_UID, ["-m", "hailo_qa", *argv, "--no-cache"], home=home, pythonpath=checkout, cwd=home,
                      env={"HAILO_QA_STATE_DIR": str(state)})
        assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stdout + proc.stderr
    assert list(state.iterdir()) == []


PYTEST_FILE = """
def test_records(hqa_history, hqa_work_dir):
    hqa_history.record(model="m", metric="snr_db", value=30.0, target="emulator")
    assert hqa_work_dir.is_dir()
"""


@pytest.mark.slow
def test_pytest_session_in_a_read_only_checkout(checkout, tmp_path):
    home = tmp_path / "home-a"
    tests = home / "t"
    tests.mkdir(parents=True)
    (tests / "test_ro.py").write_text(PYTEST_FILE)
    for p in (home, tests, tests / "test_ro.py"):
        os.chown(p, A_UID, TEAM_GID)
    proc = run_as(A_UID, ["-m", "pytest", "-p", "no:cacheprovider", "-p", "no:xdist", "-q", "test_ro.py"],
                  home=home, pythonpath=checkout, cwd=tests)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (state,) = (home / ".local" / "state" / "hailo-qa").glob("checkout-*")
    with sqlite3.connect(state / "history.sqlite") as c:
        assert c.execute("SELECT value FROM metrics WHERE metric='snr_db'").fetchall() == [(30.0,)]
    assert (state / "work").is_dir() and not (checkout / ".hailo_qa").exists()


# ----------------------------------------------------------------------------------------- a shared state folder
@pytest.fixture
def shared(tmp_path: Path) -> tuple[Path, Path]:
    """(manifest of models a and b, an empty team state folder: setgid, group TEAM_GID, 2775)."""
    data = tmp_path / "data"
    manifest = _manifest(data, ("a", "b"))
    for p in (data, *data.rglob("*")):
        p.chmod(0o755 if p.is_dir() else 0o644)
    state = tmp_path / "team-state"
    state.mkdir()
    os.chown(state, 0, TEAM_GID)
    state.chmod(0o2775)
    return manifest, state


def _validate(uid: int, manifest: Path, state: Path, tmp_path: Path, *models: str, umask: int = 0o002):
    home = tmp_path / f"home-{uid}"
    return run_as(uid, ["-m", "hailo_qa", "validate", "--manifest", str(manifest), "--models", ",".join(models)],
                  home=home, cwd=home, umask=umask, env={"HAILO_QA_STATE_DIR": str(state)})


def _owners(folder: Path) -> set[int]:
    return {p.stat().st_uid for p in folder.iterdir()}


@pytest.mark.slow
def test_user_b_runs_after_user_a_on_a_shared_state_folder(shared, tmp_path):
    manifest, state = shared
    first = _validate(A_UID, manifest, state, tmp_path, "a")
    assert first.returncode == 0, first.stdout + first.stderr
    second = _validate(B_UID, manifest, state, tmp_path, "a", "b")  # 'a' from A's caches, 'b' new in A's folders
    assert second.returncode == 0, second.stdout + second.stderr
    assert "Traceback" not in second.stdout + second.stderr
    for cache in ("work/splits", "work/emulator", "validate"):
        assert _owners(state / cache) == {A_UID, B_UID}, cache  # B wrote into the folders A created
        assert state.joinpath(cache).stat().st_mode & 0o2070 == 0o2070, cache  # group-writable, setgid kept
    split_dirs = [d for d in (state / "work" / "splits").iterdir() if d.is_dir()]  # not the build locks
    assert all(d.stat().st_mode & 0o2070 == 0o2070 for d in split_dirs), [oct(d.stat().st_mode) for d in split_dirs]
    with sqlite3.connect(state / "history.sqlite") as c:
        rows = c.execute("SELECT model, COUNT(DISTINCT run_id) FROM metrics WHERE metric='validate_pass' "
                         "GROUP BY model ORDER BY model").fetchall()
    assert rows == [("a", 2), ("b", 1)]  # both users' runs in the one history A created
    assert stat.S_IMODE((state / "history.sqlite").stat().st_mode) == 0o664


def test_a_cache_folder_user_b_cannot_write_is_one_error(shared, tmp_path):
    manifest, state = shared
    # user A's emulator cache as a umask-022 run leaves it: owned by A, not group-writable
    cache = state / "work" / "emulator"
    cache.mkdir(parents=True)
    (state / "work").chmod(0o2775)
    os.chown(state / "work", A_UID, TEAM_GID)
    os.chown(cache, A_UID, TEAM_GID)
    cache.chmod(0o2755)
    home = tmp_path / "home-b"
    proc = run_as(B_UID, ["-m", "hailo_qa", "emulate", "a", "--manifest", str(manifest), "--backend", "ort",
                          "--n-eval", "1"], home=home, cwd=home, umask=0o002,
                  env={"HAILO_QA_STATE_DIR": str(state)})
    _assert_error(proc, f"error: the emulator cache '{cache}' is not writable by this user (uid {B_UID}): it "
                        f"belongs to uid {A_UID}, gid {TEAM_GID}, mode drwxr-sr-x")
    assert "chmod 2775" in proc.stderr and "umask 002" in proc.stderr
    assert list(cache.iterdir()) == []


def test_a_history_user_b_cannot_write_is_one_error(shared, tmp_path):
    _, state = shared
    from hailo_qa.store.history import History, make_row

    hist = state / "history.sqlite"
    with History(hist) as h:  # a history user A made under umask 022 (0644)
        h.record(make_row(run_id="r1", model="a", metric="snr_db", value=30.0, target="emulator", git="",
                          toolchain={}))
    os.chown(hist, A_UID, TEAM_GID)
    hist.chmod(0o644)
    before = hist.read_bytes()
    home = tmp_path / "home-b"
    proc = run_as(B_UID, ["-m", "hailo_qa", "baseline", "accept", "--latest"], home=home, cwd=home,
                  umask=0o002, env={"HAILO_QA_STATE_DIR": str(state)})
    _assert_error(proc, f"error: history '{hist}' is read-only: attempt to write a readonly database")
    assert "chmod 2775" in proc.stderr
    assert hist.read_bytes() == before
