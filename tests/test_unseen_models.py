"""Models the suite has never seen (not in the manifest), used the way a new user would: lint, split, prove.

See ``fixtures/unseen/PROVENANCE.md``. A model with dynamic spatial dims must be given its deployment size.
"""
from __future__ import annotations

import json

import pytest

from hailo_qa.cli import main
from hailo_qa.config import REPO_ROOT

UNSEEN = REPO_ROOT / "fixtures" / "unseen"

CASES = [
    ("mtcnn_pnet.onnx", ["--shape", "input_1=1,12,12,3"]),
    ("mtcnn_rnet.onnx", []),
    ("ppocr_mobile_v2_cls.onnx", ["--shape", "x=1,3,48,192"]),
]


@pytest.mark.parametrize("name,extra", CASES, ids=[c[0].removesuffix(".onnx") for c in CASES])
def test_split_and_proof_on_unseen_model(name, extra, tmp_path, capsys):
    rc = main(["split", str(UNSEEN / name), "--out", str(tmp_path), "--verify", "3", *extra])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "equivalence on 3 random input(s): bit-exact" in out
    report = json.loads((tmp_path / "split_report.json").read_text())
    assert report["stage1"]["nodes"] > 0 and report["boundary"]


def test_dynamic_spatial_dims_need_a_shape(tmp_path, capsys):
    rc = main(["split", str(UNSEEN / "ppocr_mobile_v2_cls.onnx"), "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 2 and "dynamic non-batch dims" in err and "--shape x=" in err


def test_lint_unseen_model_json(capsys):
    assert main(["lint", str(UNSEEN / "ppocr_mobile_v2_cls.onnx"), "--shape", "x=1,3,48,192", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["image_inputs"] == ["x"] and d["preparation"]["pinned"]["x"]["to"] == [1, 3, 48, 192]
