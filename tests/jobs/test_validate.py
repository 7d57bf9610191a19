"""``hailo-qa validate``: one table over the manifest; a failing model is reported with its step, others go on."""
from __future__ import annotations

import shutil
import sqlite3

import pytest

from hailo_qa.cli import main
from hailo_qa.jobs.validate import validate_model
from hailo_qa.manifest import load_manifest

REPO_MODELS = load_manifest().path.parent / "models"

MANIFEST = """
[models.onet]
file = "mtcnn_onet.onnx"
task = "face_detection"
samples = ["face.png"]
[[models.onet.inputs]]
name = "input_3"
shape = [1, 48, 48, 3]
layout = "NHWC"
range = [-1.0, 1.0]
preprocess = {{ color = "RGB", mean = [127.5, 127.5, 127.5], std = [128.0, 128.0, 128.0] }}
[models.onet.calibration]
sizes = [4]
[models.onet.thresholds.emulator.int8]
min_snr_db = {snr}

[models.badcut]
file = "mtcnn_onet.onnx"
[[models.badcut.inputs]]
name = "input_3"
shape = [1, 48, 48, 3]
layout = "NHWC"
[models.badcut.split]
mode = "explicit"
cut = ["no_such_tensor"]

[models.absent]
file = "shared:models/not-there.onnx"
[[models.absent.inputs]]
name = "x"
shape = [1, 3, 8, 8]
"""


@pytest.fixture
def manifest(tmp_path):
    def make(snr: float):
        shutil.copy(REPO_MODELS / "mtcnn_onet.onnx", tmp_path / "mtcnn_onet.onnx")
        import numpy as np
        from PIL import Image

        Image.fromarray(np.random.default_rng(0).integers(0, 255, (60, 60, 3), dtype=np.uint8)).save(
            tmp_path / "face.png")
        p = tmp_path / "models.toml"
        p.write_text(MANIFEST.format(snr=snr))
        return p
    return make


def test_validate_table_history_and_isolated_failures(manifest, tmp_path, capsys):
    path = manifest(snr=5.0)
    db = tmp_path / "h.sqlite"
    rc = main(["validate", "--manifest", str(path), "--history", str(db), "--work-dir", str(tmp_path / "w")])
    cap = capsys.readouterr()
    assert rc == 1  # badcut fails ...
    assert "onet" in cap.out and "PASS" in cap.out and "exact×" in cap.out  # ... and the others still run
    assert "badcut: failed at split: " in cap.out and "does not exist" in cap.out
    assert "absent" in cap.out and "SKIP" in cap.out
    assert "1 passed, 1 failed, 1 skipped" in cap.out
    assert "[1/3] onet" in cap.err
    rows = sqlite3.connect(db).execute("select model, metric, value from metrics").fetchall()
    assert ("onet", "validate_pass", 1.0) in rows and ("badcut", "validate_pass", 0.0) in rows
    assert any(m == "onet" and k == "snr_db" for m, k, _ in rows)


def test_gate_failure_is_reported_at_the_emulate_step(manifest, tmp_path):
    spec = load_manifest(manifest(snr=200.0)).get("onet")
    r = validate_model(spec, work_dir=tmp_path / "w")
    assert r.status == "fail" and r.failed_step == "emulate" and "snr_db" in r.error
    assert r.figures["proof_inputs"] == 3 and r.backend.startswith("ort-emulator")


def test_hef_only_entry_is_inspected():
    spec = load_manifest().get("arcface_mobilefacenet_hef")
    if not spec.available:
        pytest.skip(spec.unavailable)
    r = validate_model(spec, work_dir=None)
    assert r.status == "pass" and "HAILO8P" in r.notes[0]


VARIANTS = """
[[models.onet.variants]]
precision = "int8"
calib_size = 4
[[models.onet.variants]]
precision = "int16"
calib_size = 4
[[models.onet.variants]]
target = "hailo8"
hef = "shared:hef/not-compiled-yet.hef"
[models.onet.thresholds.emulator.int16]
min_snr_db = 500
"""


def test_each_variant_is_validated_and_fails_alone_and_every_run_keeps_its_summary(manifest, tmp_path, capsys):
    import json

    path = manifest(snr=5.0)
    path.write_text(path.read_text().split("[models.badcut]")[0] + VARIANTS)
    db, out = tmp_path / "h.sqlite", tmp_path / "summaries"
    args = ["validate", "--manifest", str(path), "--history", str(db), "--work-dir", str(tmp_path / "w"),
            "--summary-dir", str(out)]
    assert main(args) == 1
    cap = capsys.readouterr()
    assert "onet[int8-calib4@emulator]" in cap.out and "onet[int16-calib4@emulator]: failed at emulate" in cap.out
    assert "1 passed, 1 failed, 1 skipped" in cap.out and "not-compiled-yet.hef" in cap.out
    rows = sqlite3.connect(db).execute("select model, variant, metric, value from metrics "
                                       "where metric='validate_pass'").fetchall()
    assert ("onet", "int8-calib4@emulator", "validate_pass", 1.0) in rows
    assert ("onet", "int16-calib4@emulator", "validate_pass", 0.0) in rows
    assert main(args) == 1
    first, second = sorted(out.glob("validate-*.json"))
    docs = [json.loads(p.read_text()) for p in (first, second)]
    assert docs[0]["run_id"] != docs[1]["run_id"] and not docs[0]["ok"]
    assert [r["status"] for r in docs[0]["results"]] == ["pass", "fail", "skip"]


def test_json_is_the_only_thing_on_stdout(manifest, tmp_path, capsys):
    import json

    path = manifest(snr=5.0)
    rc = main(["validate", "--manifest", str(path), "--history", str(tmp_path / "h.sqlite"), "--work-dir",
               str(tmp_path / "w"), "--json", "--no-simplify", "--models", "onet,badcut"])
    cap = capsys.readouterr()
    assert rc == 1
    doc = json.loads(cap.out)  # one valid JSON document, nothing else
    assert [r["model"] for r in doc] == ["onet", "badcut"] and doc[0]["status"] == "pass"
    assert "validate: 1 passed, 1 failed" in cap.err and "recorded in" in cap.err
