"""Deployment checklist (hailo_qa.evaluate.deploy): synthetic-logit properties, gates, and the fsq_classifier via ORT."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hailo_qa.errors import InputDataError
from hailo_qa.evaluate.deploy import DeployReport, deploy_gate_failures, deploy_report


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


@pytest.fixture(scope="module")
def fsq(hqa_manifest):
    spec = hqa_manifest.get("fsq_classifier")  # a missing model is a failure, not a skip: it is committed
    with np.load(Path(spec.manifest_path).parent / "data" / "fsq_imu_eval.npz") as ev:
        return spec, ev["x"], ev["y"]


def _runner(kind: str, spec, hqa):
    from hailo_qa.graph.split import split_for_model
    from hailo_qa.graph.verify import pipeline_for
    from hailo_qa.runners.onnxrt import OnnxrtRunner

    if kind == "float":
        return OnnxrtRunner(spec.file)
    split = split_for_model(spec, hqa.work_dir)
    if kind == "split":  # Stage 1 → host Round + head, as deployed
        return pipeline_for(split)
    from hailo_qa.quant.calib import calib_set_for_model
    from hailo_qa.quant.emulator import make_emulator

    calib = calib_set_for_model(spec, size=32)
    return pipeline_for(split, stage1=make_emulator(spec, split, backend="ort", config="int8", calib=calib,
                                                    work_dir=hqa.work_dir))


@pytest.mark.parametrize("kind", ["float", "split", pytest.param("emulator-int8", marks=pytest.mark.emulator)])
def test_fsq_classifier_checklist(fsq, kind, hqa, hqa_history):
    """Accuracy, ECE and split-conformal coverage of the real classifier, from each backend's logits, gated by
    the manifest's [thresholds.deploy]."""
    spec, x, y = fsq
    inp = spec.device_inputs[0]
    with _runner(kind, spec, hqa) as r:
        out_name = next(iter(r.output_metadata()))
        logits = np.concatenate([r.infer({inp.name: x[i:i + 1].astype(inp.np_dtype)})[out_name]
                                 for i in range(len(x))])
        backend = r.backend
    rep = deploy_report(logits.reshape(len(x), -1), y, alpha=spec.threshold("deploy", "conformal_alpha", 0.1),
                        backend=backend.label())
    for metric in ("accuracy", "ece", "coverage"):
        if hasattr(rep, metric):
            hqa_history.record(model=spec.name, metric=f"deploy.{metric}", value=float(getattr(rep, metric)),
                               target=kind, backend=backend)
    gates = dict(spec.thresholds.get("deploy", {}))
    assert gates, "fsq_classifier has no [thresholds.deploy] gates in the manifest"
    failures = deploy_gate_failures(rep, gates)
    assert not failures, "\n".join(failures) + f"\n{rep}"
