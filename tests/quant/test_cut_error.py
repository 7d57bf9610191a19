"""INT8 error of each candidate cut (hailo_qa.quant.cut_error): the split report's "Cuts side by side" column is the
built-in emulator's measurement, checked against theory and on the committed Zoo-family look-alikes."""
from __future__ import annotations

import json
import math

import numpy as np
import onnx
import pytest
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper as nh

from hailo_qa.cli import main
from hailo_qa.config import REPO_ROOT
from hailo_qa.graph.split import render_report, stages_from_onnx
from hailo_qa.quant.cut_error import cut_int8_error

UNSEEN = REPO_ROOT / "fixtures" / "unseen"


def _scaled_relu(scale: float) -> onnx.ModelProto:
    """images[1,3,16,16] → 1×1 Conv (identity × scale, exact in INT8) → Relu: the INT8 error is the input's 8-bit
    rounding, at any scale."""
    w = (np.eye(3, dtype=np.float32) * scale).reshape(3, 3, 1, 1)
    nodes = [h.make_node("Conv", ["images", "w"], ["m"], name="conv"), h.make_node("Relu", ["m"], ["y"], name="relu")]
    g = h.make_graph(nodes, "relu", [h.make_tensor_value_info("images", T.FLOAT, [1, 3, 16, 16])],
                     [h.make_tensor_value_info("y", T.FLOAT, [1, 3, 16, 16])], [nh.from_array(w, "w")])
    return h.make_model(g, opset_imports=[h.make_opsetid("", 13)], ir_version=8)


def test_int8_error_matches_uniform_quantization_theory(tmp_path):
    """Uniform data in [0, 1], 8-bit steps of 1/255: SNR = 10·log10((1/3) / (Δ²/12)) = 54.2 dB, at any scale."""
    theory = 10 * math.log10((1 / 3) / ((1 / 255) ** 2 / 12))
    for scale in (1.0, 1000.0):
        q = cut_int8_error(stages_from_onnx(_scaled_relu(scale)), work_dir=tmp_path, calib_size=64, n_eval=4)
        assert q["backend"].startswith("ort-emulator@") and "not Hailo's" in q["backend_note"]
        assert q["snr_db"] == pytest.approx(theory, abs=1.0), q
        assert set(q["per_output"]) == {"y"} and q["cosine"] > 0.9999


def test_int8_error_sees_values_outside_the_calibration_range(tmp_path):
    """Evaluation wider than calibration clips: the same cut measured on [0, 4] with [0, 1] calibration drops."""
    split = stages_from_onnx(_scaled_relu(1.0))
    good = cut_int8_error(split, work_dir=tmp_path, calib_size=64)
    bad = cut_int8_error(split, work_dir=tmp_path, calib_size=64, eval_range=(0.0, 4.0))
    assert bad["snr_db"] < good["snr_db"] - 30


@pytest.mark.parametrize("name", ["yolov8_like.onnx", pytest.param("nanodet_like.onnx", marks=pytest.mark.slow)])
def test_split_report_fills_the_int8_column_for_both_cuts(name, tmp_path, capsys):
    assert main(["split", str(UNSEEN / name), "--out", str(tmp_path / "s"), "--work-dir", str(tmp_path / "w")]) == 0
    md = capsys.readouterr().out
    report = json.loads((tmp_path / "s" / "split_report.json").read_text())
    largest, zoo = report["candidates"]
    for c in (largest, zoo):
        q = c["int8"]
        assert q["backend"].startswith("ort-emulator@") and 25 < q["snr_db"] < 80 and q["cosine"] > 0.99
        assert set(q["per_output"]) == {b["name"] for b in c["boundary"]}
    assert largest["int8"]["snr_db"] != zoo["int8"]["snr_db"]
    assert "not measured" not in md and "INT8 error by ort-emulator@" in md
    assert render_report(report) == (tmp_path / "s" / "split_report.md").read_text()


def test_int8_column_can_be_turned_off(tmp_path, capsys):
    assert main(["split", str(UNSEEN / "yolox_like.onnx"), "--out", str(tmp_path), "--no-int8-error"]) == 0
    report = json.loads((tmp_path / "split_report.json").read_text())
    assert all("int8" not in c for c in report["candidates"]) and "not measured" in capsys.readouterr().out


def test_a_cut_the_emulator_cannot_measure_is_reported_not_fatal(tmp_path, capsys, monkeypatch):
    from hailo_qa.errors import InputDataError
    from hailo_qa.quant import cut_error

    def fails(split, **kw):
        raise InputDataError("planted: Stage 1 cannot be quantized")

    monkeypatch.setattr(cut_error, "cut_int8_error", fails)
    assert main(["split", str(UNSEEN / "yolox_like.onnx"), "--out", str(tmp_path), "--work-dir", str(tmp_path / "w")]) == 0
    assert "not measured (planted: Stage 1 cannot be quantized)" in capsys.readouterr().out
    report = json.loads((tmp_path / "split_report.json").read_text())
    assert all(c["int8_not_measured"].startswith("planted") for c in report["candidates"])
