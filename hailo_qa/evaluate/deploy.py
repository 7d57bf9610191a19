"""Deployment checklist figures for classifiers, as pure functions: accuracy, calibration (ECE, temperature scaling)
and split-conformal coverage, from any backend's logits (float ONNX, split pipeline, emulator, Hailo-8).

Calibration integration (the seed's plan): the labelled data is split once, by a seeded permutation, into a
*calibration split* and an *evaluation split*. The temperature ``T`` (minimising the negative log-likelihood of
``softmax(z / T)``) and the conformal threshold ``q̂`` are fitted on the calibration split only; accuracy, ECE before
and after scaling, and coverage are measured on the evaluation split only. Each target fits its own ``T`` and ``q̂``
on its own logits, so a quantized model whose calibration drifts shows it.

Split conformal: LAC score ``1 − p_true``; prediction sets ``{c : 1 − p_c ≤ q̂}`` cover the true label with
probability ≥ 1 − α on exchangeable data (Angelopoulos & Bates, 2021).

Gates (``[models.<name>.thresholds.deploy]``, optionally per target ``deploy.emulator``): ``min_accuracy``,
``max_ece`` (on the deployed probabilities: after temperature scaling when the manifest's ``deploy`` section enables
it, the raw softmax otherwise) and ``min_coverage``. The metric maths lives in :mod:`hailo_qa.evaluate.metrics`.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from hailo_qa.errors import InputDataError

DEPLOY_GATES = {"accuracy": "min_accuracy", "ece": "max_ece", "coverage": "min_coverage"}
"""Checklist figure → its ``deploy`` gate key."""


def fit_temperature(logits: np.ndarray, labels: np.ndarray, *, bounds: tuple[float, float] = (0.05, 20.0)) -> float:
    """The temperature ``T`` minimising the NLL of ``softmax(logits / T)`` on (calibration) labels.

    Guo et al., "On Calibration of Modern Neural Networks" (2017). A bounded scalar search over ``log T``
    (scipy's Brent method); ``T > 1`` softens an overconfident model, ``T < 1`` sharpens an underconfident one.

    Raises:
        InputDataError: shapes, non-finite logits, empty data.
    """
    from scipy.optimize import minimize_scalar
    from scipy.special import log_softmax

    z = np.asarray(logits, np.float64)
    y = np.asarray(labels)
    if z.ndim != 2 or y.shape != (z.shape[0],) or z.shape[0] == 0:
        raise InputDataError(f"fit_temperature: logits {z.shape} and labels {y.shape} do not match",
                             note="expected logits [N, C] and labels [N], N ≥ 1")
    if not np.all(np.isfinite(z)):
        raise InputDataError("fit_temperature: logits hold NaN/Inf", note="expected finite logits")
    rows = np.arange(z.shape[0])

    def nll(log_t: float) -> float:
        return float(-np.mean(log_softmax(z / math.exp(log_t), axis=1)[rows, y]))

    res = minimize_scalar(nll, bounds=(math.log(bounds[0]), math.log(bounds[1])), method="bounded",
                          options={"xatol": 1e-6})
    return float(math.exp(res.x))


def wilson_interval(successes: int, n: int, *, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion ``successes / n`` (scipy's ``binomtest``); ``(nan, nan)`` for n = 0."""
    from scipy.stats import binomtest

    if n <= 0:
        return math.nan, math.nan
    ci = binomtest(int(successes), int(n)).proportion_ci(confidence_level=confidence, method="wilson")
    return float(ci.low), float(ci.high)


def min_trials_for(gate: float, *, confidence: float = 0.95) -> int | None:
    """The fewest trials whose *perfect* result (n of n) has a Wilson lower bound ≥ ``gate``: fewer cannot show the
    gate at ``confidence`` whatever they measure (n/(n + z²) ≥ gate, e.g. 12 for 0.75, 35 for 0.9, 73 for 0.95).
    ``None`` for a gate ≥ 1, which no finite count can show."""
    if gate <= 0.0:
        return 1
    if gate >= 1.0:
        return None
    from scipy.stats import norm

    z2 = float(norm.ppf(1.0 - (1.0 - confidence) / 2.0)) ** 2
    n = max(1, math.floor(z2 * gate / (1.0 - gate)))
    while wilson_interval(n, n, confidence=confidence)[0] < gate:
        n += 1
    return n


@dataclass(frozen=True)
class AgreementGate:
    """A proportion (``successes`` of ``trials``) judged against a gate on its 95 % Wilson lower bound.

    ``status``: ``pass`` / ``fail`` (the lower bound against the gate), ``refused`` (too few trials: even a perfect
    result could not show the gate; the text says how many are needed) or ``ungated`` (no gate)."""

    successes: int
    trials: int
    gate: float | None
    unit: str = "inputs"

    @property
    def value(self) -> float:
        return self.successes / self.trials if self.trials else math.nan

    @property
    def ci(self) -> tuple[float, float]:
        return wilson_interval(self.successes, self.trials)

    @property
    def needed(self) -> int | None:
        return None if self.gate is None else min_trials_for(self.gate)

    @property
    def status(self) -> str:
        if self.gate is None:
            return "ungated"
        need = self.needed
        if need is None or self.trials < need:
            return "refused"
        return "pass" if self.ci[0] >= self.gate else "fail"

    def describe(self) -> str:
        lo, hi = self.ci
        text = (f"{self.value:.4f} [95 % CI {lo:.3f}–{hi:.3f}], {self.successes} of {self.trials} {self.unit}"
                if self.trials else f"no {self.unit} to compare")
        if self.status == "refused":
            need = self.needed
            text += (f"; not gated: {self.trials} {self.unit} cannot show ≥ {self.gate:g} at 95 % even with no "
                     + ("disagreement (a gate of 1 needs an infinite count: set it below 1)" if need is None else
                        f"disagreement (a perfect {self.trials}/{self.trials} has a lower bound of "
                        f"{wilson_interval(self.trials, self.trials)[0]:.3f}; it needs ≥ {need})"))
        elif self.status in ("pass", "fail"):
            text += f"; gated on the lower bound {lo:.3f}"
        return text

    def to_dict(self) -> dict[str, Any]:
        lo, hi = self.ci
        return {"successes": self.successes, "trials": self.trials, "unit": self.unit, "value": self.value,
                "ci_low": lo, "ci_high": hi, "gate": self.gate, "needed": self.needed, "status": self.status}


def calibration_split(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded disjoint (calibration, evaluation) index arrays over ``n`` samples."""
    if not 0.0 < fraction < 1.0:
        raise InputDataError(f"deploy: calibration fraction {fraction}", note="expected 0 < fraction < 1")
    n_cal = int(round(n * fraction))
    if n_cal < 1 or n - n_cal < 1:
        raise InputDataError(f"deploy: {n} samples cannot be split into calibration and evaluation",
                             note="expected at least 2 samples (more than 1/alpha for a finite conformal threshold)",
                             hint="use a larger labelled evaluation set")
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[:n_cal]), np.sort(perm[n_cal:])


@dataclass(frozen=True)
class DeployReport:
    """Checklist figures on one labelled set, from one backend's logits.

    Attributes:
        n_cal / n_eval: the calibration split (fits ``temperature`` and ``qhat``) and the evaluation split (every
            figure below is measured on it).
        accuracy: top-1 accuracy; ``accuracy_ci``: its 95 % Wilson interval.
        ece_raw: ECE (15 bins) of the raw softmax. temperature: the fitted ``T`` (1.0 when scaling is off).
        ece: ECE of the deployed probabilities (``softmax(z / T)``); equals ``ece_raw`` when scaling is off.
        alpha: conformal miscoverage. qhat: conformal threshold. coverage: share of evaluation labels in their set;
            ``coverage_ci``: its 95 % Wilson interval. mean_set_size: average set size.
        backend: label of the backend whose logits these are.
    """

    n_cal: int
    n_eval: int
    accuracy: float
    accuracy_ci: tuple[float, float]
    ece_raw: float
    temperature: float
    ece: float
    alpha: float
    qhat: float
    coverage: float
    coverage_ci: tuple[float, float]
    mean_set_size: float
    temperature_scaling: bool = True
    backend: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def deploy_report(logits: np.ndarray, labels: np.ndarray, *, alpha: float = 0.1, cal_fraction: float = 0.5,
                  seed: int = 0, bins: int = 15, temperature_scaling: bool = True, backend: str = "") -> DeployReport:
    """Accuracy, ECE before/after temperature scaling and split-conformal coverage of ``logits`` [N, C].

    Args:
        logits: raw class scores (softmax is applied here).
        labels: integer labels [N].
        alpha: conformal miscoverage. Defaults to 0.1.
        cal_fraction: share of the samples in the calibration split. Defaults to 0.5.
        seed: seed of the calibration/evaluation permutation. Defaults to 0.
        bins: ECE bins. Defaults to 15.
        temperature_scaling: fit ``T`` on the calibration split and deploy ``softmax(z / T)``. Defaults to True.
        backend: provenance label. Defaults to none.

    Raises:
        InputDataError: shapes, NaN logits, a split leaving either side empty.
    """
    from hailo_qa.evaluate import metrics
    z = np.asarray(logits, np.float64)
    y = np.asarray(labels)
    if z.ndim != 2 or y.ndim != 1 or z.shape[0] != y.shape[0]:
        raise InputDataError(f"deploy: logits {z.shape} and labels {y.shape} do not match",
                             note="expected logits [N, C] and labels [N]", hint="flatten the batch axis first")
    if not np.all(np.isfinite(z)):
        raise InputDataError("deploy: logits hold NaN/Inf", note="expected finite logits",
                             hint="the backend produced invalid numbers; check its outputs first")
    cal, ev = calibration_split(z.shape[0], cal_fraction, seed)
    t = fit_temperature(z[cal], y[cal]) if temperature_scaling else 1.0
    p_raw = metrics.softmax(z[ev], axis=1)
    p_cal = metrics.softmax(z[cal] / t, axis=1)
    p_ev = metrics.softmax(z[ev] / t, axis=1)
    qhat = metrics.conformal_threshold(p_cal, y[cal], alpha)
    acc = metrics.accuracy(z[ev], y[ev])
    sets = metrics.prediction_sets(p_ev, qhat)
    covered = int(np.sum(sets[np.arange(len(ev)), y[ev]]))
    return DeployReport(
        n_cal=len(cal), n_eval=len(ev), accuracy=acc, accuracy_ci=wilson_interval(round(acc * len(ev)), len(ev)),
        ece_raw=metrics.expected_calibration_error(p_raw, y[ev], bins=bins), temperature=t,
        ece=metrics.expected_calibration_error(p_ev, y[ev], bins=bins), alpha=float(alpha), qhat=float(qhat),
        coverage=covered / len(ev), coverage_ci=wilson_interval(covered, len(ev)),
        mean_set_size=float(np.mean(sets.sum(axis=1))), temperature_scaling=temperature_scaling, backend=backend)


def deploy_gate_failures(report: DeployReport, thresholds: Mapping[str, float]) -> list[str]:
    """Gate a report by ``deploy`` thresholds; one message per failed gate (empty = every *set* gate passed).

    Callers decide what an unset gate means (the tests skip naming it; the checklist shows "—").
    """
    fails = []
    t = thresholds
    if "min_accuracy" in t and not report.accuracy >= t["min_accuracy"]:
        fails.append(f"accuracy {report.accuracy:.4f} < deploy.min_accuracy {t['min_accuracy']}")
    if "max_ece" in t and not report.ece <= t["max_ece"]:
        what = f"ECE after temperature scaling (T={report.temperature:.3f})" if report.temperature_scaling else \
            "ECE (no temperature scaling)"
        fails.append(f"{what} {report.ece:.4f} > deploy.max_ece {t['max_ece']}")
    if "min_coverage" in t and not report.coverage >= t["min_coverage"]:
        fails.append(f"conformal coverage {report.coverage:.4f} (alpha {report.alpha}, q̂ {report.qhat:.4f}) < "
                     f"deploy.min_coverage {t['min_coverage']}")
    return fails
