"""``hailo-qa checklist``: the classifier deployment checklist for any manifest classifier, and every kind of gate in
it failing on a bad model (training ops, dynamic shapes, unsimplified graph, random calibration, wrong FSQ levels,
overconfident and wrong classifiers, an oversized HEF)."""
from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from hailo_qa import config
from hailo_qa.cli import main
from hailo_qa.errors import ManifestError
from hailo_qa.jobs.checklist import (after_export_items, before_export_items, deploy_items, hailo8_items,
                                     load_labelled, run_checklist, target_report)
from hailo_qa.manifest import load_manifest

FIX = config.REPO_ROOT / "fixtures"
FSQ = FIX / "models" / "fsq_behaviour_classifier.onnx"
LABELLED = FIX / "data" / "fsq_imu_labelled.npz"
CALIB = FIX / "data" / "fsq_imu_calib.npz"


def external_manifest(tmp_path: Path, *, name: str = "collar_behaviour", model: Path = FSQ,
                      levels: str = "[5, 5, 5, 5, 5, 5, 5, 5]", deploy_extra: str = "", data: Path = LABELLED,
                      extra: str = "") -> Path:
    """The behaviour classifier registered under another name, outside the repo (absolute paths)."""
    p = tmp_path / "external.toml"
    p.write_text(f"""
[models.{name}]
file = "{model}"
task = "classification"
[[models.{name}.inputs]]
name = "imu"
shape = [1, 9, 2, 100]
layout = "NCHW"
kind = "tensor"
range = [-4.0, 4.0]
[models.{name}.split]
mode = "explicit"
cut = ["fsq/bounded"]
[models.{name}.calibration]
source = "{CALIB}"
sizes = [64]
[models.{name}.thresholds.deploy]
min_accuracy = 0.85
max_ece = 0.03
min_coverage = 0.90
[models.{name}.deploy]
data = "{data}"
alpha = 0.05
{deploy_extra}
[models.{name}.host_step]
op = "fsq"
levels = {levels}
{extra}
""", encoding="utf-8")
    return p


def _spec(tmp_path, **kw):
    return load_manifest(external_manifest(tmp_path, **kw)).models[0]


def _edited(tmp_path: Path, fn, name: str) -> Path:
    """A copy of the FSQ fixture with ``fn(model)`` applied."""
    m = onnx.load(str(FSQ))
    fn(m)
    out = tmp_path / f"{name}.onnx"
    onnx.save(m, str(out))
    return out


def _scale_last_gemm(factor: float = 0.0, permute: bool = False):
    def edit(m: onnx.ModelProto) -> None:
        last = [n for n in m.graph.node if n.op_type == "Gemm"][-1]
        for init in m.graph.initializer:
            if init.name in last.input[1:]:
                a = numpy_helper.to_array(init)
                a = np.roll(a, 1, axis=0) if permute else a * factor
                init.CopyFrom(numpy_helper.from_array(a.astype(np.float32), init.name))
    return edit


# ----------------------------------------------------------------------------------------------------------------
def test_checklist_on_the_behaviour_classifier_under_another_name(tmp_path):
    """The whole list on float and split for an external registration: real values, every gate set passes."""
    spec = _spec(tmp_path)
    cl = run_checklist(spec, targets=("float", "split"), work_dir=tmp_path / "work")
    assert not cl.failed, cl.render()
    names = [i.name for i in cl.items]
    for must in ("no training-only ops", "BatchNorm folded", "static shapes", "device stage accepted by the rules",
                 "valid ONNX", "simplified", "lint clean", "calibration set", "model script generated",
                 "host FSQ step = model's Round quantizer", "accuracy", "ece", "coverage"):
        assert must in names
    assert set(cl.reports) == {"float", "split"}
    # the split pipeline (Stage 1 → NumPy FSQ → head) computes the float model's numbers exactly
    assert cl.reports["split"].accuracy == cl.reports["float"].accuracy
    assert cl.reports["split"].ece == cl.reports["float"].ece
    text = cl.render()
    assert "✅" in text and "collar_behaviour" in text and "[split (onnxruntime" in text
    md = cl.to_markdown()
    assert md.startswith("# Deployment checklist: collar_behaviour") and "| ✅ | accuracy |" in md


