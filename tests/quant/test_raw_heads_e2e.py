"""Raw-head detectors through the emulator end to end (issue #10 item 6): a Zoo-family look-alike cut at its Model
Zoo end nodes is quantized (INT8, built-in emulator), its heads decoded to boxes on both sides, and detection
agreement float vs quantized measured; per-output SNR/cosine are kept whatever happens to the decode."""
from __future__ import annotations

import numpy as np
import pytest

from hailo_qa.config import REPO_ROOT
from hailo_qa.manifest import load_manifest
from hailo_qa.quant.evaluation import evaluate_quantization

UNSEEN = REPO_ROOT / "fixtures" / "unseen"


def _spec(tmp_path, name: str, inp: str = "images", range_hi: float = 1.0):
    stem = name.removesuffix(".onnx")
    d = tmp_path / f"{stem}-{range_hi:g}"
    d.mkdir(exist_ok=True)
    (d / "m.toml").write_text(f"""
[models.{stem}]
file = "{UNSEEN / name}"
task = "detection"
[[models.{stem}.inputs]]
name = "{inp}"
shape = [1, 3, 128, 128]
range = [0.0, {range_hi}]
[models.{stem}.calibration]
source = "random"
sizes = [16]
""")
    return load_manifest(d / "m.toml").models[0]


def _feeds(inp: str = "images", n: int = 4):
    return [(f"noise[{k}]", {inp: np.random.default_rng([7, k]).random((1, 3, 128, 128), dtype=np.float32)})
            for k in range(n)]


# (model, input, heads at the Zoo cut, INT8 agreement floor). Measured on 4 noise images, calib 16 random in [0, 1],
# ort-emulator (onnxruntime 1.32, shared 2-core machine): agreement / SNR — YOLOv8 0.95 / 35.5 dB, YOLOX 0.97 / 34.9,
# YOLOv5 0.70 / 21.0, SCRFD 0.52 / 26.8, NanoDet-Plus 0.94 / 28.3; floors are those minus 0.15. Calibrated on
# [0, 0.05] instead (the inputs clip): 0.78 / 12.2, 0.20 / 7.3, 0.04 / 0.1, 0.00 / 3.4, 0.78 / 9.9.
CASES = [pytest.param("yolov8_like.onnx", "images", 6, 0.80, id="yolov8"),
         pytest.param("yolox_like.onnx", "images", 9, 0.82, id="yolox"),
         pytest.param("yolov5_like.onnx", "images", 3, 0.55, id="yolov5", marks=pytest.mark.slow),
         pytest.param("scrfd_like.onnx", "input.1", 9, 0.37, id="scrfd", marks=pytest.mark.slow),
         pytest.param("nanodet_like.onnx", "data", 6, 0.79, id="nanodet", marks=pytest.mark.slow)]


@pytest.mark.parametrize("name,inp,n_heads,floor", CASES)
def test_zoo_heads_decoded_end_to_end_through_the_emulator(name, inp, n_heads, floor, tmp_path):
    feeds = _feeds(inp)  # the same noise images for SNR and agreement, in [0, 1] whatever the calibration saw
    q = evaluate_quantization(_spec(tmp_path, name, inp), config="int8", calib_size=16, backend="ort",
                              work_dir=tmp_path / "w", feeds=feeds, agree_feeds=feeds)
    assert q.backend_name == "ort-emulator" and not q.hailo
    heads = [k for k in q.metrics if k.startswith("snr_db/")]
    assert len(heads) == n_heads  # one per Model Zoo end-node output
    assert all(f"cosine/{k.split('/', 1)[1]}" in q.metrics for k in heads)
    assert q.metrics["detection_agreement"] >= floor, q.table()
    assert any("decoded to boxes" in n for n in q.notes)

    # bad quantization: calibrated on [0, 0.05], evaluated on [0, 1] — the clipped inputs lose detections
    bad = evaluate_quantization(_spec(tmp_path, name, inp, range_hi=0.05), config="int8", calib_size=16,
                                backend="ort", work_dir=tmp_path / "w", feeds=feeds, agree_feeds=feeds)
    assert bad.metrics["detection_agreement"] < q.metrics["detection_agreement"] - 0.1, bad.table()
    assert bad.metrics["snr_db"] < q.metrics["snr_db"] - 10


def test_per_output_metrics_survive_a_failing_decode(tmp_path, monkeypatch):
    """A decode that fails (here: a decoder that raises) leaves a note; SNR/cosine per head are still there."""
    from hailo_qa.errors import InputDataError
    from hailo_qa.evaluate import heads

    def broken(*a, **k):
        raise InputDataError("planted decode failure")

    monkeypatch.setattr(heads, "decode_heads", broken)
    q = evaluate_quantization(_spec(tmp_path, "yolov8_like.onnx"), config="int8", calib_size=16, backend="ort",
                              work_dir=tmp_path / "w", feeds=_feeds(n=2), agree_feeds=_feeds(n=2))
    assert "detection_agreement" not in q.metrics
    assert sum(k.startswith("snr_db/") for k in q.metrics) == 6 and q.metrics["snr_db"] > 20
    assert any("planted decode failure" in n and "per-output SNR and cosine" in n for n in q.notes)
