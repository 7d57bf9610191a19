"""The compile pipeline: ONNX → HAR → quantized HAR → HEF through the DFC adapter, per model variant.

Each variant runs in its own folder ``<out>/<variant>/`` and writes ``<name>.har``, ``<name>_quantized.har``,
``<name>.hef``, the ``<name>.alls`` used and ``logs/<step>.log``. A failure of one variant is recorded with its step
(``parse``, ``optimize``, ``compile``, ``check`` ...) and never stops the others; ``<out>/compile_summary.json``
holds every variant's outcome of the latest run, and ``<out>/runs/compile_summary-<run>.json`` each run's own (never
overwritten). A manifest entry's declared emulator variants (``[[models.<m>.variants]]``: precision, 16-bit layers,
calibration size and source) each compile to their own HEF, named ``<model>_<precision>_calib<N>``. A variant resumes from an existing quantized HAR (``from_har``, or
``<name>_quantized.har`` left by an earlier run) and then skips parse and optimize.

The finished HEF is checked: its target architecture must run on the manifest's ``hw_arch`` and its size must stay
within ``thresholds.hailo8.max_hef_mb`` (default 32 MB, the seed's budget).
"""
from __future__ import annotations

import dataclasses
import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hailo_qa.errors import InputDataError, QAError, ToolchainError
from hailo_qa.fsutil import atomic_write
from hailo_qa.manifest import ModelSpec

DEFAULT_MAX_HEF_MB = 32.0
"""HEF size budget when the manifest sets no ``thresholds.hailo8.max_hef_mb`` (the seed's < 32 MB)."""

HEF_ARCHS_FOR = {"hailo8": {"hailo8", "hailo8p", "hailo8r", "hailo8l"}, "hailo8l": {"hailo8l"},
                 "hailo8r": {"hailo8r"}}
"""HEF architectures a device of each kind accepts (HailoRT ``is_hef_compatible``, HAILO_TOOLCHAIN.md §5.6). A DFC
``hailo8`` target writes HAILO8P (§6.2)."""

Calib = np.ndarray | Mapping[str, np.ndarray]


@dataclass(frozen=True)
class Variant:
    """One thing to compile.

    Attributes:
        name: artefact base name (``deimv2_atto``); also the HN network name.
        onnx: the ONNX file to parse (the Stage 1 of a split model).
        start_nodes: parser start nodes. Defaults to the graph inputs.
        end_nodes: parser end nodes. Defaults to the graph outputs.
        input_shapes: static NCHW shape per start node.
        hw_arch: target architecture.
        max_hef_mb: HEF size budget in MB.
        min_optimization_level: the lowest acceptable optimization level.
        on_lower_level: ``warn`` or ``fail`` when the DFC optimizes lower.
        requested_level: the level the model script asks for.
    """

    name: str
    onnx: Path
    start_nodes: tuple[str, ...] = ()
    end_nodes: tuple[str, ...] = ()
    input_shapes: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    hw_arch: str = "hailo8"
    max_hef_mb: float = DEFAULT_MAX_HEF_MB
    min_optimization_level: int = 0
    on_lower_level: str = "warn"
    requested_level: int = 2


@dataclass(frozen=True)
class StepRecord:
    """How one step went: ``ok``, ``skipped`` or ``failed``, with its duration and log file."""

    step: str
    status: str
    seconds: float = 0.0
    log: str = ""
    detail: str = ""


@dataclass(frozen=True)
class VariantResult:
    """The outcome of one variant (serialised into the JSON summary)."""

    variant: str
    ok: bool
    failed_step: str | None = None
    error: str | None = None
    error_class: str | None = None
    artifacts: Mapping[str, str] = field(default_factory=dict)
    steps: tuple[StepRecord, ...] = ()
    optimization: Mapping[str, Any] = field(default_factory=dict)
    checks: Mapping[str, Any] = field(default_factory=dict)
    dfc_version: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["artifacts"], d["optimization"], d["checks"] = dict(self.artifacts), dict(self.optimization), dict(
            self.checks)
        return d


