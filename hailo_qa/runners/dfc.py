"""The Hailo Dataflow Compiler (``hailo_sdk_client``) behind one small adapter, plus a Stage-1 emulator runner.

Nothing here imports the DFC at module import: :func:`import_dfc` does it on call. Facts and evidence tags for every
call shape used here: ``HAILO_TOOLCHAIN.md`` §1–2 (team shared material).

- :class:`DfcSession` wraps one ``ClientRunner``: parse (``translate_onnx_model`` with the keyword spelling of the
  installed DFC), model script, optimize, infer under an ``InferenceContext``, ``save_har``, ``compile``. Every step
  runs inside a writable work directory (the DFC writes ``hailo_sdk.client.log`` into the CWD), captures its log, and
  turns failures into :class:`~hailo_qa.errors.ToolchainError` (``step=...``, original chained) or, for a machine
  that is not set up, :class:`~hailo_qa.errors.EnvironmentProblem` saying how to fix it.
- :class:`DfcEmulatorRunner` runs a (quantized) HAR as a Stage-1 runner: NCHW float in, boundary outputs NCHW out.
- Optimization-level preflight: :func:`predict_optimization_level`, :func:`read_optimization_level`,
  :func:`check_optimization_level`.
- Parser verdict for ``lint``: :func:`parse_recommendation` (pure) and :func:`dfc_parse_verdict` (real parser).
"""
from __future__ import annotations

import contextlib
import inspect
import io
import logging
import math
import os
import re
import shutil
import subprocess
import tempfile
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hailo_qa.errors import EnvironmentProblem, InputDataError, InternalError, ToolchainError
from hailo_qa.runners.base import BackendInfo, BaseRunner, TensorMeta, nchw_to_nhwc, nhwc_to_nchw

CONTEXTS = {"native": "SDK_NATIVE", "fp_optimized": "SDK_FP_OPTIMIZED", "quantized": "SDK_QUANTIZED"}
"""Runner context name → ``InferenceContext`` member (HAILO_TOOLCHAIN.md §1.7, [V])."""

RECOMMENDED_CALIB_SIZE = 1024
"""Samples the DFC wants before it keeps optimization level ≥ 2 (HAILO_TOOLCHAIN.md §2.2, [C])."""

INSTALL_HINT = ("install Hailo's Dataflow Compiler wheel (hailo_dataflow_compiler-3.x, from the Hailo Developer Zone) "
                "into this Python environment on an x86-64 Linux build host, or run inside Hailo's AI Software Suite "
                "docker (hailo_ai_sw_suite_docker_run.sh); DFC 3.x targets Hailo-8/8L/8R")

_LOGGERS = ("", "hailo_sdk_client", "hailo_sdk_common", "hailo_model_optimization")
"""Loggers a step listens to (the vendor's may not propagate to the root)."""


# ---------------------------------------------------------------------------------------------------------------
# import and version
# ---------------------------------------------------------------------------------------------------------------
def import_dfc():
    """Import ``hailo_sdk_client`` now.

    Raises:
        EnvironmentProblem: the DFC is not installed (or its import fails), with what to install and where.
    """
    try:
        import hailo_sdk_client
    except ImportError as err:
        raise EnvironmentProblem("the Hailo Dataflow Compiler (hailo_sdk_client) is not installed",
                                 note=f"expected an importable hailo_sdk_client ({err})", hint=INSTALL_HINT,
                                 step="dfc") from err
    except Exception as err:  # a broken vendor install (TF/CUDA libraries) fails with anything
        raise EnvironmentProblem(f"importing hailo_sdk_client failed: {err.__class__.__name__}: {err}",
                                 note="expected the DFC to import cleanly", step="dfc",
                                 hint="check the DFC's TensorFlow/CUDA dependencies (pip check) or reinstall "
                                      "the wheel; " + INSTALL_HINT) from err
    return hailo_sdk_client


# --- layer noise records (the DFC's analysis is read into these; quant.noise adds the ORT source) -----------
NOISE_PREFIX = "layer_noise_analysis/"
SNR_KEY = NOISE_PREFIX + "snr"
"""Where the DFC stores a layer's SNR in ``get_params_statistics()`` (advanced mode)."""
PARTIAL_SNR_KEY = NOISE_PREFIX + "partial_snr"
"""The simple-mode figure Hailo's inspector falls back to when the advanced SNR is missing."""
NOISE_RESULTS = NOISE_PREFIX + "noise_results/"
"""Flat ``<layer>/layer_noise_analysis/noise_results/<output layer>`` keys (community code, [C]): element 0 is
the SNR at that output."""
SKIP_LAYER_TYPES = frozenset({"input_layer", "output_layer", "nms", "argmax"})
"""HN layer types Hailo's inspector leaves out of the SNR ranking (I/O, and layers where SNR is a bad metric)."""


@dataclass(frozen=True)
class LayerNoise:
    """Quantization noise of one layer (tensor).

    Attributes:
        layer: the layer: ONNX node name (ort) or HN layer name (dfc).
        tensor: the tensor measured (ort: the node's output tensor; dfc: the statistics key read).
        op_type: the ONNX op type (ort) or the HN layer type (dfc, when the HN was given).
        snr_db: SNR of the quantized model against float at this tensor (accumulated noise), dB.
        local_snr_db: SNR of this tensor right before vs right after its own Quantize/Dequantize, dB (NaN when
            not measured). Inflated noise for fused activations (ORT folds Relu/Clip into the quantization range).
        added_db: how much SNR this layer loses against its inputs (upstream SNR − ``snr_db``), dB: the noise the
            layer itself adds. NaN when not measured (DFC: the DFC's per-layer SNR already isolates the layer).
        source: ``ort`` or ``dfc``.
        onnx_names: the ONNX nodes this layer came from (dfc: the HN's ``original_names``; ort: the node itself).
    """

    layer: str
    tensor: str
    op_type: str
    snr_db: float
    local_snr_db: float = math.nan
    added_db: float = math.nan
    source: str = "ort"
    onnx_names: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["onnx_names"] = list(self.onnx_names)
        return d


