"""Contract fake of ``hailo_sdk_client.ClientRunner`` (tests only; never a runtime fallback).

Same names and call shapes as the calls hailo-qa makes (HAILO_TOOLCHAIN.md §1), driven by :data:`BEHAVIOUR`:
it emits the DFC's real log lines and raises the real error texts on demand. Its numbers are deliberately
synthetic: ``SDK_NATIVE``/``SDK_FP_OPTIMIZED`` run the ONNX file in ONNX Runtime, and ``SDK_QUANTIZED`` returns that
float output rounded to a coarse 1/8 grid — plumbing checks only, never a number to mistake for Hailo's.

What it holds hailo-qa to (HAILO_TOOLCHAIN.md §8, the corrections):

- the HN names layers ``<net>/<kind><n>`` with the ONNX nodes they came from in ``original_names`` (an activation
  after a conv is fused into it, as the DFC does); ``quantization_param`` must name HN layers (scoped or not) or
  ``{globs}``, never ONNX node names, with a known precision mode (``a8_w8_a16`` included);
- ``get_params_statistics()`` after ``analyze_noise(advanced)`` is indexed per layer (``stats[layer][key]``) *and*
  by flat ``<layer>/layer_noise_analysis/…`` keys (``Behaviour.stats_shape`` narrows it to one shape);
- ``optimize`` reports its optimization level through logging and/or ``hailo_sdk.client.log`` / ``acceleras.log``
  in the working directory (``Behaviour.level_log``), or not at all;
- a model script ``normalization(mean, std)`` layer is part of ``SDK_FP_OPTIMIZED`` / ``SDK_QUANTIZED`` (raw 0–255
  in) and not of ``SDK_NATIVE`` (normalized in);
- ``save_har`` takes a path ending in ``.har`` (the only documented form).
"""
from __future__ import annotations

import contextlib
import json
import logging
import re
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..exposed_definitions import CalibrationDataType, InferenceContext, States
from ..model_translator.exceptions import MisspellNodeError

log = logging.getLogger("hailo_sdk_client.sdk_backend.sdk_backend")
QUANT_GRID = 8.0
"""SDK_QUANTIZED output = round(float output * 8) / 8."""

ARCH_CODES = {"hailo8": 1, "hailo8r": 2, "hailo8l": 3}  # what a DFC target writes into the HEF header proto


class HailoToolsException(Exception):
    pass


class BadInputsShape(Exception):
    pass


@dataclass
class Behaviour:
    """What the fake does. Tests set fields; the install fixture resets it."""

    keyword_style: str = "new"  # new | v2.4 | v2.3 | opaque (**kwargs; refuses the new spelling)
    gpu: bool = False
    parse_failures: dict = field(default_factory=dict)  # net_name -> exception instance to raise
    optimize_failures: dict = field(default_factory=dict)
    compile_failures: dict = field(default_factory=dict)
    infer_error: Exception | None = None
    hef_padding: int = 0  # extra bytes in the HEF (size checks)
    hef_arch: str | None = None  # override the arch written into the HEF
    open_contexts: int = 0
    calls: list = field(default_factory=list)
    stats_shape: str = "both"  # both (per-layer view + flat keys) | nested (dict of dicts) | flat (flat dict only)
    level_log: tuple = ("logging", "hailo_sdk.client.log")  # where optimize reports the level ("acceleras.log" too)


BEHAVIOUR = Behaviour()

PRECISION_MODES = ("a8_w8", "a8_w4", "a16_w16", "a8_w8_a16", "a8_w8_a8", "a16_w8")
"""Precision modes the fake accepts (seen in Hailo's Model Zoo and in user scripts; a8_w8_a16 per §8)."""

_KIND = {"Conv": "conv", "ConvTranspose": "deconv", "Gemm": "fc", "MatMul": "fc", "GlobalAveragePool": "avgpool",
         "AveragePool": "avgpool", "MaxPool": "maxpool", "Flatten": "format_conversion",
         "Reshape": "format_conversion", "Add": "ew_add", "Mul": "ew_mult", "Concat": "concat"}
