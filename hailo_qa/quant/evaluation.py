"""Quantized Stage 1 vs float Stage 1 for one model, precision config and calibration size.

Used by ``hailo-qa emulate``, ``hailo-qa sweep-calib`` and ``tests/test_emulator_quant.py`` (the metric and
gate-table helpers).

Evaluation inputs (:func:`eval_feeds`, shared by ``emulate``, ``sweep-calib``, ``validate`` and
``tests/test_emulator_quant.py``, so a gate means the same thing everywhere), never the calibration set itself:

1. the manifest's ``samples`` that are not real items of the calibration set (e.g. the FSQ classifier's held-out
   IMU windows, calibrated on another file);
2. then, up to ``n_eval``, held-out *augmentations* of the manifest's real images: the calibration pipeline re-run with seed
   ``calibration.seed + 1000`` (new crops, flips and brightness of the same photos — a model registers few photos,
   so the photos themselves are shared with calibration, the pixels are not);
3. seeded random feeds inside the declared ``range`` only for a model with no samples at all.

:attr:`QuantEval.eval_inputs` names every input used.

Metrics (all over the Stage-1 outputs, i.e. what runs on the Hailo):

- ``snr_db``: ``10·log10(Σref² / Σ(ref−test)²)`` over every output of every evaluation input;
- ``cosine`` / ``cosine_mean``: per (input, output) cosine similarity, the worst and the mean;
- ``max_abs_err``: the largest absolute difference;
- ``top1`` (``task = "classification"``): top-1 agreement of the final logits, float pipeline vs quantized
  pipeline (Stage 1 then the host Stage 2: a classifier's Stage 1 may end before its head, e.g. FSQ);
- ``detection_agreement`` (``task = "detection"`` with a Stage 2): float pipeline vs quantized pipeline
  (:func:`hailo_qa.graph.verify.pipeline_for`): the share of the float pipeline's detections (score ≥ 0.5) the
  quantized one finds with the same label at IoU ≥ 0.5, pooled over the agreement inputs and the registered
  photos themselves (end to end on DEIMv2's sample photo, as a user checks it).

Agreement metrics are judged on their own, larger held-out set (:func:`agreement_feeds`, :data:`AGREEMENT_N`
inputs: four inputs say nothing about a 0.9 agreement) and gated on the 95 % Wilson lower bound
(:class:`hailo_qa.evaluate.deploy.AgreementGate`); a count too small to show the gate even with no disagreement is
refused with the count it needs, never passed.

``int16_selective`` is measured against int8 at the same calibration size on the same inputs
(:attr:`QuantEval.vs_int8`): when it does not raise ``quantization.int16_target`` (default ``snr_db``) the result
says "int16_selective did not help" with both values and fails, unless the manifest records that outcome
(``quantization.int16_no_gain = "measured …"``), in which case it is reported.

Every :class:`QuantEval` names the backend that produced it; ``ort-emulator`` numbers are hailo-qa's approximation
of Hailo numerics, never Hailo's.
"""
from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hailo_qa.errors import InputDataError
from hailo_qa.evaluate import metrics

EVAL_SALT = 0xE7A1
"""Salt of the random evaluation feeds' generator (distinct from the calibration augmentation's)."""

GATES = {"snr_db": "min_snr_db", "cosine": "min_cosine", "top1": "min_top1",
         "detection_agreement": "min_detection_agreement"}
"""Metric → manifest key of its gate in ``[models.<name>.thresholds.emulator.<config>]``."""

METRIC_LABELS = {"snr_db": "SNR dB", "cosine": "cosine min", "cosine_mean": "cosine mean",
                 "max_abs_err": "max abs err", "top1": "top-1 agreement", "detection_agreement": "detection agree"}

AGREEMENT_N = {"classification": 256, "detection": 16, "face_detection": 4}
"""Held-out inputs the agreement metrics are judged on, per task (``face_detection`` heads decoded at a Model Zoo
cut count as ``detection``). Classification: 256 inputs, a perfect result's 95 % lower bound is 0.985 (one flip:
0.978) and a small classifier runs them in about a second. Detection: 16 images — each costs ~0.5 s of float plus
quantized DEIMv2 on the shared 2-core CI box (measured), and on DEIMv2 (2 reference detections an image) they hold
32 detections, whose perfect lower bound is 0.89: enough to show gates up to 0.89 (a gate asking more is refused
with the count it needs). Face detection (YuNet's outputs decoded on the host): the 4 SNR inputs, reported with
their interval — no registered face detector gates agreement, and a gate would be refused below 12 faces for 0.75.
``quantization.agreement_inputs`` in the manifest sets another count for a model."""

ORT_NOTE = "hailo-qa's ONNX Runtime approximation of Hailo numerics, not Hailo's"
DFC_NOTE = "Hailo Dataflow Compiler emulator (Hailo's numerics)"

Outputs = Mapping[str, np.ndarray]


# --------------------------------------------------------------------------------------------------------------
# pure metric and table helpers (also used by tests/test_emulator_quant.py)
# --------------------------------------------------------------------------------------------------------------
def end_to_end_top1(ref: Sequence[Outputs], test: Sequence[Outputs]) -> float:
    """Top-1 agreement of the last model output (the logits), float vs quantized pipeline."""
    last = list(ref[0])[-1]
    r = np.concatenate([np.asarray(o[last]).reshape(1, -1) for o in ref])
    t = np.concatenate([np.asarray(o[last]).reshape(1, -1) for o in test])
    return float(metrics.top1_agreement(r, t))