def test_same_tests_run_on_an_external_manifest(tmp_path):
    """tests/test_deploy.py and tests/test_emulator_quant.py, unchanged, on the classifier registered under another
    name: no errors, no failures (the checklist items, the FSQ host step, the emulator's agreement on 256 inputs)."""
    path = external_manifest(tmp_path)
    r = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:randomly",
                        str(config.REPO_ROOT / "tests" / "test_deploy.py"),
                        str(config.REPO_ROOT / "tests" / "test_emulator_quant.py"), "-m", "not slow",
                        f"--hqa-manifest={path}",
                        f"--hqa-work-dir={tmp_path / 'work'}", "--hqa-history=off", "-rs", "-v"],
                       capture_output=True, text=True, cwd=config.REPO_ROOT, timeout=900,
                       env={**__import__("os").environ, "HAILORT_LOGGER_PATH": "NONE"})
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-4000:]
    summary = [ln for ln in r.stdout.splitlines() if ln.startswith("=") and " in " in ln][-1]
    assert "passed" in summary and "error" not in summary and "failed" not in summary, out[-2000:]
    import re

    assert re.search(r"test_deploy_gate\[[^\]]*collar_behaviour[^\]]*\] PASSED", out), out[-3000:]  # ids: the entry
    for item in ("test_before_export", "test_after_export", "test_host_step_is_the_models_quantizer",
                 "test_emulator_quant"):
        assert re.search(rf"{item}\[[^\]]*collar_behaviour[^\]]*\] PASSED", out), (item, out[-3000:])


def test_cli_prints_the_checklist_and_writes_markdown(tmp_path, capsys):
    path = external_manifest(tmp_path)
    md = tmp_path / "out" / "checklist.md"
    md.parent.mkdir()
    rc = main(["checklist", "collar_behaviour", "--manifest", str(path), "--target", "float", "--target", "hailo8",
               "--work-dir", str(tmp_path / "work"), "--history", "off", "--md", str(md)])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "Before export" in out and "After export" in out and "Deployment" in out
    assert "— accuracy" in out and "[hailo8]" in out  # hailo8 lines skipped with the reason
    assert "no HEF of Stage 1 registered" in out
    assert md.read_text(encoding="utf-8").count("| ✅ |") >= 10


