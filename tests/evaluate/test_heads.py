"""Raw detector heads decoded to boxes (hailo_qa.evaluate.heads): planted detections come back where they were put."""
from __future__ import annotations

import numpy as np
import pytest

from hailo_qa.errors import InputDataError
from hailo_qa.evaluate.heads import decode_heads
from hailo_qa.evaluate.metrics import detection_agreement

HW = (64, 64)


def _v8_heads(plant: dict[int, tuple[int, int, int]], reg: int = 16, nc: int = 3) -> dict[str, np.ndarray]:
    """Three scales (8, 16, 32); ``plant[stride] = (row, col, label)`` gets a confident box of 2 strides each way."""
    out = {}
    for s in (8, 16, 32):
        h = HW[0] // s
        box = np.full((1, 4 * reg, h, h), -10.0, np.float32)
        box[:, [k * reg + 2 for k in range(4)]] = 10.0  # every distance = 2 bins
        cls = np.full((1, nc, h, h), -10.0, np.float32)
        if s in plant:
            r, c, lab = plant[s]
            cls[0, lab, r, c] = 10.0
        out[f"box{s}"], out[f"cls{s}"] = box, cls
    return out


def test_yolov8_heads_decode_to_the_planted_box():
    d = decode_heads("yolov8", _v8_heads({16: (1, 2, 2)}), HW)
    assert d["labels"].tolist() == [2] and d["scores"][0] > 0.99
    cx, cy = (2 + 0.5) * 16, (1 + 0.5) * 16
    np.testing.assert_allclose(d["boxes"][0], [cx - 32, cy - 32, cx + 32, cy + 32], atol=1e-3)


def test_yolox_heads_decode_and_agreement_drops_when_a_head_breaks():
    def heads(obj_scale=1.0):
        out = {}
        for s in (8, 16, 32):
            h = HW[0] // s
            reg = np.zeros((1, 4, h, h), np.float32)
            obj = np.zeros((1, 1, h, h), np.float32)
            cls = np.zeros((1, 2, h, h), np.float32)
            if s == 8:
                obj[0, 0, 3, 4], cls[0, 1, 3, 4] = 0.9 * obj_scale, 0.95
            out[f"reg{s}"], out[f"obj{s}"], out[f"cls{s}"] = reg, obj, cls
        return out

    ref = decode_heads("yolox", heads(), HW)
    assert ref["labels"].tolist() == [1]
    np.testing.assert_allclose(ref["boxes"][0], [4 * 8 - 4, 3 * 8 - 4, 4 * 8 + 4, 3 * 8 + 4], atol=1e-4)
    assert detection_agreement(ref, decode_heads("yolox", heads(), HW), min_score=0.25).agreement == 1.0
    broken = decode_heads("yolox", heads(obj_scale=0.1), HW)  # objectness collapsed: the detection is lost
    assert detection_agreement(ref, broken, min_score=0.25).agreement == 0.0


def test_unknown_family_and_bad_maps_are_errors():
    with pytest.raises(InputDataError):
        decode_heads("ssd", {}, HW)
    with pytest.raises(InputDataError):
        decode_heads("yolov8", {"x": np.zeros((1, 3, 8), np.float32)}, HW)