@dataclass(frozen=True)
class CompileSummary:
    """Every variant's outcome; truthy when all succeeded. Written to ``path`` as JSON."""

    results: tuple[VariantResult, ...]
    path: Path
    run_path: Path | None = None  # this run's own copy (runs/compile_summary-<run>.json)

    def __bool__(self) -> bool:
        return all(r.ok for r in self.results)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": bool(self), "variants": [r.to_dict() for r in self.results]}

    def table(self) -> str:
        rows = [f"{'variant':<24} {'result':<8} {'step':<10} {'level':<6} detail"]
        for r in self.results:
            lvl = r.optimization.get("used")
            detail = (r.error or "").splitlines()[0] if r.error else r.artifacts.get("hef", "")
            rows.append(f"{r.variant:<24} {'ok' if r.ok else 'FAILED':<8} {r.failed_step or '-':<10} "
                        f"{'-' if lvl is None else lvl!s:<6} {detail}")
        return "\n".join(rows)


_atomic_write = atomic_write


class CalibArray(np.ndarray):
    """An NHWC calibration array that knows how many of its samples are real (``real_samples``); the rest are
    augmented. The DFC's "fewer than 1024 samples" level drop is predicted from the real ones only."""

    real_samples: int | None = None

    def __array_finalize__(self, obj) -> None:
        self.real_samples = getattr(obj, "real_samples", None)


def _calib_count(calib: Calib) -> int:
    """Real calibration samples (augmented copies do not count towards the DFC's 1024)."""
    arr = next(iter(calib.values())) if isinstance(calib, Mapping) else calib
    real = getattr(arr, "real_samples", None)
    return int(real) if real is not None else int(np.asarray(arr).shape[0])


# ---------------------------------------------------------------------------------------------------------------
# HEF checks
# ---------------------------------------------------------------------------------------------------------------
def check_hef(path: Path, *, hw_arch: str, max_hef_mb: float,
              hef_reader: Callable[[Path], Any] | None = None) -> dict[str, Any]:
    """Check a HEF's target architecture and size.

    Args:
        path: the HEF.
        hw_arch: the manifest's target (``hailo8``/``hailo8l``/``hailo8r``).
        max_hef_mb: size budget in MB (10**6 bytes).
        hef_reader: ``read_hef(path) -> HefInfo`` (``.hw_arch``). Defaults to :func:`hailo_qa.hw.hef.read_hef`.

    Returns:
        ``{"hef_arch", "size_mb", "max_hef_mb"}``.

    Raises:
        ToolchainError: ``step="check"``, when the architecture or the size is wrong.
    """
    size_mb = path.stat().st_size / 1e6
    if hef_reader is None:
        from hailo_qa.hw.hef import read_hef as hef_reader  # helper "hef"
    info = hef_reader(path)
    arch = str(getattr(info, "hw_arch", "")).lower().replace("-", "")
    out = {"hef_arch": arch, "size_mb": round(size_mb, 3), "max_hef_mb": max_hef_mb}
    allowed = HEF_ARCHS_FOR.get(hw_arch, {hw_arch})
    if arch not in allowed:
        raise ToolchainError(f"HEF '{path.name}' targets {arch or 'an unknown architecture'}",
                             note=f"expected a HEF for {hw_arch} (one of {sorted(allowed)})",
                             hint=f"compile with ClientRunner(hw_arch='{hw_arch}') (manifest hw_arch)", step="check")
    if size_mb > max_hef_mb:
        raise ToolchainError(f"HEF '{path.name}' is {size_mb:.2f} MB",
                             note=f"expected at most {max_hef_mb:g} MB (thresholds.hailo8.max_hef_mb)",
                             hint="reduce the model (compression_level, a smaller variant) or move layers to the "
                                  "host stage", step="check")
    return out


