"""The command line's contract: exit 2 with what / Note / Hint for bad input, 3 with one ``internal error`` message
for a bug (``--debug`` shows the traceback), and output on any terminal encoding. The bad-input corpus itself is
``tests/test_bad_inputs.py``."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hailo_qa import cli
from hailo_qa.cli import EXIT_INTERNAL, main
from hailo_qa.config import SHARED_DIR
from tests.graph.models import conv_topk, save

REPO = Path(__file__).resolve().parent.parent


def _boom(args):
    return {}["no such key"]  # an unexpected exception inside a command


def test_an_unexpected_exception_is_one_internal_error_message_with_exit_3(monkeypatch, capsys):
    monkeypatch.setattr(cli.importlib.import_module("hailo_qa.commands.lint"), "run", _boom)
    assert main(["lint", "x.onnx"]) == EXIT_INTERNAL == 3
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert lines[0].startswith("internal error: KeyError: 'no such key' (at ") and "test_cli.py" not in lines[0]
    assert lines[1].startswith("Note: this is a bug in hailo-qa") and lines[2].startswith("Hint: rerun with --debug")
    assert "Traceback" not in err


def test_debug_shows_the_traceback_of_an_internal_error(monkeypatch):
    monkeypatch.setattr(cli.importlib.import_module("hailo_qa.commands.lint"), "run", _boom)
    with pytest.raises(KeyError, match="no such key"):
        main(["--debug", "lint", "x.onnx"])


def test_debug_shows_the_traceback_of_a_user_error(tmp_path):
    from hailo_qa.errors import QAError

    with pytest.raises(QAError, match="does not exist"):
        main(["--debug", "lint", str(tmp_path / "missing.onnx")])


def test_a_usage_error_is_in_the_suites_form(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["lint", "m.onnx", "--batch", "0"])
    assert stop.value.code == 2
    assert capsys.readouterr().err.splitlines() == [
        "error: argument --batch: Could not parse value: '0'",
        "Note: expected a batch size from 1 to 4096, e.g. 1",
        "Hint: see 'hailo-qa lint --help'"]


def test_output_works_on_an_ascii_terminal(tmp_path):
    """``lint`` prints "→" (pinned shapes); on an ASCII terminal it must print "->" instead of crashing."""
    model = tmp_path / "m.onnx"
    save(conv_topk(), model)
    env = {**os.environ, "PYTHONIOENCODING": "ascii", "LC_ALL": "C", "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-m", "hailo_qa", "lint", str(model)], capture_output=True, env=env,
                          timeout=300)
    out = proc.stdout.decode("ascii")  # must be pure ASCII
    assert proc.returncode == 0, proc.stderr.decode("ascii", "replace")
    assert "-> [1, 3, 8, 8]" in out and "→" not in out


def test_ascii_fallbacks_translate_symbols():
    assert "✔ a → b ≥ 3 × 2 — q̂".encode("ascii", "hailo_qa_ascii") == b"OK a -> b >= 3 x 2 - q"
    assert "漢".encode("ascii", "hailo_qa_ascii") == b"?"


@pytest.mark.skipif(not (SHARED_DIR / "hef" / "arcface_mobilefacenet_hailo8_fmt2.hef").is_file(),
                    reason=f"shared HEF not present under {SHARED_DIR} (set HAILO_QA_SHARED)")
def test_one_model_raising_a_bug_does_not_sink_validate(tmp_path, monkeypatch, capsys):
    """Model 'bad' hits an unexpected exception; 'good' is still validated, printed and recorded in the history."""
    import hailo_qa.hw.hef as hef
    from hailo_qa.store.history import History

    hefp = SHARED_DIR / "hef" / "arcface_mobilefacenet_hailo8_fmt2.hef"
    (tmp_path / "m.toml").write_text("".join(f'[models.{n}]\nhef = "{hefp}"\n' for n in ("bad", "good")))
    real = hef.read_hef

    def read_hef(path):
        if read_hef.calls == 0:
            read_hef.calls += 1
            raise ZeroDivisionError("a bug in one model's step")
        return real(path)
    read_hef.calls = 0
    monkeypatch.setattr(hef, "read_hef", read_hef)
    db = tmp_path / "h.sqlite"
    rc = main(["validate", "--manifest", str(tmp_path / "m.toml"), "--history", str(db), "--work-dir",
               str(tmp_path / "w")])
    out, err = capsys.readouterr()
    assert rc == 1  # a model failed: a gate-style failure, not a crash
    assert "good                       PASS" in out and "bad                        FAIL" in out
    assert "bad: failed at inspect: internal error: ZeroDivisionError: a bug in one model's step" in out
    assert "validate: 1 passed, 1 failed" in out and "Traceback" not in out + err
    with History(db) as h:
        rows = {(r.model, r.metric): r.value for r in h.rows()}
    assert rows[("good", "validate_pass")] == 1.0 and rows[("bad", "validate_pass")] == 0.0
    assert rows[("good", "hef_mb")] > 0
