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


def test_failed_proof_is_an_error_and_writes_nothing(tmp_path, capsys, monkeypatch):
    from hailo_qa.graph import split as split_mod

    real = split_mod.stages_from_onnx

    def sabotaged(*a, **kw):  # a Stage 2 that is not the true tail
        r = real(*a, **kw)
        for n in r.stage2.graph.node:
            if n.op_type == "ReduceMax":
                n.op_type = "ReduceMin"
        return r

    monkeypatch.setattr(split_mod, "stages_from_onnx", sabotaged)
    p = models.save(models.conv_topk(), tmp_path / "m.onnx")
    assert main(["split", p, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: MISMATCH: the split is not equivalent to the model on 'random[0]': output 'vals'")
    assert "\nNote: expected bit-exact equality" in err and "\nHint: nothing was written to" in err
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_no_simplify_and_static_shape_override(tmp_path, capsys):
    p = models.save(models.conv_topk(batch=1), tmp_path / "m.onnx")
    assert main(["split", p, "--out", str(tmp_path / "o"), "--no-simplify"]) == 0
    rep = json.loads((tmp_path / "o" / "split_report.json").read_text())
    assert rep["preparation"]["simplifier"] == "none" and rep["proof"]["verdict"] == "bit-exact"
    capsys.readouterr()
    assert main(["lint", p, "--no-simplify", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["preparation"]["simplifier"] == "none"
    assert main(["split", p, "--out", str(tmp_path / "o2"), "--shape", "images=1,3,16,16"]) == 2
    err = capsys.readouterr().err
    assert "axis 2 is fixed at 8, not 16" in err and "--reshape" in err
    assert main(["split", p, "--out", str(tmp_path / "o2"), "--shape", "images=1,3,16,16", "--reshape"]) == 0
    assert "bit-exact" in capsys.readouterr().out
