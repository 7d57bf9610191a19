"""Under pytest, bad input is a FAILED test with the suite's message (what / Note / Hint), not an ERROR with a
traceback; ``--tb=long`` shows the traceback (the pytest ``--debug``); a bad option is one usage error; a regression
fails the test only after every metric of the test is recorded."""
from __future__ import annotations

import re
import sqlite3

import pytest

from hailo_qa import toolchain
from tests.pytest_plugin.test_golden import HISTORY_TEST

toolchain.versions()  # import the lazily loaded extension modules once, before in-process pytester runs

pytest_plugins = ("pytester",)

BAD_FIXTURE = '''
import pytest
from hailo_qa.errors import InputFileError

@pytest.fixture(scope="module")
def data():
    raise InputFileError("sample 'x.npz' is not a readable .npz file", note="expected np.savez output",
                         hint="re-save the file")

def test_a(data):
    pass

def test_b(data):
    pass

def test_body():
    raise InputFileError("manifest 'm.toml' is a folder", note="expected a TOML file", hint="pass the file")

def test_bug():
    {}["bug"]
'''


def test_a_qaerror_in_a_fixture_fails_the_test_with_the_message(pytester):
    pytester.makepyfile(test_x=BAD_FIXTURE)
    r = pytester.runpytest("-p", "no:cacheprovider", "--hqa-history", "off")
    r.assert_outcomes(failed=4)  # test_bug (a KeyError in the body) fails as any assertion would
    out = r.stdout.str()
    r.stdout.fnmatch_lines(["*_ test_a _*", "InputFileError: sample 'x.npz' is not a readable .npz file",
                            "Note: expected np.savez output", "Hint: re-save the file",
                            "*_ test_body _*", "InputFileError: manifest 'm.toml' is a folder"])
    assert "raise InputFileError" not in out  # no traceback for the suite's own errors
    assert "ERROR test_x.py::test_a" not in out and "ERROR test_x.py::test_b" not in out


def test_tb_long_shows_the_traceback(pytester):
    pytester.makepyfile(test_x=BAD_FIXTURE)
    r = pytester.runpytest("-p", "no:cacheprovider", "--hqa-history", "off", "--tb=long", "-k", "body")
    r.assert_outcomes(failed=1)
    assert "raise InputFileError" in r.stdout.str()


def test_emulator_dfc_without_the_dfc_is_one_usage_error(pytester):
    if toolchain.dfc().found:
        pytest.skip("the DFC is installed here: --hqa-emulator dfc is valid")
    pytester.makepyfile(test_x="def test_a():\n    pass\n")
    r = pytester.runpytest("-p", "no:cacheprovider", "--hqa-emulator", "dfc")
    assert r.ret == pytest.ExitCode.USAGE_ERROR
    err = r.stderr.str()
    assert err.count("--hqa-emulator dfc asks for the Hailo Dataflow Compiler emulator") == 1
    assert "Hint: install the DFC" in err and "Traceback" not in err + r.stdout.str()


def test_a_regression_fails_the_test_after_every_metric_is_recorded(pytester, monkeypatch):
    from hailo_qa.store.history import History

    pytester.makepyfile(test_h=HISTORY_TEST)
    db = pytester.path / "h.sqlite"
    args = ("-p", "no:cacheprovider", "--hqa-history", str(db), "--hqa-fail-on-regression")
    monkeypatch.setenv("HQA_ROWS", "3")
    monkeypatch.setenv("HQA_SNR", "30")
    pytester.runpytest(*args).assert_outcomes(passed=1)
    with History(db) as h:
        h.accept(h.latest_run())
    monkeypatch.setenv("HQA_SNR", "20")  # every one of the 3 metrics regresses; the first must not stop the rest
    r = pytester.runpytest(*args)
    r.assert_outcomes(failed=1)
    # each of the 3 regressed metrics is named (pytest may repeat the message in its short summary)
    assert len(set(re.findall(r"(\S+): metric 'snr_db' regressed", r.stdout.str()))) == 3
    c = sqlite3.connect(db)
    try:
        assert c.execute("SELECT COUNT(*) FROM metrics WHERE value = 20").fetchone()[0] == 3
        assert c.execute("SELECT outcome FROM outcomes ORDER BY rowid DESC LIMIT 1").fetchone()[0] == "failed"
    finally:
        c.close()


STATE_TEST = """
def test_records(hqa_history):
    hqa_history.record(model="m", metric="snr_db", value=30.0, target="emulator")

def test_work(hqa_work_dir):
    pass
"""


def test_a_state_folder_that_is_a_file_fails_each_test_with_the_message(pytester, monkeypatch):
    """HAILO_QA_STATE_DIR (the history, the work folder) is a file: every test that needs it FAILS with the suite's
    message naming the file and the variable — no ERROR, no traceback."""
    blocker = pytester.path / "state-file"
    blocker.write_text("not a folder\n")
    state = blocker / "hailo_qa"
    pytester.makepyfile(test_state=STATE_TEST)
    monkeypatch.setenv("HAILO_QA_STATE_DIR", str(state))
    monkeypatch.delenv("HAILO_QA_HISTORY", raising=False)
    r = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:xdist", timeout=300)
    r.assert_outcomes(failed=2)
    out = r.stdout.str()
    assert "Traceback" not in out and "ERROR" not in out
    r.stdout.fnmatch_lines([
        f"HistoryError: --hqa-history | history '{state}/history.sqlite' cannot be opened: '{blocker}' is a file, "
        "not a folder", "Note: *", "Hint: remove or rename that file, or set HAILO_QA_STATE_DIR*",
        f"InputFileError: the work folder under HAILO_QA_STATE_DIR '{state}/work' is not a folder: '{blocker}' is a "
        "file", "Note: *", "Hint: set HAILO_QA_STATE_DIR to a folder this user can write, or pass --hqa-work-dir*"])
    assert blocker.read_text() == "not a folder\n"
