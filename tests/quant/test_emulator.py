"""``make_emulator(..., backend="dfc")`` and ``dfc_quantized_har`` against the ``hailo_sdk_client`` contract fake.

Plumbing only: the fake's numbers are not Hailo's and nothing here checks accuracy.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from hailo_qa.errors import InputDataError, ToolchainError
from hailo_qa.graph.split import split_for_model
from hailo_qa.manifest import load_manifest
from hailo_qa.quant import emulator
from hailo_qa.quant.calib import calib_set_for_model
from hailo_qa.runners.dfc import OptimizationLevelError
from tests.fakes.hailo_sdk_client import _support

MANIFEST = """schema = 1
[models.tiny]
file = "tiny.onnx"
task = "generic"
samples = ["s0.npy", "s1.npy"]
[[models.tiny.inputs]]
name = "images"
shape = [1, 3, 8, 8]
layout = "NCHW"
range = [0.0, 1.0]
[models.tiny.calibration]
augment = true
[models.tiny.quantization]
configs = ["int8", "int16_selective", "int16"]
{extra}
"""


@pytest.fixture
def fake(monkeypatch):
    return _support.install(monkeypatch)


def _spec(tmp_path, extra: str = ""):
    _support.tiny_onnx(tmp_path / "tiny.onnx")
    for k in range(2):
        np.save(tmp_path / f"s{k}.npy", np.random.default_rng(k).random((1, 3, 8, 8), dtype=np.float32))
    (tmp_path / "m.toml").write_text(MANIFEST.format(extra=extra))
    return load_manifest(tmp_path / "m.toml").get("tiny")


@pytest.fixture
def tiny(tmp_path):
    spec = _spec(tmp_path)
    work = tmp_path / "work"
    return spec, split_for_model(spec, work), calib_set_for_model(spec, size=4), work


def _steps(fake):
    return [c[0] for c in fake.calls]


def test_dfc_backend_builds_a_hailo_runner_with_provenance(fake, tiny):
    spec, split, calib, work = tiny
    r = emulator.make_emulator(spec, split, backend="dfc", config="int8", calib=calib, work_dir=work)
    b = r.backend
    assert (b.name, b.hailo, b.target, b.config) == ("dfc", True, "emulator", "int8")
    assert b.details["calib_size"] == 4 and b.details["calib_sha256"] == calib.sha256
    assert b.details["optimization_level"] == 0  # the fake has no GPU: the DFC drops to level 0
    with r:
        out = r.infer({"images": np.zeros((1, 3, 8, 8), np.float32)})
    assert {k: v.shape for k, v in out.items()} == {"feat": (1, 4, 8, 8), "pooled": (1, 4)}
    assert _steps(fake)[:3] == ["ClientRunner", "translate", "optimize"]


def test_translate_gets_the_split_boundary_as_end_node_names(fake, tiny):
    spec, split, calib, work = tiny
    emulator.dfc_quantized_har(spec, split, config="int8", calib=calib, work_dir=work)
    (_, net, starts, ends, _shapes), = [c for c in fake.calls if c[0] == "translate"]
    assert (net, starts, ends) == ("tiny", ["images"], ["/relu/Relu", "/flat/Flatten"])  # node names, not tensors


def test_quantized_har_is_cached_by_stage1_config_and_calibration(fake, tiny):
    spec, split, calib, work = tiny
    har1, _ = emulator.dfc_quantized_har(spec, split, config="int8", calib=calib, work_dir=work)
    n = len(fake.calls)
    har2, _ = emulator.dfc_quantized_har(spec, split, config="int8", calib=calib, work_dir=work)
    assert har2 == har1 and len(fake.calls) == n  # hit: no parse, no optimize
    har3, _ = emulator.dfc_quantized_har(spec, split, config="int16", calib=calib, work_dir=work)
    other = calib_set_for_model(spec, size=3)
    har4, _ = emulator.dfc_quantized_har(spec, split, config="int8", calib=other, work_dir=work)
    assert len({har1, har3, har4}) == 3 and _steps(fake).count("optimize") == 3
    saved = json.loads(har3.read_text())
    assert "quantization_param" in saved["model_script"] and saved["state"] != "HAILO_MODEL"


def test_a_corrupt_cache_sidecar_is_rebuilt_not_a_traceback(fake, tiny):
    spec, split, calib, work = tiny
    har, _ = emulator.dfc_quantized_har(spec, split, config="int8", calib=calib, work_dir=work)
    har.with_suffix(".json").write_text("{not json")
    har2, level = emulator.dfc_quantized_har(spec, split, config="int8", calib=calib, work_dir=work)
    assert har2 == har and level == 0 and _steps(fake).count("optimize") == 2
    assert json.loads(har.with_suffix(".json").read_text())["optimization_level"] == 0


def test_auto_picks_dfc_when_importable_and_ort_without(fake, tiny, monkeypatch):
    from hailo_qa import toolchain

    spec, split, calib, work = tiny
    assert emulator.resolve_backend("auto") == "dfc"
    assert emulator.make_emulator(spec, split, backend="auto", config="int8", calib=calib,
                                  work_dir=work).backend.name == "dfc"
    monkeypatch.undo()  # the fake leaves sys.modules
    toolchain.dfc.cache_clear()
    try:
        assert emulator.resolve_backend("auto") == "ort"
        with pytest.raises(ToolchainError, match="hailo_sdk_client is not importable") as err:
            emulator.make_emulator(spec, split, backend="dfc", config="int8", calib=calib, work_dir=work)
        assert "Hint:" in str(err.value) and "--hqa-emulator=ort" in str(err.value)
    finally:
        toolchain.dfc.cache_clear()


def test_parse_and_optimize_failures_are_toolchain_errors_and_leave_no_har(fake, tiny):
    spec, split, calib, work = tiny
    fake.optimize_failures["tiny"] = RuntimeError("Calibration failed: out of memory")
    with pytest.raises(ToolchainError, match="out of memory"):
        emulator.dfc_quantized_har(spec, split, config="int8", calib=calib, work_dir=work)
    assert not list((work / "dfc").glob("*.har"))
    fake.optimize_failures.clear()
    fake.parse_failures["tiny"] = RuntimeError("Unsupported layer")
    with pytest.raises(ToolchainError, match="Unsupported layer"):
        emulator.make_emulator(spec, split, backend="dfc", config="int8", calib=calib, work_dir=work)


def test_bad_backend_and_config_are_input_errors(fake, tiny):
    spec, split, calib, work = tiny
    with pytest.raises(InputDataError, match="'dcf' is unknown") as err:
        emulator.make_emulator(spec, split, backend="dcf", config="int8", calib=calib, work_dir=work)
    assert "dfc" in str(err.value)
    with pytest.raises(InputDataError, match="int16_selective names no 16-bit layers"):
        emulator.make_emulator(spec, split, backend="dfc", config="int16_selective", calib=calib, work_dir=work)
    assert "optimize" not in _steps(fake)


def test_int16_selective_layers_reach_the_model_script_and_the_backend(fake, tiny):
    spec, split, calib, work = tiny
    r = emulator.make_emulator(spec, split, backend="dfc", config="int16_selective", calib=calib, work_dir=work,
                               int16_layers=["/conv/Conv"])
    assert r.backend.details["int16_layers"] == ["/conv/Conv"] and r.backend.config == "int16_selective"
    assert "a16_w16" in json.loads(r.har.read_text())["model_script"]


def test_a_level_below_the_manifest_minimum_fails_when_asked(fake, tmp_path):
    spec = _spec(tmp_path, extra="min_optimization_level = 2\non_lower_level = \"fail\"")
    work = tmp_path / "work"
    split, calib = split_for_model(spec, work), calib_set_for_model(spec, size=4)
    for _ in range(2):  # fresh and from the cache
        with pytest.raises(OptimizationLevelError, match="level 0") as err:
            emulator.dfc_quantized_har(spec, split, config="int8", calib=calib, work_dir=work)
        assert "min_optimization_level" in str(err.value)


def test_16bit_layers_reach_the_model_script_as_hn_layer_names(fake, tiny):
    """Parse first, map the ONNX names through the HN's original_names, then write quantization_param: the
    fake refuses ONNX node names in a model script like the DFC (HAILO_TOOLCHAIN.md §8)."""
    spec, split, calib, work = tiny
    har, _ = emulator.dfc_quantized_har(spec, split, config="int16_selective", calib=calib, work_dir=work,
                                        int16_layers=["/relu/Relu", "/gap/GlobalAveragePool"])
    script = json.loads(har.read_text())["model_script"]
    assert "quantization_param([tiny/conv1, tiny/avgpool1], precision_mode=a16_w16)" in script
    assert "/relu/Relu" not in script
    steps = _steps(fake)
    assert steps.index("translate") < steps.index("optimize")
    meta = json.loads(har.with_suffix(".json").read_text())
    assert meta["int16_hn_layers"] == ["tiny/conv1", "tiny/avgpool1"]
    r = emulator.make_emulator(spec, split, backend="dfc", config="int16_selective", calib=calib, work_dir=work,
                               int16_layers=["/relu/Relu", "/gap/GlobalAveragePool"])
    assert r.backend.details["int16_hn_layers"] == ["tiny/conv1", "tiny/avgpool1"]


def test_a_16bit_layer_that_maps_to_nothing_lists_near_matches(fake, tiny):
    from hailo_qa.errors import ManifestError

    spec, split, calib, work = tiny
    with pytest.raises(ManifestError, match="maps to no HAR layer") as err:
        emulator.dfc_quantized_har(spec, split, config="int16_selective", calib=calib, work_dir=work,
                                   int16_layers=["/conv/Cnv"])
    assert "did you mean" in str(err.value) and "'/conv/Conv'" in str(err.value)
    assert "optimize" not in _steps(fake)


def test_a8_w8_a16_is_a_precision_mode_the_script_can_carry(fake, tiny):
    from hailo_qa.quant.model_script import alls_from_spec, layer_map_from_hn
    from hailo_qa.runners.dfc import DfcSession

    spec, split, calib, work = tiny
    s = DfcSession(work / "x", name="tiny")
    s.translate_onnx(split.stage1_path, "tiny", start_nodes=["images"])
    text = alls_from_spec(spec, "int8", calib_size=4, layer_map=layer_map_from_hn(s.hn()),
                          layer_precision={"/conv/Conv": "a8_w8_a16"})
    assert "quantization_param([tiny/conv1], precision_mode=a8_w8_a16)" in text
    s.load_model_script(text)  # the contract fake accepts it