def _finite_or(v: float, default: float) -> float:
    return v if isinstance(v, float) and math.isfinite(v) else default


def rank_layers(noise: Iterable[LayerNoise]) -> list[LayerNoise]:
    """Layers worst first: largest ``added_db`` where measured (ort), else lowest ``snr_db`` (dfc)."""

    def key(n: LayerNoise) -> tuple[int, float, str]:
        if not math.isnan(n.added_db):
            return (0, -_finite_or(float(n.added_db), -math.inf), n.layer)
        return (1, _finite_or(float(n.snr_db), math.inf), n.layer)

    return sorted(noise, key=key)


def _worst(value: Any) -> float | None:
    """The worst (minimum) finite-or-NaN SNR in a scalar or array statistic; None when absent/empty/unreadable."""
    if value is None:
        return None
    try:
        arr = np.asarray(value, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        return None
    if arr.size == 0:
        return None
    return math.nan if np.isnan(arr).all() else float(np.nanmin(arr))


def _stat_get(stats: Any, key: str) -> Any:
    """``stats.get(key)`` on a mapping-like statistics object (the DFC's may not be a ``dict``); None if absent."""
    get = getattr(stats, "get", None)
    try:
        if callable(get):
            return get(key)
        return stats[key]
    except (KeyError, IndexError, TypeError):
        return None


def _layer_view(stats: Any, layer: str) -> Any:
    """``stats[layer]`` as Hailo's inspector indexes it (a per-layer view), or None."""
    try:
        view = stats[layer]
    except (KeyError, IndexError, TypeError, ValueError):
        return None
    return view if hasattr(view, "get") else None


def _stat_keys(stats: Any) -> list[str]:
    keys = getattr(stats, "keys", None)
    if not callable(keys):
        return []
    try:
        return [str(k) for k in keys()]
    except Exception:  # a vendor object whose keys() fails: nothing to walk
        return []


def _layer_snr(stats: Any, layer: str, key: str, flat_keys: Sequence[str]) -> tuple[float, str] | None:
    """One layer's SNR, read the way Hailo's inspector reads it, then from the flat keys.

    Order: ``stats[layer][key]``, ``stats[layer][partial_snr]`` (the inspector's fallback), ``stats[f"{layer}/{key}"]``,
    ``stats[f"{layer}/…partial_snr"]``, then the worst of ``stats[f"{layer}/…noise_results/<out>"][0]``.

    Returns:
        (worst SNR, the key it came from), or None when the layer has no noise statistic.
    """
    view = _layer_view(stats, layer)
    for k in (key, PARTIAL_SNR_KEY):
        if view is not None:
            v = _worst(view.get(k))
            if v is not None:
                return v, f"{layer}[{k}]"
        v = _worst(_stat_get(stats, f"{layer}/{k}"))
        if v is not None:
            return v, f"{layer}/{k}"
    prefix = f"{layer}/{NOISE_RESULTS}"
    per_out = []
    for fk in flat_keys:
        if fk.startswith(prefix):
            raw = _stat_get(stats, fk)
            try:
                first = np.asarray(raw, dtype=np.float64)
                first = first[0] if first.ndim else first
            except (TypeError, ValueError, IndexError):
                continue
            v = _worst(first)
            if v is not None:
                per_out.append(v)
    if per_out:
        return min(per_out), f"{prefix}*"
    return None


def dfc_layer_noise(stats: Any, *, hn: Mapping | None = None, key: str = SNR_KEY) -> list[LayerNoise]:
    """Per-layer SNR from the DFC's ``runner.get_params_statistics()`` after ``analyze_noise(advanced)``.

    Read the way Hailo's own inspector reads it (Application-Code-Examples ``high_precision_inspector.py``): per HN
    layer, ``stats[layer.name].get('layer_noise_analysis/snr')`` with ``…/partial_snr`` as the fallback, skipping
    input/output/NMS/argmax layers. The statistics object is also read by its flat keys
    ``<layer>/layer_noise_analysis/snr`` and ``<layer>/layer_noise_analysis/noise_results/<output>`` (element 0,
    community code). A value may be a scalar or an array (one per output): the worst (minimum) counts.

    Args:
        stats: what ``get_params_statistics()`` returned: a per-layer mapping ``{layer: {key: value}}``, a flat
            mapping ``{"<layer>/<key>": value}``, or a vendor object offering both.
        hn: the HN dict (``runner.get_hn()``). With it, layers are read in HN order, I/O layers are skipped and
            every record carries the layer's ``original_names``; without it, layers are discovered from the keys.
        key: the statistic to read. Defaults to :data:`SNR_KEY`.

    Raises:
        InputDataError: no layer holds a noise statistic (the analysis did not run), or ``stats`` is not
            mapping-like.
    """
    if not (hasattr(stats, "get") or hasattr(stats, "__getitem__")) or isinstance(stats, (str, bytes, list, tuple)):
        raise InputDataError(f"params statistics are a {type(stats).__name__}",
                             note="expected the mapping returned by runner.get_params_statistics()")
    flat_keys = _stat_keys(stats)
    layers: dict[str, Mapping] = {}
    if hn is not None:
        table = hn.get("layers") if isinstance(hn, Mapping) else None
        if not isinstance(table, Mapping):
            raise InputDataError("the HN has no 'layers' table", note="expected runner.get_hn() of the model")
        layers = {str(n): (l or {}) for n, l in table.items()
                  if str((l or {}).get("type", "")) not in SKIP_LAYER_TYPES}
    else:
        for k in flat_keys:
            if NOISE_PREFIX in k and f"/{NOISE_PREFIX}" in k:
                layers.setdefault(k.split(f"/{NOISE_PREFIX}", 1)[0], {})
            elif _layer_view(stats, k) is not None:
                layers.setdefault(k, {})
    out = []
    for layer, meta in layers.items():
        got = _layer_snr(stats, layer, key, flat_keys)
        if got is None:
            continue
        v, where = got
        out.append(LayerNoise(layer=layer, tensor=where, op_type=str(meta.get("type", "")), snr_db=v,
                              local_snr_db=v, source="dfc",
                              onnx_names=tuple(str(o) for o in (meta.get("original_names") or ()))))
    if not out:
        raise InputDataError(f"no layer in the params statistics has '{key}'",
                             note="expected results of the DFC's layer noise analysis (advanced mode), per layer "
                                  "(stats[layer]['layer_noise_analysis/snr']) or flat "
                                  "('<layer>/layer_noise_analysis/...')",
                             hint="run runner.analyze_noise(calib, analyze_mode='advanced') (or 'hailo analyze-noise "
                                  "<har> --analyze-mode advanced') before reading the statistics")
    return out


def dfc_version() -> str:
    """The installed DFC's version string (``?`` when it does not say). Raises EnvironmentProblem without one."""
    mod = import_dfc()
    v = getattr(mod, "__version__", None)
    if not v:
        from hailo_qa.toolchain import _dist_version

        v = _dist_version("hailo_dataflow_compiler", "hailo-dataflow-compiler")
    return str(v or "?")


# ---------------------------------------------------------------------------------------------------------------
# parser verdict (pure)
# ---------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ParseIssue:
    """One per-node parser error: ``UnsupportedOperationError`` at ``/model.23/TopK``: ``TopK operation ...``."""

    error_class: str
    node: str
    text: str


@dataclass(frozen=True)
class ParseVerdict:
    """What the DFC parser said about a graph.

    Attributes:
        ok: the parser accepted the graph.
        errors: per-node errors, in the parser's order.
        recommended_end_nodes: the end nodes the parser recommends parsing up to (may be empty).
        message: the parser's message (empty when ``ok``).
        backend: who produced the verdict (``dfc@<version>``).
    """

    ok: bool
    errors: tuple[ParseIssue, ...] = ()
    recommended_end_nodes: tuple[str, ...] = ()
    message: str = ""
    backend: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["errors"] = [asdict(e) for e in self.errors]
        d["recommended_end_nodes"] = list(self.recommended_end_nodes)
        return d


_ISSUE = re.compile(r"^\s*(?P<cls>[A-Za-z_][A-Za-z0-9_]*(?:Error|Exception))\s+in\s+op\s+(?P<node>.+?):\s+(?P<text>.*)$")
_RECOMMEND = re.compile(r"using these end node names:\s*(?P<names>.*)$", re.IGNORECASE | re.DOTALL)


def parse_recommendation(message: str) -> ParseVerdict:
    """Read a ``ParsingWithRecommendationException`` message (format: HAILO_TOOLCHAIN.md §1.10).

    Lines ``<ErrorClass> in op <node>: <text>`` become :class:`ParseIssue`; the tail ``Please try to parse the model
    again, using these end node names: a, b`` gives the recommended end nodes. Unrecognised lines are ignored; a
    message with neither still yields ``ok=False`` with the message kept.

    Args:
        message: the exception's ``str()``.

    Returns:
        A verdict with ``ok=False``.
    """
    issues: list[ParseIssue] = []
    recommended: tuple[str, ...] = ()
    for line in message.splitlines():
        m = _ISSUE.match(line)
        if m:
            issues.append(ParseIssue(m["cls"], m["node"].strip(), m["text"].strip()))
            continue
        r = _RECOMMEND.search(line)
        if r:
            names = r["names"].strip().rstrip(".")
            recommended = tuple(n.strip().strip("'\"") for n in re.split(r"[,\s]+", names) if n.strip(" '\""))
    return ParseVerdict(False, tuple(issues), recommended, message.strip())


# ---------------------------------------------------------------------------------------------------------------
# optimization level
# ---------------------------------------------------------------------------------------------------------------
class OptimizationLevelWarning(UserWarning):
    """The DFC optimized (or will optimize) at a lower level than the manifest's ``min_optimization_level``."""


class OptimizationLevelError(ToolchainError):
    """The optimization level is below ``min_optimization_level`` and the manifest says ``on_lower_level = fail``."""


def gpu_available() -> tuple[bool, str]:
    """Predict whether the DFC will see a usable GPU. A *prediction*: the DFC decides through TensorFlow.

    ``CUDA_VISIBLE_DEVICES`` set to empty/``-1`` hides every GPU; otherwise ``nvidia-smi -L`` must list one.
    TensorFlow is deliberately not imported (seconds of start-up, and GPU memory).

    Returns:
        (available, how it was decided).
    """
    # The CUDA runtime reads this variable, not hailo-qa: we read it to predict what the DFC will see.
    cvd = os.environ.get("CUDA_VISIBLE_DEVICES")
    if cvd is not None and cvd.strip() in ("", "-1"):
        return False, f"CUDA_VISIBLE_DEVICES={cvd!r} hides every GPU"
    smi = shutil.which("nvidia-smi")
    if not smi:
        return False, "nvidia-smi not found on PATH"
    try:
        out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        return False, f"nvidia-smi failed ({err.__class__.__name__})"
    gpus = [ln for ln in out.stdout.splitlines() if ln.startswith("GPU ")]
    if out.returncode != 0 or not gpus:
        return False, "nvidia-smi lists no GPU"
    return True, f"nvidia-smi lists {len(gpus)} GPU(s)"


def predict_optimization_level(requested: int, *, gpu_available: bool, calib_size: int) -> tuple[int, str]:
    """The level the DFC will actually use (HAILO_TOOLCHAIN.md §2.2, corrected rule).

    No GPU → 0 whatever the data; a GPU but fewer than 1024 samples → at most 1; otherwise ``requested``.

    Args:
        requested: the level asked for in the model script (0–4).
        gpu_available: whether the DFC will see a GPU (see :func:`gpu_available`).
        calib_size: calibration samples given to ``optimize``.

    Returns:
        (level, reason); reason is empty when the requested level is kept.
    """
    if not gpu_available:
        why = "there's no available GPU"
        if calib_size < RECOMMENDED_CALIB_SIZE:
            why = (f"there's less data than the recommended amount ({RECOMMENDED_CALIB_SIZE}), "
                   "and there's no available GPU")
        return min(requested, 0), why if requested > 0 else ""
    if calib_size < RECOMMENDED_CALIB_SIZE and requested > 1:
        return 1, f"there's less data than the recommended amount ({RECOMMENDED_CALIB_SIZE}) (got {calib_size})"
    return requested, ""


_REDUCED = re.compile(r"Reducing optimization level to (\d+)")
_DEFAULT = re.compile(r"Using default optimization level of (\d+)")


UNKNOWN_LEVEL = "unknown"
"""What a result records when the DFC's logs do not say which optimization level it used (never the requested one)."""

DFC_LOG_FILES = ("hailo_sdk.client.log", "acceleras.log")
"""Log files the DFC writes into its working directory (and ``HAILO_SDK_LOG_DIR``); read after each step."""


def read_optimization_level(log_text: str) -> int | None:
    """The level the DFC used, from its optimize log: the last ``Reducing optimization level to N`` wins over
    ``Using default optimization level of N``. ``None`` when the log says neither (the caller reports
    :data:`UNKNOWN_LEVEL`, never the requested level)."""
    reduced = _REDUCED.findall(log_text)
    if reduced:
        return int(reduced[-1])
    default = _DEFAULT.findall(log_text)
    return int(default[-1]) if default else None


def check_optimization_level(level: int | str | None, *, minimum: int, on_lower: str, reason: str = "",
                             context: str | None = None, predicted: bool = False) -> None:
    """Compare a level with the manifest's ``quantization.min_optimization_level``.

    Args:
        level: the level predicted or read from the log; ``None``/:data:`UNKNOWN_LEVEL` cannot be checked (a warning
            when ``minimum > 0``).
        minimum: ``min_optimization_level``.
        on_lower: ``fail`` (raise) or ``warn`` (an :class:`OptimizationLevelWarning`).
        reason: why the DFC lowers it (from :func:`predict_optimization_level`). Defaults to none.
        context: message prefix, e.g. the model name. Defaults to none.
        predicted: say "will use" instead of "used". Defaults to False.

    Raises:
        OptimizationLevelError: ``on_lower == "fail"`` and ``level < minimum``.
    """
    if level is None or level == UNKNOWN_LEVEL:
        if minimum > 0:
            prefix = f"{context} | " if context else ""
            warnings.warn(OptimizationLevelWarning(
                f"{prefix}the optimization level the DFC used is unknown (its logs did not say). Note: the manifest "
                f"asks for at least level {minimum} and this cannot be checked. Hint: look for 'optimization level' "
                "in hailo_sdk.client.log / acceleras.log in the DFC work dir"), stacklevel=2)
        return
    level = int(level)
    if level >= minimum:
        return
    verb = "will optimize" if predicted else "optimized"
    what = f"the DFC {verb} at level {level}" + (f" because {reason}" if reason else "")
    note = f"the manifest asks for at least level {minimum} (quantization.min_optimization_level)"
    hint = ("run on a machine whose GPU TensorFlow can see, with ≥1024 calibration samples "
            "(calibration.sizes), or lower min_optimization_level")
    if on_lower == "fail":
        raise OptimizationLevelError(what, note=note, hint=hint, step="optimize", context=context)
    prefix = f"{context} | " if context else ""
    warnings.warn(OptimizationLevelWarning(f"{prefix}{what}. Note: {note}. Hint: {hint}"), stacklevel=2)


# ---------------------------------------------------------------------------------------------------------------
# environment problems
# ---------------------------------------------------------------------------------------------------------------
DFC_ENV = {"HAILO_SDK_LOG_DIR": "<work dir>/logs", "HAILO_CLIENT_LOGS_ENABLED": "true",
           "HAILO_DISABLE_MO_SUB_PROCESS": "1"}
"""Variables the seed run needed so the DFC could log and probe the GPU in a restricted sandbox."""


def environment_problem(err: BaseException, *, step: str, work_dir: Path | None = None) -> EnvironmentProblem | None:
    """The :class:`EnvironmentProblem` (with the fix) for a DFC failure caused by the machine, else ``None``.

    Known texts: ``Couldn't launch Hailo tool securely`` (the compiler's loopback socket is forbidden), permission
    errors on the DFC's log file or log dir, and ``PermissionError`` from the optimizer's GPU-probe subprocess.
    """
    text = f"{err.__class__.__name__}: {err}"
    where = str(work_dir) if work_dir else "a writable directory"
    if "launch Hailo tool securely" in text or ("Operation not permitted" in text and "socket" in text.lower()):
        return EnvironmentProblem(
            f"the DFC could not start its compiler back-end ({text.strip()})",
            note="the DFC talks to its compiler process over a loopback (127.0.0.1) socket; this sandbox forbids "
                 "creating or connecting sockets",
            hint="run the compile step where local sockets are allowed (e.g. Hailo's AI Software Suite docker on "
                 "the host), or resume there from the quantized HAR: hailo-qa compile MODEL --from-har "
                 "<name>_quantized.har", step=step)
    if isinstance(err, PermissionError) or "Permission denied" in text:
        fname = getattr(err, "filename", None) or ""
        if "log" in str(fname).lower() or "log" in text.lower():
            return EnvironmentProblem(
                f"the DFC could not write its log ({text.strip()})",
                note="the DFC writes hailo_sdk.client.log into the current directory and its log dir",
                hint=f"run from {where} (hailo-qa does this with --out); set HAILO_SDK_LOG_DIR to a writable "
                     "folder, or HAILO_CLIENT_LOGS_ENABLED=false", step=step)
        return EnvironmentProblem(
            f"the DFC hit a permission error ({text.strip()})",
            note="the DFC's optimizer probes GPUs in a subprocess; restricted sandboxes refuse it",
            hint="set HAILO_DISABLE_MO_SUB_PROCESS=1 (and HAILO_SDK_LOG_DIR to a writable folder), then retry",
            step=step)
    return None


@contextlib.contextmanager
def dfc_workdir(work_dir: str | Path) -> Iterator[Path]:
    """Run a block inside ``work_dir`` (created, checked writable) with the DFC's log dir pointed there.

    The CWD and ``HAILO_SDK_LOG_DIR`` are process-wide: this is not thread-safe, and both are restored on exit.

    Raises:
        EnvironmentProblem: ``work_dir`` cannot be created or written.
    """
    wd = Path(work_dir).resolve()
    try:
        (wd / "logs").mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=wd, prefix=".write_test"):
            pass
    except OSError as err:
        raise EnvironmentProblem(f"the DFC work dir '{wd}' is not writable ({err})",
                                 note="the DFC writes hailo_sdk.client.log and caches into its working directory",
                                 hint="pass a writable --out directory", step="dfc") from err
    old_cwd = os.getcwd()
    old_log = os.environ.get("HAILO_SDK_LOG_DIR")
    os.environ["HAILO_SDK_LOG_DIR"] = str(wd / "logs")
    os.chdir(wd)
    try:
        yield wd
    finally:
        os.chdir(old_cwd)
        if old_log is None:
            os.environ.pop("HAILO_SDK_LOG_DIR", None)
        else:
            os.environ["HAILO_SDK_LOG_DIR"] = old_log


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self._seen: set[int] = set()

    def emit(self, record: logging.LogRecord) -> None:
        if id(record) in self._seen:
            return
        self._seen.add(id(record))
        self.lines.append(f"[{record.levelname.lower()}] {record.getMessage()}")