def stage1_metrics(ref: Sequence[Outputs], test: Sequence[Outputs], *, classifier: bool = False) -> dict[str, float]:
    """Float vs quantized Stage-1 outputs over the same evaluation inputs.

    Args:
        ref: per evaluation input, the float outputs ``{name: array}``.
        test: per evaluation input, the quantized outputs, same names and shapes.
        classifier: add ``top1`` (agreement of the last output's argmax). Defaults to False.

    Returns:
        ``snr_db``, ``cosine`` (worst), ``cosine_mean``, ``max_abs_err``, with several outputs also
        ``snr_db/<output>`` and ``cosine/<output>`` per output, and, for classifiers, ``top1``.

    Raises:
        InputDataError: no inputs, different counts, or outputs that do not match.
    """
    if not ref or len(ref) != len(test):
        raise InputDataError(f"stage1_metrics got {len(ref)} reference and {len(test)} test results",
                             note="expected the same non-zero number of evaluation inputs on both sides")
    names = list(ref[0])
    for k, (r, t) in enumerate(zip(ref, test)):
        if set(r) != set(t):
            raise InputDataError(f"evaluation input {k}: outputs {sorted(t)} differ from the reference {sorted(r)}",
                                 note="expected the same Stage-1 outputs from both runners")

    def flat(outs: Sequence[Outputs]) -> np.ndarray:
        return np.concatenate([np.asarray(o[n], np.float64).ravel() for o in outs for n in names])

    fr, ft = flat(ref), flat(test)
    cos = [float(metrics.cosine_similarity(np.asarray(r[n], np.float64).ravel(),
                                           np.asarray(t[n], np.float64).ravel(), axis=None))
           for r, t in zip(ref, test) for n in names]
    out = {"snr_db": float(metrics.snr_db(fr, ft)), "cosine": float(np.min(cos)), "cosine_mean": float(np.mean(cos)),
           "max_abs_err": float(metrics.max_abs_error(fr, ft))}
    if len(names) > 1:  # per output too: a raw-head detector's heads are its task outputs
        for n in names:
            rn = np.concatenate([np.asarray(o[n], np.float64).ravel() for o in ref])
            tn = np.concatenate([np.asarray(o[n], np.float64).ravel() for o in test])
            out[f"snr_db/{n}"] = float(metrics.snr_db(rn, tn))
            out[f"cosine/{n}"] = float(np.min([metrics.cosine_similarity(np.asarray(r[n], np.float64).ravel(),
                                                                          np.asarray(t[n], np.float64).ravel(),
                                                                          axis=None) for r, t in zip(ref, test)]))
    if classifier:
        last = names[-1]
        out["top1"] = float(np.mean([metrics.top1_agreement(np.asarray(r[last]).reshape(1, -1),
                                                            np.asarray(t[last]).reshape(1, -1))
                                     for r, t in zip(ref, test)]))
    return out


def yunet_faces(outputs: Outputs, hw: tuple[int, int]) -> dict[str, np.ndarray]:
    """YuNet's raw outputs as detections (``boxes``/``labels``/``scores``; label 0 = face), decoded as OpenCV's
    ``FaceDetectorYN`` does: score ≥ 0.6, NMS at IoU 0.3, in network-input pixels.

    Raises:
        InputDataError: the outputs are not YuNet's (names or sizes).
    """
    from hailo_qa.evaluate.faces import decode_yunet, nms

    boxes, scores, _ = decode_yunet(outputs, input_size=hw)
    keep = nms(boxes, scores)
    return {"boxes": boxes[keep], "labels": np.zeros(len(keep), np.int64), "scores": scores[keep]}


def detection_metrics(ref: Sequence[Outputs], test: Sequence[Outputs], *, iou: float = 0.5) -> dict[str, float]:
    """Mean detection agreement (same label, IoU ≥ ``iou``) of end-to-end float vs quantized outputs."""
    if not ref or len(ref) != len(test):
        raise InputDataError(f"detection_metrics got {len(ref)} reference and {len(test)} test results",
                             note="expected the same non-zero number of evaluation inputs on both sides")
    return {"detection_agreement": float(np.mean([metrics.detection_agreement(r, t, iou=iou).agreement
                                                  for r, t in zip(ref, test)]))}


def gates_for(spec, config: str) -> dict[str, float]:
    """The manifest's emulator gates of ``spec`` at ``config``: ``{metric: minimum}`` (gated metrics only)."""
    out = {}
    for metric, key in GATES.items():
        limit = spec.threshold(f"emulator.{config}", key)
        if limit is not None:
            out[metric] = float(limit)
    return out


def gate_ok(value: float, limit: float | None) -> bool:
    """True when there is no gate, or ``value`` is a number at or above it (NaN fails a gate)."""
    return limit is None or (not math.isnan(value) and value >= limit)


def agreement_gates(agreement: Mapping[str, Mapping[str, Any]], gates: Mapping[str, float]) -> dict:
    """``{metric: AgreementGate}`` for the counted agreement metrics, each with its manifest gate (or none)."""
    from hailo_qa.evaluate.deploy import AgreementGate

    return {m: AgreementGate(int(a["successes"]), int(a["trials"]), gates.get(m), str(a.get("unit", "inputs")))
            for m, a in agreement.items()}


def gate_rows(values: Mapping[str, float], gates: Mapping[str, float],
              agreement: Mapping[str, Mapping[str, Any]] | None = None) -> tuple[list[str], list[str]]:
    """Table rows ``metric  value  gate  ok/FAIL`` and the names of the metrics below their gate.

    A counted agreement metric (``agreement``: successes and trials) is judged on its 95 % Wilson lower bound, and
    ``NOT GATED`` (never failed, never passed) when its count cannot show the gate."""
    rows, failed = [], []
    judged = agreement_gates(agreement or {}, gates)
    for metric, value in values.items():
        limit = gates.get(metric)
        if metric in judged:
            g = judged[metric]
            verdict = {"pass": "ok", "fail": "FAIL", "refused": "NOT GATED", "ungated": "ok"}[g.status]
            gate = "≥ " + format(limit, ".4g") + " (low)" if limit is not None else "(no gate)"
            rows.append(f"  {metric:<22} {value:>10.4f}   {gate:<12} {verdict}: {g.describe()}")
            if g.status == "fail":
                failed.append(metric)
            continue
        ok = gate_ok(value, limit)
        gate = "≥ " + format(limit, ".4g") if limit is not None else "(no gate)"
        rows.append(f"  {metric:<22} {value:>10.4f}   {gate:<12} {'ok' if ok else 'FAIL'}")
        if not ok:
            failed.append(metric)
    return rows, failed


