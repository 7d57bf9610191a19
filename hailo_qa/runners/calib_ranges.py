"""Activation ranges for the built-in emulator's calibration, reduced inside the graph (issue #13).

ONNX Runtime's own calibrators run an unoptimized copy of the model one sample at a time and hand every statistic
(``MinMax``) or every whole intermediate tensor (``Percentile``) to Python, keeping them all until the end. Here:

- **min/max**: a ``ReduceMin`` and a ``ReduceMax`` (``keepdims=0``) are appended for every tensor ORT would
  calibrate whose range does not follow exactly from another's (:func:`derivations`: ``Relu``/``Clip`` outputs are
  the clipped min/max of their input, shape-only ops keep them, a ``Concat`` takes the min of mins / max of maxes);
  they are the only graph outputs, so a run returns two floats a reduced tensor, and nodes nothing reduced depends on
  are dropped; each reduction sits right behind the node producing its tensor (:func:`_interleave`). The model
  runs unoptimized and at ORT's default thread count, as ORT's calibrator runs it (no optimization level is both
  exact and faster, and the thread count moves last bits, see :meth:`InGraphRanges._session`). The first samples decide how the rest run
  (:meth:`InGraphRanges.collect_data`): samples are stacked into batches (batch dim made symbolic, at most
  :data:`MAX_BATCH` samples and :data:`BATCH_MEMORY` of activations) only if a batch reduces to exactly what its
  samples give one at a time — a ``Reshape`` that hard-codes batch 1 or a kernel whose bits change with the batch
  falls back — and takes less time a sample, timed on the same samples. A running ``fmin``/``fmax`` keeps memory
  flat. min and max are exact, so the ranges — and the quantized model — are bit-for-bit those of ORT's ``MinMax``
  calibrator (``tests/runners/test_calib_ranges.py`` holds this on the registered models).
- **percentile** (ORT's ``Percentile`` method, symmetric: a histogram of ``|x|`` with 2048 bins from the smallest to
  the largest ``|x|`` over the whole set): two streamed passes. Pass 1 is the min/max above, every tensor reduced,
  plus ``min |x|`` (together they fix the bin edges); pass 2 adds each batch's ``|x|`` into the fixed-edge histogram
  (``numpy.histogram`` on the host, one batch in memory at a time), so the histogram is exactly the one ORT builds
  from the whole list, and ORT's own ``HistogramCollector.compute_percentile`` turns it into the range. **Error
  bound**: the range's end is the lower edge of the histogram bin in which the cumulative count reaches the
  percentile ``p``, the bin that holds the ⌈p·N⌉-th smallest of the N values of ``|x|``; so the range end lies at
  most one bin width, ``(max|x| − min|x|) / 2048``, below that empirical percentile and never above it (up to the
  rounding of ORT's float cumulative sum), and never beyond the tensor's min/max. Streaming adds no error of its own.

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
MAX_BATCH = 16
"""Most samples a run when the model allows batching."""
DEFAULT_BATCH = MAX_BATCH  # the old name
BATCH_MEMORY = 256 * 1024 * 1024
"""Bytes of calibrated activations a batch may hold: a model whose one sample already fills it runs one at a time."""
PROBE = 4
"""Samples timed one at a time and as one batch on the first run, to keep the faster (:class:`InGraphRanges`)."""
SHAPE_ONLY = frozenset({"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose", "Identity"})
"""Ops whose output holds exactly the elements of their first input (so the same min and max)."""
_F32 = np.finfo(np.float32)


def tensors_to_calibrate(model: onnx.ModelProto, op_types: Sequence[str] | None) -> list[str]:
    """The tensors ORT's calibrators would calibrate (its own selection rule), in a stable order."""
    from onnxruntime.quantization.calibrate import CalibraterBase

    tensors, _ = CalibraterBase.select_tensors_to_calibrate(SimpleNamespace(op_types_to_calibrate=op_types), model)
    return sorted(tensors)


def _scalar(model: onnx.ModelProto, name: str) -> float | None:
    """The value of a scalar initializer, or None if ``name`` is not one."""
    from onnx import numpy_helper

    for init in model.graph.initializer:
        if init.name == name:
            a = numpy_helper.to_array(init)
            return float(a.reshape(-1)[0]) if a.size == 1 else None
    return None


