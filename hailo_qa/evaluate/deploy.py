"""Deployment checklist for classifiers, as pure functions: accuracy, calibration (ECE) and split-conformal coverage.

Computed from any backend's logits (float ONNX, emulator, Hailo-8), gated by the manifest's ``deploy`` thresholds
(``min_accuracy``, ``max_ece``, ``min_coverage``, ``conformal_alpha``). The metric maths lives in
:mod:`hailo_qa.evaluate.metrics`; this module splits the data, applies the gates and reports.

Split conformal: a seeded random half of the labelled set calibrates the threshold q̂ (LAC score 1 − p_true), the
other half measures coverage of the prediction sets {c : 1 − p_c ≤ q̂}; coverage should be ≥ 1 − alpha.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from hailo_qa.errors import InputDataError


@dataclass(frozen=True)
class DeployReport:
    """Checklist figures on one labelled evaluation set.

    Attributes:
        n: samples evaluated. n_cal / n_test: the conformal calibration / coverage split.
        accuracy: top-1 accuracy on all n. ece: expected calibration error (15 bins) on all n.
        alpha: conformal miscoverage level. qhat: conformal threshold. coverage: coverage on the test split.
        mean_set_size: mean prediction-set size on the test split.
        backend: label of the backend whose logits these are.
    """

    n: int
    n_cal: int
    n_test: int
    accuracy: float
    ece: float
    alpha: float
    qhat: float
    coverage: float
    mean_set_size: float
    backend: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def deploy_report(logits: np.ndarray, labels: np.ndarray, *, alpha: float = 0.1, cal_fraction: float = 0.5,
                  seed: int = 0, bins: int = 15, backend: str = "") -> DeployReport:
    """Accuracy, ECE and split-conformal coverage of ``logits`` [N, C] against ``labels`` [N].

    Args:
        logits: raw class scores (softmax is applied here).
        labels: integer labels.
        alpha: conformal miscoverage. Defaults to 0.1.
        cal_fraction: share of samples used to calibrate q̂. Defaults to 0.5.
        seed: seed of the calibration/test permutation. Defaults to 0.
        bins: ECE bins. Defaults to 15.
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
    if not 0.0 < cal_fraction < 1.0:
        raise InputDataError(f"deploy: cal_fraction={cal_fraction}", note="expected 0 < cal_fraction < 1")
    n = z.shape[0]
    n_cal = int(round(n * cal_fraction))
    if n_cal < 1 or n - n_cal < 1:
        raise InputDataError(f"deploy: {n} samples cannot be split into calibration and test",
                             note="expected at least 2 samples (more than 1/alpha for a finite threshold)",
                             hint="use a larger labelled evaluation set")
    probs = metrics.softmax(z, axis=1)
    perm = np.random.default_rng(seed).permutation(n)
    cal, test = perm[:n_cal], perm[n_cal:]
    qhat = metrics.conformal_threshold(probs[cal], y[cal], alpha)
    return DeployReport(n=n, n_cal=n_cal, n_test=n - n_cal, accuracy=metrics.accuracy(z, y),
                        ece=metrics.expected_calibration_error(probs, y, bins=bins), alpha=float(alpha),
                        qhat=float(qhat), coverage=metrics.conformal_coverage(probs[test], y[test], qhat),
                        mean_set_size=metrics.mean_set_size(probs[test], qhat), backend=backend)


def deploy_gate_failures(report: DeployReport, thresholds: Mapping[str, float]) -> list[str]:
    """Gate a report by ``deploy`` thresholds; one message per failed gate (empty = pass, or no gates set)."""
    fails = []
    t = thresholds
    if "min_accuracy" in t and not report.accuracy >= t["min_accuracy"]:
        fails.append(f"accuracy {report.accuracy:.4f} < deploy.min_accuracy {t['min_accuracy']}")
    if "max_ece" in t and not report.ece <= t["max_ece"]:
        fails.append(f"ECE {report.ece:.4f} > deploy.max_ece {t['max_ece']}")
    if "min_coverage" in t and not report.coverage >= t["min_coverage"]:
        fails.append(f"conformal coverage {report.coverage:.4f} (alpha {report.alpha}, q̂ {report.qhat:.4f}) < "
                     f"deploy.min_coverage {t['min_coverage']}")
    return fails
