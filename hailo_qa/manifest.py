"""The model manifest (``fixtures/models.toml``) loaded into frozen, typed records.

This module is the only place that touches the raw TOML. Unknown keys, wrong types and missing files are
:class:`~hailo_qa.errors.ManifestError` naming the file, the model and the key.

Paths: relative paths resolve against the manifest's directory; ``shared:<path>`` resolves under
:data:`hailo_qa.config.SHARED_DIR` (the team's ``../shared``). A missing ``shared:`` file is *not* an error at load
time — the model is marked unavailable with a reason, and its tests skip saying so (the team's shared material may
not be present on every machine). A missing repo-relative file is an error.
"""
from __future__ import annotations

import glob
import hashlib
import json
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hailo_qa import config
from hailo_qa.errors import ManifestError, did_you_mean

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

TASKS = ("detection", "face_detection", "embedding", "classification", "generic")
LAYOUTS = ("NCHW", "NHWC", "NC", "ANY")
DTYPES = ("float32", "int64", "int32", "uint8")
ROLES = ("device", "host")
KINDS = ("image", "tensor")
PRECISION_CONFIGS = ("int8", "int16_selective", "int16")
HW_ARCHS = ("hailo8", "hailo8l", "hailo8r")
VARIANT_TARGETS = ("emulator", "hailo8")

THRESHOLD_KEYS: dict[str, frozenset[str]] = {
    # emulator.<precision config>
    "emulator": frozenset({"min_snr_db", "min_cosine", "min_top1", "min_detection_agreement", "max_lsb_error"}),
    "hailo8": frozenset({"max_p95_ms", "max_core_p95_ms", "max_hef_mb", "min_cosine_vs_golden",
                         "max_lsb_vs_emulator", "max_lsb_vs_float", "max_cov_pct"}),
    # embedding.<target>: target = float | emulator.<config> | hailo8
    "embedding": frozenset({"min_cosine", "min_p5_cosine", "min_margin", "match_threshold", "min_match_rate",
                            "min_nn_agreement", "min_pre_norm_ratio", "max_pre_norm_ratio"}),
    # deploy[.<target>]: the classifier checklist on float | split | emulator | hailo8 (latency/HEF: hailo8 section)
    "deploy": frozenset({"min_accuracy", "max_ece", "min_coverage", "min_top1_agreement"}),
    # recognition.<target>: faces the way a recognition team measures them (gallery/probe photos, hailo_qa.evaluate.
    # recognition); target = float | emulator.<config> | hailo8, or the variant id
    "recognition": frozenset({"match_threshold", "min_tar", "max_far", "far_target", "min_tar_at_far", "min_rank1",
                              "min_margin", "min_pre_norm", "min_pre_norm_ratio", "max_pre_norm_ratio",
                              "max_session_spread", "max_session_match_spread", "min_pre_norm_distance_drop",
                              "min_smallest_passing_px", "max_smallest_passing_px"}),
    # viability: the success criteria a variant comparison marks each variant against (hailo-qa report)
    "viability": frozenset({"max_different_similarity", "min_same_vs_baseline", "min_medium_match_rate",
                            "medium_face_px", "min_pre_norm_distance_drop", "max_session_match_spread",
                            "max_session_spread"}),
}
"""Known threshold sections and their keys. A section may be qualified: ``emulator.int8``, ``embedding.float``."""


@dataclass(frozen=True)
class Preprocess:
    """How an image file becomes this input: resize to the input's H×W, channel order, then (x - mean) / std.

    mean/std are per channel in 0–255 units, as in Hailo's ``normalization`` model-script command (one value for a
    1-channel, grayscale input). ``resize`` is ``stretch`` (to H×W, aspect ratio not kept) or ``letterbox`` (scaled
    to fit, aspect kept, centred on ``pad`` gray — YOLO-style; stretch vs letterbox changes a detector's accuracy).
    """

    color: str = "RGB"
    mean: tuple[float, ...] = (0.0, 0.0, 0.0)
    std: tuple[float, ...] = (1.0, 1.0, 1.0)
    resize: str = "stretch"
    pad: float = 114.0


@dataclass(frozen=True)
class InputSpec:
    """One model input."""

    name: str
    shape: tuple[int, ...]
    layout: str = "NCHW"
    dtype: str = "float32"
    range: tuple[float, float] | None = None
    role: str = "device"
    kind: str = "image"
    preprocess: Preprocess | None = None
    value: Any = None  # constant feed for host inputs (e.g. DEIMv2's orig_target_sizes)

    @property
    def np_dtype(self) -> np.dtype:
        return np.dtype(self.dtype)

    @property
    def hw(self) -> tuple[int, int]:
        """(H, W) of an image input."""
        if self.layout == "NHWC":
            return self.shape[1], self.shape[2]
        return self.shape[2], self.shape[3]

    def constant(self) -> np.ndarray:
        """The constant feed of a host input."""
        return np.asarray(self.value, dtype=self.np_dtype).reshape(self.shape)


@dataclass(frozen=True)
class SplitSpec:
    """How to split: ``auto`` (largest device-compatible Stage 1) or ``explicit`` cut tensors / end nodes.

    ``atol`` > 0 relaxes the bit-exact equivalence proof and must come with a written ``justification``.
    ``simplify = false`` splits the graph as given (no constant folding); ``reshape = true`` lets the inputs'
    ``shape`` change static dims of the model (the proof then runs the original at that size).
    """

    mode: str = "auto"
    cut: tuple[str, ...] = ()
    end_nodes: tuple[str, ...] = ()
    batch: int = 1
    atol: float = 0.0
    justification: str = ""
    simplify: bool = True
    reshape: bool = False


