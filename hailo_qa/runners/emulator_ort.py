"""hailo-qa's built-in quantization emulator on ONNX Runtime (``ort-emulator``).

This is an open **approximation** of Hailo-8 numerics, never Hailo's result. It quantizes the Stage-1 ONNX (what goes
on the Hailo) with :func:`onnxruntime.quantization.quantize_static` in QDQ format and runs it on the CPU:

- activations: unsigned, asymmetric, one (scale, zero point) per tensor, 8-bit (``QUInt8``) — as confirmed for
  Hailo-8 (HAILO_TOOLCHAIN.md §3: ``qp_zp``/``qp_scale`` per tensor, uint8 I/O);
- weights: signed 8-bit (``QInt8``, symmetric: ORT's default for signed weights). Per-channel or per-tensor scales
  are set by ``quantization.weight_granularity``. **Default ``per_channel``**: Hailo's weight granularity is not
  confirmed (§3 [U]); per-channel is what ORT recommends for convolutions and avoids blaming depthwise convolutions
  for a per-tensor penalty Hailo's optimizer (equalization at level ≥ 2) largely removes. Set ``per_tensor`` to bound
  the pessimistic case;
- ``int16_selective``: the layers of a model-script ``quantization_param(<layer>, precision_mode=a16_w16)`` line get
  16-bit outputs (``QUInt16``) and 16-bit weights (``QInt16``) through ORT's
  ``extra_options["TensorQuantOverrides"]`` (an ONNX node name maps to its output tensors and weight initializers);
- ``int16``: every activation ``QUInt16``, every weight ``QInt16``;
- calibration: MinMax (the DFC's basic statistics collection) or percentile clipping (``CalibrationMethod``);
- execution: the QDQ model is run **as written** — ``DequantizeLinear`` → float op → ``QuantizeLinear`` — with ORT's
  QDQ-to-integer-kernel fusion off (session config ``session.disable_quant_qdq``). ORT's fused kernels (QLinearConv,
  QLinearMatMul, ...) are CPU-dependent: on x86 with AVX2 but no VNNI they multiply uint8 activations by int8
  weights with ``vpmaddubsw``, which sums pairs of products in int16 with saturation (ORT's quantization guide,
  "When and why do I need to try U8U8?"). That clipping is an artefact of the host CPU, not of Hailo nor of the QDQ
  model, and cost the registered models 6-15 dB of INT8 SNR on such a host. Run as written, the result is the same
  on every CPU (up to float summation order).

What it does not model: Hailo's optimization algorithms (equalization, bias correction, fine-tuning, adaround),
its fused-layer arithmetic and accumulator widths, 4-bit weight compression, on-chip normalization. Numbers from it
carry ``BackendInfo(name="ort-emulator", hailo=False)``.

Quantized models are cached in ``work_dir/emulator/`` keyed by the Stage-1 hash, the quantization config, the
calibration set hash and the ONNX Runtime version; writes are atomic (temp file + ``os.replace``), so no reader sees a
half-written file, and a process that needs a model another one is quantizing (a pytest-xdist worker) waits for it
(:func:`hailo_qa.fsutil.build_lock`) instead of quantizing it again.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import onnx

from hailo_qa.errors import GraphError, InputDataError, did_you_mean
from hailo_qa.runners.base import BackendInfo, BaseRunner, TensorMeta

SCHEME_VERSION = 2
"""Bumped whenever the way a model is quantized or run changes (invalidates the on-disk cache; recorded with every
result). 2: the QDQ model runs as written, never through ORT's CPU-dependent fused integer kernels."""

QDQ_AS_WRITTEN = {"session.disable_quant_qdq": "1"}
"""ORT session config that runs a QDQ model as written (no fusion into integer kernels; see the module docstring)."""

