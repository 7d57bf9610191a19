"""Decode raw detector heads into boxes, so a detector cut at its Model Zoo end nodes (raw head convolutions, no
``boxes``/``labels``/``scores`` outputs) can still be scored end to end: float vs quantized detection agreement.

Pure functions over ``{name: array}`` head outputs in NCHW, grouped by their spatial size (one group per stride;
``stride = input height / map height``). Decoders, per family of :mod:`hailo_qa.graph.zoo`:

- ``yolov8``: per scale a box map with ``4·reg_max`` channels (distribution focal loss bins, softmax expectation →
  left/top/right/bottom distances in strides around the cell centre) and a class map of logits (sigmoid);
- ``yolox``: per scale a 4-channel regression map (``(xy + grid)·stride``, ``exp(wh)·stride``), a 1-channel objectness
  and an ``nc``-channel class map, both already sigmoided at the Zoo cut; score = objectness × class;
- ``yolov5``: per scale one map of ``3·(5 + nc)`` logits (3 anchors: x, y, w, h, objectness, classes), sigmoided,
  ``xy = (2σ − 0.5 + grid)·stride``, ``wh = (2σ)²·anchor`` with the COCO anchors of the Zoo's ``cfg/base/yolo.yaml``;
- ``scrfd``: per stride a score map (2 anchors, logits at the Zoo cut), a box map (2×4 distances in strides) and a
  keypoint map (2×10, not scored); anchor centres at ``(x, y)·stride``, one class (face);
- ``nanodet``: NanoDet-Plus, per scale a class-logit map and a ``4·(reg_max+1)`` distance-bin map (softmax
  expectation × stride around the cell's corner ``(x, y)·stride``, no half-cell offset).

Detections above ``min_score`` go through class-aware NMS (OpenCV's ``cv2.dnn.NMSBoxesBatched``).
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from hailo_qa.errors import InputDataError

DECODERS = ("yolov8", "yolox", "yolov5", "scrfd", "nanodet")
YOLOV5_ANCHORS = ((10, 13, 16, 30, 33, 23), (30, 61, 62, 45, 59, 119), (116, 90, 156, 198, 373, 326))
"""Anchors (w, h pixels) per scale, strides 8/16/32: hailo_model_zoo/cfg/base/yolo.yaml."""


def _levels(outputs: Mapping[str, np.ndarray]) -> dict[tuple[int, int], list[np.ndarray]]:
    return {hw: [m for _, m in maps] for hw, maps in _named_levels(outputs).items()}


def _named_levels(outputs: Mapping[str, np.ndarray]) -> dict[tuple[int, int], list[tuple[str, np.ndarray]]]:
    by_hw: dict[tuple[int, int], list[tuple[str, np.ndarray]]] = {}
    for name, a in outputs.items():
        a = np.asarray(a, np.float32)
        if a.ndim != 4 or a.shape[0] != 1:
            raise InputDataError(f"head output '{name}' has shape {a.shape}",
                                 note="expected NCHW maps with batch 1 (the Model Zoo cut's raw heads)")
        by_hw.setdefault(a.shape[2:], []).append((name, a[0]))
    return by_hw


def _box_and_class(maps: list[tuple[str, np.ndarray]], box_hint: str, cls_hint: str
                   ) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The distance-bin map and the class map of one level: by the exporter's names where they tell (``cv2`` /
    ``cv3`` for YOLOv8, ``_output_1`` / ``_output_0`` of NanoDet's split), else by channels (a multiple of 4, ≥ 8)."""
    import re

    box = next((m for n, m in maps if re.search(box_hint, n)), None)
    cls = next((m for n, m in maps if re.search(cls_hint, n)), None)
    if box is None or cls is None or box is cls:
        box = next((m for _, m in maps if m.shape[0] % 4 == 0 and m.shape[0] >= 8), None)
        cls = next((m for _, m in maps if m is not box), None)
    return box, cls


def _dfl(box: np.ndarray, h: int, w: int) -> np.ndarray:
    """Distribution-focal-loss bins → expected distances, ``[4, h·w]`` in cells."""
    reg = box.shape[0] // 4
    d = box.reshape(4, reg, h * w)
    d = np.exp(d - d.max(1, keepdims=True))
    return (d / d.sum(1, keepdims=True) * np.arange(reg, dtype=np.float32)[None, :, None]).sum(1)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


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
    return _decode_dfl(outputs, input_hw, "YOLOv8", r"(^|/)cv2\.", r"(^|/)cv3\.", 0.5, min_score, iou, max_det)


def decode_nanodet(outputs: Mapping[str, np.ndarray], input_hw: tuple[int, int], *, min_score: float = 0.25,
                   iou: float = 0.45, max_det: int = 100) -> dict[str, np.ndarray]:
    """NanoDet-Plus head maps (class logits + ``4·(reg_max+1)`` distance bins per scale, split) → xyxy."""
    return _decode_dfl(outputs, input_hw, "NanoDet", r"_output_1$", r"_output_0$", 0.0, min_score, iou, max_det)