# ---------------------------------------------------------------------------------------------------------------
# one variant
# ---------------------------------------------------------------------------------------------------------------
def compile_variant(variant: Variant, *, out_dir: str | Path, alls: str, calib: Calib | None,
                    from_har: str | Path | None = None, resume: bool = True, gpu: bool | None = None,
                    hef_reader: Callable[[Path], Any] | None = None) -> VariantResult:
    """Parse → optimize → compile → check one variant; every failure is recorded, not raised.

    Args:
        variant: what to compile.
        out_dir: the summary folder; this variant writes into ``out_dir/<variant.name>/``.
        alls: the model script text.
        calib: NHWC float32 calibration array or ``{hn_input_name: array}``; unused when resuming.
        from_har: resume from this quantized HAR. Defaults to ``<name>_quantized.har`` if present and ``resume``.
        resume: reuse an existing ``<name>_quantized.har`` in the variant folder. Defaults to True.
        gpu: whether the DFC will see a GPU (the level prediction). Defaults to :func:`~hailo_qa.runners.dfc.gpu_available`.
        hef_reader: HEF reader for the checks. Defaults to :func:`hailo_qa.hw.hef.read_hef`.

    Returns:
        The variant's result. Warnings (:class:`~hailo_qa.runners.dfc.OptimizationLevelWarning`) are emitted.

    Raises:
        EnvironmentProblem: the DFC is not installed (nothing can run; other failures are recorded).
    """
    from hailo_qa.runners import dfc

    name = variant.name
    vdir = Path(out_dir) / name
    logs = vdir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    paths = {"har": vdir / f"{name}.har", "quantized_har": vdir / f"{name}_quantized.har",
             "hef": vdir / f"{name}.hef", "alls": vdir / f"{name}.alls"}
    artifacts: dict[str, str] = {}
    steps: list[StepRecord] = []
    optimization: dict[str, Any] = {"requested": variant.requested_level, "minimum": variant.min_optimization_level}
    checks: dict[str, Any] = {}
    session = None
    dfc.import_dfc()  # a missing DFC is not a per-variant failure: say so once, up front
    version = dfc.dfc_version()
    current = "load"
    t0 = time.perf_counter()

    def done(step: str, status: str = "ok", detail: str = "") -> None:
        nonlocal t0
        text = session.logs.get(step, "") if session is not None else ""
        log = ""
        if text or status != "skipped":
            _atomic_write(logs / f"{step}.log", text)
            log = str(logs / f"{step}.log")
        steps.append(StepRecord(step, status, round(time.perf_counter() - t0, 3), log, detail))
        t0 = time.perf_counter()

    try:
        resume_har = Path(from_har) if from_har else (paths["quantized_har"] if resume and paths[
            "quantized_har"].is_file() else None)
        work = vdir / "dfc_work"
        if resume_har is not None:
            current = "load"
            session = dfc.DfcSession(work, hw_arch=variant.hw_arch, har=resume_har, name=name)
            artifacts["quantized_har"] = str(resume_har)
            for s in ("parse", "optimize"):
                done(s, "skipped", f"resumed from {resume_har}")
        else:
            if calib is None:
                raise InputDataError(f"{name}: no calibration data to optimize with",
                                     note="expected an NHWC float32 array (or {hn_input: array})",
                                     hint="pass calib=..., or resume with --from-har QUANTIZED.har")
            session = dfc.DfcSession(work, hw_arch=variant.hw_arch, name=name)
            current = "parse"
            session.translate_onnx(variant.onnx, name, start_nodes=variant.start_nodes or None,
                                   end_nodes=variant.end_nodes or None, input_shapes=variant.input_shapes or None)
            artifacts["har"] = str(session.save_har(paths["har"]))
            done("parse")
            current = "model_script"
            # quantization_param takes HN layer names: map ONNX names through the parsed HN's original_names
            from hailo_qa.quant.model_script import layer_map_from_hn, map_alls_layers

            alls = map_alls_layers(alls, layer_map_from_hn(session.hn()), model=name)
            _atomic_write(paths["alls"], alls)
            artifacts["alls"] = str(paths["alls"])
            session.load_model_script(alls)
            done("model_script")
            current = "optimize"
            has_gpu, gpu_why = dfc.gpu_available() if gpu is None else (gpu, "given")
            count = _calib_count(calib)
            predicted, why = dfc.predict_optimization_level(variant.requested_level, gpu_available=has_gpu,
                                                            calib_size=count)
            total = int(np.asarray(next(iter(calib.values())) if isinstance(calib, Mapping) else calib).shape[0])
            optimization.update(predicted=predicted, reason=why, gpu=has_gpu, gpu_probe=gpu_why, calib_size=count,
                                calib_real=count, calib_augmented=total - count)
            dfc.check_optimization_level(predicted, minimum=variant.min_optimization_level,
                                         on_lower=variant.on_lower_level, reason=why, context=name, predicted=True)
            used = session.optimize(calib)
            # never the requested level: what the DFC's logs (logging, hailo_sdk.client.log, acceleras.log) say
            optimization["used"] = used if used is not None else dfc.UNKNOWN_LEVEL
            optimization["used_source"] = ("log" if used is not None else
                                           "not in the DFC's logs (logging, hailo_sdk.client.log, acceleras.log)")
            if used is not None and used != predicted:
                optimization["prediction_mismatch"] = True
            dfc.check_optimization_level(optimization["used"], minimum=variant.min_optimization_level,
                                         on_lower=variant.on_lower_level, reason=why, context=name)
            artifacts["quantized_har"] = str(session.save_har(paths["quantized_har"]))
            done("optimize")
        current = "compile"
        hef = session.compile()
        _atomic_write(paths["hef"], hef)
        artifacts["hef"] = str(paths["hef"])
        done("compile")
        current = "check"
        checks.update(check_hef(paths["hef"], hw_arch=variant.hw_arch, max_hef_mb=variant.max_hef_mb,
                                hef_reader=hef_reader))
        done("check")
    except QAError as err:
        step = getattr(err, "step", None) or current
        if step == "dfc":
            step = current
        done(current, "failed", str(err).splitlines()[0])
        return VariantResult(name, False, step, str(err), type(err).__name__, artifacts, tuple(steps),
                             optimization, checks, version)
    except Warning as err:  # an OptimizationLevelWarning turned into an error (python -W error)
        done(current, "failed", str(err))
        return VariantResult(name, False, current, str(err), type(err).__name__, artifacts, tuple(steps),
                             optimization, checks, version)
    except Exception as err:  # a bug of ours must not stop the other variants either; the summary shows it
        done(current, "failed", f"{type(err).__name__}: {err}")
        return VariantResult(name, False, current, f"internal error: {type(err).__name__}: {err}",
                             type(err).__name__, artifacts, tuple(steps), optimization, checks, version)
    return VariantResult(name, True, None, None, None, artifacts, tuple(steps), optimization, checks, version)


