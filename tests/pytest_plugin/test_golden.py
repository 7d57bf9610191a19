"""The hqa_golden / hqa_history fixtures and the regression gate, end to end through pytester."""
from __future__ import annotations

import sqlite3

import numpy  # noqa: F401  (imported here so in-process pytester runs never re-import C extensions)
import onnx  # noqa: F401
import onnxruntime  # noqa: F401
import pytest

import hailo_qa.evaluate.compare  # noqa: F401
import hailo_qa.manifest  # noqa: F401
import hailo_qa.store.golden  # noqa: F401
import hailo_qa.store.history  # noqa: F401
from hailo_qa import toolchain

toolchain.versions()  # loads every lazily imported extension module in this process

pytest_plugins = ("pytester",)

GOLDEN_TEST = '''
import os
import numpy as np
from pathlib import Path
from hailo_qa.manifest import ModelSpec
from hailo_qa.runners.base import BackendInfo

MODEL_FILE = Path(__file__).parent / "m.onnx"

def test_golden(hqa_golden):
    shift = float(os.environ.get("HQA_TEST_SHIFT", "0"))
    model = ModelSpec(name="m", file=MODEL_FILE, task="generic", inputs=(), raw={"file": "m.onnx"})
    out = {"y": np.arange(6, dtype=np.float32) + np.float32(shift)}
    hqa_golden.check(out, model=model, target="float", name="s0",
                     backend=BackendInfo("onnxruntime", "1.0", "float"), atol=1e-6)
'''

HISTORY_TEST = '''
import os
import pytest
from hailo_qa.runners.base import BackendInfo

@pytest.mark.parametrize("i", range(int(os.environ.get("HQA_TESTS", "1"))))
def test_metrics(hqa_history, i):
    snr = float(os.environ.get("HQA_SNR", "30"))
    for k in range(int(os.environ.get("HQA_ROWS", "1"))):
        hqa_history.record(model=f"m{i}", metric="snr_db", value=snr, target="emulator", config="int8",
                           calib_size=64, stage=f"k{k}", backend=BackendInfo("ort-emulator", "0.1", "emulator"))
'''


@pytest.fixture
def golden_proj(pytester):
    pytester.makepyfile(test_g=GOLDEN_TEST)
    (pytester.path / "m.onnx").write_bytes(b"model")
    return pytester


def run_g(p, *args):
    return p.runpytest("-p", "no:cacheprovider", "--hqa-golden-dir", str(p.path / "golden"),
                       "--hqa-history", "off", *args)


def test_golden_lifecycle(golden_proj, monkeypatch):
    p = golden_proj
    npz = p.path / "golden" / "m" / "float" / "s0.npz"
    r = run_g(p)
    r.assert_outcomes(failed=1)
    r.stdout.fnmatch_lines([f"*golden created: {npz}; re-run to compare*"])
    assert npz.is_file() and npz.with_name("s0.meta.json").is_file()

    run_g(p).assert_outcomes(passed=1)

    monkeypatch.setenv("HQA_TEST_SHIFT", "0.5")
    r = run_g(p)
    r.assert_outcomes(failed=1)
    r.stdout.fnmatch_lines(["*outputs differ from golden*", "*max abs*", "*obtained outputs written to*"])
    assert npz.with_name("s0.obtained.npz").is_file()

    r = run_g(p, "--hqa-update-golden")
    r.assert_outcomes(failed=1)
    r.stdout.fnmatch_lines([f"*golden rewritten (outputs changed): {npz}*"])
    run_g(p).assert_outcomes(passed=1)

    monkeypatch.setenv("HQA_TEST_SHIFT", "2")
    run_g(p, "--hqa-regen-all").assert_outcomes(passed=1)
    run_g(p).assert_outcomes(passed=1)


def test_golden_refuses_other_model(golden_proj):
    p = golden_proj
    run_g(p, "--hqa-regen-all").assert_outcomes(passed=1)
    (p.path / "m.onnx").write_bytes(b"a different model")
    r = run_g(p)
    r.assert_outcomes(failed=1)
    r.stdout.fnmatch_lines(["*RegressionError*refusing to compare*model_sha256*", "*Hint:*--hqa-update-golden*"])


def test_update_and_regen_are_exclusive(golden_proj):
    r = run_g(golden_proj, "--hqa-update-golden", "--hqa-regen-all")
    assert r.ret != 0
    r.stderr.fnmatch_lines(["*exclusive*"])