@dataclass(frozen=True)
class CalibrationSpec:
    """Where calibration data comes from: a directory of .npy, an image folder/glob, an .npz, or ``samples``.

    ``max_samples`` caps the real samples drawn (no cap by default); ``augment = true`` opts in to filling a
    requested size larger than the real samples with seeded augmentations (off by default: the set is then smaller
    than requested and says so).
    """

    source: str = "samples"
    max_samples: int | None = None
    seed: int = 0
    sizes: tuple[int, ...] = (64,)
    augment: bool = False


INT16_TARGETS = ("snr_db", "cosine", "cosine_mean", "top1", "detection_agreement")
"""Metrics ``quantization.int16_target`` may name (higher is better): what ``int16_selective`` must raise over int8."""


@dataclass(frozen=True)
class QuantizationSpec:
    """Precision configs to test and the model-script knobs behind them."""

    configs: tuple[str, ...] = ("int8",)
    int16_layers: tuple[str, ...] = ()
    suggest_k: int = 3
    calibration_method: str = "minmax"
    weight_granularity: str = "per_channel"
    optimization_level: int = 2
    compression_level: int = 0
    min_optimization_level: int = 0
    on_lower_level: str = "warn"
    normalization: str = "host"  # "host" (data arrives normalized) or "on_chip" (.alls normalization layer)
    int16_target: str = "snr_db"  # the metric int16_selective must raise over int8 at the same calibration size
    int16_no_gain: str = ""  # a written, measured record that int16_selective does not beat int8 (then reported)
    agreement_inputs: int = 0  # held-out inputs for the agreement metric (0: the task's default, AGREEMENT_N)


@dataclass(frozen=True)
class VariantSpec:
    """One quantized variant of a model: an emulator config or a compiled HEF, labelled the way its owner built it.

    ``id`` reads like ``int16_selective-calib2048@hailo8`` (``name`` overrides it); test ids are
    ``<model>[<id>]``, and every history and report row carries it.
    """

    target: str  # "emulator" | "hailo8"
    precision: str  # int8 | int16_selective | int16 | "" (unknown: a HEF whose build is not described)
    calib_size: int | None = None
    calib_source: str = ""
    int16_layers: tuple[str, ...] = ()
    hef: Path | None = None
    name: str = ""
    baseline: bool = False
    unavailable: str = ""  # non-empty: why this variant's HEF is absent

    @property
    def id(self) -> str:
        if self.name:
            return self.name
        calib = f"-calib{self.calib_size}" if self.calib_size is not None else ""
        return f"{self.precision or 'hef'}{calib}@{self.target}"

    @property
    def available(self) -> bool:
        return not self.unavailable

    def label(self) -> str:
        """A one-line description: precision (+ layers), calibration size and source, target."""
        parts = [self.precision or "precision not stated"]
        if self.int16_layers:
            parts[0] += f" ({', '.join(self.int16_layers)})"
        if self.calib_size is not None:
            parts.append(f"calib {self.calib_size}" + (f" from {self.calib_source}" if self.calib_source else ""))
        parts.append(f"on {self.target}" + (f" ({self.hef.name})" if self.hef else ""))
        return ", ".join(parts)


@dataclass(frozen=True)
class DeploySpec:
    """The deployment checklist's labelled evaluation data (``[models.<name>.deploy]``, classifiers).

    ``data`` is an ``.npz`` holding inputs ``x_key`` [N, ...] and integer labels ``y_key`` [N]. A seeded
    ``calibration_fraction`` of it fits the temperature and the conformal threshold; the rest is the evaluation split
    every figure is measured on (never used to fit anything). ``alpha`` is the conformal miscoverage level.
    """

    data: Path
    x_key: str = "x"
    y_key: str = "y"
    calibration_fraction: float = 0.5
    alpha: float = 0.1
    temperature_scaling: bool = True
    seed: int = 0


@dataclass(frozen=True)
class HostStepSpec:
    """A named host step applied to the Stage-1 output (``[models.<name>.host_step]``), e.g. FSQ rounding.

    ``op = "fsq"``: finite scalar quantization of the cut tensor, ``round(x) / ((L - 1) / 2)`` per dimension, one
    odd level count ``L`` per projection dimension in ``levels``.
    """

    op: str
    levels: tuple[int, ...] = ()