CONFIGS = ("int8", "int16_selective", "int16")
METHODS = ("minmax", "percentile")
GRANULARITIES = ("per_channel", "per_tensor")
DEFAULT_PERCENTILE = 99.999
"""Percentile used by the ``percentile`` calibration method (ORT's own default)."""


class CalibSource(Protocol):
    """What the emulator needs from a calibration set (:class:`hailo_qa.quant.calib.CalibSet` satisfies it)."""

    count: int
    input_name: str
    sha256: str

    def iter_samples(self) -> Iterator[np.ndarray]: ...


@dataclass(frozen=True)
class OrtQuantConfig:
    """How the Stage-1 model is quantized. Part of the cache key and of :class:`BackendInfo.details`.

    Attributes:
        config: precision config: ``int8``, ``int16_selective`` or ``int16``.
        method: calibration method, ``minmax`` or ``percentile``.
        weight_granularity: ``per_channel`` or ``per_tensor`` weight scales.
        int16_layers: ONNX node names computed in 16 bit (``int16_selective`` only).
        percentile: the percentile of the ``percentile`` method.
    """

    config: str = "int8"
    method: str = "minmax"
    weight_granularity: str = "per_channel"
    int16_layers: tuple[str, ...] = ()
    percentile: float = DEFAULT_PERCENTILE

    def __post_init__(self) -> None:
        for key, value, allowed in (("config", self.config, CONFIGS), ("method", self.method, METHODS),
                                    ("weight_granularity", self.weight_granularity, GRANULARITIES)):
            if value not in allowed:
                raise InputDataError(f"emulator {key} {value!r} is not supported",
                                     note=f"expected one of {list(allowed)}",
                                     hint=did_you_mean(str(value), allowed) or f"use one of {list(allowed)}")
        if self.config == "int16_selective" and not self.int16_layers:
            raise InputDataError("config int16_selective names no 16-bit layers",
                                 note="expected quantization.int16_layers in the manifest (ONNX node names), or the "
                                      "layers suggested by the noise analysis",
                                 hint="run 'hailo-qa emulate MODEL --config int8' to get a suggestion, or use "
                                      "config int8/int16")

    def key(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


def quant_config_for(spec, config: str, *, int16_layers: Sequence[str] = ()) -> OrtQuantConfig:
    """The quantization config of a manifest model for one precision config.

    Args:
        spec: the :class:`~hailo_qa.manifest.ModelSpec`.
        config: ``int8``, ``int16_selective`` or ``int16``.
        int16_layers: 16-bit layers for ``int16_selective``. Defaults to the manifest's
            ``quantization.int16_layers``.
    """
    q = spec.quantization
    layers = tuple(int16_layers) or tuple(q.int16_layers)
    return OrtQuantConfig(config=config, method=q.calibration_method, weight_granularity=q.weight_granularity,
                          int16_layers=layers if config == "int16_selective" else ())


# --------------------------------------------------------------------------------------------------------------
def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _ort_version() -> str:
    import onnxruntime

    return onnxruntime.__version__


@contextlib.contextmanager
def _quiet_ort_logging() -> Iterator[None]:
    """ORT's quantizer logs advice through the root logger ("consider pre-processing ..."); keep it off the console."""
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(previous)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (:func:`hailo_qa.fsutil.atomic_write`)."""
    from hailo_qa.fsutil import atomic_write

    atomic_write(path, data)


class CalibReader:
    """A streaming ``onnxruntime.quantization.CalibrationDataReader`` over a calibration set.

    Samples come from ``calib.iter_samples()`` (NCHW float32, batch 1) and are transposed to NHWC when the Stage-1
    input is NHWC. Nothing is held in memory beyond the current sample.

    Args:
        calib: the calibration set.
        input_name: the Stage-1 input to feed.
        layout: that input's layout (``NCHW`` or ``NHWC``). Defaults to ``NCHW``.
        shape: the Stage-1 input shape, checked per sample. Defaults to no check.
    """

    def __init__(self, calib: CalibSource, input_name: str, *, layout: str = "NCHW",
                 shape: Sequence[int] | None = None) -> None:
        self.calib, self.input_name, self.layout = calib, input_name, layout
        self.shape = tuple(shape) if shape else None
        self._it: Iterator[np.ndarray] | None = None
        self.seen = 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self._it is None:
            try:  # an on_chip-normalized CalibSet holds raw 0-255 data; the float ONNX wants it normalized
                self._it = iter(self.calib.iter_samples(as_onnx_input=True))
            except TypeError:
                self._it = iter(self.calib.iter_samples())
        x = next(self._it, None)
        if x is None:
            return None
        x = np.asarray(x, dtype=np.float32)
        if self.layout == "NHWC" and x.ndim == 4:
            x = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
        if self.shape and any(isinstance(d, int) and d > 0 and d != a for d, a in zip(self.shape, x.shape)):
            raise InputDataError(f"calibration sample {self.seen} has shape {x.shape}",
                                 note=f"expected {self.shape} ({self.layout}) for Stage-1 input '{self.input_name}'",
                                 hint="check the calibration source and the input's declared layout")
        if not np.isfinite(x).all():
            raise InputDataError(f"calibration sample {self.seen} holds NaN/Inf",
                                 note="expected finite float32 data", hint="fix the calibration source")
        self.seen += 1
        return {self.input_name: x}

    def __iter__(self):
        while (item := self.get_next()) is not None:
            yield item

    def rewind(self) -> None:
        self._it, self.seen = None, 0


def _as_ort_reader(reader: CalibReader):
    """Wrap in a real ``CalibrationDataReader`` subclass (ORT checks the type)."""
    from onnxruntime.quantization import CalibrationDataReader

    class _Reader(CalibrationDataReader):
        def get_next(self):  # noqa: D102
            return reader.get_next()

        def rewind(self):  # noqa: D102
            reader.rewind()

    return _Reader()


_WEIGHTED = ("Conv", "ConvTranspose", "Gemm", "MatMul")
_FUSED = ("Relu", "Clip", "LeakyRelu", "PRelu", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh")


def _node_index(model: onnx.ModelProto) -> dict[str, onnx.NodeProto]:
    return {n.name: n for n in model.graph.node if n.name}


def tensor_overrides(model: onnx.ModelProto, layers: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
    """``TensorQuantOverrides`` making ``layers`` (ONNX node names) 16-bit: outputs ``QUInt16``, weights ``QInt16``.

    Raises:
        GraphError: a layer is not a node name of the model.
    """
    from onnxruntime.quantization import QuantType

    nodes = _node_index(model)
    inits = {i.name for i in model.graph.initializer}
    out: dict[str, list[dict[str, Any]]] = {}
    for layer in layers:
        node = nodes.get(layer)
        if node is None:
            raise GraphError(f"16-bit layer '{layer}' is not a node of the Stage-1 model",
                             note="int16 layers are ONNX node names of Stage 1 (the part that runs on the Hailo)",
                             hint=did_you_mean(layer, nodes) or "list node names with 'hailo-qa emulate MODEL' "
                                                                 "(noise table) or Netron")
        outputs = [t for t in node.output if t]
        consumers = [n for n in model.graph.node if any(t in outputs for t in n.input)]
        if node.op_type in _WEIGHTED and len(consumers) == 1 and consumers[0].op_type in _FUSED:
            outputs += [t for t in consumers[0].output if t]  # conv+relu is one Hailo layer: its output is 16-bit
        for t in outputs:
            out[t] = [{"quant_type": QuantType.QUInt16}]
        if node.op_type in _WEIGHTED and len(node.input) > 1 \
                and node.input[1] in inits:
            out[node.input[1]] = [{"quant_type": QuantType.QInt16}]
    return out


def _prepared_float(stage1: Path, work: Path, per_channel: bool) -> Path:
    """Stage 1 ready for the quantizer: opset ≥ 13 when weights are per-channel (DequantizeLinear ``axis``)."""
    model = onnx.load(str(stage1))
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if per_channel and opset < 13:
        from onnx import version_converter

        try:
            model = version_converter.convert_version(model, 13)
        except Exception as err:
            raise GraphError(f"Stage 1 (opset {opset}) could not be converted to opset 13 for per-channel weights: "
                             f"{err}", note="per-channel DequantizeLinear needs opset ≥ 13",
                             hint="set quantization.weight_granularity = \"per_tensor\" or re-export the model at "
                                  "opset ≥ 13") from err
        path = work / f"{stage1.stem}.opset13.onnx"
        atomic_write_bytes(path, model.SerializeToString())
        return path
    return stage1


RANGE_COLLECTORS = ("graph", "ort")
"""How activation ranges are collected: ``graph`` — reduced inside the graph, batched, streamed
(:mod:`hailo_qa.runners.calib_ranges`, the default); ``ort`` — ONNX Runtime's own calibrator (same ranges, ~10×
the time; kept to prove the equality)."""


def quantize_stage1(stage1: str | Path, calib: CalibSource, cfg: OrtQuantConfig, work_dir: str | Path, *,
                    input_name: str | None = None, layout: str = "NCHW",
                    ranges: str = "graph") -> tuple[Path, dict[str, Any]]:
    """Quantize a Stage-1 ONNX model in QDQ format (cached on disk).

    Args:
        stage1: the float Stage-1 model.
        calib: the calibration set (streamed once per quantization).
        cfg: the quantization config.
        work_dir: cache folder root; files go to ``work_dir/emulator``.
        input_name: the Stage-1 input to feed. Defaults to the model's single input.
        layout: that input's layout. Defaults to ``NCHW``.
        ranges: how activation ranges are collected (:data:`RANGE_COLLECTORS`). Defaults to ``graph``.

    Returns:
        (path of the quantized model, metadata dict with the cache key parts and hashes).

    Raises:
        GraphError: a 16-bit layer is not in the model, or the model cannot be quantized.
        InputDataError: the calibration data does not fit the model.
    """
    stage1 = Path(stage1)
    from hailo_qa.fsutil import build_once, writable_dir

    work = writable_dir(Path(work_dir) / "emulator", "the emulator cache")
    stage1_sha = _sha256_file(stage1)
    ver = _ort_version()
    key_src = json.dumps({"stage1": stage1_sha, "cfg": cfg.key(), "calib": calib.sha256, "ort": ver,
                          "scheme": SCHEME_VERSION, "input": input_name, "layout": layout,
                          **({"ranges": ranges} if ranges != "graph" else {})}, sort_keys=True)
    key = hashlib.sha256(key_src.encode()).hexdigest()[:20]
    out = work / f"{stage1.stem}.{cfg.config}.{key}.onnx"
    meta_path = out.with_suffix(".json")
    def cached() -> tuple[Path, dict[str, Any]] | None:
        if out.is_file() and meta_path.is_file():
            with contextlib.suppress(ValueError, OSError):
                return out, json.loads(meta_path.read_text())
        return None

    # another pytest-xdist worker quantizing the same: wait for its model, not quantize again
    return build_once(out, cached, lambda: _quantize(stage1, calib, cfg, out, meta_path, stage1_sha, ver, input_name,
                                                     layout, ranges))


def _quantize(stage1: Path, calib: CalibSource, cfg: OrtQuantConfig, out: Path, meta_path: Path, stage1_sha: str,
              ver: str, input_name: str | None, layout: str, ranges: str) -> tuple[Path, dict[str, Any]]:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    work = out.parent
    float_model = onnx.load(str(stage1), load_external_data=False)
    graph_inputs = [i for i in float_model.graph.input
                    if i.name not in {t.name for t in float_model.graph.initializer}]
    if input_name is None:
        if len(graph_inputs) != 1:
            raise GraphError(f"Stage 1 has {len(graph_inputs)} inputs; the emulator feeds one image input",
                             note=f"inputs: {[i.name for i in graph_inputs]}", hint="pass input_name=")
        input_name = graph_inputs[0].name
    shape = [d.dim_value or None for d in next(i for i in graph_inputs if i.name == input_name)
             .type.tensor_type.shape.dim] if any(i.name == input_name for i in graph_inputs) else None
    if shape is None:
        raise GraphError(f"Stage-1 model has no input '{input_name}'", note=f"inputs: {[i.name for i in graph_inputs]}",
                         hint=did_you_mean(input_name, [i.name for i in graph_inputs]))

    sixteen = cfg.config == "int16"
    per_channel = cfg.weight_granularity == "per_channel"
    extra: dict[str, Any] = {"ActivationSymmetric": False}
    if cfg.int16_layers:
        extra["TensorQuantOverrides"] = tensor_overrides(float_model, cfg.int16_layers)
    if cfg.method == "percentile":
        extra["CalibPercentile"] = cfg.percentile
    if ranges not in RANGE_COLLECTORS:
        raise InputDataError(f"range collector {ranges!r} is unknown", note=f"expected one of {list(RANGE_COLLECTORS)}",
                             hint=did_you_mean(ranges, RANGE_COLLECTORS) or "use 'graph'")
    reader = CalibReader(calib, input_name, layout=layout, shape=shape)
    stats: dict[str, Any] = {}
    if ranges == "graph":
        from hailo_qa.runners.calib_ranges import ranges_in_graph

        collecting = ranges_in_graph(method=cfg.method, percentile=cfg.percentile, record=stats)
    else:
        collecting = contextlib.nullcontext()
    with tempfile.TemporaryDirectory(prefix="emu.", dir=work) as tmp:
        src = _prepared_float(stage1, Path(tmp), per_channel)
        tmp_out = Path(tmp) / "q.onnx"
        try:
            with _quiet_ort_logging(), collecting:
                quantize_static(
                    str(src), str(tmp_out), _as_ort_reader(reader), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QUInt16 if sixteen else QuantType.QUInt8,
                    weight_type=QuantType.QInt16 if sixteen else QuantType.QInt8,
                    per_channel=per_channel,
                    calibrate_method=(CalibrationMethod.Percentile if cfg.method == "percentile"
                                      else CalibrationMethod.MinMax),
                    extra_options=extra)
        except (InputDataError, GraphError):
            raise
        except Exception as err:
            raise GraphError(f"ONNX Runtime could not quantize Stage 1 ({err.__class__.__name__}: "
                             f"{str(err).strip().splitlines()[0] if str(err).strip() else ''})",
                             note=f"config {cfg.config}, {cfg.method} calibration, {cfg.weight_granularity} weights",
                             hint="check that Stage 1 runs in ONNX Runtime with the calibration data; report the "
                                  "model if it does") from err
        if reader.seen == 0:
            raise InputDataError("the calibration set yielded no samples", note="expected at least one sample",
                                 hint="check the calibration source and size")
        data = tmp_out.read_bytes()
    meta = {"stage1": str(stage1), "stage1_sha256": stage1_sha, "config": asdict(cfg), "calib_size": reader.seen,
            "calib_sha256": calib.sha256, "onnxruntime": ver, "scheme": SCHEME_VERSION,
            "quantized_sha256": hashlib.sha256(data).hexdigest(), "input_name": input_name, "layout": layout,
            "ranges": {"collector": ranges, **stats}}
    atomic_write_bytes(out, data)
    atomic_write_bytes(meta_path, json.dumps(meta, indent=1, sort_keys=True).encode())
    return out, meta


# --------------------------------------------------------------------------------------------------------------
class OrtEmulatorRunner(BaseRunner):
    """A Stage-1 runner: the Stage-1 ONNX quantized by ONNX Runtime (QDQ), same inputs and outputs as Stage 1.

    Quantization (or a cache hit) happens on activation (``with runner:``) or :meth:`prepare`. An approximation of
    Hailo numerics, never Hailo's result: ``backend.name == "ort-emulator"``, ``backend.hailo is False``.

    Args:
        stage1: the float Stage-1 ONNX model.
        calib: calibration set.
        cfg: quantization config.
        work_dir: cache root.
        input_name: the Stage-1 input fed with calibration data. Defaults to the single input.
        layouts: layout per tensor (``NCHW``/``NHWC``) for metadata and calibration. Defaults to NCHW.
        threads: ORT intra-op threads. Defaults to :func:`hailo_qa.runners.onnxrt.default_threads`.
        name: runner name. Defaults to ``ort-emulator[<config>]``.
    """

    def __init__(self, stage1: str | Path, calib: CalibSource, cfg: OrtQuantConfig, work_dir: str | Path, *,
                 input_name: str | None = None, layouts: Mapping[str, str] | None = None,
                 threads: int | None = None, name: str | None = None) -> None:
        super().__init__(name or f"ort-emulator[{cfg.config}]")
        self.stage1, self.work_dir = Path(stage1), Path(work_dir)
        self.calib, self.cfg, self.input_name, self.threads = calib, cfg, input_name, threads
        self.layouts = dict(layouts or {})
        self.quantized_path: Path | None = None
        self.meta: dict[str, Any] = {}
        self._inner = None
        self._float_meta: tuple[dict, dict] | None = None
        self.backend = self._backend_info()

    def _backend_info(self) -> BackendInfo:
        details = {"calib_size": self.meta.get("calib_size", self.calib.count), "calib_sha256": self.calib.sha256,
                   "method": self.cfg.method, "granularity": self.cfg.weight_granularity,
                   "int16_layers": list(self.cfg.int16_layers), "approximation": True,
                   "scheme": SCHEME_VERSION}
        if self.meta:
            details["quantized_sha256"] = self.meta["quantized_sha256"]
            details["stage1_sha256"] = self.meta["stage1_sha256"]
        return BackendInfo("ort-emulator", _ort_version(), "emulator", hailo=False, config=self.cfg.config,
                           details=details)

    def prepare(self) -> Path:
        """Quantize (or load from cache) and return the quantized model's path."""
        if self.quantized_path is None:
            layout = self.layouts.get(self.input_name, "NCHW") if self.input_name else "NCHW"
            self.quantized_path, self.meta = quantize_stage1(self.stage1, self.calib, self.cfg, self.work_dir,
                                                             input_name=self.input_name, layout=layout)
            self.backend = self._backend_info()
        return self.quantized_path

    def _activate(self) -> None:
        from hailo_qa.runners.onnxrt import OnnxrtRunner

        self._inner = OnnxrtRunner(self.prepare(), name=self.name, layouts=self.layouts, threads=self.threads,
                                   config=QDQ_AS_WRITTEN)
        self._inner.activate()

    def _deactivate(self) -> None:
        if self._inner is not None:
            self._inner.deactivate()
        self._inner = None

    def _meta(self) -> tuple[dict[str, TensorMeta], dict[str, TensorMeta]]:
        if self._inner is not None:
            return self._inner.input_metadata(), self._inner.output_metadata()
        if self._float_meta is None:
            from hailo_qa.runners.onnxrt import OnnxrtRunner

            r = OnnxrtRunner(self.stage1, layouts=self.layouts)
            self._float_meta = (r.input_metadata(), r.output_metadata())
        return self._float_meta

    def input_metadata(self) -> dict[str, TensorMeta]:
        return self._meta()[0]

    def output_metadata(self) -> dict[str, TensorMeta]:
        return self._meta()[1]

    def _infer(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self._inner.infer(feeds, check=False)

