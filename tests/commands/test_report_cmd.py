"""``hailo-qa report`` and ``hailo-qa baseline`` through the CLI entry point."""
from __future__ import annotations

import pytest

from hailo_qa.cli import main
from hailo_qa.store import history as H


@pytest.fixture
def db(tmp_path):
    p = tmp_path / "history.sqlite"
    with H.History(p) as h:
        for run, v in (("r1", 30.0), ("r2", 28.0)):
            h.record(H.make_row(run_id=run, model="yunet", metric="snr_db", value=v, target="emulator",
                                config="int8", calib_size=64, git="", toolchain={}))
    return p


def test_report_writes_markdown_html_and_plots(db, tmp_path, capsys):
    out = tmp_path / "rep"
    assert main(["report", "--history", str(db), "--out", str(out), "--manifest", str(tmp_path / "none.toml")]) == 2
    capsys.readouterr()
    assert main(["report", "--history", str(db), "--out", str(out)]) == 0
    cap = capsys.readouterr()
    assert str(out / "report.md") in cap.out and str(out / "report.html") in cap.out
    assert "hailo-qa report: plot 1/1: Trend: SNR" in cap.err
    md = (out / "report.md").read_text()
    assert "| yunet | int8 | 64 |" in md and "snr_db=28 (-2, —)" in md
    assert "data:image/png;base64," in (out / "report.html").read_text()
    assert (out / "plots" / "01_Trend_SNR.png").is_file()
    assert md.index("## Summary") < md.index("## Plots") < md.index("| yunet | int8 | 64 |")
    # the project manifest adds its models as "not tested" rows
    assert "not tested" in md


def test_report_quiet_and_missing_history(tmp_path, db, capsys):
    assert main(["report", "--history", str(db), "--out", str(tmp_path / "q"), "--quiet"]) == 0
    assert capsys.readouterr().err == ""
    assert main(["report", "--history", str(tmp_path / "nope.sqlite")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: history") and "Hint:" in err
    assert main(["report", "--history", str(db), "--run", "r7", "--out", str(tmp_path / "q")]) == 2
    assert "run 'r7' has no rows" in capsys.readouterr().err


def test_baseline_accept_show_and_gate(db, capsys):
    assert main(["baseline", "show", "--history", str(db)]) == 0
    out = capsys.readouterr().out
    assert "r1" in out and "r2" in out and "ACCEPTED" not in out
    assert main(["baseline", "accept", "--run", "r1", "--history", str(db)]) == 0
    assert "accepted run r1 (1 metric rows)" in capsys.readouterr().out
    assert main(["baseline", "accept", "--latest", "--history", str(db)]) == 0
    assert "accepted run r2" in capsys.readouterr().out
    main(["baseline", "show", "--history", str(db)])
    lines = [ln for ln in capsys.readouterr().out.splitlines() if "ACCEPTED" in ln]
    assert [ln.split()[0] for ln in lines] == ["r1", "r2"]
    with H.History(db) as h:
        assert h.baseline_for(("yunet", "", "", "emulator", "int8", 64, "snr_db"), exclude_run="r3").run_id == "r2"


def test_baseline_errors(db, tmp_path, capsys):
    assert main(["baseline", "accept", "--run", "r9", "--history", str(db)]) == 2
    err = capsys.readouterr().err
    assert "run 'r9' has no rows" in err and "Hint:" in err
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(b"not a database" * 10)
    assert main(["baseline", "show", "--history", str(bad)]) == 2
    assert "is not an SQLite database" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # --run and --latest are exclusive, one is required
        main(["baseline", "accept", "--history", str(db)])
