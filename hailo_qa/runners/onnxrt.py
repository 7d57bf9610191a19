"""Float reference runner on ONNX Runtime (CPU), and the session options every hailo-qa session is made with."""
from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import onnx

from hailo_qa.errors import InputDataError
from hailo_qa.runners.base import BackendInfo, BaseRunner, TensorMeta

_ORT_TYPES = {
    "tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(float16)": np.float16,
    "tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(int8)": np.int8, "tensor(uint8)": np.uint8,
    "tensor(int16)": np.int16, "tensor(uint16)": np.uint16, "tensor(bool)": np.bool_,
}


THREADS_ENV = "HAILO_QA_ORT_THREADS"
"""Environment variable: ONNX Runtime intra-op threads for every session hailo-qa creates (a positive integer)."""

_default_threads: int | None = None


def set_default_threads(threads: int | None) -> None:
    """Intra-op threads for sessions that do not name their own (None: ONNX Runtime's choice, one per core).

    The pytest plugin sets cores ÷ workers in each pytest-xdist worker, so two workers on two cores run two busy
    threads, not four. :data:`THREADS_ENV` still wins (see :func:`default_threads`).
    """
    global _default_threads
    if threads is not None and (not isinstance(threads, int) or threads < 1):
        raise InputDataError(f"ONNX Runtime thread count {threads!r} is not a positive integer",
                             note="expected None (ONNX Runtime's choice) or a count >= 1")
    _default_threads = threads


def default_threads() -> int | None:
    """Intra-op threads for an optimized session that does not name its own (see :func:`session_options`):
    ``HAILO_QA_ORT_THREADS`` when set, else what :func:`set_default_threads` set, else None (ONNX Runtime's choice).

    Raises:
        InputDataError: ``HAILO_QA_ORT_THREADS`` is not a positive integer.
    """
    raw = os.environ.get(THREADS_ENV, "").strip()
    if raw:
        try:
            n = int(raw)
        except ValueError:
            n = 0
        if n < 1:
            raise InputDataError(f"{THREADS_ENV}={raw!r} is not a positive integer",
                                 note="expected the ONNX Runtime intra-op thread count, e.g. 1",
                                 hint=f"unset {THREADS_ENV} to let ONNX Runtime use one thread per core")
        return n
    return _default_threads


def session_options(*, threads: int | None = None, optimize: bool = True, config: Mapping[str, str] | None = None,
                    prepack: bool | None = None):
    """The ``onnxruntime.SessionOptions`` of every session hailo-qa creates (see :func:`session_from_onnx` for the
    arguments).

    ``threads=None`` takes :func:`default_threads` for optimized sessions only. Unoptimized ones (calibration ranges,
    the noise analysis, equivalence proofs) keep ONNX Runtime's default, because their last bits depend on the
    thread count: measured on the five registered Stage 1s (onnxruntime 1.32, 1 vs 2 threads, every intermediate
    tensor), unoptimized 3 of 186 tensors differ on DEIMv2, 10 of 13 on FSQ and 17 of 24 on O-Net, optimized none.
    So a pytest-xdist worker calibrates to the same ranges, and quantizes to the same model, as a serial run.
    """
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    if not optimize:
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    if not (optimize if prepack is None else prepack):
        so.add_session_config_entry("session.disable_prepacking", "1")
    threads = threads or (default_threads() if optimize else None)
    if threads:
        so.intra_op_num_threads = threads
    for key, value in (config or {}).items():
        so.add_session_config_entry(key, value)
    return so