@dataclass(frozen=True)
class ModelSpec:
    """Everything the suite knows about one registered model."""

    name: str
    file: Path | None
    task: str
    inputs: tuple[InputSpec, ...]
    split: SplitSpec = field(default_factory=SplitSpec)
    calibration: CalibrationSpec = field(default_factory=CalibrationSpec)
    quantization: QuantizationSpec = field(default_factory=QuantizationSpec)
    thresholds: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    samples: tuple[Path, ...] = ()
    hef: Path | None = None
    network_group: str = ""  # which network group of the HEF to run (a HEF can hold several); "" = its only one
    hw_arch: str = "hailo8"
    licence: str = ""
    provenance: str = ""
    identities: Mapping[str, str] = field(default_factory=dict)
    deploy: DeploySpec | None = None
    host_step: HostStepSpec | None = None
    unavailable: str = ""  # non-empty: why the model's file is absent (tests skip with this reason)
    declared_variants: tuple[VariantSpec, ...] = ()  # [[models.<m>.variants]] as written
    family: str = ""  # the family entry this model was expanded from ([models.<family>.family])
    family_member: str = ""  # its member name in the family (atto, femto, ...)
    manifest_path: Path | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def available(self) -> bool:
        return not self.unavailable

    @property
    def device_inputs(self) -> tuple[InputSpec, ...]:
        return tuple(i for i in self.inputs if i.role == "device")

    @property
    def host_inputs(self) -> tuple[InputSpec, ...]:
        return tuple(i for i in self.inputs if i.role == "host")

    def input(self, name: str) -> InputSpec:
        for i in self.inputs:
            if i.name == name:
                return i
        raise KeyError(name)

    def threshold(self, section: str, key: str, default: float | None = None) -> float | None:
        """A threshold, looked up in ``section`` (e.g. ``emulator.int8``) then its family (``emulator``)."""
        for s in (section, section.split(".")[0]):
            if key in self.thresholds.get(s, {}):
                return self.thresholds[s][key]
        return default

    @property
    def variants(self) -> tuple[VariantSpec, ...]:
        """The variants to test: the declared ones, else every ``quantization.configs`` × ``calibration.sizes``
        emulator variant (when there is an ONNX file) plus the registered ``hef`` on Hailo-8.

        The INT8 baseline comes first: the variant marked ``baseline = true``, else the first int8 one.
        """
        vs = list(self.declared_variants)
        if not vs:
            if self.file is not None:
                vs = [VariantSpec("emulator", c, n, self.calibration.source,
                                  self.quantization.int16_layers if c == "int16_selective" else ())
                      for c in self.quantization.configs for n in self.calibration.sizes]
            if self.hef is not None:
                vs.append(VariantSpec("hailo8", "", None, hef=self.hef, unavailable=self.unavailable
                                      if self.file is None else ""))
        base = next((v for v in vs if v.baseline), None) or next((v for v in vs if v.precision == "int8"), None)
        return tuple(([base] if base else []) + [v for v in vs if v is not base])

    def variant(self, vid: str) -> VariantSpec:
        for v in self.variants:
            if v.id == vid:
                return v
        ids = [v.id for v in self.variants]
        raise ManifestError(f"model '{self.name}' has no variant '{vid}'", note=f"variants: {', '.join(ids) or 'none'}",
                            hint=did_you_mean(vid, ids) or f"declare it in [[models.{self.name}.variants]]")

    def digest(self) -> str:
        """sha256 of the canonical manifest entry (provenance of goldens and history rows)."""
        return hashlib.sha256(json.dumps(self.raw, sort_keys=True, default=str).encode()).hexdigest()


@dataclass(frozen=True)
class Manifest:
    path: Path
    models: tuple[ModelSpec, ...]

    def __iter__(self):
        return iter(self.models)

    def __len__(self) -> int:
        return len(self.models)

    def names(self) -> list[str]:
        return [m.name for m in self.models]

    def get(self, name: str) -> ModelSpec:
        for m in self.models:
            if m.name == name:
                return m
        raise ManifestError(f"model '{name}' is not in the manifest {self.path}",
                            note=f"registered models: {', '.join(self.names()) or 'none'}",
                            hint=did_you_mean(name, self.names()) or "register it in the manifest (see README)")

    def with_(self, *attrs: str, available: bool = False) -> list[ModelSpec]:
        """Models where every attribute in ``attrs`` is truthy (e.g. ``with_("hef")``)."""
        out = [m for m in self.models if all(getattr(m, a) for a in attrs)]
        return [m for m in out if m.available] if available else out


# --------------------------------------------------------------------------------------------------------------
class _Reader:
    """Typed access to one raw table, tracking the keys read so leftovers are reported as unknown."""

    def __init__(self, table: Mapping[str, Any], where: str, path: Path) -> None:
        if not isinstance(table, Mapping):
            raise ManifestError(f"{where} must be a table, got {type(table).__name__}",
                                note="expected a TOML table ([section] or {key = value})",
                                hint=f"fix {where} in {path}")
        self.table, self.where, self.path, self.seen = table, where, path, set()

    def _err(self, key: str, what: str, note: str, hint: str = "") -> ManifestError:
        return ManifestError(f"{self.path}: {self.where}.{key} {what}", note=note,
                             hint=hint or f"fix {self.where}.{key} in {self.path}")

    def get(self, key: str, types, default=None, *, required: bool = False, choices: Sequence | None = None):
        self.seen.add(key)
        if key not in self.table:
            if required:
                raise self._err(key, "is missing", note=f"'{key}' is required for every entry")
            return default
        v = self.table[key]
        if isinstance(v, bool) and bool not in (types if isinstance(types, tuple) else (types,)):
            raise self._err(key, f"has the wrong type (bool {v!r})", note=f"expected {_tname(types)}")
        if not isinstance(v, types):
            raise self._err(key, f"has the wrong type ({type(v).__name__} {v!r})", note=f"expected {_tname(types)}")
        if choices is not None and v not in choices:
            raise self._err(key, f"is {v!r}", note=f"expected one of {list(choices)}",
                            hint=did_you_mean(str(v), map(str, choices)) or f"use one of {list(choices)}")
        return v

    def numbers(self, key: str, default=None, *, length: int | None = None, ints: bool = False):
        v = self.get(key, list, None)
        if v is None:
            return default
        kind = int if ints else (int, float)
        if any(isinstance(x, bool) or not isinstance(x, kind) for x in v) or (length and len(v) != length):
            raise self._err(key, f"is {v!r}",
                            note=f"expected a list of {length or 'N'} {'integers' if ints else 'numbers'}")
        return tuple(int(x) if ints else float(x) for x in v)

    def strings(self, key: str, default=()):
        v = self.get(key, list, None)
        if v is None:
            return default
        if any(not isinstance(x, str) for x in v):
            raise self._err(key, f"is {v!r}", note="expected a list of strings")
        return tuple(v)

    def done(self) -> None:
        unknown = [k for k in self.table if k not in self.seen]
        if unknown:
            k = unknown[0]
            key = k if self.where == "<top>" else f"{self.where}.{k}"
            raise ManifestError(f"{self.path}: unknown key '{key}'",
                                note=f"known keys here: {', '.join(sorted(self.seen))}",
                                hint=did_you_mean(k, self.seen) or f"remove '{k}' or check the README's manifest "
                                                                    f"reference")


