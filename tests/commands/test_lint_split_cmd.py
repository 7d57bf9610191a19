from __future__ import annotations

import json

from hailo_qa.cli import main
from tests.graph import models


def test_lint_json(tmp_path, capsys):
    p = models.save(models.conv_topk(), tmp_path / "m.onnx")
    assert main(["lint", p, "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["rejected_by_op"] == {"ReduceMax": 1, "TopK": 1}


def test_split_writes_stages_and_verifies(tmp_path, capsys):
    p = models.save(models.conv_topk(), tmp_path / "m.onnx")
    assert main(["split", p, "--out", str(tmp_path / "out"), "--verify", "2"]) == 0
    out = capsys.readouterr().out
    assert "bit-exact" in out and "Boundary tensors" in out
    for f in ("stage1.onnx", "stage2.onnx", "split_report.json", "split_report.md"):
        assert (tmp_path / "out" / f).is_file()


def test_split_errors_are_messages_not_tracebacks(tmp_path, capsys):
    p = models.save(models.conv_topk(), tmp_path / "m.onnx")
    assert main(["split", p, "--out", str(tmp_path / "o"), "--cut", "rellu"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cut tensor 'rellu' does not exist") and "Hint:" in err
    assert "Traceback" not in err
    assert main(["lint", str(tmp_path / "missing.onnx")]) == 2
    assert "does not exist" in capsys.readouterr().err
