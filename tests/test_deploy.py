"""Deployment checklist (hailo_qa.deploy): synthetic-logit properties, gates, and the fsq_classifier via ORT."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hailo_qa.deploy import DeployReport, deploy_gate_failures, deploy_report
from hailo_qa.errors import InputDataError


def _synthetic(n=2000, c=5, temp=1.0, seed=0):
    """A calibrated toy classifier: labels are drawn from softmax(logits/temp)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 2.0, (n, c))
    p = np.exp(z / temp) / np.exp(z / temp).sum(1, keepdims=True)
    y = np.array([rng.choice(c, p=row) for row in p])
    return z / temp, y


def test_calibrated_model_has_low_ece_and_nominal_coverage():
    z, y = _synthetic()
    r = deploy_report(z, y, alpha=0.1, seed=1)
    assert r.n == 2000 and r.n_cal == 1000 and r.n_test == 1000
    assert r.ece < 0.05
    assert 0.87 <= r.coverage <= 0.95  # ≥ 1-alpha in expectation; finite-sample slack
    assert 1.0 <= r.mean_set_size <= 5.0
    assert deploy_gate_failures(r, {"min_coverage": 0.85, "max_ece": 0.05}) == []


def test_overconfident_model_fails_ece_gate():
    z, y = _synthetic(seed=2)
    r = deploy_report(z * 5.0, y, alpha=0.1)  # same argmax, 5× sharper: overconfident
    calibrated = deploy_report(z, y, alpha=0.1)
    assert r.accuracy == calibrated.accuracy
    assert r.ece > calibrated.ece + 0.05
    fails = deploy_gate_failures(r, {"max_ece": 0.05, "min_accuracy": 0.99})
    assert len(fails) == 2 and "accuracy" in fails[0] and "ECE" in fails[1]


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


def test_fsq_classifier_checklist_with_ort(hqa_manifest):
    """The deployment checklist on the real classifier fixture (built by helper 'metrics'), float ORT backend."""
    from hailo_qa.errors import ManifestError
    from hailo_qa.runners.onnxrt import OnnxrtRunner

    try:
        spec = hqa_manifest.get("fsq_classifier")
    except ManifestError:
        pytest.skip("fsq_classifier is not registered in the manifest yet (helper 'metrics' builds it)")
    data = Path(spec.manifest_path).parent / "data" / "fsq_imu_eval.npz"
    if not data.is_file():
        pytest.skip(f"labelled eval set {data} is not there yet (helper 'metrics' builds it)")
    ev = np.load(data)
    x, y = ev["x"], ev["y"]
    inp = spec.device_inputs[0]
    with OnnxrtRunner(spec.file) as r:
        out_name = next(iter(r.output_metadata()))
        logits = np.concatenate([r.infer({inp.name: x[i:i + 1].astype(inp.np_dtype)})[out_name]
                                 for i in range(len(x))])
        label = r.backend.label()
    rep = deploy_report(logits.reshape(len(x), -1), y, alpha=spec.threshold("deploy", "conformal_alpha", 0.1),
                        backend=label)
    gates = dict(spec.thresholds.get("deploy", {}))
    assert gates, "fsq_classifier has no [thresholds.deploy] gates in the manifest"
    assert not deploy_gate_failures(rep, gates), "\n".join(deploy_gate_failures(rep, gates))