@contextlib.contextmanager
def capture_dfc_log() -> Iterator[list[str]]:
    """Collect the DFC's log records (and stdout it prints) into a list of lines during a block."""
    cap = _Capture()
    loggers = [logging.getLogger(n) for n in _LOGGERS]
    old_levels = [lg.level for lg in loggers]
    for lg in loggers[1:]:
        lg.addHandler(cap)
        if lg.level == logging.NOTSET or lg.level > logging.INFO:
            lg.setLevel(logging.INFO)
    loggers[0].addHandler(cap)
    out = io.StringIO()
    lines: list[str] = []
    try:
        with contextlib.redirect_stdout(out):
            yield lines
    finally:
        for lg, lvl in zip(loggers, old_levels):
            lg.removeHandler(cap)
            lg.setLevel(lvl)
        lines.extend(cap.lines)
        lines.extend(ln for ln in out.getvalue().splitlines() if ln.strip())


# ---------------------------------------------------------------------------------------------------------------
# the session adapter
# ---------------------------------------------------------------------------------------------------------------
def translate_kwargs(fn, start_nodes: Sequence[str] | None, end_nodes: Sequence[str] | None,
                     input_shapes: Mapping[str, Sequence[int]] | None) -> dict[str, Any]:
    """Keyword arguments for ``translate_onnx_model`` in the spelling ``fn`` accepts.

    DFC ≥3.22 (MZ v2.6+): ``start_node_names`` + ``net_input_shapes``; DFC 3.19/3.20 (MZ v2.4/2.5):
    ``start_node_names`` + ``net_input_shape``; DFC 3.19 (MZ v2.3): ``start_node_name`` + ``net_input_shape``
    (HAILO_TOOLCHAIN.md §1.3, [V]). A signature that cannot be read (``**kwargs``) gets the newest spelling.
    """
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        params = {}
    names = set(params)
    kw: dict[str, Any] = {}
    if start_nodes:
        if "start_node_names" in names or "start_node_name" not in names:
            kw["start_node_names"] = list(start_nodes)
        else:  # the old singular keyword took one node
            kw["start_node_name"] = start_nodes[0] if len(start_nodes) == 1 else list(start_nodes)
    if end_nodes:
        kw["end_node_names"] = list(end_nodes)
    if input_shapes:
        shapes = {k: list(v) for k, v in input_shapes.items()}
        if "net_input_shapes" in names or "net_input_shape" not in names:
            kw["net_input_shapes"] = shapes
        else:  # [U] the singular form's value type; one input → its shape, several → the dict
            kw["net_input_shape"] = next(iter(shapes.values())) if len(shapes) == 1 else shapes
    return kw


