"""``hqa_variant``: one test id per (model, variant), markers per target; the emulator factory calibrates once."""
from __future__ import annotations

import textwrap

import pytest

pytest_plugins = ("pytester",)

ENTRY = """[models.emb]
file = "m.onnx"
task = "embedding"
[[models.emb.inputs]]
name = "x"
shape = [1, 3, 8, 8]
[[models.emb.variants]]
precision = "int8"
calib_size = 1023
[[models.emb.variants]]
precision = "int16_selective"
int16_layers = ["fc1"]
calib_size = 2048
[[models.emb.variants]]
target = "hailo8"
hef = "int16.hef"
name = "int16-calib2048@hailo8"
[models.hefonly]
hef = "int16.hef"
task = "embedding"
[models.sweep]
file = "m.onnx"
task = "embedding"
[[models.sweep.inputs]]
name = "x"
shape = [1, 3, 8, 8]
[models.sweep.quantization]
configs = ["int8", "int16"]
[models.sweep.calibration]
sizes = [16, 64]
"""


@pytest.fixture
def manifest(pytester):
    (pytester.path / "m.onnx").write_bytes(b"not read by this test")
    (pytester.path / "int16.hef").write_bytes(b"not read by this test")
    pytester.makepyfile(textwrap.dedent("""
        def test_v(hqa_variant):
            spec, variant = hqa_variant
            assert variant.target in ("float", "emulator", "hailo8")
    """))
    return pytester.makefile(".toml", models=ENTRY)


def test_one_test_id_per_model_variant_with_the_target_marker(pytester, manifest):
    result = pytester.runpytest(f"--hqa-manifest={manifest}", "--collect-only", "-q")
    ids = {line.split("::")[1] for line in result.outlines if "::" in line}
    assert ids == {"test_v[emb[float]]", "test_v[emb[int8-calib1023@emulator]]",
                   "test_v[emb[int16_selective-calib2048@emulator]]", "test_v[emb[int16-calib2048@hailo8]]",
                   "test_v[hefonly[hef@hailo8]]", "test_v[sweep[float]]", "test_v[sweep[int8-calib16@emulator]]",
                   "test_v[sweep[int8-calib64@emulator]]", "test_v[sweep[int16-calib16@emulator]]",
                   "test_v[sweep[int16-calib64@emulator]]"}
    result = pytester.runpytest(f"--hqa-manifest={manifest}", "-m", "hailo8", "-q")
    result.assert_outcomes(skipped=2, deselected=8)  # hailo8 tests skip here: no device
    result = pytester.runpytest(f"--hqa-manifest={manifest}", "-m", "emulator", "--hqa-calib-sizes=8", "-q")
    result.assert_outcomes(passed=4, deselected=4)  # the sweep's sizes follow the override; declared ones stay


def test_the_emulator_factory_calibrates_each_combination_once_per_session(hqa_emulator, hqa_manifest):
    spec = hqa_manifest.get("mtcnn_onet")
    if not spec.samples:
        pytest.skip("mtcnn_onet calibrates on the face photos in ../shared, which are not here")
    a = hqa_emulator(spec, "int8", 4)
    assert hqa_emulator(spec, "int8", 4) is a  # reused, not calibrated again
    b = hqa_emulator(spec, "int16", 4)
    assert b is not a
    assert [k for k in hqa_emulator.calibrations if k[0] == "mtcnn_onet" and k[2] == 4] == [
        ("mtcnn_onet", spec.digest(), 4, None)]  # one calibration set serves both precisions
    assert hqa_emulator(spec, "int8", 4, fresh=True) is not a