_FUSED = ("Relu", "Clip", "LeakyRelu", "PRelu", "Sigmoid", "BatchNormalization")


class ScriptError(Exception):
    """Synthetic: the fake's refusal of a model-script line (the real DFC's exception class is not documented)."""


class ParamsStatistics:
    """What ``get_params_statistics()`` returns: flat ``<layer>/<key>`` storage, indexable per layer
    (``stats[layer]`` → ``{key: value}``, as Hailo's inspector reads it) and by flat key (``stats.get(...)``)."""

    def __init__(self, flat: dict) -> None:
        self._flat = dict(flat)

    def keys(self):
        return self._flat.keys()

    def items(self):
        return self._flat.items()

    def get(self, key, default=None):
        return self._flat.get(key, default)

    def __contains__(self, key):
        return key in self._flat

    def __getitem__(self, key):
        if key in self._flat:
            return self._flat[key]
        view = {k[len(key) + 1:]: v for k, v in self._flat.items() if k.startswith(key + "/")}
        if not view:
            raise KeyError(key)
        return view


def _log(level, msg, *args):
    """Log like the DFC: to Python logging and/or its log files in the CWD, as ``BEHAVIOUR.level_log`` says."""
    text = msg % args if args else msg
    if "logging" in BEHAVIOUR.level_log:
        log.log(level, msg, *args)
    for name in ("hailo_sdk.client.log", "acceleras.log"):
        if name in BEHAVIOUR.level_log:
            with open(name, "a", encoding="utf-8") as fh:
                fh.write(f"2026-01-01 00:00:00,000 - {logging.getLevelName(level)} - fake.py:1 - {text}\n")


def recommendation_text(nodes=("/model.23/TopK", "/model.23/Mod"), end=("/model.22/Concat", "/model.22/Sigmoid")):
    """The real ParsingWithRecommendationException message shape (HAILO_TOOLCHAIN.md §1.10)."""
    lines = ["Parsing failed. The errors found in the graph are:"]
    for n in nodes:
        op = n.rsplit("/", 1)[-1].split("_")[0]
        lines.append(f" UnsupportedOperationError in op {n}: {op} operation is unsupported")
    lines.append("Please try to parse the model again, using these end node names: " + ", ".join(end))
    return "\n".join(lines)


def fake_hef_bytes(arch: str, sdk_version: str, padding: int = 0) -> bytes:
    """A HEF with a valid v1 header and a minimal ProtoHEFHef{header{hw_arch, sdk_version}} (HAILO_TOOLCHAIN §6)."""
    ver = sdk_version.encode()
    hdr = bytes([0x08, ARCH_CODES.get(arch, 0)]) + bytes([0x1A, len(ver)]) + ver
    name = b"fake_net"
    meta = bytes([0x0A, len(name)]) + name  # ProtoHEFNetworkGroupMetadata.network_group_name
    group = bytes([0x0A, len(meta)]) + meta  # ProtoHEFNetworkGroup.network_group_metadata
    proto = bytes([0x0A, len(hdr)]) + hdr + bytes([0x12, len(group)]) + group
    ccws = b"\0" * padding
    body = proto + ccws
    return struct.pack(">IIIIQI", 0x01484546, 1, len(proto), zlib.crc32(body), len(ccws), 0) + body


def _translate(self, model, net_name, start_node_names=None, end_node_names=None, net_input_shapes=None, **kw):
    return self._do_translate(model, net_name, start_node_names, end_node_names, net_input_shapes)


def _translate_v24(self, model, net_name, start_node_names=None, end_node_names=None, net_input_shape=None):
    return self._do_translate(model, net_name, start_node_names, end_node_names, net_input_shape)


def _translate_v23(self, model, net_name, start_node_name=None, end_node_names=None, net_input_shape=None):
    starts = [start_node_name] if isinstance(start_node_name, str) else start_node_name
    return self._do_translate(model, net_name, starts, end_node_names, net_input_shape)


def _translate_opaque(self, *args, **kwargs):
    for k in ("start_node_names", "net_input_shapes"):
        if k in kwargs:
            raise TypeError(f"translate_onnx_model() got an unexpected keyword argument '{k}'")
    return _translate_v23(self, *args, **kwargs)


