"""Face pipeline: YuNet detection (5-point landmarks) and ArcFace-template alignment to 112×112 crops.

Flow: image file → RGB → BGR 0–255 letterboxed to 640×640 (NCHW float32, YuNet's input) → YuNet's 12 outputs
(``cls``/``obj``/``bbox``/``kps`` at strides 8, 16, 32) decoded the way OpenCV's ``FaceDetectorYN`` does → NMS →
one face (the largest box, ties broken by score) → similarity transform of its 5 landmarks onto the standard ArcFace
template (Umeyama least squares) → ``cv2.warpAffine`` to a 112×112 RGB crop.

Decoding (OpenCV ``FaceDetectorYN::postProcess``, per stride ``s`` over a ``640/s`` grid, anchor at column ``c``,
row ``r``)::

    score = sqrt(clip(cls, 0, 1) * clip(obj, 0, 1))
    cx, cy = (c + bbox[0]) * s, (r + bbox[1]) * s;   w, h = exp(bbox[2]) * s, exp(bbox[3]) * s
    landmark k = ((kps[2k] + c) * s, (kps[2k+1] + r) * s)

Aligned crops of the team's faces are cached as fixtures under ``fixtures/faces/aligned/`` by
``scripts/build_aligned_faces.py`` (see :func:`build_aligned_faces`).
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hailo_qa import config
from hailo_qa.errors import InputDataError, InputFileError

ARCFACE_TEMPLATE = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                             [41.5493, 92.3655], [70.7299, 92.2041]], dtype=np.float64)
"""The standard 5-point ArcFace template for a 112×112 crop: right eye, left eye (image left to right), nose tip,
mouth corners."""

ALIGNED_SIZE = 112
YUNET_SIZE = 640
YUNET_STRIDES = (8, 16, 32)
YUNET_MODEL = config.REPO_ROOT / "fixtures" / "models" / "face_detection_yunet_2023mar.onnx"
"""The registered YuNet model (opencv_zoo 2023mar)."""
ALIGNED_DIR = config.REPO_ROOT / "fixtures" / "faces" / "aligned"
"""Where the cached aligned crops live (``<stem>.png`` + ``faces.json``)."""
FACE_SUFFIXES = (".png", ".jpg", ".jpeg")


class NoFaceError(InputDataError):
    """The detector found no face above its score threshold in an image."""


@dataclass(frozen=True)
class FaceDetection:
    """One detected face in original-image pixel coordinates.

    Attributes:
        box: (x1, y1, x2, y2).
        landmarks: (5, 2) points: right eye, left eye, nose tip, right and left mouth corner (image left to right).
        score: sqrt(cls * obj), in [0, 1].
    """

    box: tuple[float, float, float, float]
    landmarks: np.ndarray = field(compare=False)
    score: float

    @property
    def area(self) -> float:
        x1, y1, x2, y2 = self.box
        return max(0.0, x2 - x1) * max(0.0, y2 - y1)

    def to_dict(self) -> dict:
        return {"box": [round(float(v), 3) for v in self.box], "score": round(float(self.score), 5),
                "landmarks": [[round(float(v), 3) for v in p] for p in self.landmarks]}


@dataclass(frozen=True)
class AlignedFace:
    """A face aligned to the ArcFace template.

    Attributes:
        name: the source file's stem.
        image: (112, 112, 3) uint8 RGB crop.
        detection: the detection it came from (original-image coordinates).
        transform: (2, 3) similarity transform, original image → crop.
        aligned_landmarks: (5, 2) the detected landmarks mapped into the crop (compare with ARCFACE_TEMPLATE).
    """

    name: str
    image: np.ndarray = field(compare=False)
    detection: FaceDetection
    transform: np.ndarray = field(compare=False)
    aligned_landmarks: np.ndarray = field(compare=False)

    @property
    def template_error(self) -> float:
        """Largest distance (crop pixels) between an aligned landmark and its template point."""
        return float(np.linalg.norm(self.aligned_landmarks - ARCFACE_TEMPLATE, axis=1).max())


# ---------------------------------------------------------------------------------------------------------------
def read_image_bgr(path: str | Path) -> np.ndarray:
    """An image file as (H, W, 3) uint8 BGR (alpha dropped).

    Raises:
        InputFileError: missing or unreadable file.
    """
    from hailo_qa.inputs import read_image_rgb

    return np.ascontiguousarray(read_image_rgb(path)[..., ::-1])


def letterbox(image: np.ndarray, size: int = YUNET_SIZE) -> tuple[np.ndarray, float]:
    """Scale the longer side to ``size`` (aspect kept) and pad bottom/right with zeros to size×size.

    Args:
        image: (H, W, 3) uint8.
        size: output side. Defaults to 640.

    Returns:
        (size×size×3 uint8 canvas, scale) — canvas coordinates / scale = original coordinates.
    """
    import cv2

    _check_image(image)
    h, w = image.shape[:2]
    scale = size / max(h, w)
    nh, nw = min(size, round(h * scale)), min(size, round(w * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    canvas = np.zeros((size, size, 3), np.uint8)
    canvas[:nh, :nw] = cv2.resize(image, (nw, nh), interpolation=interp)
    return canvas, scale


def yunet_input(bgr_canvas: np.ndarray) -> np.ndarray:
    """A 640×640×3 uint8 BGR canvas → YuNet's (1, 3, 640, 640) float32 0–255 input."""
    return np.ascontiguousarray(bgr_canvas.transpose(2, 0, 1)[None].astype(np.float32))


