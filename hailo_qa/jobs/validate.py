"""``hailo-qa validate``: the main job — every registered model through lint, split, the bit-exact proof and
quantization emulation on the embedded default backend, as one table, with every figure in the history.

Steps per model (a failure in one model is recorded with its step and never stops the others):

1. **split**: the cached :func:`~hailo_qa.graph.split.split_for_model` (lint verdicts included: Stage 1 holds only
   ops the Hailo-8 rules accept);
2. **proof**: ``stage2(stage1(x), x) == model(x)`` bit-exactly (or within the manifest's justified ``split.atol``)
   on the registered samples and ``n_random`` random in-range inputs;
3. **emulate**: :func:`~hailo_qa.quant.evaluation.evaluate_quantization` (INT8 by default) gated by the manifest;
4. HEF-only entries: the HEF is read (:func:`~hailo_qa.hw.hef.read_hef`) and its target checked against ``hw_arch``.

Declared variants (``[[models.<m>.variants]]``) are validated one by one, each its own row (``model[variant]``) and
its own failure: emulator variants emulate at their precision, 16-bit layers and calibration size; HEF variants are
read and checked against ``hw_arch``. Family members are separate models already. Every run writes its own summary
(``<state>/validate/validate-<run>.json``); none is ever overwritten.
"""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hailo_qa.errors import QAError
from hailo_qa.manifest import ModelSpec


@dataclass(frozen=True)
class ModelValidation:
    """The outcome of one model: ``status`` is ``pass``, ``fail`` or ``skip``; ``failed_step`` names the step."""

    model: str
    status: str
    figures: dict[str, float] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    failed_step: str = ""
    error: str = ""
    backend: str = ""
    seconds: float = 0.0
    variant: str = ""  # the variant id ("" for the model's default run)
    config: str = ""  # the precision config emulated
    spec_name: str = ""  # the manifest model (``model`` is ``spec_name[variant]`` for a variant)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _proof(spec: ModelSpec, split, n_random: int, seed: int):
    """The proof on the registered samples and ``n_random`` random in-range inputs (a ProofResult)."""
    from hailo_qa.graph.verify import prove, reference_model
    from hailo_qa.inputs import host_feeds, random_feeds, sample_feeds

    rng = np.random.default_rng(seed)
    feeds = sample_feeds(spec) + [(f"random[{k}]", random_feeds(spec, rng)) for k in range(n_random)]
    ref = reference_model(spec.file, {i.name: i.shape for i in spec.inputs} if spec.split.reshape else None)
    return prove(ref, split, feeds, atol=spec.split.atol, host_feeds=host_feeds(spec))


def validate_model(spec: ModelSpec, *, work_dir: Path, config: str = "int8", calib_size: int | None = None,
                   backend: str = "auto", n_random: int = 2, seed: int = 0, reraise: bool = False,
                   variant=None, simplify: bool | None = None) -> ModelValidation:
    """Validate one manifest model (or one of its variants). Never raises: a :class:`QAError` — or any other
    exception, an internal error, unless ``reraise`` (``--debug``) — becomes a ``fail`` with its step, so one model
    (or variant) cannot sink the others. ``simplify`` overrides the manifest's ``split.simplify``
    (``--no-simplify``)."""
    if variant is not None:
        r = _validate(spec, work_dir=work_dir, config=variant.precision or config,
                      calib_size=variant.calib_size or calib_size, backend=backend, n_random=n_random, seed=seed,
                      reraise=reraise, variant=variant, simplify=simplify)
        return dataclasses.replace(r, model=f"{spec.name}[{variant.id}]", variant=variant.id, spec_name=spec.name,
                                   config=variant.precision)
    return dataclasses.replace(_validate(spec, work_dir=work_dir, config=config, calib_size=calib_size,
                                         backend=backend, n_random=n_random, seed=seed, reraise=reraise,
                                         simplify=simplify),
                               spec_name=spec.name, config=config)