def backend_note(name: str, hailo: bool) -> str:
    """What a backend's numbers are, in words (the built-in one says it is an approximation)."""
    if hailo:
        return DFC_NOTE
    return ORT_NOTE if name == "ort-emulator" else f"{name} (not Hailo's numerics)"


# --------------------------------------------------------------------------------------------------------------
# result
# --------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class QuantEval:
    """One evaluation of a quantized Stage 1 against the float Stage 1.

    Attributes:
        model: the model's name.
        config: precision config (``int8``, ``int16_selective``, ``int16``).
        calib_size: calibration samples used.
        calib_sha256: content hash of the calibration set.
        backend: the emulator's :class:`~hailo_qa.runners.base.BackendInfo` as a dict (``name``, ``version``,
            ``hailo`` ...).
        eval_inputs: names of the evaluation inputs (sample stems, ``random[k]``).
        metrics: ``snr_db``, ``cosine``, ``cosine_mean``, ``max_abs_err`` and, where they apply, ``top1`` and
            ``detection_agreement``.
        gates: the manifest's minimum per gated metric (may be empty).
        int16_layers: 16-bit layers (``int16_selective``).
        quantize_s: seconds to build the quantized runner (calibration, or a cache hit).
        eval_s: seconds to run the evaluation inputs.
        calib_real / calib_augmented / calib_requested: the calibration set's real and augmented samples and the
            size asked for (fewer real samples than requested, augmentation off: ``calib_size < calib_requested``).
        notes: what could not be measured and why (e.g. a raw-head detector without a decoder).
        counts: per agreement metric, its ``successes`` and ``trials`` (and their ``unit``) on the held-out
            agreement set: the Wilson interval and the gate on its lower bound come from them.
        vs_int8: for ``int16_selective``, int8 at the same calibration set on the same inputs: ``metric``
            (``quantization.int16_target``), ``int8``, ``int16_selective``, ``helped``, ``expected`` (the
            manifest's ``int16_no_gain`` record, or "").
    """

    model: str
    config: str
    calib_size: int
    calib_sha256: str
    backend: Mapping[str, Any]
    eval_inputs: tuple[str, ...]
    metrics: Mapping[str, float]
    gates: Mapping[str, float] = field(default_factory=dict)
    int16_layers: tuple[str, ...] = ()
    quantize_s: float = math.nan
    eval_s: float = math.nan
    calib_real: int = 0
    calib_augmented: int = 0
    calib_requested: int = 0
    notes: tuple[str, ...] = ()
    counts: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    vs_int8: Mapping[str, Any] = field(default_factory=dict)

    @property
    def backend_name(self) -> str:
        return str(self.backend.get("name", ""))

    @property
    def hailo(self) -> bool:
        return bool(self.backend.get("hailo", False))

    @property
    def snr_db(self) -> float:
        return float(self.metrics["snr_db"])

    @property
    def cosine_min(self) -> float:
        return float(self.metrics["cosine"])

    @property
    def cosine_mean(self) -> float:
        return float(self.metrics["cosine_mean"])

    @property
    def max_abs_err(self) -> float:
        return float(self.metrics["max_abs_err"])

    @property
    def agreement(self) -> float | None:
        """Top-1 agreement (classifiers) or detection agreement (detectors), else None."""
        for key in ("top1", "detection_agreement"):
            if key in self.metrics:
                return float(self.metrics[key])
        return None

    @property
    def failed(self) -> list[str]:
        """Metrics below their manifest gate (agreement: its 95 % lower bound), and ``int16_selective_vs_int8``
        when int16_selective did not help and the manifest does not record that as the measured outcome."""
        out = gate_rows(self.metrics, self.gates, self.counts)[1]
        if self.vs_int8 and not self.vs_int8["helped"] and not self.vs_int8["expected"]:
            out.append("int16_selective_vs_int8")
        return out

    @property
    def not_gated(self) -> list[str]:
        """Why a gated agreement metric was not judged (too few held-out inputs to show its gate)."""
        return [f"{m}: {g.describe()} (quantization.agreement_inputs sets the count)"
                for m, g in agreement_gates(self.counts, self.gates).items() if g.status == "refused"]

    def int16_verdict(self) -> str:
        """One line: did int16_selective beat int8 on its target metric (empty for other configs)."""
        v = self.vs_int8
        if not v:
            return ""
        both = (f"{v['metric']} {v['int16_selective']:.4f} (int16_selective) vs {v['int8']:.4f} (int8) at calib "
                f"{self.calib_size}, on the same inputs")
        if v["helped"]:
            return f"int16_selective helped: {both}"
        if v["expected"]:
            return f"int16_selective did not help: {both} — the manifest records this as the measured outcome " \
                   f"(quantization.int16_no_gain: {v['expected']})"
        return (f"int16_selective did not help: {both} — FAIL (drop it, choose other int16_layers, or record the "
                f"measured outcome in quantization.int16_no_gain)")

    def backend_label(self) -> str:
        cfg = f"[{self.backend.get('config')}]" if self.backend.get("config") else ""
        return f"{self.backend_name}{cfg}@{self.backend.get('version', '?')}"

    def table(self) -> str:
        """A human-readable table: header (model, config, calibration, backend and what it is), metric rows."""
        rows, _ = gate_rows(self.metrics, self.gates, self.counts)
        random_n = sum(1 for n in self.eval_inputs if n.startswith("random["))
        return "\n".join([
            f"{self.model} [{self.config}, calib {self.calib_size}] on {self.backend_label()} "
            f"(hailo={self.hailo}: {backend_note(self.backend_name, self.hailo)})",
            f"  calibration: {self.calib_size} samples ({self.calib_real} real, {self.calib_augmented} augmented"
            + (f"; {self.calib_requested} requested, {self.calib_requested - self.calib_size} short: fewer real "
               f"samples than requested and augmentation is off" if self.calib_requested > self.calib_size else "")
            + f"), sha256 {self.calib_sha256[:16]}…; int16 layers: {list(self.int16_layers) or '-'}",
            *(f"  note: {n}" for n in self.notes),
            f"  evaluated on {len(self.eval_inputs)} inputs ({len(self.eval_inputs) - random_n} held-out samples, "
            f"{random_n} random in-range feeds): {', '.join(self.eval_inputs)}",
            f"  {'metric':<22} {'value':>10}   {'gate':<12} verdict",
            *rows,
            *([f"  {self.int16_verdict()}"] if self.vs_int8 else []),
        ])

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (NaN/inf become strings ``"nan"``/``"inf"`` so the output is strict JSON)."""
        def num(v: float) -> float | str:
            return v if math.isfinite(v) else str(v)

        return {"model": self.model, "config": self.config, "calib_size": self.calib_size,
                "calib_sha256": self.calib_sha256, "backend": dict(self.backend),
                "backend_note": backend_note(self.backend_name, self.hailo),
                "eval_inputs": list(self.eval_inputs),
                "metrics": {k: num(float(v)) for k, v in self.metrics.items()},
                "gates": dict(self.gates), "failed": self.failed, "int16_layers": list(self.int16_layers),
                "quantize_s": num(self.quantize_s), "eval_s": num(self.eval_s),
                "calib_real": self.calib_real, "calib_augmented": self.calib_augmented,
                "calib_requested": self.calib_requested, "notes": list(self.notes),
                "agreement": {m: {k: num(v) if isinstance(v, float) else v for k, v in g.to_dict().items()}
                              for m, g in agreement_gates(self.counts, self.gates).items()},
                "not_gated": self.not_gated, "vs_int8": dict(self.vs_int8), "int16_verdict": self.int16_verdict()}


# --------------------------------------------------------------------------------------------------------------
# evaluation inputs
# --------------------------------------------------------------------------------------------------------------
def calib_paths(calib) -> set[Path]:
    """Resolved files a calibration set's real items come from."""
    return {Path(it.path).resolve() for it in getattr(calib, "items", ()) if getattr(it, "path", None) is not None}