def _tname(types) -> str:
    ts = types if isinstance(types, tuple) else (types,)
    return " or ".join({"str": "a string", "int": "an integer", "float": "a number", "list": "a list",
                        "dict": "a table", "bool": "true/false"}.get(t.__name__, t.__name__) for t in ts)


def resolve_path(value: str, base: Path) -> Path:
    """``shared:x`` → SHARED_DIR/x; relative → base/x; absolute stays."""
    if value.startswith("shared:"):
        return (config.SHARED_DIR / value[len("shared:"):]).resolve()
    p = Path(value).expanduser()
    return p if p.is_absolute() else (base / p).resolve()


def _file(r: _Reader, key: str, base: Path, *, required: bool) -> tuple[Path | None, str]:
    """Resolve a file key. Returns (path, unavailable_reason)."""
    v = r.get(key, str, None, required=required)
    if v is None:
        return None, ""
    p = resolve_path(v, base)
    if p.is_dir():
        raise ManifestError(f"{r.path}: {r.where}.{key} names a folder '{v}'", note=f"expected a file at {p}",
                            hint="name the model file itself (relative paths are relative to the manifest)")
    if p.exists():
        return p, ""
    if v.startswith("shared:"):
        return p, (f"{key} '{v}' is not present at {p} (shared material is outside the repo; "
                   f"set HAILO_QA_SHARED to the folder that holds it)")
    raise ManifestError(f"{r.path}: {r.where}.{key} names a missing file '{v}'",
                        note=f"expected a file at {p}",
                        hint="fix the path (relative paths are relative to the manifest) or use 'shared:...' for "
                             "team material outside the repo")


def _input(raw, where: str, path: Path) -> InputSpec:
    r = _Reader(raw, where, path)
    name = r.get("name", str, required=True)
    shape = r.numbers("shape", ints=True)
    if not shape or any(d <= 0 for d in shape):
        raise r._err("shape", f"is {raw.get('shape')!r}", note="expected a static shape of positive integers "
                     "(the batch is part of it, e.g. [1, 3, 112, 112])")
    from hailo_qa.options import size_problem

    too_big = size_problem(shape)
    if too_big:
        raise r._err("shape", f"is {list(shape)}: {too_big}", note="expected the size one input really has (a "
                     "Hailo-8 input is one frame of a few MB)")
    layout = r.get("layout", str, "NCHW", choices=LAYOUTS)
    dtype = r.get("dtype", str, "float32", choices=DTYPES)
    rng = r.numbers("range", None, length=2)
    if rng and not all(np.isfinite(rng)):
        raise r._err("range", f"is {list(rng)}", note="expected finite [low, high] (no nan or inf)")
    if rng and rng[0] >= rng[1]:
        raise r._err("range", f"is {list(rng)}", note="expected [low, high] with low < high")
    role = r.get("role", str, "device", choices=ROLES)
    kind = r.get("kind", str, "image" if role == "device" else "tensor", choices=KINDS)
    value = r.get("value", (list, int, float), None)
    pre = None
    if "preprocess" in raw:
        pr = _Reader(r.get("preprocess", dict), f"{where}.preprocess", path)
        channels = (shape[-1] if layout == "NHWC" else shape[1]) if len(shape) == 4 else 3
        n = 1 if channels == 1 else 3
        pre = Preprocess(color=pr.get("color", str, "RGB", choices=("RGB", "BGR")),
                         mean=pr.numbers("mean", (0.0,) * n, length=n),
                         std=pr.numbers("std", (1.0,) * n, length=n),
                         resize=pr.get("resize", str, "stretch", choices=("stretch", "letterbox")),
                         pad=float(pr.get("pad", (int, float), 114.0)))
        if any(s == 0 for s in pre.std):
            raise pr._err("std", f"is {list(pre.std)}", note="expected non-zero per-channel std (0-255 units)")
        pr.done()
    r.done()
    if role == "host" and value is None:
        raise ManifestError(f"{path}: {where} is a host input without a 'value'",
                            note="host inputs (fed only to Stage 2) need a constant value",
                            hint=f"add value = [...] to {where}")
    if value is not None and np.issubdtype(np.dtype(dtype), np.integer):
        flat = _leaves(value)
        if any(isinstance(x, float) for x in flat):
            raise r._err("value", f"holds a float ({value!r}) for a {dtype} input",
                         note=f"expected integers: the input is declared {dtype}", hint="write 640, not 640.0 "
                         "(or declare dtype = \"float32\")")
    if value is not None:
        try:
            np.asarray(value, dtype=dtype).reshape(shape)
        except (ValueError, TypeError, OverflowError) as err:
            raise ManifestError(f"{path}: {where}.value does not fit shape {list(shape)}", note=str(err),
                                hint="give exactly prod(shape) values") from err
    return InputSpec(name, shape, layout, dtype, rng, role, kind, pre, value)