def _validate(spec: ModelSpec, *, work_dir: Path, config: str, calib_size: int | None, backend: str, n_random: int,
              seed: int, reraise: bool = False, variant=None, simplify: bool | None = None) -> ModelValidation:
    t0 = time.perf_counter()
    if not spec.available:
        return ModelValidation(spec.name, "skip", notes=(spec.unavailable,))
    step = "split"
    figures: dict[str, float] = {}
    notes: list[str] = []
    backend_label = ""
    try:
        if variant is not None and variant.target == "hailo8":
            if not variant.available:
                return ModelValidation(spec.name, "skip", notes=(variant.unavailable,))
            step = "inspect"
            from hailo_qa.hw.hef import read_hef

            info = read_hef(variant.hef)
            info.check_runs_on(spec.hw_arch)
            figures["hef_mb"] = info.file_size / 2**20
            notes.append(f"{variant.label()}: {info.hw_arch} (SDK {info.sdk_version}); on-device checks run with "
                         f"pytest -m hailo8")
            return ModelValidation(spec.name, "pass", figures, tuple(notes), seconds=time.perf_counter() - t0)
        if spec.file is None:
            step = "inspect"
            from hailo_qa.hw.hef import read_hef

            info = read_hef(spec.hef)
            info.check_runs_on(spec.hw_arch)
            figures["hef_mb"] = info.file_size / 2**20
            notes.append(f"HEF-only: {info.hw_arch} (SDK {info.sdk_version}) runs on {spec.hw_arch}; on-device "
                         f"checks run with pytest -m hailo8")
            return ModelValidation(spec.name, "pass", figures, tuple(notes), seconds=time.perf_counter() - t0)
        from hailo_qa.graph.split import split_for_model
        from hailo_qa.quant.evaluation import evaluate_quantization

        split = split_for_model(spec, work_dir, simplify=simplify)
        figures["stage1_nodes"] = split.report["stage1"]["nodes"]
        figures["stage2_nodes"] = split.report["stage2"]["nodes"]
        figures["boundary_tensors"] = len(split.boundary)
        step = "proof"
        proof = _proof(spec, split, n_random, seed)
        figures["proof_inputs"] = len(proof.inputs)
        if proof.verdict == "kernel-last-bit":
            notes.append(f"proof: {proof.summary()}")
        if not proof:
            from hailo_qa.graph.split import discard_split

            discard_split(split)  # no cached stage files that look valid stay behind
            return ModelValidation(spec.name, "fail", figures, tuple(notes), "proof",
                                   str(proof.error().with_context(f"{spec.name} | proof")),
                                   seconds=time.perf_counter() - t0)
        step = "emulate"
        q = evaluate_quantization(spec, config=config, calib_size=calib_size or spec.calibration.sizes[0],
                                  backend=backend, work_dir=work_dir, split=split,
                                  int16_layers=variant.int16_layers if variant is not None else ())
        backend_label = q.backend_label()
        figures.update({f"{config}.{k}": float(v) for k, v in q.metrics.items()})
        figures["calib_size"] = q.calib_size
        figures["calib_real"] = q.calib_real
        figures["calib_augmented"] = q.calib_augmented
        if q.calib_requested > q.calib_size:
            notes.append(f"calibration: {q.calib_requested} requested, {q.calib_real} real found, augmentation off "
                         f"(opt in with [calibration] augment = true)")
        notes.extend(q.notes)
        notes.extend(f"not gated: {n}" for n in q.not_gated)
        if q.vs_int8:
            notes.append(q.int16_verdict())
        if q.failed:
            return ModelValidation(spec.name, "fail", figures, tuple(notes), "emulate",
                                   f"failed the manifest gate: {', '.join(q.failed)}\n{q.table()}",
                                   backend_label, time.perf_counter() - t0)
        return ModelValidation(spec.name, "pass", figures, tuple(notes), backend=backend_label,
                               seconds=time.perf_counter() - t0)
    except QAError as err:
        return ModelValidation(spec.name, "fail", figures, tuple(notes), step, str(err), backend_label,
                               time.perf_counter() - t0)
    except Exception as err:  # noqa: BLE001 - a bug must not sink the other models' results
        if reraise:
            raise
        return ModelValidation(spec.name, "fail", figures, tuple(notes), step,
                               f"internal error: {type(err).__name__}: {err}{_where(err)}\n"
                               "Note: this is a bug in hailo-qa; the other models were validated and recorded.\n"
                               "Hint: rerun this model with --debug (hailo-qa --debug validate --models "
                               f"{spec.name}) and report the traceback.", backend_label, time.perf_counter() - t0)


def _where(err: BaseException) -> str:
    import traceback

    frames = traceback.extract_tb(err.__traceback__)
    return f" (at {Path(frames[-1].filename).name}:{frames[-1].lineno} in {frames[-1].name})" if frames else ""


def jobs(models: Sequence[ModelSpec]) -> list[tuple[ModelSpec, Any]]:
    """(model, variant) pairs to validate: each declared variant, else the model's default run (variant None)."""
    return [(s, v) for s in models for v in (s.declared_variants or (None,))]