def _decode_dfl(outputs, input_hw, what: str, box_hint: str, cls_hint: str, offset: float, min_score: float,
                iou: float, max_det: int) -> dict[str, np.ndarray]:
    boxes, scores, labels = [], [], []
    for (h, w), maps in _named_levels(outputs).items():
        box, cls = _box_and_class(maps, box_hint, cls_hint)
        if box is None or cls is None:
            raise InputDataError(f"a {h}×{w} {what} level has maps {[m.shape[0] for _, m in maps]} channels",
                                 note="expected a box map with 4·reg_max channels and a class map per scale")
        stride = input_hw[0] / h
        d = _dfl(box, h, w)
        cx, cy = _grid(h, w)
        cx, cy = cx + offset, cy + offset
        xyxy = np.stack([cx - d[0], cy - d[1], cx + d[2], cy + d[3]], 1) * stride
        p = _sigmoid(cls.reshape(cls.shape[0], -1))
        lab, sc = p.argmax(0), p.max(0)
        keep = sc >= min_score
        boxes.append(xyxy[keep]), scores.append(sc[keep]), labels.append(lab[keep])
    return _nms(np.concatenate(boxes), np.concatenate(scores), np.concatenate(labels), iou, max_det)


def decode_yolov5(outputs: Mapping[str, np.ndarray], input_hw: tuple[int, int], *, min_score: float = 0.25,
                  iou: float = 0.45, max_det: int = 100) -> dict[str, np.ndarray]:
    """YOLOv5 Detect conv maps (3 anchors × (x, y, w, h, obj, classes) logits per scale) → xyxy detections."""
    boxes, scores, labels = [], [], []
    levels = sorted(_levels(outputs).items(), key=lambda kv: -kv[0][0])  # stride 8 first
    for k, ((h, w), maps) in enumerate(levels):
        if len(maps) != 1 or maps[0].shape[0] % 3 or maps[0].shape[0] // 3 < 6 or k >= len(YOLOV5_ANCHORS):
            raise InputDataError(f"a {h}×{w} YOLOv5 level has maps {[m.shape[0] for m in maps]} channels",
                                 note="expected one map of 3·(5 + classes) channels per scale, at most 3 scales")
        stride = input_hw[0] / h
        p = _sigmoid(maps[0].reshape(3, -1, h * w))  # [anchor, 5 + nc, cells]
        gx, gy = _grid(h, w)
        anchors = np.asarray(YOLOV5_ANCHORS[k], np.float32).reshape(3, 2)
        cx = (p[:, 0] * 2 - 0.5 + gx) * stride
        cy = (p[:, 1] * 2 - 0.5 + gy) * stride
        bw, bh = (p[:, 2] * 2) ** 2 * anchors[:, :1], (p[:, 3] * 2) ** 2 * anchors[:, 1:]
        xyxy = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], -1).reshape(-1, 4)
        conf = p[:, 4:5] * p[:, 5:]  # [anchor, nc, cells]
        lab, sc = conf.argmax(1).reshape(-1), conf.max(1).reshape(-1)
        keep = sc >= min_score
        boxes.append(xyxy[keep]), scores.append(sc[keep]), labels.append(lab[keep])
    return _nms(np.concatenate(boxes), np.concatenate(scores), np.concatenate(labels), iou, max_det)


def decode_scrfd(outputs: Mapping[str, np.ndarray], input_hw: tuple[int, int], *, min_score: float = 0.25,
                 iou: float = 0.45, max_det: int = 100) -> dict[str, np.ndarray]:
    """SCRFD score/bbox(/kps) conv maps per stride (2 anchors) → face boxes (label 0)."""
    boxes, scores = [], []
    for (h, w), maps in _levels(outputs).items():
        score = next((m for m in maps if m.shape[0] == 2), None)
        bbox = next((m for m in maps if m.shape[0] == 8), None)
        if score is None or bbox is None:
            raise InputDataError(f"a {h}×{w} SCRFD level has maps {[m.shape[0] for m in maps]} channels",
                                 note="expected a score (2 anchors), a bbox (2×4) and optionally a kps (2×10) map")
        stride = input_hw[0] / h
        gx, gy = _grid(h, w)
        cx, cy = np.repeat(gx * stride, 2), np.repeat(gy * stride, 2)  # cell-major, 2 anchors per cell
        d = bbox.reshape(2, 4, h * w).transpose(2, 0, 1).reshape(-1, 4) * stride
        sc = _sigmoid(score.reshape(2, h * w).T.reshape(-1))
        xyxy = np.stack([cx - d[:, 0], cy - d[:, 1], cx + d[:, 2], cy + d[:, 3]], 1)
        keep = sc >= min_score
        boxes.append(xyxy[keep]), scores.append(sc[keep])
    sc = np.concatenate(scores)
    return _nms(np.concatenate(boxes), sc, np.zeros(len(sc), np.int64), iou, max_det)


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
    if family == "yolov5":
        return decode_yolov5(outputs, input_hw, **kw)
    if family == "scrfd":
        return decode_scrfd(outputs, input_hw, **kw)
    if family == "nanodet":
        return decode_nanodet(outputs, input_hw, **kw)
    raise InputDataError(f"no head decoder for family '{family}'", note=f"decoders: {', '.join(DECODERS)}")
