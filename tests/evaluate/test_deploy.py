"""Checklist figures (hailo_qa.evaluate.deploy): temperature scaling on the calibration split only, ECE before/after,
split-conformal coverage, confidence intervals, and each gate failing on a bad model."""
from __future__ import annotations

import numpy as np
import pytest

from hailo_qa.errors import InputDataError
from hailo_qa.evaluate.deploy import (DeployReport, calibration_split, deploy_gate_failures, deploy_report,
                                      fit_temperature, wilson_interval)

SEED_GATES = {"min_accuracy": 0.85, "max_ece": 0.03, "min_coverage": 0.90}


def _synthetic(n=4000, c=5, scale=2.0, seed=0):
    """A calibrated toy classifier: labels are drawn from softmax(logits)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, scale, (n, c))
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    y = (p.cumsum(1) > rng.random((n, 1))).argmax(1)
    return z, y


def test_calibrated_model_keeps_t_near_one_and_nominal_coverage():
    z, y = _synthetic()
    r = deploy_report(z, y, alpha=0.1, seed=1)
    assert r.n_cal == 2000 and r.n_eval == 2000
    assert 0.9 < r.temperature < 1.1
    assert r.ece < 0.05 and r.ece_raw < 0.05  # ECE of a calibrated 66 %-accurate model, N=2000: ~0.03 (bias)
    assert r.coverage_ci[0] <= 0.9 <= r.coverage_ci[1] or r.coverage >= 0.9
    assert 1.0 <= r.mean_set_size <= 5.0


def test_temperature_scaling_repairs_an_overconfident_model_and_is_fitted_on_the_calibration_split_only():
    z, y = _synthetic(seed=2)
    sharp = z * 4.0  # same arg-max, 4× overconfident
    r = deploy_report(sharp, y, seed=3)
    assert r.temperature == pytest.approx(4.0, rel=0.1)
    assert r.ece_raw > 0.2 and r.ece < 0.05  # 0.05: ECE of a calibrated 63 %-accurate model on N=2000 is ~0.03
    # only the calibration split decides T: scrambling the evaluation split's labels leaves T unchanged
    cal, ev = calibration_split(len(y), 0.5, 3)
    y2 = y.copy()
    y2[ev] = (y2[ev] + 1) % 5
    r2 = deploy_report(sharp, y2, seed=3)
    assert r2.temperature == r.temperature
    assert r2.accuracy < r.accuracy


def test_overconfident_uncalibrated_model_fails_the_ece_gate():
    """The seed's ECE gate (0.03) fails when no temperature is fitted; the accuracy stays the same."""
    z, y = _synthetic(seed=4)
    raw = deploy_report(z * 5.0, y, temperature_scaling=False)
    fixed = deploy_report(z * 5.0, y, temperature_scaling=True)
    assert raw.accuracy == fixed.accuracy and raw.temperature == 1.0
    fails = deploy_gate_failures(raw, {"max_ece": 0.03})
    assert len(fails) == 1 and "ECE (no temperature scaling)" in fails[0]
    assert deploy_gate_failures(fixed, {"max_ece": 0.03}) == []


def test_a_weak_model_fails_the_accuracy_gate():
    z, y = _synthetic(scale=0.5, seed=5)  # nearly uninformative logits
    r = deploy_report(z, y)
    assert r.accuracy < 0.85
    assert any("accuracy" in f for f in deploy_gate_failures(r, SEED_GATES))


def test_coverage_gate_fails_when_the_calibration_split_is_not_exchangeable():
    """q̂ fitted on easy calibration data under-covers harder evaluation data: the coverage gate catches it."""
    z, y = _synthetic(n=4000, seed=6)
    cal, ev = calibration_split(len(y), 0.5, 0)
    z = z.copy()
    z[cal, y[cal]] += 4.0  # calibration rows are (wrongly) confident about their true label
    r = deploy_report(z, y, seed=0, temperature_scaling=False)
    assert r.coverage < 0.9
    assert any("coverage" in f for f in deploy_gate_failures(r, SEED_GATES))


def test_unset_gates_report_nothing_and_callers_decide():
    z, y = _synthetic(scale=0.5, seed=7)
    assert deploy_gate_failures(deploy_report(z, y), {}) == []


def test_confidence_intervals():
    lo, hi = wilson_interval(90, 100)
    assert lo < 0.9 < hi and 0.8 < lo and hi < 0.96
    assert np.isnan(wilson_interval(0, 0)[0])
    z, y = _synthetic(seed=8)
    r = deploy_report(z, y)
    assert r.accuracy_ci[0] <= r.accuracy <= r.accuracy_ci[1]
    assert r.coverage_ci[0] <= r.coverage <= r.coverage_ci[1]


def test_perfect_classifier():
    y = np.arange(100) % 4
    z = np.eye(4)[y] * 20.0
    r = deploy_report(z, y, alpha=0.2)
    assert r.accuracy == 1.0 and r.coverage == 1.0 and r.mean_set_size == pytest.approx(1.0)
    assert isinstance(r, DeployReport) and r.to_dict()["accuracy"] == 1.0


@pytest.mark.parametrize("z, y", [(np.zeros((4, 3)), np.zeros(5, int)), (np.full((4, 3), np.nan), np.zeros(4, int)),
                                  (np.zeros((1, 3)), np.zeros(1, int)), (np.zeros(4), np.zeros(4, int))])
def test_bad_inputs(z, y):
    with pytest.raises(InputDataError):
        deploy_report(z, y)


def test_fit_temperature_rejects_bad_input():
    with pytest.raises(InputDataError):
        fit_temperature(np.zeros((3, 2)), np.zeros(2, int))
    with pytest.raises(InputDataError):
        calibration_split(10, 1.0, 0)