def compile_variants(variants: Sequence[Variant], *, out_dir: str | Path,
                     alls: str | Callable[[Variant], str], calib: Calib | Callable[[Variant], Calib] | None,
                     from_har: str | Path | None = None, resume: bool = True, gpu: bool | None = None,
                     hef_reader: Callable[[Path], Any] | None = None) -> CompileSummary:
    """Compile several variants, one failure never stopping the others; write ``compile_summary.json``.

    ``alls`` and ``calib`` may be callables of the variant (built lazily, and a failure to build them is that
    variant's failure). ``from_har`` applies only when there is one variant.
    """
    if from_har is not None and len(variants) != 1:
        raise QAError("--from-har names one quantized HAR but several variants were selected",
                      note=f"variants: {', '.join(v.name for v in variants)}", hint="add --variant NAME")
    out = Path(out_dir)
    results = []
    for v in variants:
        try:
            a = alls(v) if callable(alls) else alls
            c = calib(v) if callable(calib) else calib
        except QAError as err:
            results.append(VariantResult(v.name, False, "prepare", str(err), type(err).__name__))
            continue
        results.append(compile_variant(v, out_dir=out, alls=a, calib=c, from_har=from_har, resume=resume,
                                       gpu=gpu, hef_reader=hef_reader))
    return write_summary(CompileSummary(tuple(results), out / "compile_summary.json"))


def write_summary(summary: CompileSummary) -> CompileSummary:
    """Write the latest summary and this run's own copy under ``runs/`` (a new file per run, never overwritten)."""
    import datetime
    import secrets

    text = json.dumps(summary.to_dict(), indent=2, default=str)
    run_path = summary.run_path
    if run_path is None:
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ") + "-" + secrets.token_hex(3)
        run_path = summary.path.parent / "runs" / f"compile_summary-{stamp}.json"
    run_path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(run_path, text)
    _atomic_write(summary.path, text)
    return CompileSummary(summary.results, summary.path, run_path)


