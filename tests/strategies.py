"""Shared Hypothesis strategies for hailo-qa's numeric core (the ``hypothesis.extra.numpy`` idiom).

Import from any test: ``from tests.strategies import float_tensors, tensor_pairs, ...``. Every builder is
keyword-only, ``None`` means "let the strategy choose", and elements avoid NaN and subnormals unless asked.

Example:
    >>> from hypothesis import given
    >>> @given(tensor_pairs())
    ... def test_symmetric(pair):
    ...     a, b = pair
"""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as nps

__all__ = [
    "boxes",
    "calib_batches",
    "detections",
    "finite_floats",
    "float_tensors",
    "logits",
    "nonzero_float_tensors",
    "output_dicts",
    "prob_rows",
    "quant_params",
    "tensor_pairs",
]

FLOAT_DTYPES = (np.float32, np.float64)


def finite_floats(*, width: int = 32, min_value: float = -1e3, max_value: float = 1e3) -> st.SearchStrategy[float]:
    """Finite floats representable in ``width`` bits, without subnormals."""
    return st.floats(min_value, max_value, width=width, allow_nan=False, allow_infinity=False,
                     allow_subnormal=False)


def _shapes(min_dims: int = 1, max_dims: int = 4, min_side: int = 1, max_side: int = 16):
    return nps.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side)


@st.composite
def float_tensors(draw, *, dtype=None, shape=None, min_value: float = -1e3, max_value: float = 1e3) -> np.ndarray:
    """A float32/float64 tensor of 1–4 dims (sides 1–16) with finite elements in ``[min_value, max_value]``."""
    dt = np.dtype(draw(st.sampled_from(FLOAT_DTYPES)) if dtype is None else dtype)
    shp = draw(_shapes()) if shape is None else shape
    width = 32 if dt == np.float32 else 64
    return draw(nps.arrays(dt, shp, elements=finite_floats(width=width, min_value=min_value, max_value=max_value)))


@st.composite
def nonzero_float_tensors(draw, **kw) -> np.ndarray:
    """Like :func:`float_tensors` but with at least one element of magnitude >= 1e-3."""
    x = draw(float_tensors(**kw))
    if not np.any(np.abs(x) >= 1e-3):
        x = x.copy()
        x.flat[draw(st.integers(0, x.size - 1))] = draw(st.sampled_from([1.0, -2.5, 7.0]))
    return x


@st.composite
def tensor_pairs(draw, *, dtype=None, same: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Two tensors of the same shape and dtype: independent, a perturbed copy, or (``same=True``) identical."""
    a = draw(float_tensors(dtype=dtype))
    if same:
        return a, a.copy()
    mode = draw(st.sampled_from(["independent", "perturbed", "identical"]))
    if mode == "identical":
        return a, a.copy()
    if mode == "perturbed":
        width = 32 if a.dtype == np.float32 else 64
        noise = draw(nps.arrays(a.dtype, a.shape, elements=finite_floats(width=width, min_value=-1, max_value=1)))
        return a, (a + noise).astype(a.dtype)
    return a, draw(float_tensors(dtype=a.dtype, shape=a.shape))


@st.composite
def logits(draw, *, n: int | None = None, classes: int | None = None) -> np.ndarray:
    """``[N, C]`` float32 logits in [-20, 20] (N 1–64, C 2–12 unless given)."""
    n = draw(st.integers(1, 64)) if n is None else n
    c = draw(st.integers(2, 12)) if classes is None else classes
    return draw(nps.arrays(np.float32, (n, c), elements=finite_floats(min_value=-20, max_value=20)))


@st.composite
def prob_rows(draw, *, n: int | None = None, classes: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(probs [N, C] float64 rows of a softmax, labels [N] int64)``."""
    z = draw(logits(n=n, classes=classes)).astype(np.float64)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    p = e / e.sum(axis=1, keepdims=True)
    y = draw(nps.arrays(np.int64, (p.shape[0],), elements=st.integers(0, p.shape[1] - 1)))
    return p, y


@st.composite
def boxes(draw, *, n: int | None = None, size: float = 100.0, allow_degenerate: bool = True) -> np.ndarray:
    """``[N, 4]`` float32 xyxy boxes inside ``[0, size]²`` (x2 >= x1, y2 >= y1; zero-area boxes if allowed)."""
    n = draw(st.integers(0, 12)) if n is None else n
    el = finite_floats(min_value=0.0, max_value=size)
    p1 = draw(nps.arrays(np.float32, (n, 2), elements=el))
    p2 = draw(nps.arrays(np.float32, (n, 2), elements=el))
    lo, hi = np.minimum(p1, p2), np.maximum(p1, p2)
    if not allow_degenerate:
        hi = np.maximum(hi, lo + 1.0)
    return np.concatenate([lo, hi], axis=1).astype(np.float32)


@st.composite
def detections(draw, *, n: int | None = None, classes: int = 3) -> dict[str, np.ndarray]:
    """A detection dict ``{"boxes": [N,4], "labels": [N] int64, "scores": [N] float32}``."""
    b = draw(boxes(n=n, allow_degenerate=False))
    k = len(b)
    labels = draw(nps.arrays(np.int64, (k,), elements=st.integers(0, classes - 1)))
    scores = draw(nps.arrays(np.float32, (k,), elements=finite_floats(min_value=0.0, max_value=1.0)))
    return {"boxes": b, "labels": labels, "scores": scores}


@st.composite
def quant_params(draw, *, dtype=np.uint8) -> tuple[float, int, np.dtype]:
    """``(scale, zero_point, dtype)`` for affine quantization, zero point inside the dtype's range."""
    dt = np.dtype(dtype)
    info = np.iinfo(dt)
    scale = draw(st.floats(1e-4, 10.0, allow_nan=False, allow_infinity=False, allow_subnormal=False))
    zp = draw(st.integers(int(info.min), int(info.max)))
    return scale, zp, dt


@st.composite
def output_dicts(draw, *, max_outputs: int = 3) -> dict[str, np.ndarray]:
    """``{name: tensor}`` as returned by ``Runner.infer`` (1–``max_outputs`` outputs, float32 or int64)."""
    names = draw(st.lists(st.sampled_from(["logits", "boxes", "scores", "labels", "feat", "out"]),
                          min_size=1, max_size=max_outputs, unique=True))
    out = {}
    for n in names:
        if n == "labels":
            out[n] = draw(nps.arrays(np.int64, draw(_shapes(max_dims=2)), elements=st.integers(-5, 100)))
        else:
            out[n] = draw(float_tensors(dtype=np.float32))
    return out


@st.composite
def calib_batches(draw, *, shape: tuple[int, ...] = (1, 3, 8, 8), max_count: int = 8) -> np.ndarray:
    """``[K, *shape]`` float32 calibration samples in [0, 1] (K 1–``max_count``)."""
    k = draw(st.integers(1, max_count))
    return draw(nps.arrays(np.float32, (k, *shape), elements=finite_floats(min_value=0.0, max_value=1.0)))
