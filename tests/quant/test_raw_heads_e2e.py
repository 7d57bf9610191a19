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


def _spec(tmp_path, name: str, range_hi: float = 1.0):
    (tmp_path / "m.toml").write_text(f"""
[models.{name.removesuffix('.onnx')}]
file = "{UNSEEN / name}"
task = "detection"
[[models.{name.removesuffix('.onnx')}.inputs]]
name = "images"
shape = [1, 3, 128, 128]
range = [0.0, {range_hi}]
[models.{name.removesuffix('.onnx')}.calibration]
source = "random"
sizes = [16]
""")
    return load_manifest(tmp_path / "m.toml").models[0]


def _feeds(n=4):
    return [(f"noise[{k}]", {"images": np.random.default_rng([7, k]).random((1, 3, 128, 128), dtype=np.float32)})
            for k in range(n)]


class _Coarse:
    """A quantized runner whose head outputs are rounded to 2 levels per tensor: a broken quantization (1 bit)."""

    def __init__(self, inner):
        self.inner, self.backend = inner, inner.backend

    def __enter__(self):
        self.inner.__enter__()
        return self

    def __exit__(self, *exc):
        return self.inner.__exit__(*exc)

    def infer(self, feeds):
        out = {}
        for k, v in self.inner.infer(feeds).items():
            lo, hi = float(v.min()), float(v.max())
            step = (hi - lo) / 1 or 1.0
            out[k] = (np.round((v - lo) / step) * step + lo).astype(v.dtype)
        return out


# measured (ort-emulator, 4 noise inputs, calib 16 random): YOLOv8-like agreement 0.92 at 46 dB, 0.57 under the
# 1-bit corruption below (SNR 20 dB); YOLOX-like 0.43 at 56 dB and 0.57 corrupted — its random-weight scores sit
# at the 0.25 threshold, so its agreement is noise and only its per-head SNR is held to drop
GOOD_AGREEMENT = {"yolov8_like.onnx": 0.8, "yolox_like.onnx": 0.3}
AGREEMENT_DISCRIMINATES = {"yolov8_like.onnx"}


@pytest.mark.parametrize("name", ["yolov8_like.onnx", "yolox_like.onnx"])
def test_zoo_heads_decoded_end_to_end_through_the_emulator(name, tmp_path, monkeypatch):
    spec = _spec(tmp_path, name)
    q = evaluate_quantization(spec, config="int8", calib_size=16, backend="ort", work_dir=tmp_path / "w",
                              feeds=_feeds())
    assert q.backend_name == "ort-emulator" and not q.hailo
    heads = [k for k in q.metrics if k.startswith("snr_db/")]
    assert len(heads) == (6 if "v8" in name else 9)  # one per Model Zoo end node
    assert all(f"cosine/{k.split('/', 1)[1]}" in q.metrics for k in heads)
    assert q.metrics["detection_agreement"] >= GOOD_AGREEMENT[name], q.table()
    assert any("decoded to boxes" in n for n in q.notes)

    from hailo_qa.quant import emulator

    real = emulator.make_emulator
    monkeypatch.setattr(emulator, "make_emulator", lambda *a, **k: _Coarse(real(*a, **k)))
    bad = evaluate_quantization(spec, config="int8", calib_size=16, backend="ort", work_dir=tmp_path / "w",
                                feeds=_feeds())
    assert "detection_agreement" in bad.metrics
    if name in AGREEMENT_DISCRIMINATES:
        assert bad.metrics["detection_agreement"] < q.metrics["detection_agreement"] - 0.2, bad.table()
    assert bad.metrics["snr_db"] < q.metrics["snr_db"] - 10
    assert all(bad.metrics[k] < q.metrics[k] for k in q.metrics if k.startswith("snr_db/"))


def test_per_output_metrics_survive_a_failing_decode(tmp_path, monkeypatch):
    """A decode that fails (here: a decoder that raises) leaves a note; SNR/cosine per head are still there."""
    from hailo_qa.errors import InputDataError
    from hailo_qa.evaluate import heads

    def broken(*a, **k):
        raise InputDataError("planted decode failure")

    monkeypatch.setattr(heads, "decode_heads", broken)
    q = evaluate_quantization(_spec(tmp_path, "yolov8_like.onnx"), config="int8", calib_size=16, backend="ort",
                              work_dir=tmp_path / "w", feeds=_feeds(2))
    assert "detection_agreement" not in q.metrics
    assert sum(k.startswith("snr_db/") for k in q.metrics) == 6 and q.metrics["snr_db"] > 20
    assert any("planted decode failure" in n and "per-output SNR and cosine" in n for n in q.notes)