_OLD_SPELLING = {"start_node_names": "start_node_name", "net_input_shapes": "net_input_shape"}


def _is_parse_recommendation(err: BaseException) -> bool:
    return any(c.__name__ == "ParsingWithRecommendationException" for c in type(err).__mro__)


class DfcSession:
    """One DFC ``ClientRunner``: the steps ONNX → HAR → quantized HAR → HEF, each with a log and clear errors.

    Args:
        work_dir: writable folder the DFC runs in (its CWD and log dir).
        hw_arch: target architecture (``hailo8``, ``hailo8l``, ``hailo8r``). Defaults to ``hailo8``.
        har: open this HAR instead of starting empty. Defaults to none.
        name: prefix for messages (model/variant). Defaults to none.
    """

    def __init__(self, work_dir: str | Path, *, hw_arch: str = "hailo8", har: str | Path | None = None,
                 name: str | None = None) -> None:
        self.work_dir = Path(work_dir)
        self.hw_arch = hw_arch
        self.name = name
        self.logs: dict[str, str] = {}
        self.file_logs: dict[str, str] = {}
        self.sdk = import_dfc()
        self.version = dfc_version()
        self.runner = self._step("load", lambda: self._make_runner(har))

    def _make_runner(self, har):
        if har is None:
            return self.sdk.ClientRunner(hw_arch=self.hw_arch)
        har = Path(har).resolve()
        if not har.is_file():
            from hailo_qa.errors import InputFileError

            raise InputFileError(f"HAR '{har}' does not exist", note="expected a .har written by the DFC",
                                 hint="check the path, or run the parse/optimize steps first")
        return self.sdk.ClientRunner(hw_arch=self.hw_arch, har=str(har))

    # every step goes through here ------------------------------------------------------------------------------
    def _step(self, step: str, fn):
        from hailo_qa.errors import QAError

        lines: list[str] = []
        marks = log_file_marks(self.work_dir)
        try:
            with dfc_workdir(self.work_dir), capture_dfc_log() as lines:
                return fn()
        except QAError:
            raise
        except Exception as err:
            env = environment_problem(err, step=step, work_dir=self.work_dir)
            if env is not None:
                raise (env.with_context(self.name) if self.name else env) from err
            raise self._toolchain_error(step, err) from err
        finally:  # capture_dfc_log fills ``lines`` on exit, so read them here
            self.logs[step] = self.logs.get(step, "") + "".join(f"{ln}\n" for ln in lines)
            self.file_logs[step] = self.file_logs.get(step, "") + read_new_log_text(self.work_dir, marks)

    def _toolchain_error(self, step: str, err: BaseException) -> ToolchainError:
        text = str(err).strip()
        first = text.splitlines()[0] if text else ""
        note, hint = f"expected the DFC's {step} step to succeed (DFC {self.version})", None
        if step == "parse" and _is_parse_recommendation(err):
            v = parse_recommendation(text)
            nodes = ", ".join(f"{i.node} ({i.error_class})" for i in v.errors) or "see the message"
            note = f"the parser rejected: {nodes}"
            if v.recommended_end_nodes:
                hint = ("parse up to the recommended end nodes (split.end_nodes): "
                        + ", ".join(v.recommended_end_nodes))
        elif step == "parse":
            hint = "run hailo-qa lint on the model; simplify it (onnxslim) or cut before the failing op"
        elif step == "optimize":
            hint = "check the calibration data's shape (NHWC per sample) and the model script"
        elif step == "compile":
            hint = "lower resource utilisation in the model script, or split the model further"
        e = ToolchainError(f"DFC {step} failed: {err.__class__.__name__}: {first}", note=note, hint=hint, step=step)
        return e.with_context(self.name) if self.name else e

    # the steps --------------------------------------------------------------------------------------------------
    def translate_onnx(self, onnx_path: str | Path, net_name: str, *, start_nodes: Sequence[str] | None = None,
                       end_nodes: Sequence[str] | None = None,
                       input_shapes: Mapping[str, Sequence[int]] | None = None):
        """Parse an ONNX file into the runner (HAR state ``HAILO_MODEL``). Returns ``(hn, params)``."""
        fn = self.runner.translate_onnx_model
        kw = translate_kwargs(fn, start_nodes, end_nodes, input_shapes)

        def call():
            try:
                return fn(str(onnx_path), net_name, **kw)
            except TypeError as err:  # signature unreadable and the newest spelling refused: try the old one
                if "unexpected keyword" not in str(err) or not any(k in kw for k in _OLD_SPELLING):
                    raise
                old = {_OLD_SPELLING.get(k, k): v for k, v in kw.items()}
                return fn(str(onnx_path), net_name, **old)

        return self._step("parse", call)

    def load_model_script(self, alls: str) -> None:
        """Load a model script given as text (not a path)."""
        self._step("model_script", lambda: self.runner.load_model_script(alls))

    def optimize(self, calib: np.ndarray | Mapping[str, np.ndarray]) -> int | None:
        """Quantize with calibration data (NHWC float32 array, or ``{hn_input_name: array}``).

        Returns:
            The optimization level the DFC used, read from what it logged during this step: Python logging and
            its log files in the work dir (``hailo_sdk.client.log``, ``acceleras.log``). ``None`` when neither
            says (report :data:`UNKNOWN_LEVEL`, never the requested level).
        """
        self._step("optimize", lambda: self.runner.optimize(calib))
        return read_optimization_level(self.logs.get("optimize", "") + self.file_logs.get("optimize", ""))

    def analyze_noise(self, calib: np.ndarray | Mapping[str, np.ndarray], *, data_count: int = 64,
                      batch_size: int = 2):
        """The DFC's layer noise analysis (advanced mode) on the quantized model, per layer, worst first.

        ``analyze_noise`` returns nothing usable (HAILO_TOOLCHAIN.md §1.8): the results are read back from
        ``get_params_statistics()`` by :func:`dfc_layer_noise`.

        Returns:
            ``list[LayerNoise]`` ranked by SNR (lowest first).
        """
        self._step("analyze_noise", lambda: self.runner.analyze_noise(
            calib, batch_size=batch_size, data_count=data_count, analyze_mode="advanced"))
        stats = self._step("analyze_noise", lambda: self.runner.get_params_statistics())
        return rank_layers(dfc_layer_noise(stats, hn=self.hn()))

    def infer(self, context: str, data: np.ndarray | Mapping[str, np.ndarray]) -> list[np.ndarray]:
        """One-shot inference under ``native``/``fp_optimized``/``quantized``; NHWC in, list of NHWC out."""
        ctx = self.inference_context(context)

        def call():
            with self.runner.infer_context(ctx) as c:
                return self.runner.infer(c, data)

        return as_output_list(self._step("infer", call))

    def inference_context(self, context: str):
        if context not in CONTEXTS:
            raise InternalError(f"unknown DFC context {context!r}; expected one of {list(CONTEXTS)}")
        return getattr(self.sdk.InferenceContext, CONTEXTS[context])

    def save_har(self, path: str | Path) -> Path:
        """Write the runner's HAR atomically: to a temporary name that still ends in ``.har`` (what the DFC is
        documented to take), then ``os.replace``. A failed save leaves no partial file behind."""
        p = Path(path).resolve()
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = har_temp_path(p)
        try:
            self._step("save_har", lambda: self.runner.save_har(str(tmp)))
            if not tmp.is_file():
                raise ToolchainError(f"the DFC's save_har wrote nothing at '{tmp}'",
                                     note="expected save_har(path) to write the HAR at exactly that path",
                                     step="save_har", context=self.name)
            os.replace(tmp, p)
        finally:
            tmp.unlink(missing_ok=True)
        return p

    def compile(self) -> bytes:
        """Compile to a HEF; returns its bytes."""
        hef = self._step("compile", self.runner.compile)
        if not isinstance(hef, (bytes, bytearray)) or not hef:
            raise ToolchainError(f"DFC compile returned {type(hef).__name__}, not HEF bytes",
                                 note="expected runner.compile() to return the HEF as bytes", step="compile")
        return bytes(hef)

    def hn(self) -> dict:
        hn = self.runner.get_hn()
        if isinstance(hn, str):
            import json

            hn = json.loads(hn)
        return hn

    def input_layers(self) -> list[str]:
        """HN input layer names (``net/input_layer1`` ...), sorted by index."""
        layers = self.hn().get("layers", {})
        return sorted((n for n, l in layers.items() if l.get("type") == "input_layer"), key=_natural)