def derivations(model: onnx.ModelProto, tensors: Sequence[str]) -> dict[str, tuple[str, tuple[str, ...], tuple]]:
    """Calibrated tensors whose exact min/max follow from other calibrated tensors', so they need no reduction.

    ``{tensor: (kind, sources, bounds)}``: ``same`` (a :data:`SHAPE_ONLY` op: the same elements), ``clip`` (``Relu``,
    ``Clip`` with constant bounds: a monotone function, so ``min f(x) = f(min x)``, computed as ORT's kernel does,
    ``min(max(x, lo), hi)`` in float32) and ``concat`` (every input calibrated: min of the mins, max of the maxes).
    Each is a selection, never a rounding, so the derived ranges equal the reduced ones for finite activations (ORT's
    own ``ReduceMin`` skips a NaN or not depending on where it sits, so NaN activations have no defined range either
    way). Sources are themselves calibrated tensors, reduced or derived.
    """
    calibrated = set(tensors)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    out: dict[str, tuple[str, tuple[str, ...], tuple]] = {}
    for node in model.graph.node:
        if node.domain not in ("", "ai.onnx") or len(node.output) != 1 or node.output[0] not in calibrated:
            continue
        t, ins = node.output[0], [i for i in node.input if i]
        if not ins or ins[0] not in calibrated:
            continue
        if node.op_type in SHAPE_ONLY:
            out[t] = ("same", (ins[0],), ())
        elif node.op_type == "Relu":
            out[t] = ("clip", (ins[0],), (0.0, float("inf")))
        elif node.op_type == "Clip":
            attrs = {a.name: a.f for a in node.attribute}
            if opset < 11:
                lo, hi = attrs.get("min", float(_F32.min)), attrs.get("max", float(_F32.max))
            else:  # ORT: an absent bound is the type's lowest / max
                names = list(node.input[1:3]) + [""] * (3 - len(node.input))
                lo, hi = ((_scalar(model, n) if n else d) for n, d in zip(names, (float(_F32.min), float(_F32.max))))
            if lo is not None and hi is not None:
                out[t] = ("clip", (ins[0],), (lo, hi))
        elif node.op_type == "Concat" and all(i in calibrated for i in ins):
            out[t] = ("concat", tuple(ins), ())
    return out


def _derive(lo: dict[str, np.float32], hi: dict[str, np.float32],
            rules: Mapping[str, tuple[str, tuple[str, ...], tuple]], t: str) -> None:
    """Fill ``lo[t]``/``hi[t]`` from its sources (recursively)."""
    if t in lo:
        return
    kind, srcs, bounds = rules[t]
    for s in srcs:
        _derive(lo, hi, rules, s)
    if kind == "concat":
        lo[t] = np.fmin.reduce(np.array([lo[s] for s in srcs], np.float32))
        hi[t] = np.fmax.reduce(np.array([hi[s] for s in srcs], np.float32))
    elif kind == "clip":
        a, b = np.float32(bounds[0]), np.float32(bounds[1])
        lo[t], hi[t] = (np.minimum(np.maximum(v[srcs[0]], a), b) for v in (lo, hi))
    else:
        lo[t], hi[t] = lo[srcs[0]], hi[srcs[0]]


def _prune(model: onnx.ModelProto) -> None:
    """Drop the nodes no graph output depends on (in place); a model with subgraphs is left as it is."""
    g = model.graph
    if any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for n in g.node for a in n.attribute):
        return
    need, keep = {o.name for o in g.output}, [False] * len(g.node)
    changed = True
    while changed:  # to a fixed point, so a graph stored out of order loses nothing it needs
        changed = False
        for k in range(len(g.node) - 1, -1, -1):
            if not keep[k] and any(o in need for o in g.node[k].output):
                keep[k] = changed = True
                need.update(i for i in g.node[k].input if i)
    if not all(keep):
        kept = [n for n, k in zip(g.node, keep) if k]
        del g.node[:]
        g.node.extend(kept)


def _input_free(model: onnx.ModelProto, tensors: Sequence[str]) -> set[str]:
    """Those of ``tensors`` no graph input reaches (computed from initializers alone: the same in every run)."""
    inits = {i.name for i in model.graph.initializer}
    reached = {i.name for i in model.graph.input if i.name not in inits}
    changed = True
    while changed:  # to a fixed point, so a graph stored out of order is still right
        changed = False
        for node in model.graph.node:
            if any(i in reached for i in node.input) and not all(o in reached for o in node.output if o):
                reached.update(o for o in node.output if o)
                changed = True
    return {t for t in tensors if t not in reached}


