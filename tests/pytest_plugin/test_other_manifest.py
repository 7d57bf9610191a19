"""Same answer everywhere: ``pytest -m emulator --hqa-manifest OTHER.toml`` runs only what applies to that manifest
(no model-validation test is hard-wired to one of our model names), and pytest and ``hailo-qa validate`` apply the
same gates — a metric without a manifest gate is reported, not failed, in both."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

from hailo_qa.cli import main
from hailo_qa.config import REPO_ROOT

OURS = re.compile(r"deimv2|yunet|mtcnn_onet|mobilefacenet|fsq")
MODEL_TESTS = ["tests/test_emulator_quant.py", "tests/test_deploy.py", "tests/test_embedding_similarity.py",
               "tests/test_stage_split.py", "tests/test_hailo8_latency.py", "tests/test_unseen_models.py"]

OTHER = """
[models.their_onet]
file = "onet.onnx"
task = "face_detection"
[[models.their_onet.inputs]]
name = "input_3"
shape = [1, 48, 48, 3]
layout = "NHWC"
range = [-1.0, 1.0]
[models.their_onet.calibration]
source = "calib"
sizes = [4]
[models.their_onet.thresholds.emulator.int8]
min_cosine = {cosine}
"""


def _other(tmp_path, cosine: float):
    import numpy as np

    shutil.copy(REPO_ROOT / "fixtures" / "models" / "mtcnn_onet.onnx", tmp_path / "onet.onnx")
    (tmp_path / "calib").mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    for k in range(4):
        np.save(tmp_path / "calib" / f"{k}.npy", rng.uniform(-1, 1, (1, 48, 48, 3)).astype(np.float32))
    p = tmp_path / "other.toml"
    p.write_text(OTHER.format(cosine=cosine))
    return p


def _pytest(*args, cwd=REPO_ROOT):
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "HAILORT_LOGGER_PATH": "NONE"}
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=900)


def test_other_manifest_collects_only_its_models(tmp_path):
    path = _other(tmp_path, cosine=0.5)
    r = _pytest("--collect-only", "-q", "-m", "emulator", f"--hqa-manifest={path}", *MODEL_TESTS)
    ids = [line for line in r.stdout.splitlines() if "::" in line]
    assert r.returncode == 0, r.stdout + r.stderr
    # every model test runs on the other manifest's model, or is one skipped placeholder ("no-model": no model of
    # that manifest has the task) — never on one of ours
    assert ids and all("their_onet" in i or "no-model" in i for i in ids), ids
    assert any("test_emulator_quant" in i and "their_onet" in i for i in ids)
    assert not [i for i in ids if OURS.search(i)]


def test_pytest_and_validate_apply_the_same_gates(tmp_path):
    for cosine, want in ((0.5, 0), (1.0, 1)):  # a reachable gate passes in both; bit-exact INT8 (never) fails in both
        path = _other(tmp_path, cosine=cosine)
        r = _pytest("-q", "-m", "emulator", f"--hqa-manifest={path}", "--hqa-history=off",
                    f"--hqa-work-dir={tmp_path / 'w'}", "--hqa-calib-sizes=4", "tests/test_emulator_quant.py")
        assert (r.returncode != 0) == bool(want), r.stdout[-3000:]
        assert "min_snr_db" not in r.stdout or "no thresholds" not in r.stdout  # no gate: reported, not failed
        rc = main(["validate", "--manifest", str(path), "--history", "off", "--work-dir", str(tmp_path / "w"),
                   "--json"])
        assert rc == want