EVAL_SEED_OFFSET = 1000
"""Held-out augmentations use ``calibration.seed + EVAL_SEED_OFFSET``."""


def eval_feeds(spec, *, n_eval: int = 4, seed: int = 0, exclude: set[Path] | frozenset[Path] = frozenset(),
               npz_rows: int | None = None) -> list[tuple[str, dict[str, np.ndarray]]]:
    """Held-out evaluation inputs of ``spec`` as full-model feeds (see the module docstring for the order).

    Args:
        spec: the model.
        n_eval: how many inputs (all held-out samples are used when there are more). Must be >= 1.
        seed: seed of the random feeds, used only for a model without samples. Defaults to 0.
        exclude: sample files never to evaluate on (the calibration set's real items).
        npz_rows: rows taken from each ``.npz`` sample (default :data:`hailo_qa.inputs.NPZ_SAMPLES`).

    Returns:
        ``[(name, full-model feeds)]``.
    """
    from hailo_qa.inputs import host_feeds, random_feeds, sample_feeds
    from hailo_qa.quant.calib import calib_set_for_model
    from hailo_qa.runners.emulator_ort import CalibReader

    if n_eval < 1:
        raise InputDataError(f"n_eval {n_eval} is not positive", note="expected at least one evaluation input",
                             context=spec.name)
    keep = [p for p in spec.samples if Path(p).resolve() not in exclude]
    kept = dataclasses.replace(spec, samples=tuple(keep))
    out = sample_feeds(kept) if npz_rows is None else sample_feeds(kept, npz_rows=npz_rows)
    missing = n_eval - len(out)
    if missing > 0 and spec.samples:
        inp = spec.device_inputs[0].name
        ev = calib_set_for_model(spec, size=missing, seed=spec.calibration.seed + EVAL_SEED_OFFSET,
                                 source="samples", augment=True)  # held-out augmentations: evaluation, not calib
        consts = host_feeds(spec)
        out += [(f"held-out-aug[{k}]", {**consts, **x})
                for k, x in enumerate(CalibReader(ev, inp, layout=spec.input(inp).layout))]
    elif missing > 0:
        out += [(f"random[{k}]", random_feeds(spec, np.random.default_rng([seed, EVAL_SALT, k])))
                for k in range(missing)]
    return out


def agreement_task(spec, split) -> str | None:
    """``classification`` / ``detection`` / ``face_detection`` (YuNet's raw outputs, decoded on the host) when
    ``spec`` gets an agreement metric, else None."""
    zoo = (split.report or {}).get("zoo") or {}
    if spec.task in ("detection", "face_detection") and zoo.get("offered") and zoo.get("decode"):
        return "detection"
    if spec.task in ("detection", "classification", "face_detection") and split.stage2_path is not None:
        return spec.task
    return None


