"""Numeric metrics: one pure NumPy function per metric, float64 inside, edge cases documented.

Every function converts its inputs with ``np.asarray(..., dtype=np.float64)`` (labels: ``int64``), so float16/float32
or integer outputs are compared without overflow or rounding in the metric itself. Nothing here touches files,
devices or global state.

Conventions shared by all functions:

* **Shapes** must match exactly (no broadcasting between ``ref`` and ``test``); a mismatch raises
  :class:`~hailo_qa.errors.InputDataError`.
* **NaN** propagates: a metric over data holding NaN returns NaN unless the function's docstring says otherwise.
  A NaN result never passes a ``>=``/``<=`` threshold, so NaN outputs fail gates instead of slipping through.
* **Empty** inputs return the value documented per function (usually NaN for "no evidence").

Example:
    >>> import numpy as np
    >>> from hailo_qa import metrics
    >>> float(metrics.snr_db(np.ones(4), np.ones(4)))
    inf
    >>> float(metrics.cosine_similarity(np.array([1.0, 0.0]), np.array([0.0, 1.0])))
    0.0
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from hailo_qa.errors import InputDataError

__all__ = [
    "DetectionAgreement",
    "accuracy",
    "box_iou",
    "conformal_coverage",
    "conformal_threshold",
    "cosine_similarity",
    "dequantize",
    "detection_agreement",
    "expected_calibration_error",
    "lsb_error",
    "max_abs_error",
    "mean_abs_error",
    "mean_set_size",
    "percentiles",
    "prediction_sets",
    "quantize",
    "snr_db",
    "softmax",
    "top1_agreement",
]


# ----------------------------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------------------------
def _f64(x: ArrayLike, what: str) -> np.ndarray:
    try:
        return np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise InputDataError(f"{what} cannot be read as a numeric array ({err}).",
                             note="expected a NumPy array or nested sequence of numbers.",
                             hint="pass the runner's output array itself, not a dict or a list of arrays.") from err


def _pair(ref: ArrayLike, test: ArrayLike, fn: str) -> tuple[np.ndarray, np.ndarray]:
    r, t = _f64(ref, f"{fn}: ref"), _f64(test, f"{fn}: test")
    if r.shape != t.shape:
        raise InputDataError(f"{fn}: ref and test have different shapes {r.shape} and {t.shape}.",
                             note="expected two arrays of the same shape (no broadcasting).",
                             hint="compare the same output of both runners; check batch and layout (NCHW/NHWC).")
    return r, t


def _abs_diff(r: np.ndarray, t: np.ndarray) -> np.ndarray:
    """|r - t| where equal values (including ±inf == ±inf) give exactly 0 instead of inf - inf = NaN."""
    with np.errstate(invalid="ignore", over="ignore"):
        d = np.abs(r - t)
    d[r == t] = 0.0
    return d


def _labels(labels: ArrayLike, n: int, fn: str, n_classes: int | None = None) -> np.ndarray:
    y = np.asarray(labels)
    if y.ndim != 1 or y.shape[0] != n:
        raise InputDataError(f"{fn}: labels have shape {y.shape}, predictions have {n} rows.",
                             note="expected one integer label per row: shape [N].",
                             hint="flatten the labels and check they come from the same data split.")
    if y.size and not np.issubdtype(y.dtype, np.integer):
        if not np.all(np.isfinite(y)) or not np.all(y == np.round(y)):
            raise InputDataError(f"{fn}: labels are not integers (dtype {y.dtype}).",
                                 note="expected integer class indices.",
                                 hint="pass class indices, not one-hot vectors or probabilities.")
    y = y.astype(np.int64)
    if n_classes is not None and y.size and (y.min() < 0 or y.max() >= n_classes):
        raise InputDataError(f"{fn}: labels span [{y.min()}, {y.max()}] but there are {n_classes} classes.",
                             note=f"expected labels in [0, {n_classes - 1}].",
                             hint="check the label mapping of the data set against the model's outputs.")
    return y


def _scores2d(x: ArrayLike, fn: str, what: str = "scores") -> np.ndarray:
    a = _f64(x, f"{fn}: {what}")
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2:
        raise InputDataError(f"{fn}: {what} have shape {a.shape}.",
                             note="expected [N, C] (one row of class scores per sample) or [C].",
                             hint="squeeze extra dimensions, e.g. logits.reshape(len(logits), -1).")
    return a


def _probs(probs: ArrayLike, fn: str) -> np.ndarray:
    p = _scores2d(probs, fn, "probs")
    if not np.all(np.isfinite(p)) or (p.size and (p.min() < -1e-6 or p.max() > 1 + 1e-6)):
        raise InputDataError(f"{fn}: probabilities hold NaN/Inf or values outside [0, 1].",
                             note="expected class probabilities (rows of a softmax).",
                             hint="apply hailo_qa.evaluate.metrics.softmax to logits first.")
    return np.clip(p, 0.0, 1.0)


# ----------------------------------------------------------------------------------------------------------------
# element-wise errors
# ----------------------------------------------------------------------------------------------------------------
def snr_db(ref: ArrayLike, test: ArrayLike) -> float:
    """Signal-to-noise ratio of ``test`` against ``ref`` in dB: ``10·log10(Σref² / Σ(ref−test)²)``.

    Args:
        ref: the reference output (the signal).
        test: the output under test, same shape.

    Returns:
        The SNR in dB. ``+inf`` when ``test`` equals ``ref`` exactly (including an all-zero ``ref``).
        ``-inf`` when ``ref`` is all zeros but ``test`` is not (no signal, some noise).
        NaN when either input holds NaN, when an infinity is not matched exactly, or when both are empty.

    Raises:
        InputDataError: the shapes differ.
    """
    r, t = _pair(ref, test, "snr_db")
    if r.size == 0 or np.isnan(r).any() or np.isnan(t).any():
        return math.nan
    if np.array_equal(r, t):
        return math.inf  # identical, including all-zero and equal infinities
    if not (np.isfinite(r).all() and np.isfinite(t).all()):
        return math.nan  # an infinity that is not matched exactly: no meaningful power ratio
    noise = np.abs(r - t)
    # Scale by the largest magnitude so squares of float64 data cannot overflow (the ratio is scale-invariant).
    m = max(float(np.max(np.abs(r))), float(np.max(noise)))
    p_noise = float(np.sum((noise / m) ** 2))
    p_signal = float(np.sum((r / m) ** 2))
    if p_noise == 0.0:
        return math.inf
    if p_signal == 0.0:
        return -math.inf
    return 10.0 * math.log10(p_signal / p_noise)


def max_abs_error(ref: ArrayLike, test: ArrayLike) -> float:
    """Largest ``|ref − test|``. 0.0 for empty inputs; NaN when either input holds NaN; equal infinities give 0.

    Raises:
        InputDataError: the shapes differ.
    """
    r, t = _pair(ref, test, "max_abs_error")
    if r.size == 0:
        return 0.0
    return float(np.max(_abs_diff(r, t)))


def mean_abs_error(ref: ArrayLike, test: ArrayLike) -> float:
    """Mean of ``|ref − test|``. 0.0 for empty inputs; NaN when either input holds NaN; equal infinities give 0.

    Raises:
        InputDataError: the shapes differ.
    """
    r, t = _pair(ref, test, "mean_abs_error")
    if r.size == 0:
        return 0.0
    return float(np.mean(_abs_diff(r, t)))


def cosine_similarity(a: ArrayLike, b: ArrayLike, axis: int | None = -1) -> np.ndarray | float:
    """Cosine similarity per sample along ``axis`` (``None``: over the whole, flattened arrays).

    Args:
        a: first array.
        b: second array, same shape.
        axis: the feature axis; the other axes index samples. Defaults to -1 (rows of an ``[N, D]`` batch).

    Returns:
        A float for 1-D input or ``axis=None``, else an array with ``axis`` removed. Values lie in [-1, 1].
        Identical samples give exactly 1.0. Zero vectors: both zero (or empty) → 1.0 (identical); exactly one
        zero → 0.0. NaN or Inf in a sample → NaN.

    Raises:
        InputDataError: the shapes differ.
    """
    x, y = _pair(a, b, "cosine_similarity")
    if axis is None:
        x, y, axis = x.ravel(), y.ravel(), -1
    if x.ndim == 0:
        x, y = x[None], y[None]
    # Normalise each sample by its largest magnitude first: float64 squares of large data cannot overflow.
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        sx = np.max(np.abs(x), axis=axis, keepdims=True, initial=0.0)
        sy = np.max(np.abs(y), axis=axis, keepdims=True, initial=0.0)
        xn = x / np.where(sx == 0, 1.0, sx)
        yn = y / np.where(sy == 0, 1.0, sy)
        dot = np.sum(xn * yn, axis=axis)
        nx = np.sqrt(np.sum(xn * xn, axis=axis))
        ny = np.sqrt(np.sum(yn * yn, axis=axis))
        cos = dot / (nx * ny)
    zx, zy = nx == 0, ny == 0
    same = np.all(x == y, axis=axis)  # identical samples are exactly 1.0, not 1 - 1 ulp
    cos = np.where(same | (zx & zy), 1.0, np.where(zx | zy, 0.0, cos))
    finite = np.all(np.isfinite(x), axis=axis) & np.all(np.isfinite(y), axis=axis)
    cos = np.where(finite, np.clip(cos, -1.0, 1.0), np.nan)
    return float(cos) if cos.ndim == 0 else cos


def lsb_error(ref: ArrayLike, test: ArrayLike, scale: ArrayLike, *, reduce: str = "max") -> float | np.ndarray:
    """Error in quantization steps (LSBs): ``|ref − test| / scale``.

    Args:
        ref: reference values (dequantized, real units).
        test: values under test, same shape.
        scale: the quantization step, a scalar or an array that broadcasts to ``ref`` (per-channel scales).
            Must be finite and > 0.
        reduce: ``"max"`` (largest error), ``"mean"`` or ``"none"`` (the element-wise array). Defaults to ``"max"``.

    Returns:
        The error in LSBs. Empty inputs give 0.0 (``max``/``mean``); NaN in the data gives NaN.

    Raises:
        InputDataError: shapes differ, the scale is not positive/finite or does not broadcast, or ``reduce`` is unknown.
    """
    r, t = _pair(ref, test, "lsb_error")
    s = _f64(scale, "lsb_error: scale")
    if s.size == 0 or not np.all(np.isfinite(s)) or np.any(s <= 0):
        raise InputDataError("lsb_error: the quantization scale must be finite and > 0.",
                             note=f"got scale {s if s.size < 8 else s[:8]}.",
                             hint="read qp_scale from the HEF/HAR output metadata.")
    try:
        err = _abs_diff(r, t) / s
    except ValueError as e:
        raise InputDataError(f"lsb_error: scale of shape {s.shape} does not broadcast to {r.shape}.",
                             note="expected a scalar or a per-channel array that broadcasts to the data.",
                             hint="reshape per-channel scales, e.g. scale.reshape(1, C, 1, 1) for NCHW.") from e
    if reduce == "none":
        return err
    if reduce not in ("max", "mean"):
        raise InputDataError(f"lsb_error: unknown reduce {reduce!r}.", note="expected 'max', 'mean' or 'none'.")
    if err.size == 0:
        return 0.0
    return float(np.max(err) if reduce == "max" else np.mean(err))


def quantize(x: ArrayLike, scale: float, zero_point: int = 0, *, dtype: Any = np.uint8) -> np.ndarray:
    """Affine quantization ``q = clip(round(x / scale) + zero_point, dtype range)`` (round half to even).

    Hailo's convention: ``real = (q − zero_point) · scale``. Values inside the representable range come back from
    :func:`dequantize` within ``scale / 2``; values outside are clipped.

    Args:
        x: real values.
        scale: quantization step, > 0.
        zero_point: the integer that represents 0.0. Defaults to 0.
        dtype: integer storage type. Defaults to ``np.uint8``.

    Raises:
        InputDataError: non-positive scale, a non-integer dtype, or NaN in ``x``.
    """
    dt = np.dtype(dtype)
    if not np.issubdtype(dt, np.integer):
        raise InputDataError(f"quantize: dtype {dt} is not an integer type.", note="expected uint8/int8/uint16/int16.")
    if not (math.isfinite(scale) and scale > 0):
        raise InputDataError(f"quantize: scale {scale} must be finite and > 0.")
    v = _f64(x, "quantize: x")
    if np.isnan(v).any():
        raise InputDataError("quantize: the data holds NaN.", note="expected finite values.",
                             hint="find where NaN is produced upstream; NaN has no quantized representation.")
    info = np.iinfo(dt)
    q = np.clip(np.rint(v / scale) + zero_point, info.min, info.max)
    return q.astype(dt)


def dequantize(q: ArrayLike, scale: float | ArrayLike, zero_point: float | ArrayLike = 0) -> np.ndarray:
    """``(q − zero_point) · scale`` in float64 (Hailo's ``qp_scale``/``qp_zp`` convention)."""
    return (np.asarray(q, dtype=np.float64) - np.asarray(zero_point, dtype=np.float64)) * np.asarray(scale, np.float64)


# ----------------------------------------------------------------------------------------------------------------
# classification
# ----------------------------------------------------------------------------------------------------------------
def softmax(logits: ArrayLike, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax in float64. Rows holding NaN give NaN; ``+inf`` logits give NaN rows.

    Args:
        logits: scores of any shape.
        axis: the class axis. Defaults to -1.
    """
    z = _f64(logits, "softmax: logits")
    if z.size == 0:
        return z
    with np.errstate(invalid="ignore", over="ignore"):
        z = z - np.max(z, axis=axis, keepdims=True)
        e = np.exp(z)
        return e / np.sum(e, axis=axis, keepdims=True)


def top1_agreement(ref_logits: ArrayLike, test_logits: ArrayLike) -> float:
    """Fraction of samples whose arg-max class is the same in ``ref`` and ``test``.

    Args:
        ref_logits: ``[N, C]`` (or ``[C]`` for one sample) scores, logits or probabilities.
        test_logits: same shape.

    Returns:
        The agreement in [0, 1]. Ties resolve to the lowest class index (``np.argmax``). A row holding NaN in either
        input counts as a disagreement. Empty (N = 0) → NaN.

    Raises:
        InputDataError: shapes differ or are not [N, C]/[C].
    """
    r, t = _pair(ref_logits, test_logits, "top1_agreement")
    r, t = _scores2d(r, "top1_agreement", "ref_logits"), _scores2d(t, "top1_agreement", "test_logits")
    if r.shape[0] == 0:
        return math.nan
    ok = np.argmax(r, axis=1) == np.argmax(t, axis=1)
    ok &= ~(np.isnan(r).any(axis=1) | np.isnan(t).any(axis=1))
    return float(np.mean(ok))


def accuracy(logits_or_probs: ArrayLike, labels: ArrayLike) -> float:
    """Top-1 accuracy: fraction of rows whose arg-max equals the label.

    Args:
        logits_or_probs: ``[N, C]`` scores (arg-max is the same for logits and their softmax).
        labels: ``[N]`` integer class indices in ``[0, C)``.

    Returns:
        Accuracy in [0, 1]; a row holding NaN counts as wrong. Empty (N = 0) → NaN.

    Raises:
        InputDataError: wrong shapes, non-integer labels or labels out of range.
    """
    s = _scores2d(logits_or_probs, "accuracy")
    y = _labels(labels, s.shape[0], "accuracy", s.shape[1])
    if s.shape[0] == 0:
        return math.nan
    ok = (np.argmax(s, axis=1) == y) & ~np.isnan(s).any(axis=1)
    return float(np.mean(ok))


def expected_calibration_error(probs: ArrayLike, labels: ArrayLike, bins: int = 15) -> float:
    """Expected calibration error with equal-width confidence bins: ``Σ_b |B_b|/N · |acc(B_b) − conf(B_b)|``.

    The confidence of a row is its maximum probability, its prediction the arg-max. Bins are ``(k/bins, (k+1)/bins]``
    with confidence 0 falling into the first bin.

    Args:
        probs: ``[N, C]`` class probabilities (each row a softmax).
        labels: ``[N]`` integer labels.
        bins: number of bins, >= 1. Defaults to 15.

    Returns:
        ECE in [0, 1]. Empty (N = 0) → NaN.

    Raises:
        InputDataError: probabilities outside [0, 1] or non-finite, bad labels, or ``bins < 1``.
    """
    if int(bins) != bins or bins < 1:
        raise InputDataError(f"expected_calibration_error: bins={bins!r}.", note="expected an integer >= 1.")
    p = _probs(probs, "expected_calibration_error")
    y = _labels(labels, p.shape[0], "expected_calibration_error", p.shape[1])
    n = p.shape[0]
    if n == 0:
        return math.nan
    conf = p.max(axis=1)
    correct = (p.argmax(axis=1) == y).astype(np.float64)
    idx = np.clip(np.ceil(conf * bins).astype(np.int64) - 1, 0, bins - 1)
    sum_conf = np.bincount(idx, weights=conf, minlength=bins)
    sum_acc = np.bincount(idx, weights=correct, minlength=bins)
    return float(np.clip(np.sum(np.abs(sum_acc - sum_conf)) / n, 0.0, 1.0))


# ----------------------------------------------------------------------------------------------------------------
# conformal prediction (split conformal, LAC score)
# ----------------------------------------------------------------------------------------------------------------
def conformal_threshold(cal_probs: ArrayLike, cal_labels: ArrayLike, alpha: float) -> float:
    """Split-conformal threshold ``q̂`` for the LAC score ``s = 1 − p_true``.

    ``q̂`` is the ``⌈(n+1)(1−α)⌉``-th smallest calibration score (the finite-sample-corrected quantile). Prediction
    sets ``{c : 1 − p_c ≤ q̂}`` then cover the true label with probability ≥ 1 − α on data exchangeable with the
    calibration set (Angelopoulos & Bates, "A Gentle Introduction to Conformal Prediction", 2021).

    Args:
        cal_probs: ``[n, C]`` probabilities on held-out calibration data.
        cal_labels: ``[n]`` true labels.
        alpha: miscoverage level in (0, 1), e.g. 0.1 for 90 % coverage.

    Returns:
        ``q̂`` in [0, 1], or ``+inf`` when ``n`` is too small for the level (``⌈(n+1)(1−α)⌉ > n``): every set is
        then the full label set, which is the only set with the guarantee.

    Raises:
        InputDataError: ``alpha`` outside (0, 1), empty calibration data, bad probabilities or labels.
    """
    if not (0.0 < float(alpha) < 1.0):
        raise InputDataError(f"conformal_threshold: alpha={alpha!r}.", note="expected 0 < alpha < 1.",
                             hint="alpha is the tolerated miscoverage, e.g. 0.1 for 90 % coverage.")
    p = _probs(cal_probs, "conformal_threshold")
    y = _labels(cal_labels, p.shape[0], "conformal_threshold", p.shape[1])
    n = p.shape[0]
    if n == 0:
        raise InputDataError("conformal_threshold: the calibration set is empty.",
                             note="expected at least ⌈1/alpha⌉ − 1 labelled samples.")
    scores = np.sort(1.0 - p[np.arange(n), y])
    k = math.ceil((n + 1) * (1.0 - float(alpha)) - 1e-9)  # tolerance: (n+1)(1-α) integral up to rounding
    if k > n:
        return math.inf
    return float(scores[max(k, 1) - 1])


def prediction_sets(probs: ArrayLike, qhat: float) -> np.ndarray:
    """Conformal prediction sets: boolean ``[N, C]`` mask of classes with ``1 − p ≤ q̂``.

    Args:
        probs: ``[N, C]`` probabilities.
        qhat: threshold from :func:`conformal_threshold` (``inf`` → full sets).
    """
    p = _probs(probs, "prediction_sets")
    if math.isnan(qhat):
        raise InputDataError("prediction_sets: qhat is NaN.", note="expected the value of conformal_threshold.")
    return (1.0 - p) <= qhat


def conformal_coverage(probs: ArrayLike, labels: ArrayLike, qhat: float) -> float:
    """Fraction of samples whose true label lies in its prediction set. Empty → NaN.

    Raises:
        InputDataError: bad probabilities, labels or ``qhat``.
    """
    sets = prediction_sets(probs, qhat)
    y = _labels(labels, sets.shape[0], "conformal_coverage", sets.shape[1])
    if y.size == 0:
        return math.nan
    return float(np.mean(sets[np.arange(y.size), y]))


def mean_set_size(probs: ArrayLike, qhat: float) -> float:
    """Average prediction-set size (the price of coverage; 1.0 is a confident classifier). Empty → NaN."""
    sets = prediction_sets(probs, qhat)
    return float(np.mean(sets.sum(axis=1))) if sets.shape[0] else math.nan


# ----------------------------------------------------------------------------------------------------------------
# detection
# ----------------------------------------------------------------------------------------------------------------
def box_iou(a: ArrayLike, b: ArrayLike) -> np.ndarray:
    """Pairwise intersection-over-union of boxes in ``xyxy`` format.

    Args:
        a: ``[N, 4]`` boxes ``(x1, y1, x2, y2)``.
        b: ``[M, 4]`` boxes.

    Returns:
        ``[N, M]`` float64 IoU in [0, 1]. Degenerate boxes (zero or negative width/height) have area 0 and IoU 0
        with everything, including themselves. NaN coordinates give NaN.

    Raises:
        InputDataError: an input is not ``[K, 4]``.
    """
    x, y = _f64(a, "box_iou: a"), _f64(b, "box_iou: b")
    for name, v in (("a", x), ("b", y)):
        if v.ndim != 2 or v.shape[1] != 4:
            raise InputDataError(f"box_iou: {name} has shape {v.shape}.", note="expected [K, 4] boxes (x1, y1, x2, y2).",
                                 hint="convert cxcywh boxes to xyxy first; drop any batch dimension.")
    area_x = np.clip(x[:, 2] - x[:, 0], 0, None) * np.clip(x[:, 3] - x[:, 1], 0, None)
    area_y = np.clip(y[:, 2] - y[:, 0], 0, None) * np.clip(y[:, 3] - y[:, 1], 0, None)
    lt = np.maximum(x[:, None, :2], y[None, :, :2])
    rb = np.minimum(x[:, None, 2:], y[None, :, 2:])
    wh = np.clip(rb - lt, 0, None)
    inter = wh[..., 0] * wh[..., 1]
    union = area_x[:, None] + area_y[None, :] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)
    nan = np.isnan(x).any(axis=1)[:, None] | np.isnan(y).any(axis=1)[None, :]
    return np.where(nan, np.nan, np.clip(iou, 0.0, 1.0))


@dataclass(frozen=True)
class DetectionAgreement:
    """How well one set of detections reproduces another (recall-style: what fraction of ``ref`` is found).

    Attributes:
        agreement: ``matched / n_ref``; 1.0 when both are empty, 0.0 when only ``ref`` is empty but ``test`` is not.
        n_ref: reference detections at or above ``min_score``.
        n_test: test detections at or above ``min_score``.
        matched: one-to-one matches (same label, IoU ≥ threshold).
        missed: reference detections without a match.
        extra: test detections without a match.
        mean_iou: mean IoU of the matched pairs (NaN when nothing matched).
        precision: ``matched / n_test`` (1.0 when ``n_test`` is 0).
    """

    agreement: float
    n_ref: int
    n_test: int
    matched: int
    missed: int
    extra: int
    mean_iou: float
    precision: float

    def __float__(self) -> float:
        return float(self.agreement)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _dets(d: Mapping[str, ArrayLike], which: str, min_score: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if not isinstance(d, Mapping):
        raise InputDataError(f"detection_agreement: {which} is a {type(d).__name__}.",
                             note="expected a dict with 'boxes' [N,4], 'labels' [N], 'scores' [N].")
    missing = [k for k in ("boxes", "labels", "scores") if k not in d]
    if missing:
        raise InputDataError(f"detection_agreement: {which} lacks {missing}.",
                             note="expected a dict with 'boxes' [N,4], 'labels' [N], 'scores' [N].",
                             hint=f"it has {sorted(d)}; rename the model's outputs into these keys.")
    boxes, labels, scores = (np.asarray(d[k]) for k in ("boxes", "labels", "scores"))
    # Accept one leading batch dimension of size 1 (DEIMv2 returns [1, N, 4] / [1, N]).
    if boxes.ndim == 3 and boxes.shape[0] == 1:
        boxes = boxes[0]
    if labels.ndim == 2 and labels.shape[0] == 1:
        labels = labels[0]
    if scores.ndim == 2 and scores.shape[0] == 1:
        scores = scores[0]
    n = boxes.shape[0] if boxes.ndim == 2 else -1
    if boxes.ndim != 2 or boxes.shape[1] != 4 or labels.shape != (n,) or scores.shape != (n,):
        raise InputDataError(f"detection_agreement: {which} has boxes {boxes.shape}, labels {labels.shape}, "
                             f"scores {scores.shape}.", note="expected boxes [N,4], labels [N], scores [N].")
    keep = np.asarray(scores, np.float64) >= min_score
    return boxes.astype(np.float64)[keep], labels.astype(np.int64)[keep], scores.astype(np.float64)[keep]


def detection_agreement(ref: Mapping[str, ArrayLike], test: Mapping[str, ArrayLike], *, iou: float = 0.5,
                        min_score: float = 0.5) -> DetectionAgreement:
    """Match ``test`` detections to ``ref`` detections one-to-one and report how many of ``ref`` were found.

    Both sets are first filtered to ``score >= min_score``. Pairs with equal labels and IoU ≥ ``iou`` are matched
    greedily, highest IoU first (ties: lower ref index, then lower test index), each detection at most once.

    Args:
        ref: reference detections: ``{"boxes": [N,4] xyxy, "labels": [N], "scores": [N]}``; a leading batch
            dimension of 1 is accepted.
        test: detections under test, same format.
        iou: IoU threshold for a match. Defaults to 0.5.
        min_score: score threshold applied to both sets. Defaults to 0.5.

    Returns:
        A :class:`DetectionAgreement` (``float(result)`` is the agreement).

    Raises:
        InputDataError: missing keys or inconsistent shapes.
    """
    rb, rl, _ = _dets(ref, "ref", min_score)
    tb, tl, _ = _dets(test, "test", min_score)
    n_ref, n_test = len(rb), len(tb)
    ious = box_iou(rb, tb)
    ious = np.where(rl[:, None] == tl[None, :], np.nan_to_num(ious, nan=-1.0), -1.0)
    ri, ti = np.nonzero(ious >= iou)
    order = np.lexsort((ti, ri, -ious[ri, ti]))
    used_r = np.zeros(n_ref, bool)
    used_t = np.zeros(n_test, bool)
    matched_ious: list[float] = []
    for k in order:
        r, t = ri[k], ti[k]
        if not used_r[r] and not used_t[t]:
            used_r[r] = used_t[t] = True
            matched_ious.append(float(ious[r, t]))
    m = len(matched_ious)
    agreement = m / n_ref if n_ref else (1.0 if n_test == 0 else 0.0)
    return DetectionAgreement(agreement=float(agreement), n_ref=n_ref, n_test=n_test, matched=m,
                              missed=n_ref - m, extra=n_test - m,
                              mean_iou=float(np.mean(matched_ious)) if m else math.nan,
                              precision=float(m / n_test) if n_test else 1.0)


# ----------------------------------------------------------------------------------------------------------------
# distributions
# ----------------------------------------------------------------------------------------------------------------
def percentiles(samples: ArrayLike | Iterable[float], qs: Sequence[float] = (50, 90, 95, 99)) -> dict[str, float]:
    """Percentiles of a sample (linear interpolation, NumPy's default).

    Args:
        samples: the values, e.g. latencies in ms; flattened.
        qs: percentiles in [0, 100]. Defaults to (50, 90, 95, 99).

    Returns:
        ``{"p50": ..., "p90": ..., ...}`` (keys ``f"p{q:g}"``, e.g. ``"p99.9"``), in the order of ``qs``. Empty
        samples → NaN values; NaN in the samples → NaN values.

    Raises:
        InputDataError: a percentile outside [0, 100].
    """
    x = _f64(list(samples) if not isinstance(samples, np.ndarray) else samples, "percentiles: samples").ravel()
    q = _f64(qs, "percentiles: qs").ravel()
    if q.size and (np.isnan(q).any() or q.min() < 0 or q.max() > 100):
        raise InputDataError(f"percentiles: qs={list(qs)}.", note="expected percentiles in [0, 100], e.g. (50, 95, 99).")
    if x.size == 0 or np.isnan(x).any():
        vals = np.full(q.shape, np.nan)
    else:
        vals = np.percentile(x, q)
    return {f"p{float(k):g}": float(v) for k, v in zip(q, vals)}