_QUALIFIERS: dict[str, tuple[str, ...]] = {
    "emulator": PRECISION_CONFIGS,
    "embedding": ("float", "hailo8", *(f"emulator.{c}" for c in PRECISION_CONFIGS)),
    "hailo8": PRECISION_CONFIGS,
    "deploy": ("float", "split", "hailo8", *(f"emulator.{c}" for c in PRECISION_CONFIGS)),
    # recognition.<target>[.<config>], or recognition."<variant id>" (ids hold an '@': "int8-calib16@emulator")
    "recognition": ("float", "emulator", "hailo8", *(f"{t}.{c}" for t in ("emulator", "hailo8")
                                                      for c in PRECISION_CONFIGS)),
}
"""What may follow a threshold family in a section name (``emulator.int8``, ``embedding.emulator.int16``)."""


def _leaves(value) -> list:
    """The scalars of a nested list (a TOML array of arrays)."""
    if isinstance(value, list):
        return [x for v in value for x in _leaves(v)]
    return [value]


_UNIT_WORDS = ("agreement", "top1", "accuracy", "coverage", "rate", "tar", "far", "rank1", "ece")


def _threshold_bounds(key: str) -> tuple[float, float, str] | None:
    """(low, high, what) a gate ``key`` can meaningfully take, or None when any finite value can be meant."""
    if "cosine" in key or key == "match_threshold":
        return -1.0, 1.0, "a cosine similarity from -1 to 1"
    if any(w in key for w in _UNIT_WORDS):
        return 0.0, 1.0, "a fraction from 0 to 1"
    if key.startswith("max_") and key.endswith(("_ms", "_mb", "_px")):
        return 0.0, math.inf, "a positive budget"
    return None


def _thresholds(raw, where: str, path: Path) -> dict[str, dict[str, float]]:
    if not isinstance(raw, Mapping):
        raise ManifestError(f"{path}: {where} must be a table", note="expected [models.<name>.thresholds.<section>]")
    out: dict[str, dict[str, float]] = {}

    def visit(sec: str, tbl: Mapping[str, Any]) -> None:
        fam = sec.split(".")[0]
        if fam not in THRESHOLD_KEYS:
            raise ManifestError(f"{path}: unknown threshold section '{where}.{sec}'",
                                note=f"known sections: {', '.join(THRESHOLD_KEYS)} (optionally qualified, e.g. "
                                     f"emulator.int8)", hint=did_you_mean(fam, THRESHOLD_KEYS) or "")
        qual, known = ".".join(sec.split(".")[1:]), _QUALIFIERS.get(fam, ())
        leaves = any(not isinstance(v, Mapping) for v in tbl.values())
        variant_id = fam == "recognition" and "@" in qual
        if qual and not (qual in known or variant_id or (not leaves and any(q.startswith(qual + ".")
                                                                            for q in known))):
            raise ManifestError(f"{path}: unknown threshold section '{where}.{sec}'",
                                note=f"{fam} sections may be qualified by {', '.join(known) or 'nothing'}",
                                hint=did_you_mean(qual, known) or
                                f"use [{where}.{fam}] or a known qualifier")
        vals = {}
        for k, v in tbl.items():
            if isinstance(v, Mapping):
                visit(f"{sec}.{k}", v)
                continue
            if k not in THRESHOLD_KEYS[fam]:
                raise ManifestError(f"{path}: unknown threshold key '{where}.{sec}.{k}'",
                                    note=f"known keys for {fam}: {', '.join(sorted(THRESHOLD_KEYS[fam]))}",
                                    hint=did_you_mean(k, THRESHOLD_KEYS[fam]) or "")
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise ManifestError(f"{path}: {where}.{sec}.{k} has the wrong type ({type(v).__name__} {v!r})",
                                    note="expected a number")
            if not np.isfinite(v):
                raise ManifestError(f"{path}: {where}.{sec}.{k} is {v}", note="expected a finite number (a nan or "
                                    "inf gate passes or fails everything)", hint=f"set a real gate, or remove {k}")
            bounds = _threshold_bounds(k)
            if bounds is not None and not (bounds[0] <= v <= bounds[1] and (bounds[1] < math.inf or v > 0)):
                raise ManifestError(f"{path}: {where}.{sec}.{k} is {v}", note=f"expected {bounds[2]} (this gate "
                                    "could never pass, or never fail)", hint=f"set a real gate, or remove {k}")
            vals[k] = float(v)
        if vals:
            out[sec] = vals

    for sec, tbl in raw.items():
        if not isinstance(tbl, Mapping):
            raise ManifestError(f"{path}: {where}.{sec} must be a table", note="expected e.g. "
                                "[models.x.thresholds.emulator.int8] with min_snr_db = 30")
        visit(sec, tbl)
    return out