def activation_bytes(model: onnx.ModelProto, tensors: Sequence[str]) -> int:
    """Bytes of ``tensors`` for one sample, from the shapes ORT's shape inference left in ``model`` (0 if unknown)."""
    infos = {v.name: v for v in [*model.graph.value_info, *model.graph.input, *model.graph.output]}
    total = 0
    for t in tensors:
        tt = infos[t].type.tensor_type if t in infos else None
        if tt is None or not tt.shape.dim or any(not d.dim_value for d in tt.shape.dim[1:]):
            return 0
        total += int(np.prod([d.dim_value for d in tt.shape.dim[1:]])) * onnx.helper.tensor_dtype_to_np_dtype(
            tt.elem_type).itemsize
    return total


def stats_model(model: onnx.ModelProto, tensors: Sequence[str], *, absmin: bool = False,
                keep: bool = False) -> onnx.ModelProto:
    """``model`` with a ReduceMin and a ReduceMax of each tensor as its only outputs, batch dim symbolic.

    Outputs per tensor, in order: min, max, then ``min |x|`` if ``absmin``, then the tensor if ``keep``. Nodes none of
    these depend on are dropped.

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
    n_model = len(g.node)
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
    added = {n.name for n in g.node[n_model:]}
    _prune(m)
    _interleave(g, added)
    return m


def _interleave(g: onnx.GraphProto, added: set[str]) -> None:
    """Move each appended node (``added``: their names) right behind the node that produces what it reduces (in place).

    Run in that order (with ORT's ``PRIORITY_BASED`` execution order, which keeps it) a tensor is reduced while it is
    still in the cache and can be freed at once, instead of every calibrated tensor living to the end of the run:
    measured on YuNet's Stage 1 (onnxruntime 1.32, one thread, CPU time a sample) 20-25 % less than the reductions
    appended at the end. The same kernels on the same tensors, so the same minima and maxima.
    """
    ours = [n for n in g.node if n.name in added]
    by_input: dict[str, list[onnx.NodeProto]] = {}
    for n in ours:
        by_input.setdefault(n.input[0], []).append(n)

    def emit(t: str, out: list[onnx.NodeProto]) -> None:  # a reduction, then what reduces its output (Abs → min)
        for n in by_input.pop(t, []):
            out.append(n)
            emit(n.output[0], out)

    order: list[onnx.NodeProto] = []
    for t in [*(i.name for i in g.input), *(i.name for i in g.initializer)]:
        emit(t, order)
    for n in g.node:
        if n.name not in added:
            order.append(n)
            for o in n.output:
                emit(o, order)
    if by_input or len(order) != len(g.node):  # a reduction of something no node produces: keep the graph as is
        return
    del g.node[:]
    g.node.extend(order)


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


def batch_is_faster(single_s: float, batch_s: float) -> bool:
    """Whether a batched run beat one-sample runs, both as seconds a sample (a tie keeps one sample a run)."""
    return batch_s < single_s


class InGraphRanges:
    """Streams calibration samples through a stats model; keeps running min/max (and histograms) per tensor.

    Args:
        model_path: the float model ORT is about to quantize (shape-inferred by ORT).
        op_types: ORT's ``op_types_to_calibrate``.
        method: ``minmax`` or ``percentile``.
        percentile: the percentile (``percentile`` method).
        batch: most samples a run. Defaults to what :data:`BATCH_MEMORY` allows, at most :data:`MAX_BATCH`.
        derive: take the ranges :func:`derivations` allows from other tensors' instead of reducing. Defaults to True.
        providers: ORT execution providers. Defaults to the CPU.
    """

    def __init__(self, model_path: str | Path, op_types: Sequence[str] | None, *, method: str = "minmax",
                 percentile: float = 99.999, batch: int | None = None, derive: bool = True,
                 providers: Sequence[str] | None = None):
        from onnxruntime.quantization.quant_utils import load_model_with_shape_infer

        model = load_model_with_shape_infer(Path(model_path))  # what ORT's calibrators load
        self.tensors = tensors_to_calibrate(model, op_types)
        # percentile needs min |x| and a histogram of every tensor, so everything is reduced there
        self.rules = derivations(model, self.tensors) if derive and method != "percentile" else {}
        self.reduced = [t for t in self.tensors if t not in self.rules]
        self._constant = _input_free(model, self.reduced)
        self.method, self.percentile = method, percentile
        per_sample = activation_bytes(model, self.tensors)
        self.max_batch = (max(1, int(batch)) if batch else
                          max(1, min(MAX_BATCH, BATCH_MEMORY // per_sample)) if per_sample else MAX_BATCH)
        self.batch = 1  # samples a run, decided on the first samples
        self.providers = list(providers or ["CPUExecutionProvider"])
        self._model = model
        self.lo: np.ndarray | None = None  # running min / max of each reduced tensor
        self.hi: np.ndarray | None = None
        self.samples = 0
        self.batchable: bool | None = None  # decided on the first samples
        self.probe: dict[str, float] = {}
        self.hist: list[np.ndarray] = []
        self.absmin: np.ndarray | None = None

    @property
    def batched(self) -> bool | None:
        """Whether samples run in batches (None before the first samples)."""
        return None if self.batchable is None else self.batch > 1

    def _session(self, keep: bool = False):
        import onnxruntime as ort

        from hailo_qa.runners.onnxrt import session_options

        # unoptimized, like ORT's calibrators. Measured on the registered models (onnxruntime 1.32): ENABLE_ALL's
        # NCHWc conv kernels change the last bits of conv outputs (YuNet: 43 of 83 minima differ), and at
        # BASIC/EXTENDED the stats model is the same graph as unoptimized (the reductions, extra consumers of every
        # calibrated tensor, block every fusion), so no level gains anything exact. Pre-packing stays as ORT's
        # calibrators have it (on), and so does ORT's own thread count (session_options never changes it for an
        # unoptimized session): the count changes the last bits of some kernels (measured: with one thread the
        # ranges of DEIMv2-Atto, MTCNN O-Net and a third registered model differ from the calibrator's)
        so = session_options(optimize=False, prepack=True)
        so.execution_order = ort.ExecutionOrder.PRIORITY_BASED  # keeps each reduction behind its producer
        absmin = self.method == "percentile" and not keep
        return ort.InferenceSession(stats_model(self._model, self.reduced, absmin=absmin, keep=keep)
                                    .SerializeToString(), so, providers=self.providers)

    def _reduce(self, sess, feeds) -> tuple[np.ndarray, ...]:
        """(min, max[, min |x|]) per reduced tensor, as float32 vectors."""
        out = sess.run(None, feeds)
        step = len(out) // len(self.reduced)
        return tuple(np.array(out[j::step], np.float32) for j in range(step))

    @staticmethod
    def _combine(parts: Sequence[tuple[np.ndarray, ...]]) -> tuple[np.ndarray, ...]:
        return tuple((np.fmax if j == 1 else np.fmin).reduce([p[j] for p in parts]) for j in range(len(parts[0])))

    def _merge(self, lo: np.ndarray, hi: np.ndarray, absmin: np.ndarray | None = None) -> None:
        self.lo = lo if self.lo is None else np.fmin(self.lo, lo)
        self.hi = hi if self.hi is None else np.fmax(self.hi, hi)
        if absmin is not None:
            self.absmin = absmin if self.absmin is None else np.fmin(self.absmin, absmin)

    def _first_samples(self, sess, first: list[Mapping[str, np.ndarray]]):
        """Decide the batch on the first samples (their ranges are counted once)."""
        import time

        parts, t_single = [], 0.0
        for i, f in enumerate(first):
            t = time.perf_counter()
            parts.append(self._reduce(sess, f))
            if i:  # the first run warms the session up
                t_single += time.perf_counter() - t
        single = self._combine(parts)
        self._merge(*single)
        self.samples += len(first)
        self.batchable = False
        if len(first) >= 2 and self.max_batch > 1:
            stacked = {k: np.concatenate([f[k] for f in first]) for k in first[0]}
            try:
                t = time.perf_counter()
                together = self._reduce(sess, stacked)
                t_batch = time.perf_counter() - t
                self.batchable = all(np.array_equal(a, b, equal_nan=True) for a, b in zip(single, together))
            except Exception:  # noqa: BLE001 - a model that cannot take a batch runs one sample at a time
                self.batchable = False
            if self.batchable:
                self.probe = {"single_s": t_single / (len(first) - 1), "batch_s": t_batch / len(first)}
                if batch_is_faster(self.probe["single_s"], self.probe["batch_s"]):
                    self.batch = self.max_batch

    def collect_data(self, reader) -> None:
        """Pass 1 (and pass 2 for ``percentile``) over ``reader`` (an ORT ``CalibrationDataReader``).

        On the first call the first samples (up to :data:`PROBE`, at most the batch) decide how the rest run: run as
        one batch they must reduce to exactly what they give one at a time, and the batch must take less time a
        sample than single runs (timed on the same samples), else every run is one sample. Later calls reuse it.
        """
        sess = self._session()
        if self.batchable is None:
            first = []
            for _ in range(min(PROBE, self.max_batch) if self.max_batch > 1 else 2):
                item = reader.get_next()
                if not item:
                    break
                first.append(item)
            if first:
                self._first_samples(sess, first)
        for feeds in _batches(reader.get_next, self.batch):
            self._merge(*self._reduce(sess, feeds))
            self.samples += next(iter(feeds.values())).shape[0]
        if self.method == "percentile" and self.samples:
            reader.rewind()
            self._histograms(reader)

    def ranges(self) -> dict[str, tuple[np.float32, np.float32]]:
        """``{tensor: (min, max)}`` of every calibrated tensor: reduced ones as collected, the rest derived."""
        if self.lo is None:
            raise ValueError("No data is collected.")
        lo = dict(zip(self.reduced, self.lo))
        hi = dict(zip(self.reduced, self.hi))
        for t in self.rules:
            _derive(lo, hi, self.rules, t)
        return {t: (lo[t], hi[t]) for t in self.tensors}

    def _histograms(self, reader) -> None:
        amin = self.absmin.astype(np.float32)
        amax = np.maximum(np.abs(self.lo), np.abs(self.hi)).astype(np.float32)
        self.hist = [np.zeros(NUM_BINS, np.int64) for _ in self.reduced]
        sess = self._session(keep=True)
        for feeds in _batches(reader.get_next, self.batch):
            out = sess.run(None, feeds)
            n = next(iter(feeds.values())).shape[0]
            for k, t in enumerate(self.reduced):
                a = np.abs(np.asarray(out[3 * k + 2], np.float32).ravel())  # outputs: min, max, tensor
                # a tensor no input reaches comes once a run, but ORT's calibrator counts it once a sample
                self.hist[k] += np.histogram(a, bins=NUM_BINS, range=(amin[k], amax[k]))[0] * (
                    n if t in self._constant else 1)
        self._amin, self._amax = amin, amax

    def compute_data(self):
        """The ranges as ORT's ``TensorsData`` (what its calibrator would have returned)."""
        from onnxruntime.quantization.calibrate import CalibrationMethod, HistogramCollector, TensorsData

        ranges = self.ranges()
        if self.method != "percentile":
            return TensorsData(CalibrationMethod.MinMax,
                               {t: (np.array([lo], np.float32), np.array([hi], np.float32))
                                for t, (lo, hi) in ranges.items()})
        col = HistogramCollector(method="percentile", symmetric=True, num_bins=NUM_BINS, num_quantized_bins=128,
                                 percentile=self.percentile, scenario="same")
        for k, t in enumerate(self.reduced):  # percentile reduces every tensor
            lo, hi = self._amin[k], self._amax[k]
            edges = np.histogram(np.array([lo, hi], np.float32), bins=NUM_BINS)[1].astype(np.float32)
            col.histogram_dict[t] = (self.hist[k], edges, self.lo[k], self.hi[k])
        with contextlib.redirect_stdout(None):  # ORT prints progress lines
            result = col.compute_collection_result()
        return TensorsData(CalibrationMethod.Percentile, result)


@contextlib.contextmanager
def ranges_in_graph(*, method: str, percentile: float, batch: int | None = None,
                    record: dict[str, Any] | None = None) -> Iterator[None]:
    """Inside the block, :func:`onnxruntime.quantization.quantize_static` calibrates with :class:`InGraphRanges`.

    ORT's ``quantize_static`` asks ``create_calibrator`` (a name of its ``quantize`` module) for the object whose
    ``collect_data``/``compute_data`` produce the ranges; the block swaps that factory for one returning an
    :class:`InGraphRanges` on the very model ORT would calibrate. Not thread-safe (one quantization a process at a
    time, which is how the emulator runs).

    Args:
        method: ``minmax`` or ``percentile``.
        percentile: the percentile of the ``percentile`` method.
        batch: most samples a run (:class:`InGraphRanges`). Defaults to the memory-bounded choice.
        record: filled with ``samples``, ``batched``, ``batch``, ``tensors`` and ``reduced`` once
            calibration ran. Defaults to none.
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
            record.update({"samples": col.samples, "batched": bool(col.batched), "batchable": bool(col.batchable),
                           "batch": col.batch, "tensors": len(col.tensors), "reduced": len(col.reduced)})