def agreement_feeds(spec, split, *, n: int | None = None, seed: int = 0,
                    exclude: set[Path] | frozenset[Path] = frozenset()) -> list[tuple[str, dict[str, np.ndarray]]]:
    """The held-out inputs the agreement metrics are judged on: ``n`` (default :data:`AGREEMENT_N` of the task) of
    :func:`eval_feeds` (``.npz`` samples give that many rows), plus, for an end-to-end detector, the registered photos
    themselves. Empty for a model without an agreement metric."""
    task = agreement_task(spec, split)
    if task is None:
        return []
    n = n or spec.quantization.agreement_inputs or AGREEMENT_N[task]
    out = eval_feeds(spec, n_eval=n, seed=seed, exclude=exclude, npz_rows=n)
    if task == "detection" and spec.task == "detection" and split.stage2_path is not None:
        from hailo_qa.inputs import sample_feeds

        seen = {name for name, _ in out}
        out += [(name, f) for name, f in sample_feeds(spec) if name not in seen]
    return out


_FLOAT_REFS: dict[tuple, list] = {}
"""Float reference outputs of agreement sets, by model, split and feed content: every config and calibration size of
a session compares with the same float pipeline, so it runs once per process."""


def _feeds_key(feeds) -> str:
    import hashlib

    h = hashlib.sha256()
    for name, f in feeds:
        h.update(name.encode())
        for k in sorted(f):
            a = np.ascontiguousarray(f[k])
            h.update(k.encode() + str(a.dtype).encode() + str(a.shape).encode() + a.tobytes())
    return h.hexdigest()


def _float_reference(kind: str, spec, split, feeds, compute) -> list:
    key = (kind, spec.digest(), str(split.stage1_path), str(split.stage2_path), _feeds_key(feeds))
    if key not in _FLOAT_REFS:
        if len(_FLOAT_REFS) >= 8:
            _FLOAT_REFS.pop(next(iter(_FLOAT_REFS)))
        _FLOAT_REFS[key] = compute()
    return _FLOAT_REFS[key]


def _detection_counts(results, *, symmetric: bool = False) -> dict[str, Any]:
    """Pooled detection agreement: detections matched (successes) of the float pipeline's detections (trials; an
    input with none but some under test counts those as missed). ``symmetric``: of max(float, quantized) detections
    per input, so a corrupted head that floods boxes cannot score as found."""
    succ = sum(r.matched for r in results)
    trials = sum(max(r.n_ref, r.n_test) if symmetric else (r.n_ref if r.n_ref else r.n_test) for r in results)
    unit = "max(float, quantized) detections" if symmetric else "reference detections"
    return {"successes": int(succ), "trials": int(trials), "unit": f"{unit} in {len(results)} inputs"}


def task_metrics(spec, split, runner, agree_feeds) -> tuple[dict[str, float], dict[str, dict], list[str]]:
    """The agreement metric of ``spec``'s task, float vs ``runner`` as Stage 1, on ``agree_feeds``.

    Returns:
        ``(values, agreement counts, notes)``: ``values`` holds ``top1`` or ``detection_agreement`` (the
        proportion), ``agreement`` its successes and trials (for the Wilson interval and the gate).
    """
    from hailo_qa.graph.verify import pipeline_for
    from hailo_qa.inputs import host_feeds
    from hailo_qa.runners.onnxrt import OnnxrtRunner

    values: dict[str, float] = {}
    agreement: dict[str, dict] = {}
    notes: list[str] = []
    task = agreement_task(spec, split)
    if task is None or not agree_feeds:
        return values, agreement, notes
    zoo = (split.report or {}).get("zoo") or {}
    if task == "detection" and zoo.get("offered") and zoo.get("decode"):
        # raw heads at the Model Zoo cut: decode them to boxes, float vs quantized, end to end
        from hailo_qa.evaluate.heads import decode_heads

        s1 = [{k: f[k] for k in split.stage1_inputs} for _, f in agree_feeds]

        def stage1_float():
            with OnnxrtRunner(split.stage1_path, name="stage1-float") as r:
                return [r.infer(f) for f in s1]

        ref = _float_reference("stage1", spec, split, agree_feeds, stage1_float)
        with runner:
            test = [runner.infer(f) for f in s1]
        hw = spec.device_inputs[0].hw
        try:
            res = [metrics.detection_agreement(decode_heads(zoo["decode"], r, hw), decode_heads(zoo["decode"], t, hw),
                                               min_score=0.25) for r, t in zip(ref, test)]
        except InputDataError as err:  # per-output SNR/cosine are kept whatever happens here
            notes.append(f"heads not decoded ({err.what}); per-output SNR and cosine only")
            return values, agreement, notes
        agreement["detection_agreement"] = _detection_counts(res, symmetric=True)
        notes.append(f"detection agreement from the {zoo['family']} heads decoded to boxes (score ≥ 0.25, NMS; "
                     f"matched / max(float, quantized) detections)")
    else:
        consts = host_feeds(spec)

        def e2e_float():
            with pipeline_for(split, host_feeds=consts, name="float") as fp:
                return [fp.infer(dict(f)) for _, f in agree_feeds]

        ref_e2e = _float_reference("e2e", spec, split, agree_feeds, e2e_float)
        with pipeline_for(split, stage1=runner, host_feeds=consts, name="quantized") as qp:
            test_e2e = [qp.infer(dict(f)) for _, f in agree_feeds]
        if task == "face_detection":
            # YuNet's raw outputs: decoded as OpenCV's FaceDetectorYN does, float vs quantized
            hw = spec.device_inputs[0].hw
            try:
                agreement["detection_agreement"] = _detection_counts(
                    [metrics.detection_agreement(yunet_faces(r, hw), yunet_faces(t, hw), min_score=0.6)
                     for r, t in zip(ref_e2e, test_e2e)])
                agreement["detection_agreement"]["unit"] = agreement["detection_agreement"]["unit"].replace(
                    "reference detections", "float faces")
                notes.append("detection agreement from YuNet's outputs decoded to faces (score ≥ 0.6, NMS 0.3)")
            except InputDataError as err:  # not YuNet's outputs: per-output SNR/cosine are its metrics
                notes.append(f"face detector outputs not decoded ({err.what}); per-output SNR and cosine only")
        elif task == "detection":
            if all({"boxes", "labels", "scores"} <= set(o) for o in ref_e2e):
                agreement["detection_agreement"] = _detection_counts(
                    [metrics.detection_agreement(r, t) for r, t in zip(ref_e2e, test_e2e)])
            else:
                notes.append(f"raw-head detector (outputs {sorted(ref_e2e[0])}, no boxes/labels/scores) of no "
                             f"known family: per-output SNR and cosine are its task metrics")
        else:
            last = list(ref_e2e[0])[-1]
            same = [int(np.argmax(np.asarray(r[last]).reshape(-1)) == np.argmax(np.asarray(t[last]).reshape(-1)))
                    for r, t in zip(ref_e2e, test_e2e)]
            agreement["top1"] = {"successes": sum(same), "trials": len(same), "unit": "inputs"}
    for m, a in agreement.items():
        values[m] = a["successes"] / a["trials"] if a["trials"] else 1.0
    return values, agreement, notes