def _check_calibration(calib: CalibrationSpec, cr: _Reader) -> None:
    """Calibration counts: sizes non-empty, each in 1..MAX_CALIB_SIZE; max_samples >= 1; seed >= 0."""
    from hailo_qa.options import MAX_CALIB_SIZE

    if not calib.sizes or any(not 1 <= n <= MAX_CALIB_SIZE for n in calib.sizes):
        raise cr._err("sizes", f"is {list(calib.sizes)}", note=f"expected a non-empty list of sample counts from 1 to "
                      f"{MAX_CALIB_SIZE:,}, e.g. [64, 256]")
    if calib.seed < 0:
        raise cr._err("seed", f"is {calib.seed}", note="expected a non-negative integer seed")


def _deploy(raw, where: str, path: Path, base: Path) -> DeploySpec | None:
    if raw is None:
        return None
    r = _Reader(raw, where, path)
    data, _ = _file(r, "data", base, required=True)
    d = DeploySpec(data=data, x_key=r.get("x_key", str, "x"), y_key=r.get("y_key", str, "y"),
                   calibration_fraction=float(r.get("calibration_fraction", (int, float), 0.5)),
                   alpha=float(r.get("alpha", (int, float), 0.1)),
                   temperature_scaling=r.get("temperature_scaling", bool, True), seed=r.get("seed", int, 0))
    r.done()
    if not 0.0 < d.calibration_fraction < 1.0:
        raise r._err("calibration_fraction", f"is {d.calibration_fraction}", note="expected 0 < fraction < 1 (the "
                     "rest is the evaluation split)")
    if not 0.0 < d.alpha < 1.0:
        raise r._err("alpha", f"is {d.alpha}", note="expected 0 < alpha < 1 (0.1 asks for 90 % coverage)")
    return d


def _host_step(raw, where: str, path: Path) -> HostStepSpec | None:
    if raw is None:
        return None
    r = _Reader(raw, where, path)
    op = r.get("op", str, required=True, choices=("fsq",))
    levels = r.numbers("levels", (), ints=True)
    r.done()
    if not levels or any(n < 3 or n % 2 == 0 for n in levels):
        raise r._err("levels", f"is {list(levels)}", note="expected one odd level count >= 3 per projection "
                     "dimension (FSQ rounds tanh(z)·(L−1)/2 to L integer levels)",
                     hint="e.g. levels = [5, 5, 5, 5, 5, 5, 5, 5] for an 8-wide projection")
    return HostStepSpec(op=op, levels=levels)


def _variants(raw: list, where: str, path: Path, base: Path, quant: QuantizationSpec, calib: CalibrationSpec,
              file: Path | None) -> tuple[VariantSpec, ...]:
    out: list[VariantSpec] = []
    for i, v in enumerate(raw):
        w = f"{where}.variants[{i}]"
        vr = _Reader(v, w, path)
        target = vr.get("target", str, "emulator", choices=VARIANT_TARGETS)
        hef, why = _file(vr, "hef", base, required=False)
        if target == "hailo8" and hef is None:
            raise vr._err("hef", "is missing", note="a hailo8 variant is a compiled HEF",
                          hint=f"add hef = \"...hef\" to {w}, or target = \"emulator\"")
        if target == "emulator" and hef is not None:
            raise vr._err("hef", "is set on an emulator variant", note="emulator variants are built from the ONNX "
                          "'file'", hint="set target = \"hailo8\" for a compiled HEF")
        if target == "emulator" and file is None:
            raise vr._err("target", "is 'emulator' but the entry has no ONNX 'file'",
                          note="the emulator quantizes the float ONNX", hint="add file = \"...onnx\" to the entry")
        precision = vr.get("precision", str, "int8" if target == "emulator" else "",
                           choices=PRECISION_CONFIGS + (("",) if target == "hailo8" else ()))
        size = vr.get("calib_size", int, calib.sizes[0] if target == "emulator" else None)
        if size is not None and size < 1:
            raise vr._err("calib_size", f"is {size}", note="expected a positive number of calibration samples")
        layers = vr.strings("int16_layers", quant.int16_layers if precision == "int16_selective" else ())
        if layers and precision != "int16_selective":
            raise vr._err("int16_layers", f"is set for precision {precision!r}",
                          note="16-bit layers belong to precision = \"int16_selective\"")
        out.append(VariantSpec(target, precision, size,
                               vr.get("calib_source", str, calib.source if target == "emulator" else ""),
                               layers, hef, vr.get("name", str, ""), vr.get("baseline", bool, False), why))
        vr.done()
    ids = [v.id for v in out]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise ManifestError(f"{path}: {where}.variants repeat the id {dup[0]!r}", note=f"variant ids: {ids}",
                            hint="give one of them a distinct name = \"...\"")
    if sum(v.baseline for v in out) > 1:
        raise ManifestError(f"{path}: {where}.variants mark more than one baseline",
                            note="expected at most one variant with baseline = true (the INT8 reference row)")
    return tuple(out)