# ---------------------------------------------------------------------------------------------------------------
# from the manifest
# ---------------------------------------------------------------------------------------------------------------
def variant_for_model(spec: ModelSpec, *, work_dir: str | Path, use_split: bool = True) -> Variant:
    """The :class:`Variant` for a manifest model: its Stage 1 (from the lead's split, when available) with the
    manifest's ``hw_arch``, HEF budget and optimization-level policy."""
    q = spec.quantization
    common = dict(hw_arch=spec.hw_arch,
                  max_hef_mb=spec.threshold("hailo8", "max_hef_mb", DEFAULT_MAX_HEF_MB) or DEFAULT_MAX_HEF_MB,
                  min_optimization_level=q.min_optimization_level, on_lower_level=q.on_lower_level,
                  requested_level=q.optimization_level)
    if spec.file is None:
        raise InputDataError(f"{spec.name} has no ONNX file to compile", note="expected models.<name>.file",
                             hint="add file = \"...onnx\" to the manifest entry")
    if use_split:
        try:
            from hailo_qa.graph.split import split_for_model
        except ImportError:
            split_for_model = None
        if split_for_model is not None:
            sr = split_for_model(spec, Path(work_dir))
            shapes = {n: tuple(spec.input(n).shape) for n in sr.stage1_inputs if _has_input(spec, n)}
            return Variant(spec.name, Path(sr.stage1_path), tuple(sr.stage1_inputs), (), shapes, **common)
    dev = spec.device_inputs
    return Variant(spec.name, spec.file, tuple(i.name for i in dev), tuple(spec.split.end_nodes),
                   {i.name: tuple(i.shape) for i in dev}, **common)


def _has_input(spec: ModelSpec, name: str) -> bool:
    try:
        spec.input(name)
        return True
    except KeyError:
        return False


def fallback_alls(spec: ModelSpec, *, calib_size: int) -> str:
    """A minimal model script (optimization level + calibration size) used only until ``hailo_qa.quant.model_script``
    lands; it adds no normalization layer, so calibration data must arrive preprocessed."""
    q = spec.quantization
    return (f"model_optimization_flavor(optimization_level={q.optimization_level}, "
            f"compression_level={q.compression_level})\n"
            f"model_optimization_config(calibration, batch_size=8, calibset_size={calib_size})\n")


def alls_for_model(spec: ModelSpec, *, config: str = "int8", calib_size: int) -> str:
    """The model script from helper "calib"'s :func:`hailo_qa.quant.model_script.alls_from_spec`, else
    :func:`fallback_alls`."""
    try:
        from hailo_qa.quant.model_script import alls_from_spec
    except ImportError:
        return fallback_alls(spec, calib_size=calib_size)
    return alls_from_spec(spec, config, calib_size=calib_size, int16_layers=spec.quantization.int16_layers
                          if config != "int8" else ())


def calib_for_model(spec: ModelSpec, *, size: int) -> np.ndarray:
    """NHWC float32 calibration array (a :class:`CalibArray` carrying its real-sample count) from
    :func:`hailo_qa.quant.calib.calib_set_for_model`."""
    try:
        from hailo_qa.quant.calib import calib_set_for_model
    except ImportError as err:
        raise InputDataError(f"{spec.name}: no calibration set could be built (hailo_qa.quant.calib is unavailable)",
                             note="expected hailo_qa.quant.calib.calib_set_for_model",
                             hint="pass calibration data explicitly, or resume with --from-har") from err
    cs = calib_set_for_model(spec, size=size, seed=spec.calibration.seed)
    view = cs.as_nhwc()
    if isinstance(view, np.ndarray):
        arr = view
    else:  # the view streams per-sample (H, W, C) arrays (or (1, H, W, C) batches)
        samples = [np.asarray(b) for b in view]
        arr = np.stack(samples) if samples and samples[0].ndim == 3 else np.concatenate(samples, axis=0)
    out = np.ascontiguousarray(arr, dtype=np.float32).view(CalibArray)
    out.real_samples = cs.real
    return out


