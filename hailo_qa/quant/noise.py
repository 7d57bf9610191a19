"""Per-layer quantization noise: where does the precision go, and which layers should be 16-bit?

Two sources, one record (:class:`LayerNoise`):

- **ort**: float Stage 1 vs its QDQ-quantized twin (the built-in ``ort-emulator``), tensor by tensor, with ONNX
  Runtime's own debugging tools (``onnxruntime.quantization.qdq_loss_debug``): every intermediate tensor is saved
  (``modify_model_output_intermediate_tensors``), collected on the same inputs (``collect_activations``), matched
  (``create_activation_matching``) and scored as SQNR = 20·log10(‖x‖/‖x−y‖) (``compute_activation_error``).
  Two figures per tensor: ``snr_db`` (float model vs quantized model at that tensor: the noise accumulated up to
  here) and ``local_snr_db`` (the tensor right before vs right after its own Quantize/Dequantize: the noise this
  tensor's own quantization adds).
- **dfc**: the DFC's Layer Noise Analysis (``runner.analyze_noise(..., analyze_mode="advanced")``), read back from
  ``runner.get_params_statistics()[layer]["layer_noise_analysis/snr"]`` (HAILO_TOOLCHAIN.md §1.8) by the pure
  function :func:`dfc_layer_noise`.

:func:`suggest_int16` picks the K layers to move to 16-bit (``quantization.suggest_k``): the ones whose *own*
quantization is noisiest (lowest ``local_snr_db``; for the DFC, its per-layer SNR), and :func:`alls_lines` writes them
as ready ``quantization_param(<layer>, precision_mode=a16_w16)`` model-script lines. The ORT figures are an
approximation of Hailo numerics; the layer names are ONNX node names (map them to HN layer names with ``layer_map``).
A ranking is not a suggestion: :func:`hailo_qa.quant.suggest.measure_int16_suggestion` measures the candidates.
"""
from __future__ import annotations

import math
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hailo_qa.errors import InputDataError
from hailo_qa.runners.dfc import SNR_KEY, LayerNoise, dfc_layer_noise, rank_layers

__all__ = ["SNR_KEY", "LayerNoise", "dfc_layer_noise", "rank_layers", "suggest_int16", "alls_lines", "format_table",
           "ort_layer_noise", "cached_layer_noise", "suggest_for_model"]

LOW_SNR_DB = 10.0
"""Hailo's profiler highlights layers under 10 dB (PEERS.md, DFC noise tools)."""


def suggest_int16(noise: Iterable[LayerNoise], k: int, *, exclude: Iterable[str] = ()) -> tuple[str, ...]:
    """The ``k`` layers to move to 16-bit: the ones adding the most noise (:func:`rank_layers`), one entry per layer.

    Args:
        noise: per-layer records (from :func:`ort_layer_noise` or :func:`dfc_layer_noise`).
        k: how many layers (``quantization.suggest_k``).
        exclude: layers never to suggest (e.g. already 16-bit). Defaults to none.
    """
    if k < 0:
        raise InputDataError(f"suggest_int16: k={k}", note="expected k ≥ 0", hint="set quantization.suggest_k ≥ 0")
    skip, out = set(exclude), []
    if k == 0:
        return ()
    for n in rank_layers(noise):
        if n.layer in skip or n.layer in out:
            continue
        out.append(n.layer)
        if len(out) == k:
            break
    return tuple(out)


def alls_lines(layers: Iterable[str], *, layer_map: Mapping[str, str | Sequence[str]] | None = None) -> list[str]:
    """Ready model-script lines: ``quantization_param(<HN layer>, precision_mode=a16_w16)`` per layer.

    Args:
        layers: layer names (ONNX node names or HN names).
        layer_map: ONNX node name → HN layer name(s) (:func:`~hailo_qa.quant.model_script.layer_map_from_hn`).
            Without one the names are written as given (they must already be HN names: the model script never
            takes ONNX node names). With one, a name that maps to nothing is a ManifestError with near matches.
    """
    from hailo_qa.quant.model_script import resolve_layers

    out = []
    for layer in layers:
        for name in resolve_layers((layer,), layer_map):
            line = f"quantization_param({name}, precision_mode=a16_w16)"
            if line not in out:
                out.append(line)
    return out


def format_table(noise: Sequence[LayerNoise], *, limit: int | None = 15) -> str:
    """A fixed-width table, worst first (layer, op, SNR lost in the layer, SNR at its output)."""
    rows = rank_layers(noise)[:limit] if limit else rank_layers(noise)
    w = max([len("layer")] + [len(r.layer) for r in rows])
    lines = [f"{'layer':<{w}}  {'op':<12} {'added dB':>9} {'SNR dB':>9}"]
    for r in rows:
        flag = "  <10 dB" if r.snr_db < LOW_SNR_DB else ""
        lines.append(f"{r.layer:<{w}}  {r.op_type[:12]:<12} {r.added_db:>9.2f} {r.snr_db:>9.2f}{flag}")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------------------