def session_from_onnx(model: str | Path | bytes | onnx.ModelProto, *, threads: int | None = None,
                      optimize: bool = True, config: Mapping[str, str] | None = None, prepack: bool | None = None):
    """An ``onnxruntime.InferenceSession`` on the CPU.

    Args:
        model: path, serialized bytes or a ModelProto.
        threads: intra-op threads. Defaults to :func:`default_threads` when ``optimize``, else ORT's choice (see
            :func:`session_options`).
        optimize: ORT graph optimizations. Off for equivalence proofs: ORT's optimizer picks fusions and
            shape-specialised kernels per graph, so two graphs computing the same function can differ in the last
            bit. Defaults to True.
        config: ORT session config entries (``SessionOptions.add_session_config_entry``). Defaults to none.
        prepack: ORT's weight pre-packing (``session.disable_prepacking``). Pre-packed kernels take another
            summation path for weights the model lists as graph inputs (old exporters), which moved the last bit of
            a real model by 4.8e-7. Defaults to ``optimize`` (off inside proofs).
    """
    import onnxruntime as ort

    if isinstance(model, onnx.ModelProto):
        model = model.SerializeToString()
    elif isinstance(model, Path):
        model = str(model)
    so = session_options(threads=threads, optimize=optimize, config=config, prepack=prepack)
    return ort.InferenceSession(model, sess_options=so, providers=["CPUExecutionProvider"])


def _meta(node_args, layouts: Mapping[str, str] | None) -> dict[str, TensorMeta]:
    out = {}
    for a in node_args:
        shape = tuple(d if isinstance(d, int) else (d or None) for d in a.shape)
        out[a.name] = TensorMeta(a.name, shape, np.dtype(_ORT_TYPES.get(a.type, np.float32)),
                                 (layouts or {}).get(a.name))
    return out


class OnnxrtRunner(BaseRunner):
    """Runs an ONNX model in ONNX Runtime: the float reference every other backend is compared with.

    Args:
        model: path, bytes or ModelProto.
        name: runner name used in messages. Defaults to ``onnxrt``.
        layouts: layout per tensor name (``NCHW``/``NHWC``) for metadata. Defaults to none.
        threads: ORT intra-op threads. Defaults to :func:`default_threads`.
        optimize: ORT graph optimizations (see :func:`session_from_onnx`). Defaults to True.
        config: ORT session config entries (see :func:`session_from_onnx`). Defaults to none.
        prepack: ORT weight pre-packing (see :func:`session_from_onnx`). Defaults to ``optimize``.
    """

    def __init__(self, model, *, name: str | None = None, layouts: Mapping[str, str] | None = None,
                 threads: int | None = None, optimize: bool = True, config: Mapping[str, str] | None = None,
                 prepack: bool | None = None) -> None:
        super().__init__(name or "onnxrt")
        self.model = model
        self.layouts = dict(layouts or {})
        self.threads = threads
        self.optimize = optimize
        self.prepack = optimize if prepack is None else prepack
        self.config = dict(config or {})
        self.session = None
        from hailo_qa.toolchain import onnxruntime_version

        self.backend = BackendInfo("onnxruntime", onnxruntime_version(), "float", hailo=False)

    def _activate(self) -> None:
        self.session = session_from_onnx(self.model, threads=self.threads, optimize=self.optimize,
                                         config=self.config, prepack=self.prepack)

    def _deactivate(self) -> None:
        self.session = None

    def input_metadata(self) -> dict[str, TensorMeta]:
        return _meta(self._sess().get_inputs(), self.layouts)

    def output_metadata(self) -> dict[str, TensorMeta]:
        return _meta(self._sess().get_outputs(), self.layouts)

    def _sess(self):
        if self.session is None:
            self.session = session_from_onnx(self.model, threads=self.threads, optimize=self.optimize,
                                         config=self.config, prepack=self.prepack)
        return self.session

    def _infer(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        names = [o.name for o in self.session.get_outputs()]
        try:
            outs = self.session.run(names, dict(feeds))
        except Exception as err:  # ORT raises bare RuntimeError/Fail for shape mismatches inside the graph
            raise InputDataError(f"ONNX Runtime failed to run the model: {err.__class__.__name__}: "
                                 f"{str(err).strip().splitlines()[0]}",
                                 note="expected inputs the model accepts (shapes, value ranges, batch size)",
                                 hint="check input shapes against the model; dynamic-batch models may need "
                                      "--batch 1 when split", context=self.name) from err
        return dict(zip(names, outs))