def compile_model(spec: ModelSpec, *, out_dir: str | Path, alls: str | None = None, calib: Calib | None = None,
                  config: str = "int8", from_har: str | Path | None = None, resume: bool = True,
                  gpu: bool | None = None, hef_reader: Callable[[Path], Any] | None = None,
                  use_split: bool = True) -> CompileSummary:
    """Compile one manifest model (one variant) to a HEF.

    Args:
        spec: the manifest model.
        out_dir: output folder.
        alls: model script text. Defaults to :func:`alls_for_model`.
        calib: calibration data. Defaults to :func:`calib_for_model` at the largest ``calibration.sizes``.
        config: precision config for the model script. Defaults to ``int8``.
        from_har: resume from this quantized HAR. Defaults to none.
        resume: reuse an existing quantized HAR in ``out_dir``. Defaults to True.
        gpu: GPU presence for the level prediction. Defaults to probing.
        hef_reader: HEF reader for the checks. Defaults to :func:`hailo_qa.hw.hef.read_hef`.
        use_split: parse the split's Stage 1 when the split module is available. Defaults to True.
    """
    return compile_specs([spec], out_dir=out_dir, alls=alls, calib=calib, config=config, from_har=from_har,
                         resume=resume, gpu=gpu, hef_reader=hef_reader, use_split=use_split)


def compile_specs(specs: Sequence[ModelSpec], *, out_dir: str | Path, alls: str | None = None,
                  calib: Calib | None = None, config: str = "int8", from_har: str | Path | None = None,
                  resume: bool = True, gpu: bool | None = None, hef_reader: Callable[[Path], Any] | None = None,
                  use_split: bool = True) -> CompileSummary:
    """:func:`compile_model` for several manifest models (variants of one family), isolated from each other."""
    from hailo_qa.runners import dfc

    dfc.import_dfc()
    out = Path(out_dir)
    by_name: dict[str, tuple[ModelSpec, str, int]] = {}  # variant name → (spec as built, config, calib size)
    for s in specs:
        declared = [v for v in s.declared_variants if v.target == "emulator"]
        if not declared:
            by_name[s.name] = (s, config, max(s.calibration.sizes))
        for v in declared:
            built = dataclasses.replace(
                s, quantization=dataclasses.replace(s.quantization, int16_layers=v.int16_layers),
                calibration=dataclasses.replace(s.calibration, source=v.calib_source or s.calibration.source))
            # the DFC's network name: letters, digits and '_' only (mobilefacenet_int16_selective_calib2048)
            name = re.sub(r"[^A-Za-z0-9_]+", "_", f"{s.name}_{v.id.removesuffix('@emulator')}").strip("_")
            by_name[name] = (built, v.precision, v.calib_size)
    variants, failed = [], []
    for name, (s, _, _) in by_name.items():
        try:
            variants.append(dataclasses.replace(
                variant_for_model(s, work_dir=out / s.name / "split", use_split=use_split), name=name))
        except QAError as err:
            failed.append(VariantResult(name, False, "split", str(err), type(err).__name__))
    summary = compile_variants(
        variants, out_dir=out, alls=alls if alls is not None else (
            lambda v: alls_for_model(by_name[v.name][0], config=by_name[v.name][1], calib_size=by_name[v.name][2])),
        calib=calib if calib is not None or from_har is not None else (
            lambda v: calib_for_model(by_name[v.name][0], size=by_name[v.name][2])),
        from_har=from_har, resume=resume, gpu=gpu, hef_reader=hef_reader)
    if failed:
        summary = write_summary(CompileSummary(tuple(failed) + summary.results, summary.path, summary.run_path))
    return summary


def select_variants(names: Sequence[str], model: str, variants: Sequence[str] = ()) -> list[str]:
    """Manifest names for ``hailo-qa compile MODEL [--variant V ...]``.

    ``MODEL`` is a manifest name (one variant) or a family prefix: ``deimv2`` selects ``deimv2_*``, and
    ``--variant atto`` narrows that to ``deimv2_atto``.

    Raises:
        QAError: nothing matches.
    """
    from hailo_qa.errors import ManifestError, did_you_mean

    family = [n for n in names if n == model or n.startswith(model + "_")]
    if variants:
        want = {v if v.startswith(model + "_") or v == model else f"{model}_{v}" for v in variants}
        picked = [n for n in family if n in want]
        missing = sorted(want - set(picked))
        if missing:
            raise ManifestError(f"variant(s) {', '.join(missing)} not in the manifest",
                                note=f"variants of '{model}': {', '.join(family) or 'none'}",
                                hint=did_you_mean(missing[0], names) or "check --variant")
        return picked
    if not family:
        raise ManifestError(f"model '{model}' is not in the manifest", note=f"registered: {', '.join(names)}",
                            hint=did_you_mean(model, names) or "register it in fixtures/models.toml")
    return [model] if model in family else family