# --------------------------------------------------------------------------------------------------------------
# the evaluation
# --------------------------------------------------------------------------------------------------------------
def evaluate_quantization(spec, *, config: str, calib_size: int, backend: str = "auto", work_dir: str | Path,
                          n_eval: int = 4, seed: int = 0, int16_layers: Sequence[str] = (),
                          feeds: Sequence[tuple[str, Mapping[str, np.ndarray]]] | None = None,
                          split=None, calib=None, n_agree: int | None = None,
                          agree_feeds: Sequence[tuple[str, Mapping[str, np.ndarray]]] | None = None) -> QuantEval:
    """Quantize ``spec``'s Stage 1 with ``calib_size`` calibration samples and compare it with the float Stage 1.

    Args:
        spec: the :class:`~hailo_qa.manifest.ModelSpec` (needs ``file``).
        config: ``int8``, ``int16_selective`` or ``int16``.
        calib_size: calibration samples (>= 1).
        backend: ``auto``, ``ort`` or ``dfc`` (see :func:`hailo_qa.quant.emulator.resolve_backend`).
        work_dir: cache folder (splits, quantized models).
        n_eval: evaluation inputs at least (see the module docstring). Defaults to 4.
        seed: seed of the random evaluation feeds. Defaults to 0.
        int16_layers: 16-bit layers for ``int16_selective``. Defaults to the manifest's, else the noise analysis'
            top-ranked layers (unmeasured candidates; :func:`hailo_qa.quant.suggest.measure_int16_suggestion`
            measures them).
        feeds: evaluation inputs to use instead of :func:`eval_feeds` (a sweep fixes them across sizes). They must
            not be calibration data.
        split: the model's split. Defaults to :func:`hailo_qa.graph.split.split_for_model`.
        calib: the calibration set to quantize with (e.g. one built with another resize mode,
            :mod:`hailo_qa.quant.resize`). Defaults to the manifest's, of ``calib_size`` samples. A set whose image
            files were resized differently from ``spec``'s input is a preprocessing mismatch: the result says so.
        n_agree: held-out inputs for the agreement metric. Defaults to :data:`AGREEMENT_N` of the task.
        agree_feeds: the agreement inputs themselves (a sweep fixes them across sizes; never calibration data).

    Returns:
        A :class:`QuantEval`.

    Raises:
        InputDataError: bad config/backend/size, or evaluation outputs that are not finite.
        ManifestError, GraphError, ToolchainError: from the manifest, split and emulator steps.
    """
    from hailo_qa.graph.split import split_for_model
    from hailo_qa.quant.calib import calib_set_for_model, resize_mismatch
    from hailo_qa.quant.emulator import make_emulator, resolve_backend
    from hailo_qa.runners.onnxrt import OnnxrtRunner

    if not isinstance(calib_size, int) or calib_size < 1:
        raise InputDataError(f"calibration size {calib_size!r} is not a positive integer",
                             note="expected a size >= 1", hint="e.g. 64", context=spec.name)
    resolve_backend(backend)  # fail on a bad name before any work
    work = Path(work_dir)
    split = split or split_for_model(spec, work)
    calib = calib if calib is not None else calib_set_for_model(spec, size=calib_size)
    notes: list[str] = []
    mismatch = resize_mismatch(calib, spec.input(calib.input_name))
    if mismatch:
        notes.append(mismatch)
    layers = tuple(int16_layers) or tuple(spec.quantization.int16_layers)
    if config == "int16_selective" and not layers:
        from hailo_qa.quant.noise import suggest_for_model

        layers, _ = suggest_for_model(spec, split, calib, work)
    if feeds is None:
        feeds = eval_feeds(spec, n_eval=n_eval, seed=seed, exclude=calib_paths(calib))
    if agree_feeds is None:
        agree_feeds = agreement_feeds(spec, split, n=n_agree, seed=seed, exclude=calib_paths(calib))
    s1_names = tuple(split.stage1_inputs)
    s1_feeds = [{n: f[n] for n in s1_names} for _, f in feeds]
    with OnnxrtRunner(split.stage1_path, name="stage1-float") as ref_r:
        ref = [ref_r.infer(f) for f in s1_feeds]
    t0 = time.perf_counter()
    runner = make_emulator(spec, split, backend=backend, config=config, calib=calib, work_dir=work,
                           int16_layers=layers)
    with runner:
        quantize_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        test = [runner.infer(f) for f in s1_feeds]
    values = stage1_metrics(ref, test)
    task_values, agreement, task_notes = task_metrics(spec, split, runner, agree_feeds)
    values.update(task_values)
    notes.extend(task_notes)
    vs_int8: dict[str, Any] = {}
    if config == "int16_selective":
        vs_int8 = _versus_int8(spec, split, calib, backend, work, s1_feeds, ref, agree_feeds, values)
    eval_s = time.perf_counter() - t1
    return QuantEval(model=spec.name, config=config, calib_size=calib.count, calib_sha256=calib.sha256,
                     backend=runner.backend.to_dict(), eval_inputs=tuple(n for n, _ in feeds), metrics=values,
                     gates=gates_for(spec, config), int16_layers=layers if config == "int16_selective" else (),
                     quantize_s=quantize_s, eval_s=eval_s, calib_real=calib.real, calib_augmented=calib.augmented,
                     calib_requested=calib_size, notes=tuple(notes), counts=agreement, vs_int8=vs_int8)


