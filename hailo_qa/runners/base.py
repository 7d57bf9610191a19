"""The runner protocol: named inputs in, named outputs out, whatever the backend.

A runner acquires its resources in ``__enter__`` (an ORT session, a DFC emulator context, a HailoRT device) and
releases them in ``__exit__`` on every path. ``infer`` checks feeds against the runner's metadata before the backend
sees them, so a wrong name, shape or dtype fails with a message instead of a backend traceback.

Layout: each tensor's :class:`TensorMeta` says its layout (``NCHW``/``NHWC``/``None``). Layout conversion happens at
the runner boundary (see :class:`hailo_qa.runners.pipeline.HostPipeline`) and nowhere else.
"""
from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from hailo_qa.errors import InputDataError, InternalError, did_you_mean


@dataclass(frozen=True)
class TensorMeta:
    """Name, shape (ints; ``None`` or a string for a dynamic dim), dtype and layout of one tensor."""

    name: str
    shape: tuple[int | str | None, ...]
    dtype: np.dtype
    layout: str | None = None

    @property
    def static(self) -> bool:
        return all(isinstance(d, int) and d > 0 for d in self.shape)


@dataclass(frozen=True)
class BackendInfo:
    """Which software (and hardware) produced a number. Stored with every result, golden and history row.

    Attributes:
        name: backend id: ``onnxruntime`` (float reference), ``ort-emulator`` (hailo-qa's open approximation of
            Hailo numerics), ``dfc`` (Hailo Dataflow Compiler emulator) or ``hailort`` (a Hailo device).
        version: the backend's version string.
        target: ``float``, ``emulator`` or ``hailo8``.
        hailo: True only when Hailo's own software or hardware produced the number.
        config: precision config (``int8``, ``int16_selective``, ``int16``) or ``""`` for float.
        details: extra provenance (device identity, inference context, calibration size ...).
    """

    name: str
    version: str
    target: str
    hailo: bool = False
    config: str = ""
    details: Mapping[str, Any] = field(default_factory=dict)

    def label(self) -> str:
        cfg = f"[{self.config}]" if self.config else ""
        return f"{self.name}{cfg}@{self.version}"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["details"] = dict(self.details)
        return d


@runtime_checkable
class Runner(Protocol):
    """What every backend implements."""

    name: str
    backend: BackendInfo

    def __enter__(self) -> "Runner": ...

    def __exit__(self, *exc: object) -> None: ...

    def input_metadata(self) -> dict[str, TensorMeta]: ...

    def output_metadata(self) -> dict[str, TensorMeta]: ...

    def infer(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]: ...


def check_feeds(meta: Mapping[str, TensorMeta], feeds: Mapping[str, np.ndarray], *, context: str) -> None:
    """Check feed names, dtypes and shapes against metadata; raise :class:`InputDataError` with a Note/Hint."""
    missing = [n for n in meta if n not in feeds]
    extra = [n for n in feeds if n not in meta]
    if missing or extra:
        hints = [did_you_mean(e, meta) for e in extra]
        raise InputDataError(
            f"feeds do not match the model's inputs (missing: {missing or 'none'}, unexpected: {extra or 'none'})",
            note=f"expected exactly the inputs {list(meta)}",
            hint="; ".join(h for h in hints if h) or "pass one array per model input, keyed by input name",
            context=context)
    for name, m in meta.items():
        arr = feeds[name]
        if not isinstance(arr, np.ndarray):
            raise InputDataError(f"input '{name}' is a {type(arr).__name__}, not a numpy array",
                                 note=f"expected np.ndarray of {m.dtype}", hint="wrap it with np.asarray(...)",
                                 context=context)
        if arr.dtype != m.dtype:
            raise InputDataError(f"input '{name}' has dtype {arr.dtype}",
                                 note=f"expected {m.dtype}", hint=f"cast with arr.astype(np.{m.dtype})",
                                 context=context)
        if len(arr.shape) != len(m.shape) or any(
                isinstance(d, int) and d > 0 and d != a for d, a in zip(m.shape, arr.shape)):
            raise InputDataError(f"input '{name}' has shape {tuple(arr.shape)}",
                                 note=f"expected {tuple(m.shape)}" + (f" ({m.layout})" if m.layout else ""),
                                 hint="check the batch size and the layout (NCHW vs NHWC) of what you feed",
                                 context=context)


class BaseRunner:
    """Owns the lifecycle and the input checks; subclasses implement ``_activate``/``_deactivate``/``_infer``.

    ``infer`` on an inactive runner is a usage error: use ``with runner: runner.infer(...)``.
    """

    name: str = "runner"
    backend: BackendInfo

    def __init__(self, name: str | None = None) -> None:
        if name:
            self.name = name
        self.is_active = False
        self.last_inference_time: float | None = None

    # lifecycle -------------------------------------------------------------------------------------------------
    def __enter__(self):
        self.activate()
        return self

    def __exit__(self, *exc: object) -> None:
        self.deactivate()

    def activate(self) -> None:
        if not self.is_active:
            self._activate()
            self.is_active = True

    def deactivate(self) -> None:
        if self.is_active:
            try:
                self._deactivate()
            finally:
                self.is_active = False

    # inference -------------------------------------------------------------------------------------------------
    def infer(self, feeds: Mapping[str, np.ndarray], *, check: bool = True) -> dict[str, np.ndarray]:
        if not self.is_active:
            raise InternalError(f"{self.name}: infer() called outside 'with runner:' (runner not activated)")
        if check:
            check_feeds(self.input_metadata(), feeds, context=self.name)
        t0 = time.perf_counter()
        out = self._infer(feeds)
        self.last_inference_time = time.perf_counter() - t0
        return out

    # to implement ----------------------------------------------------------------------------------------------
    def input_metadata(self) -> dict[str, TensorMeta]:
        raise NotImplementedError

    def output_metadata(self) -> dict[str, TensorMeta]:
        raise NotImplementedError

    def _activate(self) -> None:
        raise NotImplementedError

    def _deactivate(self) -> None:
        raise NotImplementedError

    def _infer(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        raise NotImplementedError


def nchw_to_nhwc(x: np.ndarray) -> np.ndarray:
    """(N, C, H, W) → (N, H, W, C); other ranks are returned unchanged."""
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1)) if x.ndim == 4 else x


def nhwc_to_nchw(x: np.ndarray) -> np.ndarray:
    """(N, H, W, C) → (N, C, H, W); other ranks are returned unchanged."""
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2)) if x.ndim == 4 else x