def har_temp_path(path: Path) -> Path:
    """The temporary name :meth:`DfcSession.save_har` writes first: hidden, unique per process, ending in ``.har``."""
    stem = path.name[:-4] if path.name.endswith(".har") else path.name
    return path.with_name(f".{stem}.{os.getpid()}.partial.har")


def log_file_marks(work_dir: Path) -> dict[Path, int]:
    """Current sizes of the DFC's log files in ``work_dir`` and ``work_dir/logs`` (where a step starts reading)."""
    marks = {}
    for folder in (Path(work_dir), Path(work_dir) / "logs"):
        for name in DFC_LOG_FILES:
            f = folder / name
            try:
                marks[f.resolve()] = f.stat().st_size
            except OSError:
                marks[f.resolve()] = 0
    return marks


def read_new_log_text(work_dir: Path, marks: Mapping[Path, int]) -> str:
    """What the DFC appended to its log files since ``marks`` (from the start if a file was replaced/shrank)."""
    parts = []
    for f, start in log_file_marks(work_dir).items():
        try:
            size = f.stat().st_size
            begin = marks.get(f, 0)
            begin = 0 if size < begin else begin
            if size > begin:
                with open(f, "rb") as fh:
                    fh.seek(begin)
                    parts.append(fh.read().decode("utf-8", errors="replace"))
        except OSError:
            continue
    return "".join(p if p.endswith("\n") else p + "\n" for p in parts)