def _versus_int8(spec, split, calib, backend, work, s1_feeds, ref, agree_feeds, values) -> dict[str, Any]:
    """int8 at the same calibration set, on the same inputs, on ``quantization.int16_target``."""
    from hailo_qa.errors import ManifestError
    from hailo_qa.quant.emulator import make_emulator

    target = spec.quantization.int16_target
    int8 = make_emulator(spec, split, backend=backend, config="int8", calib=calib, work_dir=work)
    if target in ("top1", "detection_agreement"):
        base = task_metrics(spec, split, int8, agree_feeds)[0]
    else:
        with int8:
            base = stage1_metrics(ref, [int8.infer(f) for f in s1_feeds])
    if target not in values or target not in base:
        raise ManifestError(f"quantization.int16_target = '{target}' is not measured for {spec.name} "
                            f"(task {spec.task}; measured: {', '.join(sorted(values))})", context=spec.name,
                            note="expected a metric this model's evaluation produces",
                            hint="use snr_db (Stage-1 SNR, what the noise analysis ranks layers by) or cosine")
    sel, ref8 = float(values[target]), float(base[target])
    return {"metric": target, "int8": ref8, "int16_selective": sel, "helped": bool(sel > ref8),
            "expected": spec.quantization.int16_no_gain.strip()}


# --------------------------------------------------------------------------------------------------------------
# calibration-size sweep
# --------------------------------------------------------------------------------------------------------------
DEFAULT_KNEE_TOL_DB = 0.5
"""Default knee tolerance: the knee is the smallest size whose SNR is within this many dB of the best SNR."""


def parse_sizes(text: str) -> tuple[int, ...]:
    """``"16,64,256"`` → ``(16, 64, 256)``: positive integers, sorted, duplicates dropped.

    Raises:
        InputDataError: empty, non-integer or non-positive entries.
    """
    from hailo_qa.options import MAX_CALIB_SIZE, sizes_or_none

    out = sizes_or_none(text)
    if out is None:
        parts = [p.strip() for p in str(text).split(",")]
        bad = [p for p in parts if not p.isdigit() or not 1 <= int(p) <= MAX_CALIB_SIZE]
        raise InputDataError(f"calibration sizes {text!r} are not a list of positive integers"
                             + (f" (bad: {', '.join(repr(b) for b in bad)})" if bad else ""),
                             note=f"expected comma-separated integers from 1 to {MAX_CALIB_SIZE}",
                             hint="e.g. --sizes 16,64,256,1024")
    return out


def knee_size(sizes: Sequence[int], snr_db: Sequence[float], *, tol_db: float = DEFAULT_KNEE_TOL_DB) -> int | None:
    """The knee of an SNR-versus-calibration-size curve.

    Definition: the smallest size whose SNR is within ``tol_db`` of the best SNR of the sweep (``snr >= best -
    tol_db``). More calibration data beyond the knee buys less than ``tol_db``. NaN points are ignored; ``+inf``
    (a bit-exact result) counts as the best.

    Args:
        sizes: calibration sizes, any order.
        snr_db: the SNR at each size.
        tol_db: tolerance in dB (>= 0). Defaults to :data:`DEFAULT_KNEE_TOL_DB`.

    Returns:
        The knee size, or None when no point has a number.

    Raises:
        InputDataError: different lengths or a negative/NaN tolerance.
    """
    if len(sizes) != len(snr_db):
        raise InputDataError(f"knee_size got {len(sizes)} sizes and {len(snr_db)} SNR values",
                             note="expected one SNR per size")
    if not tol_db >= 0:
        raise InputDataError(f"knee tolerance {tol_db!r} dB is not a non-negative number",
                             note="expected a tolerance >= 0 dB", hint="e.g. --knee-tol 0.5")
    pts = sorted((int(n), float(v)) for n, v in zip(sizes, snr_db) if not math.isnan(float(v)))
    if not pts:
        return None
    best = max(v for _, v in pts)
    for n, v in pts:
        if v == best or v >= best - tol_db:
            return n
    return None  # pragma: no cover  (the best point always qualifies)


