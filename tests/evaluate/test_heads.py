"""Raw detector heads decoded to boxes (hailo_qa.evaluate.heads): planted detections come back where they were put."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hailo_qa.errors import InputDataError
from hailo_qa.evaluate.heads import _nms, decode_heads
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


# ---- decoders against the exporters' own in-graph decode, on the committed look-alikes --------------------------------
UNSEEN = Path(__file__).resolve().parents[2] / "fixtures" / "unseen"


def _zoo_heads_and_output(name: str, seed: int = 0):
    """(head maps at the Model Zoo cut, the full model's output) of a look-alike on one random image."""
    import onnxruntime as ort

    from hailo_qa.graph.split import stages_from_onnx

    r = stages_from_onnx(UNSEEN / name)
    x = np.random.default_rng(seed).random((1, 3, 128, 128), dtype=np.float32)
    s1 = ort.InferenceSession(r.stage1.SerializeToString(), providers=["CPUExecutionProvider"])
    heads = dict(zip([o.name for o in s1.get_outputs()], s1.run(None, {s1.get_inputs()[0].name: x})))
    full = ort.InferenceSession(str(UNSEEN / name), providers=["CPUExecutionProvider"])
    return r.report["zoo"]["decode"], heads, full.run(None, {full.get_inputs()[0].name: x})[0]


def _boxes(xywh: np.ndarray, score: np.ndarray, label: np.ndarray):
    xyxy = np.concatenate([xywh[:, :2] - xywh[:, 2:] / 2, xywh[:, :2] + xywh[:, 2:] / 2], 1)
    keep = score >= 0.25
    return _nms(xyxy[keep], score[keep], label[keep], 1.01, 10**6)  # no suppression: NMS breaks float ties freely


@pytest.mark.parametrize("name", ["yolov8_like.onnx", "yolov5_like.onnx"])
def test_zoo_cut_heads_decode_to_the_models_own_boxes(name):
    """Heads at the Zoo cut, decoded in NumPy, give the boxes the exported graph decodes itself (before NMS)."""
    family, heads, out = _zoo_heads_and_output(name)
    if family == "yolov8":  # [1, 4 + nc, N]: xywh pixels, class sigmoids
        o = out[0].T
        ref = _boxes(o[:, :4], o[:, 4:].max(1), o[:, 4:].argmax(1))
    else:  # yolov5 [1, N, 5 + nc]: xywh pixels, objectness, class sigmoids
        o = out[0]
        conf = o[:, 4:5] * o[:, 5:]
        ref = _boxes(o[:, :4], conf.max(1), conf.argmax(1))
    got = decode_heads(family, heads, (128, 128), max_det=10**6, iou=1.01)
    assert len(ref["boxes"]) >= 5, "the look-alike should detect something on noise at 0.25"
    assert len(got["boxes"]) == len(ref["boxes"])
    # every reference box has a decoded twin: same label, coordinates within 1e-3 px (float ties reorder them;
    # IoU cannot compare the zero-width boxes a random-weight head produces)
    d = np.abs(ref["boxes"][:, None, :] - got["boxes"][None, :, :]).max(-1)
    d[ref["labels"][:, None] != got["labels"][None, :]] = np.inf
    assert d.min(1).max() < 1e-3 and d.min(0).max() < 1e-3
    np.testing.assert_allclose(np.sort(got["scores"]), np.sort(ref["scores"]), atol=1e-5)
    other = "yolov5" if family == "yolov8" else "yolov8"
    with pytest.raises(InputDataError):  # the wrong decoder does not silently produce boxes
        decode_heads(other, heads, (128, 128))


@pytest.mark.parametrize("name", ["nanodet_like.onnx", "scrfd_like.onnx", "yolox_like.onnx"])
def test_zoo_cut_heads_decode_consistently_with_the_model_outputs(name):
    """Exports that leave the box decode to the host: the decoded scores are the model's own output scores."""
    family, heads, out = _zoo_heads_and_output(name)
    got = decode_heads(family, heads, (128, 128), min_score=0.0, max_det=10**6, iou=1.0)
    if family == "nanodet":  # output [1, N, nc + 32]: class sigmoids first
        ref = np.sort(out[0][:, :4].max(1))
    elif family == "yolox":  # output [1, N, 5 + nc]: obj × cls
        ref = np.sort((out[0][:, 4:5] * out[0][:, 5:]).max(1))
    else:  # scrfd: score_8, score_16, score_32 first
        ref = None
    if ref is not None:
        np.testing.assert_allclose(np.sort(got["scores"]), ref, atol=1e-5)
    else:
        assert len(got["scores"]) == 2 * (16 * 16 + 8 * 8 + 4 * 4)


def test_scrfd_and_nanodet_planted_boxes():
    hw = (64, 64)
    out = {}
    for s in (8, 16, 32):
        h = hw[0] // s
        score = np.full((1, 2, h, h), -10.0, np.float32)
        bbox = np.ones((1, 8, h, h), np.float32)
        if s == 16:
            score[0, 1, 2, 1] = 10.0  # anchor 1 at row 2, col 1
        out[f"{s}_score"], out[f"{s}_bbox"], out[f"{s}_kps"] = score, bbox, np.zeros((1, 20, h, h), np.float32)
    d = decode_heads("scrfd", out, hw)
    assert d["labels"].tolist() == [0]
    np.testing.assert_allclose(d["boxes"][0], [16 - 16, 32 - 16, 16 + 16, 32 + 16], atol=1e-4)
    nd = {}
    for s in (8, 16, 32):
        h = hw[0] // s
        reg = np.full((1, 32, h, h), -10.0, np.float32)
        reg[:, [k * 8 + 2 for k in range(4)]] = 10.0  # 2 bins each way
        cls = np.full((1, 3, h, h), -10.0, np.float32)
        if s == 8:
            cls[0, 1, 3, 4] = 10.0
        nd[f"/head/Split_{s}_output_0"], nd[f"/head/Split_{s}_output_1"] = cls, reg
    d = decode_heads("nanodet", nd, hw)
    assert d["labels"].tolist() == [1]
    np.testing.assert_allclose(d["boxes"][0], [32 - 16, 24 - 16, 32 + 16, 24 + 16], atol=1e-3)