def _expand_family(name: str, raw, path: Path) -> list[tuple[str, dict, tuple[str, str]]]:
    """``[models.<family>.family]`` → one raw entry per member, named ``<family>_<member>``.

    Members come from ``members = ["atto", "femto", ...]`` with ``pattern = "...{member}..."`` (and optionally
    ``hef_pattern``), and/or ``[models.<family>.family.<member>]`` tables whose keys (``file``, ``hef``,
    ``inputs``, ...) override the shared entry for that member.
    """
    if not isinstance(raw, Mapping) or "family" not in raw:
        return [(name, raw, ("", ""))]
    where = f"models.{name}.family"
    fr = _Reader(raw["family"], where, path)
    members = list(fr.strings("members"))
    pattern, hef_pattern = fr.get("pattern", str, None), fr.get("hef_pattern", str, None)
    tables = {k: v for k, v in fr.table.items() if isinstance(v, Mapping)}
    fr.seen.update(tables)
    fr.done()
    members += [m for m in tables if m not in members]
    if not members:
        raise ManifestError(f"{path}: {where} names no members", note="expected members = [\"atto\", ...] with "
                            "pattern = \"models/x_{member}.onnx\", or one [" + where + ".<member>] table each",
                            hint="see the README section 'Model families and variants'")
    for pat, key in ((pattern, "pattern"), (hef_pattern, "hef_pattern")):
        if pat is not None and "{member}" not in pat:
            raise ManifestError(f"{path}: {where}.{key} = {pat!r} has no {{member}} placeholder",
                                note="expected e.g. \"models/deimv2_hgnetv2_{member}_coco.onnx\"")
    out = []
    shared = {k: v for k, v in raw.items() if k != "family"}
    for m in members:
        if not m or not all(c.isalnum() or c in "_-" for c in m):
            raise ManifestError(f"{path}: {where} member {m!r} is not a plain name",
                                note="expected letters, digits, '_' or '-' (it becomes part of the model name)")
        entry = dict(shared)
        if pattern is not None:
            entry["file"] = pattern.replace("{member}", m)
        if hef_pattern is not None:
            entry["hef"] = hef_pattern.replace("{member}", m)
        entry.update(tables.get(m, {}))
        if "file" not in entry and "hef" not in entry:
            raise ManifestError(f"{path}: {where} gives member '{m}' no file",
                                note="expected pattern = \"...{member}...\" or file = \"...\" in "
                                     f"[{where}.{m}]")
        out.append((f"{name}_{m}", entry, (name, m)))
    return out


def _model(name: str, raw, path: Path, base: Path, family: tuple[str, str] = ("", "")) -> ModelSpec:
    where = f"models.{name}"
    if not name.strip() or name != name.strip() or any(c in name for c in ",/\\"):
        raise ManifestError(f"{path}: model name {name!r} cannot be used",
                            note="expected a non-empty name without spaces at its ends, commas or slashes (it "
                                 "names test ids, folders and --models lists)", hint="rename the [models.<name>] table")
    r = _Reader(raw, where, path)
    file, why = _file(r, "file", base, required=False)
    hef, why_hef = _file(r, "hef", base, required=False)
    if file is None and hef is None:
        raise ManifestError(f"{path}: {where} has neither 'file' nor 'hef'",
                            note="expected an ONNX 'file' (and optionally a compiled 'hef')",
                            hint=f"add file = \"...onnx\" to [{where}]")
    task = r.get("task", str, "generic", choices=TASKS)
    inputs_raw = r.get("inputs", list, [])
    inputs = tuple(_input(x, f"{where}.inputs[{i}]", path) for i, x in enumerate(inputs_raw))
    names = [i.name for i in inputs]
    if len(set(names)) != len(names):
        raise ManifestError(f"{path}: {where}.inputs repeats an input name", note=f"got {names}")
    if file is not None and not inputs:
        raise ManifestError(f"{path}: {where} declares no inputs", note="every ONNX model needs [[...inputs]]",
                            hint="add name, shape, layout, dtype and range for each model input")

    sp = _Reader(r.get("split", dict, {}), f"{where}.split", path)
    split = SplitSpec(mode=sp.get("mode", str, "auto", choices=("auto", "explicit")),
                      cut=sp.strings("cut"), end_nodes=sp.strings("end_nodes"),
                      batch=sp.get("batch", int, 1), atol=float(sp.get("atol", (int, float), 0.0)),
                      justification=sp.get("justification", str, ""), simplify=sp.get("simplify", bool, True),
                      reshape=sp.get("reshape", bool, False))
    from hailo_qa.options import MAX_BATCH

    if not 1 <= split.batch <= MAX_BATCH:
        raise sp._err("batch", f"is {split.batch}", note=f"expected a batch size from 1 to {MAX_BATCH}")
    for key in ("cut", "end_nodes"):
        if key in sp.table and not getattr(split, key):
            raise sp._err(key, "is an empty list", note="expected tensor (cut) or node (end_nodes) names",
                          hint=f"remove {key}, or name at least one")
    sp.done()
    if split.mode == "explicit" and not (split.cut or split.end_nodes):
        raise ManifestError(f"{path}: {where}.split is explicit but names no cut tensors or end nodes",
                            note="expected cut = [tensor names] or end_nodes = [node names]",
                            hint="or use mode = \"auto\"")
    if split.atol < 0 or (split.atol > 0 and not split.justification.strip()):
        raise ManifestError(f"{path}: {where}.split.atol = {split.atol} has no written justification",
                            note="the equivalence proof is bit-exact by default; a tolerance needs a reason",
                            hint=f"add justification = \"why the pieces can differ\" to [{where}.split]")

    cr = _Reader(r.get("calibration", dict, {}), f"{where}.calibration", path)
    calib = CalibrationSpec(source=cr.get("source", str, "samples"), max_samples=cr.get("max_samples", int, None),
                            seed=cr.get("seed", int, 0), sizes=cr.numbers("sizes", (64,), ints=True),
                            augment=cr.get("augment", bool, False))
    if calib.max_samples is not None and calib.max_samples < 1:
        raise cr._err("max_samples", f"is {calib.max_samples}", note="expected a positive cap, or no key (no cap)")
    cr.done()
    _check_calibration(calib, cr)

    qr = _Reader(r.get("quantization", dict, {}), f"{where}.quantization", path)
    configs = qr.strings("configs", ("int8",))
    for c in configs:
        if c not in PRECISION_CONFIGS:
            raise qr._err("configs", f"names an unknown precision config {c!r}",
                          note=f"expected some of {list(PRECISION_CONFIGS)}")
    quant = QuantizationSpec(
        configs=configs, int16_layers=qr.strings("int16_layers"), suggest_k=qr.get("suggest_k", int, 3),
        calibration_method=qr.get("calibration_method", str, "minmax", choices=("minmax", "percentile")),
        weight_granularity=qr.get("weight_granularity", str, "per_channel", choices=("per_channel", "per_tensor")),
        optimization_level=qr.get("optimization_level", int, 2, choices=(0, 1, 2, 3, 4)),
        compression_level=qr.get("compression_level", int, 0, choices=(0, 1, 2, 3, 4, 5)),
        min_optimization_level=qr.get("min_optimization_level", int, 0, choices=(0, 1, 2, 3, 4)),
        on_lower_level=qr.get("on_lower_level", str, "warn", choices=("warn", "fail")),
        normalization=qr.get("normalization", str, "host", choices=("host", "on_chip")),
        int16_target=qr.get("int16_target", str, "snr_db", choices=INT16_TARGETS),
        int16_no_gain=qr.get("int16_no_gain", str, ""), agreement_inputs=qr.get("agreement_inputs", int, 0))
    if not 0 <= quant.agreement_inputs <= 65536:
        raise qr._err("agreement_inputs", f"is {quant.agreement_inputs}",
                      note="expected a count of held-out inputs from 1 to 65536 (or 0 / no key: the task's default)")
    qr.done()

    thresholds = _thresholds(r.get("thresholds", dict, {}), f"{where}.thresholds", path)
    deploy = _deploy(r.get("deploy", dict, None), f"{where}.deploy", path, base)
    host_step = _host_step(r.get("host_step", dict, None), f"{where}.host_step", path)
    samples: list[Path] = []
    for pattern in r.strings("samples"):
        p = resolve_path(pattern, base)
        hits = sorted(Path(h) for h in glob.glob(str(p))) if any(c in pattern for c in "*?[") else (
            [p] if p.exists() else [])
        if not hits and not pattern.startswith("shared:"):
            raise ManifestError(f"{path}: {where}.samples entry '{pattern}' matches no file",
                                note=f"expected a file or glob under {p.parent}", hint="fix the path")
        samples.extend(hits)
    variants = _variants(r.get("variants", list, []), where, path, base, quant, calib, file)
    ids = r.get("identities", dict, {})
    if any(not isinstance(v, str) for v in ids.values()):
        raise r._err("identities", "has a non-string value", note="expected file-stem = \"identity\" pairs")
    spec = ModelSpec(
        name=name, file=file, task=task, inputs=inputs, split=split, calibration=calib, quantization=quant,
        thresholds=thresholds, samples=tuple(samples), hef=hef, network_group=r.get("network_group", str, ""),
        hw_arch=r.get("hw_arch", str, "hailo8", choices=HW_ARCHS), licence=r.get("licence", str, ""),
        provenance=r.get("provenance", str, ""), identities=dict(ids), deploy=deploy, host_step=host_step,
        unavailable=why or (why_hef if file is None else ""), declared_variants=variants,
        family=family[0], family_member=family[1], manifest_path=path, raw=raw)
    r.done()
    return spec