def decode_yunet(outputs: Mapping[str, np.ndarray], *, input_size: tuple[int, int] = (YUNET_SIZE, YUNET_SIZE),
                 strides: Iterable[int] = YUNET_STRIDES, score_threshold: float = 0.6
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decode YuNet's raw outputs (as OpenCV's ``FaceDetectorYN`` does), before NMS.

    Args:
        outputs: ``cls_<s>`` [1, A, 1], ``obj_<s>`` [1, A, 1], ``bbox_<s>`` [1, A, 4], ``kps_<s>`` [1, A, 10].
        input_size: (H, W) of the network input. Defaults to (640, 640).
        strides: feature strides. Defaults to (8, 16, 32).
        score_threshold: keep candidates with score ≥ this. Defaults to 0.6.

    Returns:
        boxes [N, 4] xyxy, scores [N], landmarks [N, 5, 2], in network-input pixels.

    Raises:
        InputDataError: an output is missing or has an unexpected size.
    """
    H, W = input_size
    boxes, scores, kps_all = [], [], []
    for s in strides:
        rows, cols = H // s, W // s
        n = rows * cols
        parts = {}
        for key, width in (("cls", 1), ("obj", 1), ("bbox", 4), ("kps", 10)):
            name = f"{key}_{s}"
            if name not in outputs:
                raise InputDataError(f"YuNet output '{name}' is missing", note=f"expected outputs cls/obj/bbox/kps "
                                     f"at strides {tuple(strides)}, got {sorted(outputs)}",
                                     hint="is this the opencv_zoo YuNet 2023mar model?", context="faces")
            arr = np.asarray(outputs[name], np.float32)
            if arr.size != n * width:
                raise InputDataError(f"YuNet output '{name}' has shape {arr.shape}",
                                     note=f"expected {n * width} values ({n} anchors × {width}) for a {W}×{H} input",
                                     hint="feed a 640×640 input", context="faces")
            parts[key] = arr.reshape(n, width)
        score = np.sqrt(np.clip(parts["cls"][:, 0], 0, 1) * np.clip(parts["obj"][:, 0], 0, 1))
        keep = np.nonzero(score >= score_threshold)[0]
        if keep.size == 0:
            continue
        r, c = (keep // cols).astype(np.float32), (keep % cols).astype(np.float32)
        b = parts["bbox"][keep]
        cx, cy = (c + b[:, 0]) * s, (r + b[:, 1]) * s
        w, h = np.exp(b[:, 2]) * s, np.exp(b[:, 3]) * s
        boxes.append(np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1))
        k = parts["kps"][keep].reshape(-1, 5, 2)
        kps_all.append(np.stack([(k[..., 0] + c[:, None]) * s, (k[..., 1] + r[:, None]) * s], axis=-1))
        scores.append(score[keep])
    if not boxes:
        return np.zeros((0, 4), np.float32), np.zeros((0,), np.float32), np.zeros((0, 5, 2), np.float32)
    return (np.concatenate(boxes).astype(np.float32), np.concatenate(scores).astype(np.float32),
            np.concatenate(kps_all).astype(np.float32))


def nms(boxes: np.ndarray, scores: np.ndarray, *, iou_threshold: float = 0.3, score_threshold: float = 0.0,
        top_k: int = 5000) -> np.ndarray:
    """Indices kept by non-maximum suppression (``cv2.dnn.NMSBoxes``), best score first.

    Args:
        boxes: [N, 4] xyxy.
        scores: [N].
        iou_threshold: suppress boxes overlapping a better one by more than this. Defaults to 0.3 (YuNet's).
        score_threshold: drop boxes below this. Defaults to 0.
        top_k: keep at most this many. Defaults to 5000.
    """
    import cv2

    if len(boxes) == 0:
        return np.zeros((0,), np.int64)
    xywh = np.column_stack([boxes[:, 0], boxes[:, 1], boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]])
    idx = cv2.dnn.NMSBoxes(xywh.tolist(), np.asarray(scores, float).tolist(), score_threshold, iou_threshold,
                           top_k=top_k)
    return np.asarray(idx, np.int64).reshape(-1)


class YuNetDetector:
    """YuNet face detector on ONNX Runtime (the float reference runner).

    Use as a context manager::

        with YuNetDetector() as det:
            faces = det.detect(read_image_bgr("Paul.jpeg"))

    Args:
        model: the YuNet ONNX file. Defaults to the registered ``fixtures/models/face_detection_yunet_2023mar.onnx``.
        score_threshold: minimum face score. Defaults to 0.6 (opencv_zoo's default).
        nms_threshold: NMS IoU threshold. Defaults to 0.3 (opencv_zoo's default).
    """

    def __init__(self, model: str | Path | None = None, *, score_threshold: float = 0.6,
                 nms_threshold: float = 0.3) -> None:
        from hailo_qa.runners.onnxrt import OnnxrtRunner

        path = Path(model or YUNET_MODEL)
        if not path.is_file():
            raise InputFileError(f"YuNet model '{path}' does not exist", note="expected an ONNX file",
                                 hint="fixtures/models/face_detection_yunet_2023mar.onnx ships with the repo",
                                 context="faces")
        self.runner = OnnxrtRunner(path, name="yunet", threads=1)
        self.score_threshold = score_threshold
        self.nms_threshold = nms_threshold

    def __enter__(self) -> "YuNetDetector":
        self.runner.activate()
        return self

    def __exit__(self, *exc: object) -> None:
        self.runner.deactivate()

    @property
    def backend(self):
        return self.runner.backend

    def detect(self, bgr: np.ndarray) -> list[FaceDetection]:
        """All faces in an (H, W, 3) uint8 BGR image, best score first, in original-image pixels."""
        canvas, scale = letterbox(bgr, YUNET_SIZE)
        outs = self.runner.infer({"input": yunet_input(canvas)})
        boxes, scores, kps = decode_yunet(outs, score_threshold=self.score_threshold)
        keep = nms(boxes, scores, iou_threshold=self.nms_threshold)
        h, w = bgr.shape[:2]
        out = []
        for i in keep:
            b = boxes[i] / scale
            b = (float(np.clip(b[0], 0, w)), float(np.clip(b[1], 0, h)),
                 float(np.clip(b[2], 0, w)), float(np.clip(b[3], 0, h)))
            out.append(FaceDetection(b, (kps[i] / scale).astype(np.float64), float(scores[i])))
        return out


def select_face(faces: Iterable[FaceDetection], *, name: str = "image") -> FaceDetection:
    """The largest face (ties broken by score).

    Raises:
        NoFaceError: ``faces`` is empty.
    """
    faces = list(faces)
    if not faces:
        raise NoFaceError(f"no face found in {name}", note="expected at least one face above the detector's "
                          "score threshold", hint="use a photo with a visible frontal face, or lower "
                          "score_threshold", context="faces")
    return max(faces, key=lambda f: (round(f.area, 3), f.score))


def umeyama(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity transform (rotation, uniform scale, translation) mapping ``src`` onto ``dst``.

    Umeyama (1991), as ``skimage.transform.SimilarityTransform.estimate`` does; no reflection.

    Args:
        src: [N, 2] points, N ≥ 2, not all equal.
        dst: [N, 2] points.

    Returns:
        (2, 3) float64 matrix M with dst ≈ src @ M[:, :2].T + M[:, 2].

    Raises:
        InputDataError: shapes differ, fewer than 2 points, NaN/Inf, or all source points coincide.
    """
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 2 or src.shape[0] < 2:
        raise InputDataError(f"cannot fit a similarity transform from {src.shape} to {dst.shape} points",
                             note="expected two [N, 2] arrays with N ≥ 2", context="faces")
    if not (np.isfinite(src).all() and np.isfinite(dst).all()):
        raise InputDataError("landmarks hold NaN or Inf", note="expected finite coordinates", context="faces")
    n = src.shape[0]
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s_c, d_c = src - mu_s, dst - mu_d
    var_s = (s_c ** 2).sum() / n
    if var_s <= 1e-12:
        raise InputDataError("all landmarks coincide", note="expected distinct landmark points", context="faces")
    cov = d_c.T @ s_c / n
    u, d, vt = np.linalg.svd(cov)
    sign = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[-1] = -1.0
    rot = u @ np.diag(sign) @ vt
    scale = (d * sign).sum() / var_s
    t = mu_d - scale * rot @ mu_s
    return np.hstack([scale * rot, t[:, None]])


def apply_transform(m: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a (2, 3) affine matrix to [N, 2] points."""
    p = np.asarray(points, np.float64)
    return p @ m[:, :2].T + m[:, 2]


def align_face(rgb: np.ndarray, landmarks: np.ndarray, *, size: int = ALIGNED_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """Warp a face onto the ArcFace template.

    Args:
        rgb: (H, W, 3) uint8 image.
        landmarks: (5, 2) detected landmarks in that image.
        size: crop side; the template is scaled by size / 112. Defaults to 112.

    Returns:
        (size×size×3 uint8 crop, (2, 3) transform image → crop).
    """
    import cv2

    _check_image(rgb)
    m = umeyama(landmarks, ARCFACE_TEMPLATE * (size / ALIGNED_SIZE))
    crop = cv2.warpAffine(rgb, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=0)
    return crop, m


def detect_and_align(path: str | Path, detector: YuNetDetector, *, size: int = ALIGNED_SIZE) -> AlignedFace:
    """Read an image, detect its largest face and align it to the ArcFace template.

    Raises:
        InputFileError: missing or unreadable image.
        NoFaceError: no face found.
    """
    p = Path(path)
    bgr = read_image_bgr(p)
    det = select_face(detector.detect(bgr), name=f"'{p}'")
    rgb = np.ascontiguousarray(bgr[..., ::-1])
    crop, m = align_face(rgb, det.landmarks, size=size)
    return AlignedFace(p.stem, crop, det, m, apply_transform(m, det.landmarks))


def simulate_distance(crop: np.ndarray, scale: float) -> np.ndarray:
    """Emulate a face seen from further away: downscale a crop by ``scale`` (area) and upscale back (bilinear).

    Args:
        crop: (H, W, 3) uint8 aligned crop.
        scale: in (0, 1]; 1 returns a copy.
    """
    import cv2

    _check_image(crop)
    if not 0 < scale <= 1:
        raise InputDataError(f"distance scale {scale} is out of range", note="expected 0 < scale ≤ 1",
                             context="faces")
    h, w = crop.shape[:2]
    if scale == 1:
        return crop.copy()
    sw, sh = max(1, round(w * scale)), max(1, round(h * scale))
    small = cv2.resize(crop, (sw, sh), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def face_images(folder: str | Path) -> list[Path]:
    """Face photos in a folder (png/jpg/jpeg), sorted by name.

    Raises:
        InputFileError: the folder does not exist or holds no image.
    """
    d = Path(folder)
    files = sorted(p for p in d.glob("*") if p.suffix.lower() in FACE_SUFFIXES) if d.is_dir() else []
    if not files:
        raise InputFileError(f"no face photos in '{d}'", note=f"expected {', '.join(FACE_SUFFIXES)} files",
                             hint="set HAILO_QA_SHARED to the folder holding faces/", context="faces")
    return files


def build_aligned_faces(sources: Iterable[str | Path], out_dir: str | Path, *,
                        detector: YuNetDetector | None = None) -> dict[str, Path]:
    """Detect, align and write ``<out_dir>/<stem>.png`` per source, plus ``faces.json`` (detections, sha256s).

    All crops are computed before anything is written; each file is written atomically (temp file +
    ``os.replace``), so a failure leaves the previous fixtures intact.

    Returns:
        stem → written crop path.
    """
    from PIL import Image

    sources = [Path(p) for p in sources]
    own = detector is None
    det = detector or YuNetDetector()
    if own:
        det.__enter__()
    try:
        faces = [detect_and_align(p, det) for p in sources]
    finally:
        if own:
            det.__exit__(None, None, None)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written, meta = {}, {"detector": YUNET_MODEL.name, "template": ARCFACE_TEMPLATE.tolist(), "faces": {}}
    for src, f in zip(sources, faces):
        target = out / f"{f.name}.png"
        _atomic_write(target, lambda fh, img=f.image: Image.fromarray(img).save(fh, format="PNG"))
        written[f.name] = target
        meta["faces"][f.name] = {"source": src.name,
                                 "source_sha256": hashlib.sha256(src.read_bytes()).hexdigest(),
                                 "crop_sha256": hashlib.sha256(target.read_bytes()).hexdigest(),
                                 "detection": f.detection.to_dict(),
                                 "template_error_px": round(f.template_error, 3)}
    _atomic_write(out / "faces.json", lambda fh: fh.write(json.dumps(meta, indent=2, sort_keys=True).encode()))
    return written


def _atomic_write(path: Path, write) -> None:
    from hailo_qa.fsutil import atomic_write

    atomic_write(path, write)


def _check_image(img: np.ndarray) -> None:
    if not isinstance(img, np.ndarray) or img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8 \
            or min(img.shape[:2]) < 1:
        desc = f"{img.dtype} {img.shape}" if isinstance(img, np.ndarray) else type(img).__name__
        raise InputDataError(f"image is {desc}", note="expected an (H, W, 3) uint8 array",
                             hint="read images with hailo_qa.evaluate.faces.read_image_bgr", context="faces")