def test_cli_json_and_clean_errors(tmp_path, capsys):
    import json

    path = external_manifest(tmp_path)
    assert main(["checklist", "collar_behaviour", "--manifest", str(path), "--target", "float", "--json",
                 "--work-dir", str(tmp_path / "work"), "--history", "off"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["passed"] and d["reports"]["float"]["n_eval"] > 0
    assert main(["checklist", "yunet"]) == 2
    assert "is a face_detection model" in capsys.readouterr().err


# ---- each kind of gate failing on a bad model --------------------------------------------------------------------
def test_wrong_fsq_level_count_is_caught(tmp_path, capsys):
    """The seed's post-processing passed 5 levels for an 8-wide projection."""
    path = external_manifest(tmp_path, levels="[5, 5, 5, 5, 5]")
    assert main(["checklist", "collar_behaviour", "--manifest", str(path), "--target", "split",
                 "--work-dir", str(tmp_path / "work"), "--history", "off"]) == 2
    err = capsys.readouterr().err
    assert "lists 5 level counts, but the projection 'fsq/bounded' is 8 wide" in err and "Hint:" in err


def test_fsq_levels_must_be_the_models_own(tmp_path):
    from hailo_qa.graph.hoststep import fsq_host_plan
    from hailo_qa.graph.split import split_for_model

    spec = _spec(tmp_path, levels="[7, 7, 7, 7, 7, 7, 7, 7]")
    with pytest.raises(ManifestError, match="divides by"):
        fsq_host_plan(spec, split_for_model(spec, tmp_path / "work"))
    with pytest.raises(ManifestError, match="odd level count"):
        _spec(tmp_path, levels="[4, 4, 4, 4, 4, 4, 4, 4]")


def _bad_graph() -> onnx.ModelProto:
    """Dropout, an unfolded BatchNorm, an Identity onnxslim removes, and a dynamic batch."""
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.normal(0, 1, (4, 3, 3, 3)).astype(np.float32), "w"),
             *[numpy_helper.from_array(v.astype(np.float32), n) for n, v in
               (("s", np.ones(4)), ("b", np.zeros(4)), ("m", np.zeros(4)), ("v", np.ones(4)))],
             numpy_helper.from_array(rng.normal(0, 1, (4, 5)).astype(np.float32), "fc")]
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("BatchNormalization", ["c", "s", "b", "m", "v"], ["n"]),
             helper.make_node("Relu", ["n"], ["r"]),
             helper.make_node("Dropout", ["r"], ["d"]),
             helper.make_node("GlobalAveragePool", ["d"], ["g"]),
             helper.make_node("Flatten", ["g"], ["f"]),
             helper.make_node("Identity", ["f"], ["i"]),
             helper.make_node("MatMul", ["i", "fc"], ["logits"])]
    g = helper.make_graph(nodes, "bad", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 8, 8])],
                          [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 5])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def test_before_and_after_export_items_fail_on_a_training_graph(tmp_path):
    m = _bad_graph()
    path = tmp_path / "bad.onnx"
    onnx.save(m, str(path))
    (tmp_path / "bad.toml").write_text(f"""
[models.bad]
file = "{path}"
task = "classification"
[[models.bad.inputs]]
name = "x"
shape = [1, 3, 8, 8]
range = [0.0, 1.0]
[models.bad.calibration]
source = "random"
sizes = [4]
""", encoding="utf-8")
    spec = load_manifest(tmp_path / "bad.toml").models[0]
    split = SimpleNamespace(stage1_path=path, stage1=m, stage2=helper.make_model(helper.make_graph([], "e", [], [])))
    got = {i.key: i for i in before_export_items(spec, split)}
    assert got["training_ops"].status == "fail" and "Dropout" in got["training_ops"].value
    assert got["batchnorm"].status == "fail" and got["batchnorm"].number == 1
    assert got["static_shapes"].status == "fail" and "'N'" in got["static_shapes"].value
    after = {i.key: i for i in after_export_items(spec, split)}
    assert after["simplified"].status == "fail", after["simplified"]
    assert after["calib"].status == "fail" and "random" in after["calib"].value


def test_random_calibration_is_flagged(tmp_path):
    from hailo_qa.graph.split import split_for_model

    spec = _spec(tmp_path)
    items = {i.key: i for i in after_export_items(spec, split_for_model(spec, tmp_path / "w"),
                                                  calib_source="random")}
    assert items["calib"].status == "fail" and "random" in items["calib"].value


def test_overconfident_model_fails_the_ece_gate_without_temperature_scaling(tmp_path):
    """The fixture with its logits ×4 (same predictions, overconfident): ECE fails uncalibrated and is repaired by
    the temperature fitted on the calibration split."""
    sharp = _edited(tmp_path, _scale_last_gemm(4.0), "overconfident")
    raw = _spec(tmp_path, model=sharp, deploy_extra="temperature_scaling = false")
    x, y = load_labelled(raw)
    rep = target_report(raw, "float", x, y, work_dir=tmp_path / "w")
    ece = {i.key: i for i in deploy_items(raw, "float", rep)}["ece"]
    assert ece.status == "fail" and ece.number > 0.03 and "no temperature scaling" in ece.value
    fixed = dataclasses.replace(raw, deploy=dataclasses.replace(raw.deploy, temperature_scaling=True))
    rep2 = target_report(fixed, "float", x, y, work_dir=tmp_path / "w")
    assert rep2.accuracy == rep.accuracy and rep2.temperature > 2.0
    assert {i.key: i for i in deploy_items(fixed, "float", rep2)}["ece"].status == "pass"


