"""The golden-output store: ``golden/<model>/<target>/<name>.npz`` + ``<name>.meta.json``, with provenance.

Semantics follow pytest-regressions (see :func:`check_golden`):

- a missing golden is written and reported as ``created`` (the fixture fails: "golden created: <path>; re-run to
  compare");
- a golden whose *identity* provenance (model hash, stage hash, model-script hash, calibration size/hash, backend,
  precision config) differs from this run is **refused** with a :class:`~hailo_qa.errors.RegressionError` naming what
  differs — a diff against outputs of another model would only mislead;
- a mismatch writes ``<name>.obtained.npz`` beside the golden and reports per-output statistics;
- ``update`` mode rewrites goldens that are missing, differ or were refused (the test fails naming the files), and
  ``regen`` mode rewrites every golden (the test passes).

Writes are atomic: each file is written to a temp file in the same directory, flushed, fsynced and ``os.replace``-d,
npz first, then meta. The meta records the npz's sha256, so a crash between the two replaces (a half-pair) is
detected on the next read and reported as a :class:`GoldenError` instead of comparing against mismatched files.
Temp names are unique (``tempfile.mkstemp``), so concurrent xdist workers writing different goldens never collide.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import io
import json
import os
import re
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hailo_qa.errors import InputDataError, InputFileError, QAError, RegressionError

META_SCHEMA = 1

IDENTITY_KEYS: tuple[str, ...] = ("model_sha256", "stage_sha256", "model_script_sha256", "calib_size",
                                  "calib_sha256", "backend_name", "backend_config")
"""Provenance keys that must match for a comparison to be meaningful. Versions and the manifest digest are
recorded but not compared: a toolchain upgrade is exactly what a golden comparison is meant to catch."""

MODES = ("compare", "update", "regen")

_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+\-]*$")


class GoldenError(InputFileError):
    """A golden file is corrupt, half-written, or its name is unusable."""


@dataclass(frozen=True)
class GoldenPaths:
    """Where one golden lives.

    Attributes:
        npz: the golden arrays.
        meta: the provenance JSON (carries the npz's sha256).
        obtained: where a mismatching run's outputs are written.
    """

    npz: Path
    meta: Path
    obtained: Path


@dataclass(frozen=True)
class GoldenOutcome:
    """What :func:`check_golden` did.

    Attributes:
        status: ``match``, ``created``, ``mismatch``, ``updated`` or ``regenerated``.
        paths: the golden's paths.
        message: human-readable summary (per-output statistics for a mismatch).
        written: files written by this check.
        passed: whether the calling test should pass.
    """

    status: str
    paths: GoldenPaths
    message: str
    written: tuple[Path, ...] = ()
    result: Any = field(default=None, repr=False)

    @property
    def passed(self) -> bool:
        return self.status in ("match", "regenerated")


def _check_part(kind: str, value: str) -> str:
    if not value or not _SAFE.match(value) or ".." in value:
        raise GoldenError(f"golden {kind} {value!r} cannot be used in a file name",
                          note="expected letters, digits, '.', '_', '+', '-' (not starting with '.', no '..')",
                          hint=f"pass a simpler {kind}, e.g. 'sample0' or 'emulator-ort-int8'")
    return value


def golden_paths(root: str | Path, model: str, target: str, name: str) -> GoldenPaths:
    """Paths of golden ``name`` of ``model`` on ``target`` under ``root``.

    Raises:
        GoldenError: a part contains a path separator or other unsafe characters.
    """
    d = Path(root) / _check_part("model", model) / _check_part("target", target)
    n = _check_part("name", name)
    return GoldenPaths(d / f"{n}.npz", d / f"{n}.meta.json", d / f"{n}.obtained.npz")


# ------------------------------------------------------------------------------------------------ hashing / provenance
_FILE_HASH_CACHE: dict[tuple[str, int, int], str] = {}


def sha256_file(path: str | Path) -> str:
    """sha256 of a file's bytes (cached per path/size/mtime: model files are hashed once per process)."""
    p = Path(path)
    st = p.stat()
    key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _FILE_HASH_CACHE:
        h = hashlib.sha256()
        with p.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        _FILE_HASH_CACHE[key] = h.hexdigest()
    return _FILE_HASH_CACHE[key]


def utc_now() -> str:
    """Current UTC time, ISO 8601 with seconds (``2026-11-21T12:00:00+00:00``)."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def build_provenance(model, backend, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Provenance of a set of outputs.

    Args:
        model: the :class:`~hailo_qa.manifest.ModelSpec` the outputs come from.
        backend: the :class:`~hailo_qa.runners.base.BackendInfo` that produced them.
        extra: more provenance. Recognised keys: ``stage_sha256`` / ``stage_path`` (hashed),
            ``model_script_sha256`` / ``model_script`` (the .alls text, hashed), ``calib_size``, ``calib_sha256``,
            ``device``. Anything else is stored as given. Defaults to none.

    Returns:
        A JSON-serialisable dict with ``model``, ``model_sha256``, ``manifest_digest``, ``backend`` (the BackendInfo
        dict), ``backend_name``, ``backend_config``, ``toolchain`` (:func:`hailo_qa.toolchain.versions`), ``device``
        and ``created`` (UTC ISO), plus the keys of ``extra``.
    """
    from hailo_qa import toolchain

    extra = dict(extra or {})
    prov: dict[str, Any] = {
        "model": model.name,
        "model_sha256": sha256_file(model.file) if model.file is not None and Path(model.file).is_file() else None,
        "manifest_digest": model.digest(),
        "backend": backend.to_dict(),
        "backend_name": backend.name,
        "backend_config": backend.config,
        "toolchain": toolchain.versions(),
        "device": extra.pop("device", None) or backend.details.get("device"),
        "created": utc_now(),
    }
    stage_path = extra.pop("stage_path", None)
    if stage_path is not None and "stage_sha256" not in extra:
        extra["stage_sha256"] = sha256_file(stage_path)
        extra["stage_path"] = str(stage_path)
    script = extra.pop("model_script", None)
    if script is not None and "model_script_sha256" not in extra:
        extra["model_script_sha256"] = hashlib.sha256(str(script).encode()).hexdigest()
    for key in ("calib_size", "calib_sha256"):
        if key not in extra and key in backend.details:
            extra[key] = backend.details[key]
    prov.update(extra)
    return json.loads(json.dumps(prov, default=str))  # canonical, JSON-safe


def identity_diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Identity keys whose values differ between two provenance dicts (missing on one side counts as None)."""
    return {k: (old.get(k), new.get(k)) for k in IDENTITY_KEYS if old.get(k) != new.get(k)}


# ------------------------------------------------------------------------------------------------------------ I/O
def _atomic_write(path: Path, write: Callable[[io.BufferedWriter], None],
                  replace: Callable[[str, str], None] | None = None) -> None:
    """Write via a unique temp file in ``path``'s directory, fsync, then ``os.replace``. Removes the temp on error."""
    from hailo_qa.fsutil import atomic_write

    atomic_write(path, write, fsync=True, replace=replace or (lambda a, b: os.replace(a, b)))


def _npz_bytes_writer(outputs: Mapping[str, np.ndarray]) -> Callable[[io.BufferedWriter], None]:
    def write(f) -> None:
        np.savez(f, **{k: np.asarray(v) for k, v in outputs.items()})
    return write


def validate_outputs(outputs: Mapping[str, Any], *, context: str = "golden") -> dict[str, np.ndarray]:
    """Outputs as a name → ndarray dict; rejects an empty mapping, non-string names and object arrays."""
    if not isinstance(outputs, Mapping) or not outputs:
        raise InputDataError("outputs to store as a golden are empty or not a mapping",
                             note="expected a non-empty dict of output name -> numpy array",
                             hint="pass runner.infer(feeds) (a dict), not a list", context=context)
    out = {}
    for k, v in outputs.items():
        arr = np.asarray(v)
        if not isinstance(k, str) or arr.dtype == object:
            raise InputDataError(f"output {k!r} cannot be stored (name type {type(k).__name__}, dtype {arr.dtype})",
                                 note="expected string names and numeric/bool arrays",
                                 hint="convert outputs with np.asarray(..., dtype=np.float32)", context=context)
        out[k] = arr
    return out


def write_golden(paths: GoldenPaths, outputs: Mapping[str, np.ndarray], provenance: Mapping[str, Any]) -> None:
    """Write a golden pair (npz + meta, which records the npz's sha256 and output names) as one transaction.

    :func:`hailo_qa.fsutil.atomic_write_group`: a crash or ``kill -9`` at any moment leaves the old pair or the new
    pair (finished by the next read), never a mix, and no temp file.
    """
    arrays = validate_outputs(outputs)
    buf = io.BytesIO()
    _npz_bytes_writer(arrays)(buf)
    data = buf.getvalue()
    meta = {"schema": META_SCHEMA, "npz_sha256": hashlib.sha256(data).hexdigest(),
            "outputs": {k: {"shape": list(a.shape), "dtype": str(a.dtype)} for k, a in arrays.items()},
            "provenance": dict(provenance)}
    meta_bytes = (json.dumps(meta, indent=2, sort_keys=True, default=str) + "\n").encode()
    from hailo_qa.fsutil import atomic_write_group

    atomic_write_group({paths.npz: data, paths.meta: meta_bytes})  # the pair changes together, even under kill -9


def write_obtained(paths: GoldenPaths, outputs: Mapping[str, np.ndarray]) -> Path:
    """Write this run's outputs to ``<name>.obtained.npz`` (atomically)."""
    _atomic_write(paths.obtained, _npz_bytes_writer(validate_outputs(outputs)))
    return paths.obtained


@dataclass(frozen=True)
class Golden:
    """A golden read from disk."""

    outputs: dict[str, np.ndarray]
    meta: dict[str, Any]

    @property
    def provenance(self) -> dict[str, Any]:
        return self.meta.get("provenance", {})


def read_golden(paths: GoldenPaths) -> Golden | None:
    """Read a golden pair; ``None`` when neither file exists.

    Raises:
        GoldenError: only one of the pair exists, the npz does not match the meta's sha256 (an interrupted update),
            or either file is corrupt.
    """
    from hailo_qa.fsutil import group_read_lock

    with group_read_lock([paths.npz, paths.meta]):  # finishes an interrupted update first
        return _read_golden(paths)


def _read_golden(paths: GoldenPaths) -> Golden | None:
    for p in (paths.npz, paths.meta):
        if p.is_dir():
            raise GoldenError(f"golden '{p}' is a folder", note="expected a file (or nothing) there",
                              hint="remove or rename the folder")
    has_npz, has_meta = paths.npz.is_file(), paths.meta.is_file()
    if not has_npz and not has_meta:
        return None
    regen = "re-create it with --hqa-update-golden (or restore both files from version control)"
    if has_npz != has_meta:
        present, absent = (paths.npz, paths.meta) if has_npz else (paths.meta, paths.npz)
        raise GoldenError(f"golden '{present}' has no partner '{absent.name}' (half-written pair)",
                          note="expected <name>.npz and <name>.meta.json side by side", hint=regen)
    try:
        meta = json.loads(paths.meta.read_text(encoding="utf-8"))
        if not isinstance(meta, dict) or not isinstance(meta.get("npz_sha256"), str):
            raise ValueError("no 'npz_sha256' string")
        if not isinstance(meta.get("provenance", {}), dict) or not isinstance(meta.get("outputs", {}), dict):
            raise ValueError(f"'provenance' and 'outputs' must be JSON objects, got "
                             f"{type(meta.get('provenance')).__name__} and {type(meta.get('outputs')).__name__}")
        wrong = {k: v for k, v in meta.get("provenance", {}).items()
                 if k in IDENTITY_KEYS and not isinstance(v, (str, int, float, type(None)))}
        if wrong:
            raise ValueError(f"provenance field(s) of the wrong type: "
                             + ", ".join(f"{k} = {v!r} ({type(v).__name__})" for k, v in wrong.items()))
    except (ValueError, UnicodeDecodeError, OSError) as err:
        raise GoldenError(f"golden meta '{paths.meta}' is corrupt: {err}",
                          note="expected the JSON written by hailo-qa with an 'npz_sha256' key", hint=regen) from err
    data = paths.npz.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != meta["npz_sha256"]:
        raise GoldenError(f"golden '{paths.npz}' does not match its meta (sha256 {digest[:12]}… != recorded "
                          f"{str(meta['npz_sha256'])[:12]}…): a half-written update or a hand edit",
                          note="expected the npz whose sha256 the meta records", hint=regen)
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            outputs = {k: z[k] for k in z.files}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as err:
        raise GoldenError(f"golden '{paths.npz}' is not a readable npz: {err}", note="expected a numpy .npz",
                          hint=regen) from err
    return Golden(outputs, meta)


# ---------------------------------------------------------------------------------------------------- comparison
def _structure_diff(ref: Mapping[str, np.ndarray], test: Mapping[str, np.ndarray]) -> list[str]:
    """Differences in names / shapes / dtypes (count → names → shape → dtype), one line each."""
    lines = []
    missing, extra = sorted(set(ref) - set(test)), sorted(set(test) - set(ref))
    if missing or extra:
        lines.append(f"output names differ: missing {missing or 'none'}, unexpected {extra or 'none'}")
    for k in sorted(set(ref) & set(test)):
        r, t = ref[k], test[k]
        if r.shape != t.shape:
            lines.append(f"output '{k}': shape {tuple(t.shape)} != golden {tuple(r.shape)}")
        elif r.dtype != t.dtype and not (np.issubdtype(r.dtype, np.number) and np.issubdtype(t.dtype, np.number)):
            lines.append(f"output '{k}': dtype {t.dtype} != golden {r.dtype}")
    return lines


def compare_to_golden(ref: Mapping[str, np.ndarray], test: Mapping[str, np.ndarray], *, atol: float = 0.0,
                      rtol: float = 0.0, min_cosine: float | None = None) -> tuple[bool, str, Any]:
    """Compare outputs with a golden: structure first, then values via :func:`hailo_qa.evaluate.compare.compare_outputs`.

    Returns:
        (passed, report text, the CompareResult or None when the structure already differs).
    """
    problems = _structure_diff(ref, test)
    if problems:
        return False, "\n".join(problems), None
    from hailo_qa.evaluate.compare import compare_outputs

    result = compare_outputs(ref, test, atol=atol, rtol=rtol, min_cosine=min_cosine)
    return bool(result), str(result), result


def _fmt(v: Any) -> str:
    s = str(v)
    return s[:16] + "…" if len(s) > 20 else s


def check_golden(outputs: Mapping[str, np.ndarray], *, root: str | Path, model, target: str, name: str, backend,
                 provenance: Mapping[str, Any] | None = None, atol: float = 0.0, rtol: float = 0.0,
                 min_cosine: float | None = None, mode: str = "compare") -> GoldenOutcome:
    """Compare ``outputs`` with a stored golden, creating or rewriting it as ``mode`` says.

    Args:
        outputs: output name → array.
        root: golden store root (``golden/``).
        model: the ModelSpec.
        target: ``float``, ``emulator-ort-int8``, ``hailo8`` ...
        name: the golden's name within model/target (e.g. ``sample0``).
        backend: the BackendInfo that produced ``outputs``.
        provenance: extra provenance (see :func:`build_provenance`). Defaults to none.
        atol: absolute tolerance. Defaults to 0.
        rtol: relative tolerance. Defaults to 0.
        min_cosine: minimum per-output cosine similarity. Defaults to none.
        mode: ``compare`` (default), ``update`` (rewrite what is missing/different; fail) or ``regen`` (rewrite all;
            pass).

    Raises:
        RegressionError: in ``compare`` mode, the golden's identity provenance differs from this run's.
        GoldenError: the golden pair is corrupt or half-written (``compare`` mode only; other modes rewrite it).
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    arrays = validate_outputs(outputs, context=f"{model.name} | golden {target}/{name}")
    paths = golden_paths(root, model.name, target, name)
    prov = build_provenance(model, backend, provenance)
    ctx = f"{model.name} | golden {target}/{name}"

    if mode == "regen":
        write_golden(paths, arrays, prov)
        return GoldenOutcome("regenerated", paths, f"golden regenerated: {paths.npz}", (paths.npz, paths.meta))

    try:
        golden = read_golden(paths)
    except GoldenError as err:
        if mode != "update":
            raise err.with_context(ctx)
        golden = None
    if golden is None:
        write_golden(paths, arrays, prov)
        status = "updated" if mode == "update" else "created"
        msg = (f"golden rewritten: {paths.npz}, {paths.meta} (review and commit)" if mode == "update" else
               f"golden created: {paths.npz}; re-run to compare")
        return GoldenOutcome(status, paths, msg, (paths.npz, paths.meta))

    diff = identity_diff(golden.provenance, prov)
    if diff and mode == "compare":
        rows = "; ".join(f"{k}: golden {_fmt(o)} vs now {_fmt(n)}" for k, n_o in diff.items() for o, n in [n_o])
        try:  # shown for information only: the verdict is the provenance mismatch, not these numbers
            _, info, _ = compare_to_golden(golden.outputs, arrays, atol=atol, rtol=rtol, min_cosine=min_cosine)
            info = "\nFor information only (not comparable), the outputs against that golden:\n" + info
        except QAError:
            info = ""
        raise RegressionError(
            f"refusing to compare with golden '{paths.npz}': its provenance differs ({rows}){info}",
            note="a golden is only comparable with outputs of the same model, stage, model script, calibration "
                 "and backend configuration; a pass/fail verdict on that diff would mislead",
            hint="if the change is intended, re-run with --hqa-update-golden, review and commit the new golden",
            context=ctx)

    passed, report, result = compare_to_golden(golden.outputs, arrays, atol=atol, rtol=rtol, min_cosine=min_cosine)
    if passed and not diff:
        if paths.obtained.exists():
            paths.obtained.unlink()
        return GoldenOutcome("match", paths, f"matches golden {paths.npz}", (), result)
    if mode == "update":
        write_golden(paths, arrays, prov)
        if paths.obtained.exists():
            paths.obtained.unlink()
        why = "provenance changed" if diff else "outputs changed"
        return GoldenOutcome("updated", paths, f"golden rewritten ({why}): {paths.npz}, {paths.meta} "
                                               f"(review and commit)\n{report}", (paths.npz, paths.meta), result)
    obtained = write_obtained(paths, arrays)
    tol = f"atol={atol} rtol={rtol}" + (f" min_cosine={min_cosine}" if min_cosine is not None else "")
    msg = (f"{ctx}: outputs differ from golden {paths.npz} ({tol})\n{report}\n"
           f"obtained outputs written to {obtained}\n"
           f"Hint: if the change is intended, re-run with --hqa-update-golden, review and commit.")
    return GoldenOutcome("mismatch", paths, msg, (obtained,), result)