class _ListReader:
    def __init__(self, feeds: Sequence[Mapping[str, np.ndarray]]) -> None:
        self.feeds, self.i = list(feeds), 0

    def get_next(self):
        if self.i >= len(self.feeds):
            return None
        self.i += 1
        return dict(self.feeds[self.i - 1])

    def rewind(self) -> None:
        self.i = 0


def _reader(feeds):
    from onnxruntime.quantization import CalibrationDataReader

    inner = _ListReader(feeds)

    class R(CalibrationDataReader):
        def get_next(self):  # noqa: D102
            return inner.get_next()

        def rewind(self):  # noqa: D102
            inner.rewind()

    return R()


def ort_layer_noise(float_model: str | Path, quantized_model: str | Path,
                    feeds: Sequence[Mapping[str, np.ndarray]], *, work_dir: str | Path | None = None
                    ) -> list[LayerNoise]:
    """Per-tensor noise of a QDQ model against its float model, with ``onnxruntime.quantization.qdq_loss_debug``.

    Args:
        float_model: the float Stage-1 ONNX.
        quantized_model: its QDQ model (:class:`~hailo_qa.runners.emulator_ort.OrtEmulatorRunner.prepare`).
        feeds: a few inputs (every intermediate tensor of every feed is held in memory: keep it small, 2–8).
        work_dir: where the augmented models are written. Defaults to a temporary folder.

    Returns:
        One :class:`LayerNoise` per quantized activation tensor that a node produces (unordered; see
        :func:`rank_layers`).

    Raises:
        InputDataError: no feeds, or no tensor could be matched (not a QDQ model of this float model).
    """
    import onnx
    from onnxruntime.quantization.qdq_loss_debug import (
        collect_activations,
        compute_activation_error,
        create_activation_matching,
        modify_model_output_intermediate_tensors,
    )

    from hailo_qa.runners.emulator_ort import _quiet_ort_logging
    from hailo_qa.runners.onnxrt import session_options

    if not feeds:
        raise InputDataError("ort_layer_noise got no feeds", note="expected at least one input dict",
                             hint="pass a few calibration or sample inputs")
    fm = onnx.load(str(float_model), load_external_data=False)
    from hailo_qa.fsutil import writable_dir

    with tempfile.TemporaryDirectory(prefix="hqa_noise_", dir=writable_dir(work_dir, "the work folder")) as tmp, \
            _quiet_ort_logging():
        f_aug, q_aug = Path(tmp) / "float_aug.onnx", Path(tmp) / "qdq_aug.onnx"
        modify_model_output_intermediate_tensors(str(float_model), str(f_aug))
        modify_model_output_intermediate_tensors(str(quantized_model), str(q_aug))
        # collect_activations' own default: unoptimized (so ONNX Runtime's thread count, see session_options)
        so = session_options(optimize=False, prepack=True)
        float_acts = collect_activations(str(f_aug), _reader(feeds), session_options=so)
        qdq_acts = collect_activations(str(q_aug), _reader(feeds), session_options=so)
    matching = create_activation_matching(qdq_acts, float_acts)
    matching = {k: v for k, v in matching.items() if "float" in v}
    errors = compute_activation_error(matching)
    snr = {t: float(e.get("xmodel_err", math.nan)) for t, e in errors.items()}
    nodes = {t: n for n in fm.graph.node for t in n.output}
    graph_inputs = {i.name for i in fm.graph.input}
    memo: dict[str, float] = {}

    def upstream(tensor: str, depth: int = 0) -> float:
        """SNR arriving at ``tensor``: measured there, else the worst measured SNR feeding its producer."""
        if tensor in snr:
            return snr[tensor]
        if tensor in memo:
            return memo[tensor]
        node = nodes.get(tensor)
        if node is None or depth > 200:
            v = math.inf  # graph input or initializer: exact (unless measured above)
        else:
            vals = [upstream(t, depth + 1) for t in node.input if t and (t in nodes or t in graph_inputs)]
            v = min(vals) if vals else math.inf
        memo[tensor] = v
        return v

    out = []
    for tensor, err in errors.items():
        node = nodes.get(tensor)
        if node is None:  # graph inputs: their noise is the input quantization, not a layer's
            continue
        ins = [upstream(t) for t in node.input if t and (t in nodes or t in graph_inputs)]
        before = min(ins) if ins else math.inf
        added = min(before, _INPUT_SNR_DB) - snr[tensor]
        layer, op = _layer_of(node, nodes, fm)
        out.append(LayerNoise(layer=layer, tensor=tensor, op_type=op, snr_db=snr[tensor],
                              local_snr_db=float(err.get("qdq_err", math.nan)), added_db=float(added),
                              source="ort"))
    if not out:
        raise InputDataError("no quantized tensor of the QDQ model matched the float model",
                             note="expected a QDQ model made from this float model (same tensor names)",
                             hint="pass the float Stage 1 and the ort-emulator's quantized model of it")
    return out


_INPUT_SNR_DB = 100.0
"""SNR assumed for exact (unquantized) upstream data when computing ``added_db`` of the first layers."""