def test_wrong_model_fails_the_accuracy_gate(tmp_path):
    wrong = _edited(tmp_path, _scale_last_gemm(permute=True), "wrong")
    spec = _spec(tmp_path, model=wrong)
    x, y = load_labelled(spec)
    rep = target_report(spec, "split", x, y, work_dir=tmp_path / "w")
    items = {i.key: i for i in deploy_items(spec, "split", rep)}
    assert items["accuracy"].status == "fail" and rep.accuracy < 0.5


def test_top1_agreement_is_gated_on_its_lower_bound_and_refused_on_few_inputs(tmp_path):
    """A quantized model that flips 5 % of the predictions fails a 0.97 gate; 50 inputs cannot show 0.97 at all."""
    from hailo_qa.jobs.checklist import agreement_item

    spec = _spec(tmp_path, extra="[models.collar_behaviour.thresholds.deploy.emulator.int8]\nmin_top1_agreement = 0.97")
    z = np.eye(4)[np.arange(2000) % 4]
    flipped = z.copy()
    flipped[:100] = np.roll(flipped[:100], 1, axis=1)  # 100 of 2000 flipped: 0.95
    item = agreement_item(spec, "emulator", z, flipped, "ort-emulator")
    assert item.status == "fail" and "1900 of 2000 inputs" in item.value and "(100 flips)" in item.value
    ok = agreement_item(spec, "emulator", z, z, "ort-emulator")
    assert ok.status == "pass" and "lower bound 0.998" in ok.value
    few = agreement_item(spec, "emulator", z[:50], z[:50], "ort-emulator")
    assert few.status == "skip" and "50 inputs cannot show ≥ 0.97" in few.value and "≥ 125" in few.value


def test_unset_gate_is_not_a_pass(tmp_path):
    p = external_manifest(tmp_path)
    p.write_text(p.read_text().replace("max_ece = 0.03\n", ""))
    spec = load_manifest(p).models[0]
    x, y = load_labelled(spec)
    rep = target_report(spec, "float", x[:200], y[:200], work_dir=tmp_path / "w")
    ece = {i.key: i for i in deploy_items(spec, "float", rep)}["ece"]
    assert ece.status == "skip" and "no gate for deploy.max_ece in the manifest" in ece.value


def test_oversized_hef_fails_the_hef_gate(tmp_path):
    hef = config.SHARED_DIR / "hef" / "arcface_mobilefacenet_hailo8_fmt1.hef"
    if not hef.is_file():
        pytest.skip(f"shared HEF {hef} is not present")
    spec = _spec(tmp_path, extra=f'[models.collar_behaviour.thresholds.hailo8]\nmax_hef_mb = 0.5\n')
    spec = dataclasses.replace(spec, hef=hef)
    items = {i.key: i for i in hailo8_items(spec, work_dir=tmp_path / "w")}
    assert items["hef_mb"].status == "fail" and items["hef_mb"].number > 0.5


def _fake_fsq_device(monkeypatch, tmp_path, delay_s: float = 0.0, **kw):
    """The HailoRT contract fake serving the registered Hailo-8 HEF file with the FSQ Stage 1 (float ONNX on ORT) as
    its stand-in network, ``delay_s`` per frame; returns (spec with that HEF, split, the stand-in runner to close)."""
    import time

    from hailo_qa.graph.split import split_for_model
    from hailo_qa.runners.onnxrt import OnnxrtRunner
    from tests.fakes import install_fake_hailort

    hef = config.SHARED_DIR / "hef" / "arcface_mobilefacenet_hailo8_fmt1.hef"  # a real Hailo-8 HEF file to read
    if not hef.is_file():
        pytest.skip(f"shared HEF {hef} is not present")
    spec = dataclasses.replace(_spec(tmp_path, **kw), hef=hef)
    split = split_for_model(spec, tmp_path / "w")
    _, state = install_fake_hailort(monkeypatch)
    from hailo_platform import _fake

    s1 = OnnxrtRunner(split.stage1_path, name="stand-in")
    s1.activate()

    def compute(feeds):  # NHWC (2, 100, 9) on the device side -> the 8-wide FSQ projection
        x = np.ascontiguousarray(next(iter(feeds.values())).reshape(1, 2, 100, 9).transpose(0, 3, 1, 2))
        if delay_s:
            time.sleep(delay_s)
        return {"fsq/bounded": next(iter(s1.infer({"imu": x.astype(np.float32)}).values()))}

    state.hefs[str(hef)] = _fake.FakeNet([_fake.FakeStream("imu", (2, 100, 9))],
                                         [_fake.FakeStream("fsq/bounded", (8,), 0.02, 128.0)], "fsq",
                                         compute=compute)
    return spec, split, s1