def _natural(s: str):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", s)]


def _squeezed(shape) -> tuple:
    return tuple(d for d in shape if d != 1)


def as_output_list(out) -> list[np.ndarray]:
    """``runner.infer`` returns one array or a list/tuple of arrays (multi-output); normalise to a list."""
    if isinstance(out, np.ndarray):
        return [out]
    if isinstance(out, Mapping):
        return [np.asarray(v) for v in out.values()]
    return [np.asarray(o) for o in out]


# ---------------------------------------------------------------------------------------------------------------
# Stage-1 runner on the DFC emulator
# ---------------------------------------------------------------------------------------------------------------
class DfcEmulatorRunner(BaseRunner):
    """A HAR run in the DFC emulator with the interface of ``stage1.onnx``: NCHW float in, boundary outputs NCHW out.

    The DFC takes and returns NHWC; this runner converts at its boundary and declares ``NCHW`` layouts. DFC outputs
    come in the HN's output order, which is matched to ``outputs`` by position and checked by shape.

    Args:
        har: the HAR (parsed for ``native``; quantized for ``fp_optimized``/``quantized``).
        inputs: Stage-1 inputs (ONNX names, NCHW shapes incl. batch).
        outputs: boundary outputs (ONNX names, NCHW shapes), in the order the HAR's outputs were parsed.
        context: ``native``, ``fp_optimized`` or ``quantized``. Defaults to ``quantized``.
        work_dir: writable folder for the DFC. Defaults to a temp dir.
        hw_arch: target architecture. Defaults to ``hailo8``.
        config: precision config recorded in :class:`BackendInfo`. Defaults to ``int8``.
        optimization_level: the level used to optimize this HAR (provenance). Defaults to unknown.
        details: extra provenance. Defaults to none.
        name: runner name. Defaults to ``dfc-<context>``.
        on_chip_normalization: ``(mean, std)`` per channel in 0–255 units when the HAR's model script has a
            ``normalization`` layer. The runner's inputs stay in the ONNX (normalized) domain; ``SDK_NATIVE`` runs
            without model-script layers and gets them as they are, while ``SDK_FP_OPTIMIZED`` / ``SDK_QUANTIZED``
            include the on-chip layer and get raw data ``x·std + mean`` (HAILO_TOOLCHAIN.md §8). Defaults to none.
    """

    def __init__(self, har: str | Path, *, inputs: Sequence[TensorMeta], outputs: Sequence[TensorMeta],
                 context: str = "quantized", work_dir: str | Path | None = None, hw_arch: str = "hailo8",
                 config: str = "int8", optimization_level: int | str | None = None,
                 details: Mapping[str, Any] | None = None, name: str | None = None,
                 on_chip_normalization: tuple[Sequence[float], Sequence[float]] | None = None) -> None:
        super().__init__(name or f"dfc-{context}")
        if context not in CONTEXTS:
            raise InternalError(f"unknown DFC context {context!r}; expected one of {list(CONTEXTS)}")
        self.har = Path(har)
        self.context = context
        self.hw_arch = hw_arch
        self._inputs = {m.name: TensorMeta(m.name, tuple(m.shape), np.dtype(m.dtype), "NCHW") for m in inputs}
        self._outputs = {m.name: TensorMeta(m.name, tuple(m.shape), np.dtype(m.dtype),
                                            "NCHW" if len(m.shape) == 4 else m.layout) for m in outputs}
        self._work = Path(work_dir) if work_dir else None
        self._tmp: tempfile.TemporaryDirectory | None = None
        self._stack: contextlib.ExitStack | None = None
        self.session: DfcSession | None = None
        self._ctx = None
        self._hn_inputs: list[str] = []
        self._denorm = None
        if on_chip_normalization is not None and context != "native":
            mean, std = (np.asarray(v, np.float32).reshape(1, 1, 1, -1) for v in on_chip_normalization)
            self._denorm = (mean, std)
        if optimization_level is None:
            optimization_level = UNKNOWN_LEVEL
        version = dfc_version()
        self.backend = BackendInfo(
            "dfc", version, "emulator" if context == "quantized" else "float", hailo=True,
            config=config if context == "quantized" else "",
            details={"context": context, "optimization_level": optimization_level, "har": str(self.har),
                     "hw_arch": hw_arch, "input_domain": "raw 0-255 (on-chip normalization)" if self._denorm
                     is not None else "normalized", **dict(details or {})})

    @classmethod
    def from_split(cls, split, har: str | Path, **kw) -> "DfcEmulatorRunner":
        """Build from a :class:`hailo_qa.graph.split.SplitResult`: inputs from ``stage1.onnx``, outputs from
        ``split.boundary``."""
        import onnx

        model = onnx.load(str(split.stage1_path), load_external_data=False)
        shapes = {i.name: tuple(d.dim_value for d in i.type.tensor_type.shape.dim) for i in model.graph.input}
        inputs = [TensorMeta(n, shapes[n], np.dtype(np.float32), "NCHW") for n in split.stage1_inputs]
        outputs = [TensorMeta(b.name, tuple(b.shape), np.dtype(b.dtype), "NCHW") for b in split.boundary]
        return cls(har, inputs=inputs, outputs=outputs, **kw)

    def input_metadata(self) -> dict[str, TensorMeta]:
        return dict(self._inputs)

    def output_metadata(self) -> dict[str, TensorMeta]:
        return dict(self._outputs)

    def _activate(self) -> None:
        stack = contextlib.ExitStack()
        try:
            if self._work is None:
                self._tmp = tempfile.TemporaryDirectory(prefix="hqa_dfc_")
                stack.callback(self._tmp.cleanup)
                work = Path(self._tmp.name)
            else:
                work = self._work
            self.session = DfcSession(work, hw_arch=self.hw_arch, har=self.har, name=self.name)
            ctx = self.session.inference_context(self.context)
            self._ctx = self.session._step("infer", lambda: stack.enter_context(
                self.session.runner.infer_context(ctx)))
            self._hn_inputs = self.session.input_layers()
        except BaseException:
            stack.close()
            self.session, self._ctx = None, None
            raise
        self._stack = stack

    def _deactivate(self) -> None:
        stack, self._stack = self._stack, None
        self.session, self._ctx = None, None
        if stack is not None:
            stack.close()

    def _infer(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        nhwc = [nchw_to_nhwc(np.asarray(feeds[n], np.float32)) for n in self._inputs]
        if self._denorm is not None:  # the HAR's on-chip normalization layer expects raw 0-255 data
            nhwc = [(x * self._denorm[1] + self._denorm[0]).astype(np.float32) for x in nhwc]
        if len(nhwc) == 1:
            data: Any = nhwc[0]
        else:
            if len(self._hn_inputs) != len(nhwc):
                raise ToolchainError(f"the HAR has {len(self._hn_inputs)} input layers, the runner {len(nhwc)}",
                                     note=f"expected one HN input per Stage-1 input {list(self._inputs)}",
                                     step="infer", context=self.name)
            data = dict(zip(self._hn_inputs, nhwc))  # HN inputs follow the parse's start-node order
        outs = as_output_list(self.session._step("infer", lambda: self.session.runner.infer(self._ctx, data)))
        if len(outs) != len(self._outputs):
            raise ToolchainError(f"the DFC returned {len(outs)} outputs, the runner expects {len(self._outputs)}",
                                 note=f"expected the boundary outputs {list(self._outputs)}", step="infer",
                                 context=self.name, hint="re-parse the HAR with the split's end nodes")
        result = {}
        for (name, meta), arr in zip(self._outputs.items(), outs):
            arr = nhwc_to_nchw(arr) if arr.ndim == 4 else arr
            want = tuple(meta.shape)
            if arr.shape != want and _squeezed(arr.shape) == _squeezed(want):
                arr = arr.reshape(want)  # only unit dims differ: NC outputs the DFC returns as N,1,1,C
            if arr.shape != want:
                raise ToolchainError(f"DFC output #{len(result)} has shape {arr.shape} (after NHWC→NCHW)",
                                     note=f"expected {want} for boundary output '{name}'", step="infer",
                                     context=self.name, hint="the HAR's outputs are not the split's boundary, or "
                                                              "they come in another order")
            result[name] = arr.astype(np.float32, copy=False)
        return result


# ---------------------------------------------------------------------------------------------------------------
# parser verdict through the real parser
# ---------------------------------------------------------------------------------------------------------------
def dfc_parse_verdict(onnx_path: str | Path, *, net_name: str, start_nodes: Sequence[str] | None = None,
                      end_nodes: Sequence[str] | None = None,
                      input_shapes: Mapping[str, Sequence[int]] | None = None, hw_arch: str = "hailo8",
                      work_dir: str | Path | None = None) -> ParseVerdict:
    """Ask the real DFC parser whether it accepts a graph.

    Args:
        onnx_path: the ONNX file.
        net_name: the HN network name.
        start_nodes: start node names. Defaults to the graph inputs.
        end_nodes: end node names. Defaults to the graph outputs.
        input_shapes: static NCHW shape per start node. Defaults to the graph's.
        hw_arch: target architecture. Defaults to ``hailo8``.
        work_dir: writable folder for the DFC. Defaults to a temp dir.

    Returns:
        ``ok=True``, or the per-node errors and recommended end nodes. Any other parser exception (e.g. an
        ``UnsupportedModelError`` or a parser crash) is one issue naming its class.

    Raises:
        EnvironmentProblem: the DFC is not installed or the machine is not set up for it.
    """
    with contextlib.ExitStack() as stack:
        wd = Path(work_dir) if work_dir else Path(stack.enter_context(tempfile.TemporaryDirectory(
            prefix="hqa_parse_")))
        session = DfcSession(wd, hw_arch=hw_arch, name=net_name)
        label = f"dfc@{session.version}"
        try:
            session.translate_onnx(onnx_path, net_name, start_nodes=start_nodes, end_nodes=end_nodes,
                                   input_shapes=input_shapes)
        except EnvironmentProblem:
            raise
        except ToolchainError as err:
            orig = err.__cause__
            if orig is not None and _is_parse_recommendation(orig):
                v = parse_recommendation(str(orig))
                return ParseVerdict(False, v.errors, v.recommended_end_nodes, v.message, label)
            cls = orig.__class__.__name__ if orig is not None else "ToolchainError"
            text = str(orig if orig is not None else err).strip()
            return ParseVerdict(False, (ParseIssue(cls, "", text),), (), text, label)
        return ParseVerdict(True, backend=label)