def validate(models: Sequence[ModelSpec], *, work_dir: Path, config: str = "int8", calib_size: int | None = None,
             backend: str = "auto", progress: Callable[[str], None] | None = None,
             reraise: bool = False, simplify: bool | None = None) -> list[ModelValidation]:
    """:func:`validate_model` for every model and variant (one failure never stops the others)."""
    out = []
    todo = jobs(models)
    for i, (spec, variant) in enumerate(todo, 1):
        name = spec.name if variant is None else f"{spec.name}[{variant.id}]"
        if progress:
            progress(f"[{i}/{len(todo)}] {name} …")
        out.append(validate_model(spec, work_dir=work_dir, config=config, calib_size=calib_size, backend=backend,
                                  reraise=reraise, variant=variant, simplify=simplify))
        if progress:
            r = out[-1]
            progress(f"[{i}/{len(todo)}] {name}: {r.status}"
                     + (f" ({r.failed_step})" if r.failed_step else "") + f" in {r.seconds:.1f} s")
    return out


def write_summary(results: Sequence[ModelValidation], out_dir: Path, *, run_id: str, config: str) -> Path:
    """``out_dir/validate-<run_id>.json`` (a new file per run; an existing one is never overwritten)."""
    import json

    from hailo_qa.fsutil import atomic_write, ensure_dir

    ensure_dir(out_dir, "the validate summary folder")
    path = out_dir / f"validate-{run_id}.json"
    n = 1
    while path.exists():
        n += 1
        path = out_dir / f"validate-{run_id}-{n}.json"
    doc = {"run_id": run_id, "config": config, "ok": not any(r.status == "fail" for r in results),
           "results": [r.to_dict() for r in results]}
    atomic_write(path, json.dumps(doc, indent=2, default=str))
    return path


def render(results: Sequence[ModelValidation], config: str) -> str:
    head = (f"{'model':<26} {'result':<7} {'stage1/host nodes':>17} {'bound.':>6} {'proof':>11} "
            f"{'SNR dB':>7} {'cos min':>8} {'agree':>6}  backend")
    lines = [head, "-" * len(head)]
    for r in results:
        f = r.figures
        nodes = f"{int(f['stage1_nodes'])}/{int(f['stage2_nodes'])}" if "stage1_nodes" in f else "-"
        proof = (f"exact×{int(f['proof_inputs'])}" if "proof_inputs" in f and r.failed_step != "proof" else
                 ("FAILED" if r.failed_step == "proof" else "-"))
        c = r.config or config
        agree = f.get(f"{c}.detection_agreement", f.get(f"{c}.top1"))
        lines.append(f"{r.model:<26} {r.status.upper():<7} {nodes:>17} {int(f.get('boundary_tensors', 0)) or '-':>6} "
                     f"{proof:>11} {_num(f.get(f'{c}.snr_db')):>7} {_num(f.get(f'{c}.cosine'), 4):>8} "
                     f"{_num(agree, 2):>6}  {r.backend or '-'}")
    for r in results:
        for n in r.notes:
            lines.append(f"  {r.model}: {n}")
        if r.error:
            lines.append(f"  {r.model}: failed at {r.failed_step}: " + r.error.replace("\n", "\n    "))
    return "\n".join(lines)


def _num(v, digits: int = 1) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def record(results: Sequence[ModelValidation], history_path: str | Path, *, config: str,
           run_id: str | None = None) -> str:
    """Append every figure to the history (a variant's rows carry its id); returns the run id."""
    from hailo_qa.store.history import History, make_row, new_run_id

    run_id = run_id or new_run_id()
    rows = []
    for r in results:
        c = r.config or config
        model = r.spec_name or r.model
        for metric, value in r.figures.items():
            cfg = c if metric.startswith(f"{c}.") else ""
            rows.append(make_row(run_id=run_id, model=model, metric=metric.removeprefix(f"{c}."),
                                 value=value, target="emulator" if cfg else "float", config=cfg,
                                 calib_size=int(r.figures["calib_size"]) if cfg and "calib_size" in r.figures else None,
                                 variant=r.variant, stage="validate", extra={"backend": r.backend},
                                 nodeid="hailo-qa validate"))
        rows.append(make_row(run_id=run_id, model=model, metric="validate_pass",
                             value=1.0 if r.status == "pass" else 0.0, target="validate", stage="validate",
                             variant=r.variant, extra={"status": r.status, "failed_step": r.failed_step},
                             nodeid="hailo-qa validate"))
    with History(history_path) as h:
        h.record_many(rows)
        for r in results:
            h.record_outcome(run_id, f"hailo-qa validate::{r.model}",
                             {"pass": "passed", "fail": "failed", "skip": "skipped"}[r.status])
    return run_id