@pytest.mark.parametrize("delay_s,failing", [(0.0, set()), (0.03, {"max_core_p95_ms"}),
                                             (0.11, {"max_core_p95_ms", "max_p95_ms"})])
def test_slow_device_fails_the_latency_gates(tmp_path, monkeypatch, delay_s, failing):
    """The checklist's Hailo-8 latency lines on the HailoRT contract fake running the FSQ Stage 1 (float, as a stand-in
    network) under the seed's gates: a device that takes 30 ms fails core ≤ 15 ms; 110 ms fails end to end ≤ 100 ms
    too. The rows are the fake's (hailort@…+fake), never presented as a Hailo-8's."""
    spec, split, s1 = _fake_fsq_device(monkeypatch, tmp_path, delay_s, extra="[models.collar_behaviour.thresholds"
                                       ".hailo8]\nmax_p95_ms = 100.0\nmax_core_p95_ms = 15.0")
    try:
        items = {i.key: i for i in hailo8_items(spec, work_dir=tmp_path / "w", split=split, latency_iterations=8,
                                                latency_warmup=1)}
    finally:
        s1.deactivate()
    got = {k for k in ("max_p95_ms", "max_core_p95_ms") if items[k].status == "fail"}
    assert got == failing, {k: (items[k].status, items[k].value) for k in ("max_p95_ms", "max_core_p95_ms")}
    assert all(items[k].status in ("pass", "fail") and items[k].number is not None
               for k in ("max_p95_ms", "max_core_p95_ms"))


def test_accuracy_ece_coverage_on_the_hailo8_target_run_through_the_device_stage(tmp_path, monkeypatch):
    """The hailo8 target end to end on the contract fake: NCHW IMU windows go to the device channels-last, its 8-wide
    output (uint8 on the device grid) goes through the host FSQ step and the head; the figures are the fake's."""
    sub = tmp_path / "labelled400.npz"
    with np.load(LABELLED) as z:
        np.savez(sub, x=z["x"][:400], y=z["y"][:400])
    spec, split, s1 = _fake_fsq_device(monkeypatch, tmp_path, data=sub)
    try:
        x, y = load_labelled(spec)
        dev = target_report(spec, "hailo8", x, y, work_dir=tmp_path / "w", split=split)
    finally:
        s1.deactivate()
    flt = target_report(spec, "float", x, y, work_dir=tmp_path / "w")
    assert dev.backend.startswith("hailort@") and dev.backend.split(" ")[0].endswith("+fake"), dev.backend
    assert dev.n_eval == flt.n_eval == 200 and abs(dev.accuracy - flt.accuracy) <= 0.02, (dev, flt)


def test_bad_labelled_data(tmp_path):
    bad = tmp_path / "bad.npz"
    np.savez(bad, x=np.zeros((4, 9, 2, 100), np.float32), labels=np.zeros(4, np.int64))
    from hailo_qa.errors import InputDataError

    with pytest.raises(InputDataError, match="no array"):
        load_labelled(_spec(tmp_path, data=bad))
    np.savez(bad, x=np.zeros((4, 9, 2, 99), np.float32), y=np.zeros(4, np.int64))
    with pytest.raises(InputDataError, match="do not fit input"):
        load_labelled(_spec(tmp_path, data=bad))
