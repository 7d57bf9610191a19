"""The classifier deployment checklist, per manifest model (every classification model with a ``[deploy]`` section).

The same items as ``hailo-qa checklist MODEL`` (hailo_qa.jobs.checklist): before export, after export, and accuracy /
ECE (after temperature scaling fitted on the calibration split) / conformal coverage on each target — ``float``,
``split`` (Stage 1 → the manifest's host step → the host stage), ``emulator`` (``-m emulator``) and ``hailo8``
(``-m hailo8``). A gate the manifest does not set skips saying so; it never passes silently.
"""
from __future__ import annotations

import pytest

from hailo_qa.evaluate.deploy import DEPLOY_GATES
from hailo_qa.jobs.checklist import deploy_section

pytestmark = pytest.mark.hqa_select(task="classification", needs=("deploy",))

TARGETS = ["float", "split", pytest.param("emulator", marks=pytest.mark.emulator),
           pytest.param("hailo8", marks=pytest.mark.hailo8)]


@pytest.fixture(scope="module")
def labelled(hqa_model):
    from hailo_qa.jobs.checklist import load_labelled

    return load_labelled(hqa_model)


@pytest.fixture(scope="module")
def split(hqa_model, hqa):
    from hailo_qa.graph.split import split_for_model

    return split_for_model(hqa_model, hqa.work_dir)


@pytest.fixture(scope="module")
def logits(hqa_model, hqa, split, labelled):
    """``logits(target)``: (logits [N, C], backend label) on every labelled input, computed once per module."""
    from hailo_qa.jobs.checklist import device_skip_reason, target_logits

    cache = {}

    def get(target: str):
        if target not in cache:
            if target == "hailo8":
                why = device_skip_reason(hqa_model, hqa.device)
                if why:
                    pytest.skip(f"{hqa_model.name}: {why}")
            cache[target] = target_logits(hqa_model, target, labelled[0], work_dir=hqa.work_dir, split=split,
                                          backend=hqa.emulator_backend(), device=hqa.device)
        return cache[target]

    return get


@pytest.fixture(scope="module")
def reports(hqa_model, labelled, logits):
    """``reports(target)``: the target's DeployReport (temperature and q̂ fitted on the calibration split)."""
    from hailo_qa.jobs.checklist import report_from_logits

    return lambda target: report_from_logits(hqa_model, *logits(target)[:1], labelled[1], logits(target)[1])


def _assert_items(items) -> None:
    bad = [f"{i.name}: {i.value} (gate {i.gate or '-'}, {i.target})" for i in items if i.status == "fail"]
    assert not bad, "\n".join(bad)


def test_before_export(hqa_model, split):
    """No training-only ops, BatchNorm folded, static shapes, nothing the rules reject on the device stage."""
    from hailo_qa.jobs.checklist import before_export_items

    _assert_items(before_export_items(hqa_model, split))


def test_after_export(hqa_model, split):
    """Valid and simplified ONNX, lint clean (rejected ops on the host side), real calibration data, model script."""
    from hailo_qa.jobs.checklist import after_export_items

    _assert_items(after_export_items(hqa_model, split))


def test_host_step_is_the_models_quantizer(hqa_model, split, labelled):
    """The manifest's FSQ host step equals the model's own Round → Div bit for bit (ties included)."""
    if hqa_model.host_step is None:
        pytest.skip(f"{hqa_model.name}: no host_step in the manifest (the host stage runs the ONNX as cut)")
    import numpy as np

    from hailo_qa.graph.hoststep import fsq_host_plan, verify_fsq_step
    from hailo_qa.runners.onnxrt import OnnxrtRunner

    plan = fsq_host_plan(hqa_model, split)
    x, _ = labelled
    inp = hqa_model.device_inputs[0]
    with OnnxrtRunner(split.stage1_path) as s1:
        b = np.concatenate([s1.infer({inp.name: x[i:i + 1]})[plan.cut] for i in range(min(len(x), 256))])
    assert verify_fsq_step(plan, b) >= b.size


@pytest.mark.parametrize("metric", list(DEPLOY_GATES))
@pytest.mark.parametrize("target", TARGETS)
def test_deploy_gate(hqa_model, target, metric, reports, hqa_history):
    """accuracy ≥ deploy.min_accuracy, ECE ≤ deploy.max_ece, coverage ≥ deploy.min_coverage on ``target``."""
    from hailo_qa.jobs.checklist import deploy_items

    key = DEPLOY_GATES[metric]
    if hqa_model.threshold(deploy_section(target), key) is None:
        pytest.skip(f"{hqa_model.name}: no gate for deploy.{key} in the manifest")
    rep = reports(target)
    hqa_history.record(model=hqa_model.name, metric=f"deploy.{metric}", value=float(getattr(rep, metric)),
                       target=target, extra={"backend": rep.backend, "n_eval": rep.n_eval, "n_cal": rep.n_cal,
                                             "temperature": rep.temperature, "ece_raw": rep.ece_raw})
    _assert_items([i for i in deploy_items(hqa_model, target, rep) if i.key == metric])


@pytest.mark.parametrize("target", [pytest.param("emulator", marks=pytest.mark.emulator),
                                    pytest.param("hailo8", marks=pytest.mark.hailo8)])
def test_top1_agreement_with_float(hqa_model, target, logits, hqa_history):
    """Quantized predictions agree with the float model's on every labelled input (count and 95 % CI stated; the gate
    is on the interval's lower bound)."""
    from hailo_qa.jobs.checklist import agreement_item

    if hqa_model.threshold(deploy_section(target), "min_top1_agreement") is None:
        pytest.skip(f"{hqa_model.name}: no gate for deploy.min_top1_agreement in the manifest")
    z, backend = logits(target)
    item = agreement_item(hqa_model, target, logits("float")[0], z, backend)
    hqa_history.record(model=hqa_model.name, metric="deploy.top1_agreement", value=item.number, target=target,
                       extra={"backend": backend, "n": int(z.shape[0]), "value": item.value})
    _assert_items([item])
    if item.status == "skip":  # too few labelled inputs to show the gate: said, never passed
        pytest.skip(f"{hqa_model.name}: {item.value}")


@pytest.mark.hailo8
def test_hef_size_and_latency(hqa_model, hqa):
    """HEF ≤ hailo8.max_hef_mb, P95 end to end ≤ hailo8.max_p95_ms, P95 core ≤ hailo8.max_core_p95_ms."""
    from hailo_qa.jobs.checklist import device_skip_reason, hailo8_items

    why = device_skip_reason(hqa_model, hqa.device)
    if why:
        pytest.skip(f"{hqa_model.name}: {why}")
    items = hailo8_items(hqa_model, device=hqa.device, latency_iterations=hqa.latency_iterations,
                         latency_warmup=hqa.latency_warmup, work_dir=hqa.work_dir)
    unset = [i for i in items if i.status == "skip"]
    _assert_items(items)
    if unset:
        pytest.skip("; ".join(i.value for i in unset))
