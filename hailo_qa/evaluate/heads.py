"""Decode raw detector heads into boxes, so a detector cut at its Model Zoo end nodes (raw head convolutions, no
``boxes``/``labels``/``scores`` outputs) can still be scored end to end: float vs quantized detection agreement.

Pure functions over ``{name: array}`` head outputs in NCHW, grouped by their spatial size (one group per stride;
``stride = input height / map height``). Decoders, per family of :mod:`hailo_qa.graph.zoo`:

- ``yolov8``: per scale a box map with ``4·reg_max`` channels (distribution focal loss bins, softmax expectation →
  left/top/right/bottom distances in strides around the cell centre) and a class map of logits (sigmoid);
- ``yolox``: per scale a 4-channel regression map (``(xy + grid)·stride``, ``exp(wh)·stride``), a 1-channel objectness
  and an ``nc``-channel class map, both already sigmoided at the Zoo cut; score = objectness × class.

Detections above ``min_score`` go through class-aware NMS (OpenCV's ``cv2.dnn.NMSBoxesBatched``).
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from hailo_qa.errors import InputDataError

DECODERS = ("yolov8", "yolox")


def _levels(outputs: Mapping[str, np.ndarray]) -> dict[tuple[int, int], list[np.ndarray]]:
    by_hw: dict[tuple[int, int], list[np.ndarray]] = {}
    for name, a in outputs.items():
        a = np.asarray(a, np.float32)
        if a.ndim != 4 or a.shape[0] != 1:
            raise InputDataError(f"head output '{name}' has shape {a.shape}",
                                 note="expected NCHW maps with batch 1 (the Model Zoo cut's raw heads)")
        by_hw.setdefault(a.shape[2:], []).append(a[0])
    return by_hw


def _nms(boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray, iou: float, max_det: int) -> dict[str, np.ndarray]:
    if len(boxes) == 0:
        return {"boxes": np.zeros((0, 4), np.float32), "scores": np.zeros(0, np.float32),
                "labels": np.zeros(0, np.int64)}
    import cv2

    xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], 1)
    keep = cv2.dnn.NMSBoxesBatched(xywh.tolist(), scores.tolist(), labels.tolist(), 0.0, iou)
    keep = np.asarray(keep, np.int64).reshape(-1)
    keep = keep[np.argsort(-scores[keep], kind="stable")][:max_det]
    return {"boxes": boxes[keep].astype(np.float32), "scores": scores[keep].astype(np.float32),
            "labels": labels[keep].astype(np.int64)}


def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.meshgrid(np.arange(h, dtype=np.float32), np.arange(w, dtype=np.float32), indexing="ij")
    return xs.reshape(-1), ys.reshape(-1)


def decode_yolov8(outputs: Mapping[str, np.ndarray], input_hw: tuple[int, int], *, min_score: float = 0.25,
                  iou: float = 0.45, max_det: int = 100) -> dict[str, np.ndarray]:
    """YOLOv8 / YOLO11 head maps (box ``4·reg_max`` channels + class logits per scale) → xyxy detections."""
    boxes, scores, labels = [], [], []
    for (h, w), maps in _levels(outputs).items():
        box = next((m for m in maps if m.shape[0] % 4 == 0 and m.shape[0] >= 8), None)
        cls = next((m for m in maps if m is not box), None)
        if box is None or cls is None:
            raise InputDataError(f"a {h}×{w} YOLOv8 level has maps {[m.shape[0] for m in maps]} channels",
                                 note="expected a box map with 4·reg_max channels and a class map per scale")
        stride = input_hw[0] / h
        reg = box.shape[0] // 4
        d = box.reshape(4, reg, h * w)
        d = np.exp(d - d.max(1, keepdims=True))
        d = (d / d.sum(1, keepdims=True) * np.arange(reg, dtype=np.float32)[None, :, None]).sum(1)
        cx, cy = _grid(h, w)
        cx, cy = cx + 0.5, cy + 0.5
        xyxy = np.stack([cx - d[0], cy - d[1], cx + d[2], cy + d[3]], 1) * stride
        p = 1.0 / (1.0 + np.exp(-cls.reshape(cls.shape[0], -1)))
        lab, sc = p.argmax(0), p.max(0)
        keep = sc >= min_score
        boxes.append(xyxy[keep]), scores.append(sc[keep]), labels.append(lab[keep])
    return _nms(np.concatenate(boxes), np.concatenate(scores), np.concatenate(labels), iou, max_det)


def decode_yolox(outputs: Mapping[str, np.ndarray], input_hw: tuple[int, int], *, min_score: float = 0.25,
                 iou: float = 0.45, max_det: int = 100) -> dict[str, np.ndarray]:
    """YOLOX head maps (regression 4, objectness 1 and class ``nc`` channels per scale, sigmoids applied) → xyxy."""
    boxes, scores, labels = [], [], []
    for (h, w), maps in _levels(outputs).items():
        reg = next((m for m in maps if m.shape[0] == 4), None)
        obj = next((m for m in maps if m.shape[0] == 1), None)
        cls = next((m for m in maps if m is not reg and m is not obj), None)
        if reg is None or obj is None or cls is None:
            raise InputDataError(f"a {h}×{w} YOLOX level has maps {[m.shape[0] for m in maps]} channels",
                                 note="expected regression (4), objectness (1) and class maps per scale")
        stride = input_hw[0] / h
        gx, gy = _grid(h, w)
        r = reg.reshape(4, -1)
        cx, cy = (r[0] + gx) * stride, (r[1] + gy) * stride
        bw, bh = np.exp(np.clip(r[2], -10, 10)) * stride, np.exp(np.clip(r[3], -10, 10)) * stride
        xyxy = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], 1)
        p = obj.reshape(1, -1) * cls.reshape(cls.shape[0], -1)
        lab, sc = p.argmax(0), p.max(0)
        keep = sc >= min_score
        boxes.append(xyxy[keep]), scores.append(sc[keep]), labels.append(lab[keep])
    return _nms(np.concatenate(boxes), np.concatenate(scores), np.concatenate(labels), iou, max_det)


def decode_heads(family: str, outputs: Mapping[str, np.ndarray], input_hw: tuple[int, int],
                 **kw) -> dict[str, np.ndarray]:
    """Decode with the family's decoder (:data:`DECODERS`)."""
    if family == "yolov8":
        return decode_yolov8(outputs, input_hw, **kw)
    if family == "yolox":
        return decode_yolox(outputs, input_hw, **kw)
    raise InputDataError(f"no head decoder for family '{family}'", note=f"decoders: {', '.join(DECODERS)}")