def _rows(db) -> list[tuple]:
    c = sqlite3.connect(db)
    try:
        return c.execute("SELECT run_id, model, metric, value, nodeid, git_commit, toolchain FROM metrics").fetchall()
    finally:
        c.close()


def test_history_records_rows_and_outcomes(pytester, monkeypatch):
    pytester.makepyfile(test_h=HISTORY_TEST)
    db = pytester.path / "h.sqlite"
    monkeypatch.setenv("HQA_TESTS", "3")
    monkeypatch.setenv("HQA_ROWS", "2")
    pytester.runpytest("-p", "no:cacheprovider", "--hqa-history", str(db)).assert_outcomes(passed=3)
    rows = _rows(db)
    assert len(rows) == 6 and len({r[0] for r in rows}) == 1
    assert {r[4] for r in rows} == {f"test_h.py::test_metrics[{i}]" for i in range(3)}
    c = sqlite3.connect(db)
    assert c.execute("SELECT COUNT(*) FROM outcomes WHERE outcome='passed'").fetchone()[0] == 3
    c.close()
    pytester.runpytest("-p", "no:cacheprovider", "--hqa-history", str(db)).assert_outcomes(passed=3)
    assert len({r[0] for r in _rows(db)}) == 2  # a second session is a second run


def test_history_off_writes_nothing(pytester):
    pytester.makepyfile(test_h=HISTORY_TEST)
    pytester.runpytest("-p", "no:cacheprovider", "--hqa-history", "off").assert_outcomes(passed=1)
    assert not list(pytester.path.rglob("*.sqlite"))


def test_corrupt_history_is_a_usage_error(pytester):
    pytester.makepyfile(test_h=HISTORY_TEST)
    db = pytester.path / "h.sqlite"
    db.write_bytes(b"my precious data" * 100)
    r = pytester.runpytest("-p", "no:cacheprovider", "--hqa-history", str(db))
    assert r.ret != 0
    assert "is not an SQLite database" in r.stdout.str() + r.stderr.str()
    assert db.read_bytes() == b"my precious data" * 100


def test_regression_gate(pytester, monkeypatch):
    from hailo_qa.store.history import History

    pytester.makepyfile(test_h=HISTORY_TEST)
    db = pytester.path / "h.sqlite"
    args = ("-p", "no:cacheprovider", "--hqa-history", str(db), "--hqa-fail-on-regression")
    monkeypatch.setenv("HQA_SNR", "30")
    pytester.runpytest(*args).assert_outcomes(passed=1)  # no baseline yet
    with History(db) as h:
        base_run = h.latest_run()
        h.accept(base_run)
    monkeypatch.setenv("HQA_SNR", "25")
    r = pytester.runpytest(*args)
    r.assert_outcomes(failed=1)
    r.stdout.fnmatch_lines([f"*metric 'snr_db' regressed: baseline 30 (run {base_run}) -> new 25, delta -5*"])
    monkeypatch.setenv("HQA_SNR", "29.9")
    pytester.runpytest(*args).assert_outcomes(passed=1)
    monkeypatch.setenv("HQA_SNR", "25")  # without the flag the regression is recorded, not failed
    pytester.runpytest("-p", "no:cacheprovider", "--hqa-history", str(db)).assert_outcomes(passed=1)


GOLDEN_MANY = GOLDEN_TEST.replace("def test_golden(hqa_golden):", """import pytest
@pytest.mark.parametrize("n", range(8))
def test_golden(hqa_golden, n):""").replace('name="s0"', 'name=f"s{n}"')


def test_xdist_workers_share_run_id_and_lose_no_rows(pytester, monkeypatch):
    from hailo_qa.store.golden import golden_paths, read_golden

    pytester.makepyfile(test_h=HISTORY_TEST, test_g=GOLDEN_MANY)
    (pytester.path / "m.onnx").write_bytes(b"model")
    db = pytester.path / "h.sqlite"
    monkeypatch.setenv("HQA_TESTS", "8")
    monkeypatch.setenv("HQA_ROWS", "25")
    r = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "4", "--hqa-history", str(db),
                                      "--hqa-golden-dir", str(pytester.path / "golden"), "--hqa-regen-all")
    r.assert_outcomes(passed=16)
    rows = _rows(db)
    assert len(rows) == 8 * 25
    assert len({r[0] for r in rows}) == 1
    for n in range(8):  # goldens written by different workers into one directory: all complete pairs
        g = read_golden(golden_paths(pytester.path / "golden", "m", "float", f"s{n}"))
        assert g.outputs["y"].shape == (6,)
    assert not list((pytester.path / "golden").rglob("*.tmp"))