FUSED_ACTIVATIONS = ("Relu", "Clip", "LeakyRelu", "PRelu", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh")
"""Activations Hailo fuses into the preceding weighted layer (one HN layer = conv + activation)."""
WEIGHTED = ("Conv", "ConvTranspose", "Gemm", "MatMul")


def _layer_of(node, producers: Mapping[str, Any], model) -> tuple[str, str]:
    """The layer a tensor belongs to, as Hailo sees it: an activation right after a weighted op whose output feeds
    nothing else is part of that op's layer (conv+relu is one HN layer)."""
    if node.op_type in FUSED_ACTIVATIONS and node.input:
        prev = producers.get(node.input[0])
        if prev is not None and prev.op_type in WEIGHTED:
            consumers = sum(1 for n in model.graph.node for t in n.input if t == node.input[0])
            if consumers == 1:
                return prev.name or node.input[0], f"{prev.op_type}+{node.op_type}"
    return node.name or node.output[0], node.op_type


def suggest_for_model(spec, split, calib, work_dir: str | Path, *, k: int | None = None, n_feeds: int = 4
                      ) -> tuple[tuple[str, ...], list[LayerNoise]]:
    """Localise INT8 noise on ``spec``'s Stage 1 with the built-in emulator and suggest the 16-bit layers.

    Args:
        spec: the model.
        split: its :class:`~hailo_qa.graph.split.SplitResult`.
        calib: the calibration set (quantizes the INT8 model; its first ``n_feeds`` samples are the probe inputs).
        work_dir: cache root (the INT8 model and the analysis, :func:`cached_layer_noise`, are cached there).
        k: how many layers. Defaults to ``quantization.suggest_k``.
        n_feeds: probe inputs (each holds every intermediate tensor in memory). Defaults to 4.

    Returns:
        (suggested ONNX node names, every per-layer record).
    """
    from itertools import islice

    from hailo_qa.runners.emulator_ort import CalibReader, OrtEmulatorRunner, quant_config_for

    inp = split.stage1_inputs[0]
    try:
        layout = spec.input(inp).layout
    except KeyError:
        layout = "NCHW"
    runner = OrtEmulatorRunner(split.stage1_path, calib, quant_config_for(spec, "int8"), work_dir,
                               input_name=inp, layouts={inp: layout})
    feeds = list(islice(iter(CalibReader(calib, inp, layout=layout)), n_feeds))
    noise = cached_layer_noise(split.stage1_path, runner.prepare(), feeds, work_dir)
    return suggest_int16(noise, spec.quantization.suggest_k if k is None else k), noise


NOISE_FORMAT = 1
"""Bumped whenever :func:`ort_layer_noise`'s records change (invalidates the cached analyses)."""


def noise_cache_path(float_model: str | Path, quantized_model: str | Path, feeds: Sequence[Mapping[str, np.ndarray]],
                     work_dir: str | Path) -> Path:
    """Where :func:`cached_layer_noise` keeps an analysis: ``work_dir/noise/<stem>.<key>.json``, the key a sha256 of
    both models' bytes, the feeds (names, dtypes, shapes, bytes), the ONNX Runtime version and
    :data:`NOISE_FORMAT` — a changed model, calibration or probe input is another entry."""
    import hashlib

    from hailo_qa.graph.io import sha256_file
    from hailo_qa.toolchain import onnxruntime_version

    h = hashlib.sha256(f"noise{NOISE_FORMAT}|ort {onnxruntime_version()}|".encode())
    for model in (float_model, quantized_model):
        h.update(sha256_file(model).encode())
    for feed in feeds:
        for name in sorted(feed):
            a = np.ascontiguousarray(feed[name])
            h.update(f"|{name}|{a.dtype.str}|{a.shape}|".encode())
            h.update(a.tobytes())
    return Path(work_dir) / "noise" / f"{Path(float_model).stem}.{h.hexdigest()[:20]}.json"


def cached_layer_noise(float_model: str | Path, quantized_model: str | Path,
                       feeds: Sequence[Mapping[str, np.ndarray]], work_dir: str | Path) -> list[LayerNoise]:
    """:func:`ort_layer_noise`, cached on disk (:func:`noise_cache_path`; the same records, floats round-trip
    exactly). A process that needs an analysis another one is running (a pytest-xdist worker) waits for it."""
    import json

    from hailo_qa.fsutil import atomic_write, build_once

    path = noise_cache_path(float_model, quantized_model, feeds, work_dir)

    def cached() -> list[LayerNoise] | None:
        try:
            rows = json.loads(path.read_text())
            return [LayerNoise(**{**r, "onnx_names": tuple(r.get("onnx_names", ()))}) for r in rows]
        except (OSError, ValueError, TypeError):
            return None

    def build() -> list[LayerNoise]:
        noise = ort_layer_noise(float_model, quantized_model, feeds, work_dir=work_dir)
        atomic_write(path, json.dumps([n.to_dict() for n in noise]))
        return noise

    return build_once(path, cached, build)