def load_manifest(path: str | Path | None = None) -> Manifest:
    """Load and validate a manifest.

    Args:
        path: the TOML file. Defaults to :data:`hailo_qa.config.MANIFEST` (``fixtures/models.toml``).

    Raises:
        ManifestError: unreadable TOML, unknown keys, wrong types, missing files.
    """
    p = Path(path or config.MANIFEST).resolve()
    if p.is_dir():
        raise ManifestError(f"manifest '{p}' is a folder", note="expected a TOML file with [models.<name>] tables",
                            hint=f"pass the file, e.g. {p / 'models.toml'}")
    if not p.is_file():
        raise ManifestError(f"manifest '{p}' does not exist", note="expected a TOML file with [models.<name>] tables",
                            hint="pass --hqa-manifest PATH, or set HAILO_QA_MANIFEST")
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except OSError as err:
        raise ManifestError(f"manifest '{p}' cannot be read ({err.strerror or err})", note="expected a readable file",
                            hint="check the file's permissions") from err
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ManifestError(f"manifest '{p}' is not valid TOML: {err}", note="expected TOML syntax",
                            hint="check quotes, brackets and commas around the reported line") from err
    top = _Reader(raw, "<top>", p)
    models_raw = top.get("models", dict, {})
    top.get("schema", int, 1, choices=(1,))
    top.done()
    models = tuple(_model(n, m, p, p.parent, fam) for name, entry in models_raw.items()
                   for n, m, fam in _expand_family(name, entry, p))
    seen: set[str] = set()
    for spec in models:
        if spec.name in seen:
            raise ManifestError(f"{p}: model name '{spec.name}' is registered twice",
                                note="a family member is named <family>_<member>; another entry has that name",
                                hint="rename one of them")
        seen.add(spec.name)
    if not models:
        raise ManifestError(f"manifest '{p}' registers no models", note="expected at least one [models.<name>]",
                            hint="see the README section 'Register a model'")
    return Manifest(p, models)