_STYLES = {"new": _translate, "v2.4": _translate_v24, "v2.3": _translate_v23, "opaque": _translate_opaque}


class ClientRunner:
    def __init__(self, hw_arch=None, har=None):
        BEHAVIOUR.calls.append(("ClientRunner", hw_arch, har))
        self.hw_arch = hw_arch or "hailo8"
        self.state = States.UNINITIALIZED
        self.model_script = ""
        self.model_name = None
        self._onnx = None
        self._hn = None
        self.translate_onnx_model = _STYLES[BEHAVIOUR.keyword_style].__get__(self)
        if har is not None:
            self.load_har(har)

    # --- HAR ---------------------------------------------------------------------------------------------------
    def load_har(self, har):
        d = json.loads(Path(har).read_text())
        self.state = States[d["state"]]
        self._onnx, self._hn, self.model_script = d["onnx"], d["hn"], d["model_script"]
        self.model_name = d["hn"]["name"]
        self.hw_arch = self.hw_arch or d["hw_arch"]

    def save_har(self, har_path, compressed=False, save_original_model=False):
        if not str(har_path).endswith(".har"):
            raise ValueError(f"fake: save_har({har_path!r}): the documented call takes a path ending in .har")
        Path(har_path).write_text(json.dumps({"fake": "hailo_sdk_client contract fake", "state": self.state.name,
                                              "onnx": self._onnx, "hn": self._hn, "hw_arch": self.hw_arch,
                                              "model_script": self.model_script}))

    def get_hn(self):
        return json.loads(json.dumps(self._hn))

    # --- layer noise analysis (real: results land in the params statistics; the call returns None) -----------------
    def analyze_noise(self, data, batch_size=None, data_count=None, analyze_mode="simple"):
        BEHAVIOUR.calls.append(("analyze_noise", self.model_name, analyze_mode, data_count))
        if self.state is not States.QUANTIZED_MODEL:
            raise RuntimeError("analyze_noise needs a quantized model (run optimize first)")
        if analyze_mode == "advanced":  # obviously synthetic: SNR = 40 dB minus 3 dB per layer index
            outs = self._hn["net_params"]["output_layers_order"]
            self._noise = {}
            for i, name in enumerate(self._hn.get("layers", {})):
                self._noise[f"{name}/layer_noise_analysis/snr"] = np.array([40.0 - 3.0 * i], np.float32)
                for k, out in enumerate(outs):
                    self._noise[f"{name}/layer_noise_analysis/noise_results/{out}"] = np.array(
                        [[40.0 - 3.0 * i - k]], np.float32)
        return None

    def get_params_statistics(self):
        flat = dict(getattr(self, "_noise", {}))
        if BEHAVIOUR.stats_shape == "flat":
            return flat
        if BEHAVIOUR.stats_shape == "nested":
            nested = {}
            for k, v in flat.items():
                layer, key = k.split("/layer_noise_analysis/", 1)
                nested.setdefault(layer, {})["layer_noise_analysis/" + key] = v
            return nested
        return ParamsStatistics(flat)

    # --- parse -------------------------------------------------------------------------------------------------
    def _do_translate(self, model, net_name, starts, ends, shapes):
        import onnx

        BEHAVIOUR.calls.append(("translate", net_name, starts, ends, shapes))
        err = BEHAVIOUR.parse_failures.get(net_name)
        if err is not None:
            raise err
        m = onnx.load(str(model))
        names = {n.name for n in m.graph.node} | {t for n in m.graph.node for t in n.output} | {
            i.name for i in m.graph.input}
        for n in list(starts or []) + list(ends or []):
            if n not in names:
                raise MisspellNodeError(f"Unable to find node name: {n}")
        inits = {i.name for i in m.graph.initializer}
        inputs = [i for i in m.graph.input if i.name not in inits]
        layers = {}
        for k, i in enumerate(inputs, 1):
            shp = [d.dim_value for d in i.type.tensor_type.shape.dim]
            if isinstance(shapes, dict) and i.name in shapes:
                shp = list(shapes[i.name])
            layers[f"{net_name}/input_layer{k}"] = {"type": "input_layer", "original_names": [i.name],
                                                    "input_shapes": [[-1, *shp[2:], shp[1]]]}
        producer_layer, counts = {}, {}
        for node in m.graph.node:  # one HN layer per node; activations/BN after a conv fold into it
            prev = producer_layer.get(node.input[0]) if node.input else None
            if node.op_type in _FUSED and prev is not None and layers[prev]["type"] in ("conv", "fc"):
                layers[prev]["original_names"].append(node.name)
                for t in node.output:
                    producer_layer[t] = prev
                continue
            kind = _KIND.get(node.op_type, node.op_type.lower())
            counts[kind] = counts.get(kind, 0) + 1
            lname = f"{net_name}/{kind}{counts[kind]}"
            layers[lname] = {"type": kind, "original_names": [node.name]}
            for t in node.output:
                producer_layer[t] = lname
        outs = []
        for k, o in enumerate(m.graph.output, 1):
            outs.append(f"{net_name}/output_layer{k}")
            layers[outs[-1]] = {"type": "output_layer", "original_names": [o.name]}
        self._hn = {"name": net_name, "net_params": {"output_layers_order": outs}, "layers": layers}
        self._onnx = str(Path(model).resolve())
        self.model_name = net_name
        self.state = States.HAILO_MODEL
        log.info("Start nodes mapped from original model: %s",
                 ", ".join(f"'{i.name}': '{net_name}/input_layer{k}'" for k, i in enumerate(inputs, 1)))
        log.info("Translation completed on ONNX model %s", net_name)
        return self._hn, {"params": "fake"}

    # --- model script ------------------------------------------------------------------------------------------
    def load_model_script(self, model_script, append=False):
        text = Path(model_script).read_text() if isinstance(model_script, Path) else str(model_script)
        self._check_script(text)
        self.model_script = (self.model_script + "\n" + text) if append else text

    def _check_script(self, text):
        """quantization_param names HN layers (scoped or unscoped) or {globs}, with a known precision mode."""
        layers = set((self._hn or {}).get("layers", {}))
        short = {n.split("/", 1)[-1] for n in layers}
        for line in text.splitlines():
            m = re.match(r"\s*quantization_param\((.*)\)\s*$", line)
            if not m:
                continue
            target = re.match(r"\s*(\[[^\]]*\]|\{[^}]*\}|[^,]+)", m.group(1)).group(1).strip()
            names = [n.strip() for n in target.strip("[]").split(",") if n.strip()]
            for n in names:
                if n.startswith("{"):
                    continue
                if self._hn is not None and n not in layers and n not in short:
                    raise ScriptError(f"fake: quantization_param names '{n}', which is not a layer of the HN "
                                      f"(the model script takes HN layer names)")
            mode = re.search(r"precision_mode\s*=\s*([A-Za-z0-9_]+)", m.group(1))
            if mode and mode.group(1) not in PRECISION_MODES:
                raise ScriptError(f"fake: unknown precision_mode {mode.group(1)}")

    def _normalization(self):
        m = re.search(r"normalization\(\s*(\[[^\]]*\])\s*,\s*(\[[^\]]*\])\s*\)", self.model_script or "")
        if not m:
            return None
        return (np.asarray(json.loads(m.group(1)), np.float32), np.asarray(json.loads(m.group(2)), np.float32))

    # --- optimize ----------------------------------------------------------------------------------------------
    def optimize(self, calib_data, data_type=CalibrationDataType.auto, *, work_dir=None, checkpoint=None,
                 memento=None):
        BEHAVIOUR.calls.append(("optimize", self.model_name))
        if self.state is not States.HAILO_MODEL:
            raise RuntimeError(f"optimize() needs a parsed model, runner state is {self.state.name}")
        err = BEHAVIOUR.optimize_failures.get(self.model_name)
        if err is not None:
            raise err
        ins = [n for n, l in self._hn["layers"].items() if l["type"] == "input_layer"]
        data = calib_data if isinstance(calib_data, dict) else {ins[0]: calib_data}
        count = None
        for name in ins:
            if name not in data:
                raise KeyError(name.split("/")[-1])
            arr = np.asarray(data[name])
            want = tuple(self._hn["layers"][name]["input_shapes"][0][1:])
            if arr.shape[1:] != want:
                raise BadInputsShape(f"Data shape {arr.shape[1:]} for layer {name} doesn't match network's input "
                                     f"shape {want}")
            count = arr.shape[0]
        m = re.search(r"optimization_level\s*=\s*(\d)", self.model_script)
        level = int(m.group(1)) if m else 2
        if not m:
            _log(logging.INFO, "Using default optimization level of 2")
        reason = ""
        if not BEHAVIOUR.gpu and level > 0:
            reason = "there's no available GPU"
            if count < 1024:
                reason = "there's less data than the recommended amount (1024), and there's no available GPU"
            level = 0
        elif count < 1024 and level > 1:
            reason, level = "there's less data than the recommended amount (1024)", 1
        if reason:
            _log(logging.WARNING, "Reducing optimization level to %d (the accuracy won't be optimized and "
                 "compression won't be used) because %s", level, reason)
        if level == 0:
            log.warning("Running model optimization with zero level of optimization is not recommended for "
                        "production use and might lead to suboptimal accuracy results")
        log.info("Using dataset with %d entries for calibration", min(count, 64))
        log.info("Model Optimization is done")
        self.state = States.QUANTIZED_MODEL

    # --- inference ---------------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def infer_context(self, target, **kw):
        if not isinstance(target, InferenceContext):
            raise TypeError(f"target must be an InferenceContext, got {target!r}")
        if target is not InferenceContext.SDK_NATIVE and self.state is not States.QUANTIZED_MODEL:
            raise RuntimeError(f"{target.name} needs a quantized model, runner state is {self.state.name}")
        BEHAVIOUR.open_contexts += 1
        try:
            yield {"target": target}
        finally:
            BEHAVIOUR.open_contexts -= 1

    def infer(self, context, dataset, batch_size=None, data_count=None):
        import onnxruntime as ort

        if BEHAVIOUR.infer_error is not None:
            raise BEHAVIOUR.infer_error
        sess = ort.InferenceSession(self._onnx, providers=["CPUExecutionProvider"])
        names = [i.name for i in sess.get_inputs()]
        data = dataset if isinstance(dataset, dict) else {next(iter(
            n for n, l in self._hn["layers"].items() if l["type"] == "input_layer")): dataset}
        feeds = {}
        norm = self._normalization() if context["target"] is not InferenceContext.SDK_NATIVE else None
        for hn_name, layer in self._hn["layers"].items():
            if layer["type"] == "input_layer":
                x = np.asarray(data[hn_name], np.float32)
                if norm is not None:  # the model-script normalization layer runs in these contexts
                    x = (x - norm[0]) / norm[1]
                feeds[layer["original_names"][0]] = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
        outs = sess.run(None, {n: feeds[n] for n in names})
        outs = [o.transpose(0, 2, 3, 1) if o.ndim == 4 else o for o in outs]
        if context["target"] is InferenceContext.SDK_QUANTIZED:
            outs = [np.round(o * QUANT_GRID) / QUANT_GRID for o in outs]
        outs = [np.ascontiguousarray(o, dtype=np.float32) for o in outs]
        return outs[0] if len(outs) == 1 else outs

    # --- compile -----------------------------------------------------------------------------------------------
    def compile(self):
        BEHAVIOUR.calls.append(("compile", self.model_name))
        err = BEHAVIOUR.compile_failures.get(self.model_name)
        if err is not None:
            raise err
        if self.state is not States.QUANTIZED_MODEL:
            raise RuntimeError(f"compile() needs a quantized model, runner state is {self.state.name}")
        log.info("Compilation complete")
        self.state = States.COMPILED_MODEL
        from .. import __version__

        return fake_hef_bytes(BEHAVIOUR.hef_arch or self.hw_arch, __version__, BEHAVIOUR.hef_padding)
