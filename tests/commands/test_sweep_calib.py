"""``hailo-qa sweep-calib``: table, knee, the three files (atomic), progress lines on stderr, and errors."""
from __future__ import annotations

import json
import re

import pytest

from hailo_qa.cli import main
from hailo_qa.manifest import load_manifest


@pytest.fixture(scope="module", autouse=True)
def _onet():
    spec = load_manifest().get("mtcnn_onet")
    if not spec.available:
        pytest.skip(f"mtcnn_onet is not present: {spec.unavailable}")


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    import contextlib
    import io

    base = tmp_path_factory.mktemp("sweep")
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(["sweep-calib", "mtcnn_onet", "--sizes", "8,4,16", "--backend", "ort", "--out", str(base / "out"),
                   "--work-dir", str(base / "work")])
    return rc, out.getvalue(), err.getvalue(), base / "out"


def test_table_and_knee(swept):
    import json

    rc, out, _, outdir = swept
    assert rc == 0
    rows = re.findall(r"^\| (\d+) \| ([\d.]+) \| ([\d.]+) \|", out, re.M)
    assert [int(r[0]) for r in rows] == [4, 8, 16]  # sorted
    # the knee from the unrounded SNRs (the table rounds to 0.01 dB, which can cross the 0.5 dB tolerance)
    snr = [r["metrics"]["snr_db"] for r in json.loads((outdir / "sweep.json").read_text())["results"]]
    best = max(snr)
    knee = min(n for n, s in zip((4, 8, 16), snr) if s >= best - 0.5)
    assert f"Knee: {knee} — the smallest size whose SNR is within 0.5 dB of the best" in out
    assert "approximation of Hailo numerics" in out and "never calibration data" in out


def test_files_are_consistent(swept):
    _, out, _, folder = swept
    assert sorted(p.name for p in folder.iterdir()) == ["sweep.json", "sweep.md", "sweep.png"]  # no temp files left
    d = json.loads((folder / "sweep.json").read_text())
    assert d["sizes"] == [4, 8, 16] and d["knee_tol_db"] == 0.5 and "knee_definition" in d
    assert [r["calib_size"] for r in d["results"]] == [4, 8, 16]
    assert len({tuple(r["eval_inputs"]) for r in d["results"]}) == 1  # one evaluation set across sizes
    assert all(r["backend"]["name"] == "ort-emulator" and r["backend"]["hailo"] is False for r in d["results"])
    assert (folder / "sweep.md").read_text().strip() in out
    assert (folder / "sweep.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_progress_lines_on_stderr(swept):
    _, out, err, _ = swept
    lines = re.findall(r"^\[(\d)/3\] calib (\d+): SNR [\d.]+ dB, cosine [\d.]+ \(ort-emulator; elapsed ([\d.]+) s\)$",
                       err, re.M)
    assert [(k, n) for k, n, _ in lines] == [("1", "4"), ("2", "8"), ("3", "16")]
    assert [float(t) for _, _, t in lines] == sorted(float(t) for _, _, t in lines)
    assert "[1/3]" not in out


def test_knee_tolerance_option_moves_the_knee(tmp_path, capsys):
    argv = ["sweep-calib", "mtcnn_onet", "--sizes", "4,16", "--backend", "ort", "--work-dir", str(tmp_path / "w")]
    assert main([*argv, "--out", str(tmp_path / "a"), "--knee-tol", "1000"]) == 0
    assert json.loads((tmp_path / "a" / "sweep.json").read_text())["knee"] == 4
    assert main([*argv, "--out", str(tmp_path / "b"), "--knee-tol", "0"]) == 0
    d = json.loads((tmp_path / "b" / "sweep.json").read_text())
    best = max(d["results"], key=lambda r: r["metrics"]["snr_db"])["calib_size"]
    assert d["knee"] == best
    capsys.readouterr()


@pytest.mark.parametrize("sizes", ["16,abc", "0,4", "", "4,,8"])
def test_bad_sizes_exit_2_with_note_and_hint(sizes, tmp_path, capsys):
    assert main(["sweep-calib", "mtcnn_onet", "--sizes", sizes, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "not a list of positive integers" in err and "Note:" in err and "Hint: e.g. --sizes" in err
    assert not (tmp_path / "o").exists()


def test_unknown_model_exits_2_with_note_and_hint(tmp_path, capsys):
    assert main(["sweep-calib", "mtcnn_onte", "--sizes", "4", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "is not in the manifest" in err and "Note:" in err and "Hint:" in err and "mtcnn_onet" in err


def test_unwritable_out_exits_2_and_keeps_old_files(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("keep me")
    assert main(["sweep-calib", "mtcnn_onet", "--sizes", "4", "--backend", "ort", "--out", str(blocker / "sub"),
                 "--work-dir", str(tmp_path / "w")]) == 2
    assert "is not a folder" in capsys.readouterr().err and blocker.read_text() == "keep me"  # refused before work


def test_bad_knee_tolerance_is_an_argument_error(capsys):
    with pytest.raises(SystemExit) as e:
        main(["sweep-calib", "mtcnn_onet", "--knee-tol", "-1"])
    assert e.value.code == 2 and "dB >= 0" in capsys.readouterr().err