@dataclass(frozen=True)
class SweepResult:
    """Metrics versus calibration size for one model and config.

    Attributes:
        model, config: what was swept.
        results: one :class:`QuantEval` per size, ascending size.
        knee: see :func:`knee_size` (None when no SNR is a number).
        knee_tol_db: the tolerance the knee was found with.
    """

    model: str
    config: str
    results: tuple[QuantEval, ...]
    knee: int | None
    knee_tol_db: float

    @property
    def sizes(self) -> tuple[int, ...]:
        return tuple(r.calib_size for r in self.results)

    def table(self) -> str:
        """Markdown table: size, SNR, cosine min/mean, max abs err, agreement, seconds; then the knee."""
        first = self.results[0]
        lines = [f"# Calibration sweep: {self.model} [{self.config}]", "",
                 f"Backend: {first.backend_label()} (hailo={first.hailo}: "
                 f"{backend_note(first.backend_name, first.hailo)}).",
                 f"Evaluated on {len(first.eval_inputs)} inputs, the same at every size and never calibration "
                 f"data: {', '.join(first.eval_inputs)}.", "",
                 "| calib size | SNR dB | cosine min | cosine mean | max abs err | agreement | quantize s |",
                 "|---:|---:|---:|---:|---:|---:|---:|"]
        for r in self.results:
            agr = r.agreement
            c = next(iter(r.counts.values()), None)
            shown = "-" if agr is None else format(agr, ".3f") + (f" ({c['successes']}/{c['trials']})" if c else "")
            lines.append(f"| {r.calib_size} | {r.snr_db:.2f} | {r.cosine_min:.5f} | {r.cosine_mean:.5f} | "
                         f"{r.max_abs_err:.4g} | {shown} | {r.quantize_s:.1f} |")
        best = max((r.snr_db for r in self.results if not math.isnan(r.snr_db)), default=math.nan)
        lines += ["", f"Knee: {self.knee if self.knee is not None else 'none (no finite SNR)'} — the smallest size "
                      f"whose SNR is within {self.knee_tol_db:g} dB of the best "
                      f"({best:.2f} dB)."]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "config": self.config, "sizes": list(self.sizes), "knee": self.knee,
                "knee_tol_db": self.knee_tol_db,
                "knee_definition": "smallest calibration size whose SNR is within knee_tol_db of the best SNR",
                "results": [r.to_dict() for r in self.results]}


def sweep_calibration(spec, sizes: Sequence[int], *, config: str = "int8", backend: str = "auto",
                      work_dir: str | Path, n_eval: int = 4, seed: int = 0,
                      knee_tol_db: float = DEFAULT_KNEE_TOL_DB, progress=None) -> SweepResult:
    """Run :func:`evaluate_quantization` at every size on one fixed set of evaluation inputs.

    The evaluation inputs exclude every real calibration item of every size (with one seed the subsets are
    nested, so this is the largest size's real items), so the curve compares like with like.

    Args:
        spec: the model.
        sizes: calibration sizes (positive; evaluated in ascending order).
        config, backend, work_dir, n_eval, seed: see :func:`evaluate_quantization`.
        knee_tol_db: see :func:`knee_size`.
        progress: called as ``progress(index, total, result, elapsed_s)`` after each size. Defaults to none.
    """
    from hailo_qa.graph.split import split_for_model
    from hailo_qa.quant.calib import calib_set_for_model

    ordered = tuple(sorted(set(int(n) for n in sizes)))
    if not ordered or ordered[0] < 1:
        raise InputDataError(f"calibration sizes {list(sizes)} are not positive integers",
                             note="expected one or more sizes >= 1", hint="e.g. --sizes 16,64,256,1024",
                             context=spec.name)
    knee_size([], [], tol_db=knee_tol_db)  # validate the tolerance before any work
    work = Path(work_dir)
    split = split_for_model(spec, work)
    exclude: set[Path] = set()
    for n in ordered:
        exclude |= calib_paths(calib_set_for_model(spec, size=n))
    feeds = eval_feeds(spec, n_eval=n_eval, seed=seed, exclude=exclude)
    agree = agreement_feeds(spec, split, seed=seed, exclude=exclude)
    results = []
    t0 = time.perf_counter()
    for k, n in enumerate(ordered, 1):
        r = evaluate_quantization(spec, config=config, calib_size=n, backend=backend, work_dir=work, n_eval=n_eval,
                                  seed=seed, feeds=feeds, split=split, agree_feeds=agree)
        results.append(r)
        if progress is not None:
            progress(k, len(ordered), r, time.perf_counter() - t0)
    return SweepResult(model=spec.name, config=config, results=tuple(results),
                       knee=knee_size([r.calib_size for r in results], [r.snr_db for r in results],
                                      tol_db=knee_tol_db), knee_tol_db=float(knee_tol_db))


def plot_sweep_png(sweep: SweepResult) -> bytes:
    """SNR (left axis) and worst cosine (right axis) versus calibration size (log2), the knee marked; PNG bytes."""
    import io

    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 4.0), dpi=100)
    ax = fig.subplots()
    x = list(sweep.sizes)
    ax.plot(x, [r.snr_db for r in sweep.results], "o-", color="tab:blue", label="SNR dB")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("calibration size")
    ax.set_ylabel("SNR dB", color="tab:blue")
    ax2 = ax.twinx()
    ax2.plot(x, [r.cosine_min for r in sweep.results], "s--", color="tab:orange", label="cosine min")
    ax2.set_ylabel("cosine min", color="tab:orange")
    if sweep.knee is not None:
        ax.axvline(sweep.knee, color="grey", linestyle=":", label=f"knee {sweep.knee}")
    first = sweep.results[0]
    ax.set_title(f"{sweep.model} [{sweep.config}] on {first.backend_name}", fontsize=10)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def write_sweep(sweep: SweepResult, out_dir: str | Path) -> dict[str, Path]:
    """Write ``sweep.json``, ``sweep.md`` and ``sweep.png`` to ``out_dir``, each atomically (temp + ``os.replace``).

    Everything is rendered before the first file is written, so a rendering error leaves earlier files untouched.

    Raises:
        InputFileError: ``out_dir`` cannot be created or written.
    """
    import json

    from hailo_qa.errors import InputFileError
    from hailo_qa.runners.emulator_ort import atomic_write_bytes

    out = Path(out_dir)
    payload = {"sweep.json": (json.dumps(sweep.to_dict(), indent=2) + "\n").encode(),
               "sweep.md": (sweep.table() + "\n").encode(), "sweep.png": plot_sweep_png(sweep)}
    paths = {}
    try:
        out.mkdir(parents=True, exist_ok=True)
        for name, data in payload.items():
            atomic_write_bytes(out / name, data)
            paths[name] = out / name
    except OSError as err:
        raise InputFileError(f"cannot write the sweep to '{out}' ({err})", note="expected a writable folder",
                             hint="pass --out DIR with a folder you can write") from err
    return paths
