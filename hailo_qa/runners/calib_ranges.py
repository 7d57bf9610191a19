"""Activation ranges for the built-in emulator's calibration, reduced inside the graph (issue #13).

ONNX Runtime's own calibrators run an unoptimized copy of the model one sample at a time and hand every statistic
(``MinMax``) or every whole intermediate tensor (``Percentile``) to Python, keeping them all until the end. Here:

- **min/max**: a ``ReduceMin`` and a ``ReduceMax`` (``keepdims=0``) are appended for every tensor ORT would calibrate,
  and they are the only graph outputs, so a run returns two floats a tensor. Samples are stacked into batches of
  ``batch`` when the model allows it: the batch dim of the input is made symbolic, and the first batch is checked
  against the same samples run one by one — any difference (a ``Reshape`` that hard-codes batch 1, a kernel whose
  bits change with the batch) falls back to one sample a run. A running ``fmin``/``fmax`` keeps memory flat.
  min and max are exact, so the ranges — and the quantized model — are bit-for-bit those of ORT's ``MinMax``
  calibrator (``tests/runners/test_calib_ranges.py`` holds this on the registered models).
- **percentile** (ORT's ``Percentile`` method, symmetric: a histogram of ``|x|`` with 2048 bins from the smallest to
  the largest ``|x|`` over the whole set): two streamed passes. Pass 1 is the min/max above (it fixes the bin edges);
  pass 2 adds each batch's ``|x|`` into the fixed-edge histogram (``numpy.histogram`` on the host, one batch in
  memory at a time), so the histogram is exactly the one ORT builds from the whole list, and ORT's own
  ``HistogramCollector.compute_percentile`` turns it into the range. **Error bound**: the range's end is the lower edge of the
  histogram bin in which the cumulative count reaches the percentile, so it lies at most one bin width,
  ``(max|x| − min|x|) / 2048``, below the exact empirical percentile of ``|x|`` (never above it, and never beyond the
  tensor's min/max); streaming adds no error of its own.

The collector stands in for ORT's calibrator inside :func:`onnxruntime.quantization.quantize_static` (see
:func:`ranges_in_graph`), so everything after calibration — the tensors chosen, the overrides, the QDQ placement — is
ORT's unchanged.
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import onnx
from onnx import helper

NUM_BINS = 2048
"""Histogram bins of the percentile method (ORT's default for ``CalibrationMethod.Percentile``)."""
DEFAULT_BATCH = 16
"""Samples a run when the model allows batching."""


def tensors_to_calibrate(model: onnx.ModelProto, op_types: Sequence[str] | None) -> list[str]:
    """The tensors ORT's calibrators would calibrate (its own selection rule), in a stable order."""
    from onnxruntime.quantization.calibrate import CalibraterBase

    tensors, _ = CalibraterBase.select_tensors_to_calibrate(SimpleNamespace(op_types_to_calibrate=op_types), model)
    return sorted(tensors)


def stats_model(model: onnx.ModelProto, tensors: Sequence[str], *, absmin: bool = False,
                keep: bool = False) -> onnx.ModelProto:
    """``model`` with a ReduceMin and a ReduceMax of each tensor as its only outputs, batch dim symbolic.

    Outputs per tensor, in order: min, max, then ``min |x|`` if ``absmin``, then the tensor if ``keep``.

    Args:
        model: the (shape-inferred) float model.
        tensors: the tensors to reduce.
        absmin: also ``ReduceMin(Abs(x))`` (where the percentile histogram starts). Defaults to False.
        keep: also output the tensors themselves (the percentile method's second pass). Defaults to False.
    """
    m = onnx.ModelProto()
    m.CopyFrom(model)
    g = m.graph
    inits = {i.name for i in g.initializer}
    for inp in g.input:
        if inp.name not in inits and inp.type.tensor_type.shape.dim:
            d0 = inp.type.tensor_type.shape.dim[0]
            d0.Clear()
            d0.dim_param = "hqa_batch"
    del g.value_info[:]  # shapes inferred at batch 1 would contradict a batched run
    del g.output[:]
    for k, t in enumerate(tensors):
        for op in ("ReduceMin", "ReduceMax"):
            out = f"hqa_{op}_{k}"
            g.node.append(helper.make_node(op, [t], [out], keepdims=0, name=f"hqa_{op}_{k}"))
            g.output.append(helper.make_tensor_value_info(out, onnx.TensorProto.FLOAT, []))
        if absmin:
            g.node.append(helper.make_node("Abs", [t], [f"hqa_Abs_{k}"], name=f"hqa_Abs_{k}"))
            g.node.append(helper.make_node("ReduceMin", [f"hqa_Abs_{k}"], [f"hqa_AbsMin_{k}"], keepdims=0,
                                           name=f"hqa_AbsMin_{k}"))
            g.output.append(helper.make_tensor_value_info(f"hqa_AbsMin_{k}", onnx.TensorProto.FLOAT, []))
        if keep:
            g.output.append(helper.make_tensor_value_info(t, onnx.TensorProto.FLOAT, None))
    return m


def _batches(get_next: Callable[[], Mapping[str, np.ndarray] | None], n: int) -> Iterator[dict[str, np.ndarray]]:
    """Stack up to ``n`` consecutive samples along axis 0 (the last batch may be short)."""
    buf: list[Mapping[str, np.ndarray]] = []
    while True:
        item = get_next()
        if item:
            buf.append(item)
        if buf and (len(buf) == n or not item):
            yield {k: np.concatenate([b[k] for b in buf]) if len(buf) > 1 else buf[0][k] for k in buf[0]}
            buf = []
        if not item:
            return


class InGraphRanges:
    """Streams calibration samples through a stats model; keeps running min/max (and histograms) per tensor.

    Args:
        model_path: the float model ORT is about to quantize (shape-inferred by ORT).
        op_types: ORT's ``op_types_to_calibrate``.
        method: ``minmax`` or ``percentile``.
        percentile: the percentile (``percentile`` method).
        batch: samples a run when the model allows it. Defaults to :data:`DEFAULT_BATCH`.
        providers: ORT execution providers. Defaults to the CPU.
    """

    def __init__(self, model_path: str | Path, op_types: Sequence[str] | None, *, method: str = "minmax",
                 percentile: float = 99.999, batch: int = DEFAULT_BATCH, providers: Sequence[str] | None = None):
        from onnxruntime.quantization.quant_utils import load_model_with_shape_infer

        model = load_model_with_shape_infer(Path(model_path))  # what ORT's calibrators load
        self.tensors = tensors_to_calibrate(model, op_types)
        self.method, self.percentile, self.batch = method, percentile, max(1, int(batch))
        self.providers = list(providers or ["CPUExecutionProvider"])
        self._model = model
        self.lo: np.ndarray | None = None
        self.hi: np.ndarray | None = None
        self.samples = 0
        self.batched: bool | None = None  # decided on the first batch
        self.hist: list[np.ndarray] = []
        self.absmin: np.ndarray | None = None

    def _session(self, keep: bool = False):
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.log_severity_level = 3
        # unoptimized, like ORT's calibrators: optimized kernels change the last bits of some values (measured), and
        # the ranges must be bit-for-bit the ones ORT's calibrator gives
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        absmin = self.method == "percentile" and not keep
        return ort.InferenceSession(stats_model(self._model, self.tensors, absmin=absmin, keep=keep)
                                    .SerializeToString(), so, providers=self.providers)

    def _reduce(self, sess, feeds) -> tuple[np.ndarray, ...]:
        """(min, max[, min |x|]) per tensor, as float32 vectors."""
        out = sess.run(None, feeds)
        step = len(out) // len(self.tensors)
        return tuple(np.array(out[j::step], np.float32) for j in range(step))

    def _one_by_one(self, sess, feeds) -> tuple[np.ndarray, ...]:
        n = next(iter(feeds.values())).shape[0]
        parts = [self._reduce(sess, {k: v[i:i + 1] for k, v in feeds.items()}) for i in range(n)]
        return tuple((np.fmax if j == 1 else np.fmin).reduce([p[j] for p in parts]) for j in range(len(parts[0])))

    def _merge(self, lo: np.ndarray, hi: np.ndarray, absmin: np.ndarray | None = None) -> None:
        self.lo = lo if self.lo is None else np.fmin(self.lo, lo)
        self.hi = hi if self.hi is None else np.fmax(self.hi, hi)
        if absmin is not None:
            self.absmin = absmin if self.absmin is None else np.fmin(self.absmin, absmin)

    def collect_data(self, reader) -> None:
        """Pass 1 (and pass 2 for ``percentile``) over ``reader`` (an ORT ``CalibrationDataReader``).

        The first two samples decide whether the model takes a batch: run as a batch of two they must reduce to
        exactly what they give one at a time; otherwise every run is one sample.
        """
        sess = self._session()
        pending: list[Mapping[str, np.ndarray]] = []

        def get_next():
            return pending.pop(0) if pending else reader.get_next()

        if self.batched is None:
            first = [x for x in (reader.get_next(), reader.get_next()) if x]
            if len(first) == 2:
                pair = {k: np.concatenate([first[0][k], first[1][k]]) for k in first[0]}
                single = self._one_by_one(sess, pair)
                try:
                    self.batched = all(np.array_equal(a, b, equal_nan=True)
                                       for a, b in zip(single, self._reduce(sess, pair)))
                except Exception:  # noqa: BLE001 - a model that cannot take a batch runs one sample at a time
                    self.batched = False
                self._merge(*single)
                self.samples += 2
            else:
                pending.extend(first)
        for feeds in _batches(get_next, self.batch if self.batched else 1):
            self._merge(*self._reduce(sess, feeds))
            self.samples += next(iter(feeds.values())).shape[0]
        if self.method == "percentile" and self.samples:
            reader.rewind()
            self._histograms(reader)

    def _histograms(self, reader) -> None:
        amin = self.absmin.astype(np.float32)
        amax = np.maximum(np.abs(self.lo), np.abs(self.hi)).astype(np.float32)
        self.hist = [np.zeros(NUM_BINS, np.int64) for _ in self.tensors]
        sess = self._session(keep=True)
        for feeds in _batches(reader.get_next, self.batch if self.batched else 1):
            out = sess.run(None, feeds)
            for k in range(len(self.tensors)):
                a = np.abs(np.asarray(out[3 * k + 2], np.float32).ravel())  # outputs: min, max, tensor
                self.hist[k] += np.histogram(a, bins=NUM_BINS, range=(amin[k], amax[k]))[0]
        self._amin, self._amax = amin, amax

    def compute_data(self):
        """The ranges as ORT's ``TensorsData`` (what its calibrator would have returned)."""
        from onnxruntime.quantization.calibrate import CalibrationMethod, HistogramCollector, TensorsData

        if self.lo is None:
            raise ValueError("No data is collected.")
        if self.method != "percentile":
            return TensorsData(CalibrationMethod.MinMax,
                               {t: (self.lo[k:k + 1].copy(), self.hi[k:k + 1].copy())
                                for k, t in enumerate(self.tensors)})
        col = HistogramCollector(method="percentile", symmetric=True, num_bins=NUM_BINS, num_quantized_bins=128,
                                 percentile=self.percentile, scenario="same")
        for k, t in enumerate(self.tensors):
            lo, hi = self._amin[k], self._amax[k]
            edges = np.histogram(np.array([lo, hi], np.float32), bins=NUM_BINS)[1].astype(np.float32)
            col.histogram_dict[t] = (self.hist[k], edges, self.lo[k], self.hi[k])
        with contextlib.redirect_stdout(None):  # ORT prints progress lines
            result = col.compute_collection_result()
        return TensorsData(CalibrationMethod.Percentile, result)


@contextlib.contextmanager
def ranges_in_graph(*, method: str, percentile: float, batch: int = DEFAULT_BATCH,
                    record: dict[str, Any] | None = None) -> Iterator[None]:
    """Inside the block, :func:`onnxruntime.quantization.quantize_static` calibrates with :class:`InGraphRanges`.

    ORT's ``quantize_static`` asks ``create_calibrator`` (a name of its ``quantize`` module) for the object whose
    ``collect_data``/``compute_data`` produce the ranges; the block swaps that factory for one returning an
    :class:`InGraphRanges` on the very model ORT would calibrate. Not thread-safe (one quantization a process at a
    time, which is how the emulator runs).

    Args:
        method: ``minmax`` or ``percentile``.
        percentile: the percentile of the ``percentile`` method.
        batch: samples a run when the model allows it.
        record: filled with ``samples``, ``batched`` and ``tensors`` once calibration ran. Defaults to none.
    """
    import importlib

    ort_quantize = importlib.import_module("onnxruntime.quantization.quantize")  # the module, not its function

    original = ort_quantize.create_calibrator

    def factory(model, op_types_to_calibrate=None, augmented_model_path=None, calibrate_method=None,
                use_external_data_format=False, providers=None, extra_options=None):
        col = InGraphRanges(model, op_types_to_calibrate, method=method, percentile=percentile, batch=batch,
                            providers=providers)
        if record is not None:
            record["collector"] = col
        return col

    ort_quantize.create_calibrator = factory
    try:
        yield
    finally:
        ort_quantize.create_calibrator = original
        col = (record or {}).pop("collector", None)
        if record is not None and col is not None:
            record.update({"samples": col.samples, "batched": bool(col.batched), "tensors": len(col.tensors)})
