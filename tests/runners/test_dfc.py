"""The DFC adapter against the ``hailo_sdk_client`` contract fake (tests/fakes): plumbing, not accuracy."""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest

from hailo_qa.errors import EnvironmentProblem, InputFileError, InternalError, ToolchainError
from hailo_qa.runners import dfc
from hailo_qa.runners.base import TensorMeta
from hailo_qa.runners.onnxrt import OnnxrtRunner
from tests.fakes.hailo_sdk_client import _support

SECTION_1_10 = """Parsing failed. The errors found in the graph are:
 UnsupportedOperationError in op /model.23/GatherElements: GatherElements operation is unsupported
 UnsupportedReduceMaxLayerError in op /model.23/ReduceMax: Failed to create reduce max layer at vertex /model.23/ReduceMax. Reduce max is only supported on the features axis, and with keepdim=True
 UnsupportedShuffleLayerError in op /model.23/Flatten: Failed to determine type of layer to create in node /model.23/Flatten
 UnsupportedOperationError in op /model.23/TopK: TopK operation is unsupported
 UnsupportedOperationError in op /model.23/Mod: Mod operation is unsupported
 UnsupportedGatherLayerError in op /model.23/Gather_3: Can't find index
Please try to parse the model again, using these end node names: a, b, c"""


@pytest.fixture
def fake(monkeypatch):
    return _support.install(monkeypatch)


@pytest.fixture
def onnx_path(tmp_path):
    return _support.tiny_onnx(tmp_path / "tiny.onnx")


def _parsed(tmp_path, onnx_path, **kw):
    s = dfc.DfcSession(tmp_path / "work", name="tiny", **kw)
    s.translate_onnx(onnx_path, "tiny", start_nodes=["images"], end_nodes=["/relu/Relu"],
                     input_shapes={"images": [1, 3, 8, 8]})
    return s


def _calib(n):
    return np.random.default_rng(1).random((n, 8, 8, 3), dtype=np.float32)


# --- parser verdict (pure) ----------------------------------------------------------------------------------------
def test_parse_recommendation_reads_every_issue_and_the_end_nodes():
    v = dfc.parse_recommendation(SECTION_1_10)
    assert not v.ok
    assert [i.error_class for i in v.errors] == [
        "UnsupportedOperationError", "UnsupportedReduceMaxLayerError", "UnsupportedShuffleLayerError",
        "UnsupportedOperationError", "UnsupportedOperationError", "UnsupportedGatherLayerError"]
    assert v.errors[3].node == "/model.23/TopK" and v.errors[3].text == "TopK operation is unsupported"
    assert v.errors[5] == dfc.ParseIssue("UnsupportedGatherLayerError", "/model.23/Gather_3", "Can't find index")
    assert v.recommended_end_nodes == ("a", "b", "c")
    assert v.to_dict()["errors"][0]["node"] == "/model.23/GatherElements"


def test_parse_recommendation_of_an_unknown_message_keeps_the_text():
    v = dfc.parse_recommendation("something else broke")
    assert (v.ok, v.errors, v.recommended_end_nodes, v.message) == (False, (), (), "something else broke")


# --- optimization level ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("requested,gpu,n,level,why", [
    (2, False, 5000, 0, "no available GPU"),
    (2, False, 64, 0, "less data than the recommended amount (1024), and there's no available GPU"),
    (2, True, 64, 1, "less data than the recommended amount (1024)"),
    (2, True, 1024, 2, ""),
    (4, True, 2048, 4, ""),
    (1, True, 10, 1, ""),
    (0, False, 10, 0, ""),
])
def test_predict_optimization_level(requested, gpu, n, level, why):
    got, reason = dfc.predict_optimization_level(requested, gpu_available=gpu, calib_size=n)
    assert got == level
    assert (why in reason) if why else reason == ""


@pytest.mark.parametrize("log,level", [
    ("[info] Using default optimization level of 2\n[info] Model Optimization is done", 2),
    ("[info] Using default optimization level of 2\n[warning] Reducing optimization level to 0 (the accuracy "
     "won't be optimized and compression won't be used) because there's no available GPU", 0),
    ("[warning] Reducing optimization level to 1 (the accuracy won't be optimized and compression won't be used) "
     "because there's less data than the recommended amount (1024)", 1),
    ("[info] Model Optimization is done", None),
])
def test_read_optimization_level(log, level):
    assert dfc.read_optimization_level(log) == level


def test_lower_level_warns_or_fails_per_policy():
    dfc.check_optimization_level(2, minimum=2, on_lower="fail")  # equal: nothing
    with pytest.warns(dfc.OptimizationLevelWarning, match="level 0 because there's no available GPU"):
        dfc.check_optimization_level(0, minimum=2, on_lower="warn", reason="there's no available GPU")
    with pytest.raises(dfc.OptimizationLevelError, match="at least level 2") as e:
        dfc.check_optimization_level(1, minimum=2, on_lower="fail", context="m")
    assert e.value.step == "optimize" and "Hint:" in str(e.value)


def test_gpu_probe_is_a_prediction_from_cuda_visible_devices_and_nvidia_smi(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")
    assert dfc.gpu_available() == (False, "CUDA_VISIBLE_DEVICES='-1' hides every GPU")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    monkeypatch.setattr(dfc.shutil, "which", lambda name: None)
    assert dfc.gpu_available() == (False, "nvidia-smi not found on PATH")


def test_session_reads_the_level_the_dfc_used_from_its_log(fake, tmp_path, onnx_path):
    s = _parsed(tmp_path, onnx_path)
    s.load_model_script("model_optimization_config(calibration, calibset_size=64)\n")
    assert s.optimize(_calib(16)) == 0  # no GPU in the fake by default
    assert "Reducing optimization level to 0" in s.logs["optimize"]
    assert "Using default optimization level of 2" in s.logs["optimize"]
    fake.gpu = True
    s2 = _parsed(tmp_path, onnx_path)
    assert s2.optimize(_calib(16)) == 1
    s3 = _parsed(tmp_path, onnx_path)
    assert s3.optimize(_calib(1024)) == 2
    assert "Reducing" not in s3.logs["optimize"]


# --- keyword spellings ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("style", ["new", "v2.4", "v2.3", "opaque"])
def test_translate_uses_the_keyword_spelling_of_the_installed_dfc(fake, tmp_path, onnx_path, style):
    fake.keyword_style = style
    s = _parsed(tmp_path, onnx_path)
    (call,) = [c for c in fake.calls if c[0] == "translate"]
    assert call[1:3] == ("tiny", ["images"])
    assert call[4] in ({"images": [1, 3, 8, 8]}, [1, 3, 8, 8])
    assert s.runner.state.name == "HAILO_MODEL"


def test_translate_kwargs_per_signature():
    def new(m, n, start_node_names=None, end_node_names=None, net_input_shapes=None): ...

    def old(m, n, start_node_name=None, end_node_names=None, net_input_shape=None): ...

    assert dfc.translate_kwargs(new, ["a"], ["z"], {"a": (1, 3)}) == {
        "start_node_names": ["a"], "end_node_names": ["z"], "net_input_shapes": {"a": [1, 3]}}
    assert dfc.translate_kwargs(old, ["a"], None, {"a": (1, 3)}) == {"start_node_name": "a",
                                                                     "net_input_shape": [1, 3]}


# --- failures -------------------------------------------------------------------------------------------------------
def test_without_the_dfc_it_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "hailo_sdk_client", None)
    with pytest.raises(EnvironmentProblem, match="hailo_sdk_client\\) is not installed") as e:
        dfc.import_dfc()
    assert "Hailo Developer Zone" in str(e.value)


def test_parse_failure_is_a_toolchain_error_with_the_recommended_end_nodes(fake, tmp_path, onnx_path):
    from hailo_sdk_client.model_translator.exceptions import ParsingWithRecommendationException

    fake.parse_failures["tiny"] = ParsingWithRecommendationException(SECTION_1_10)
    with pytest.raises(ToolchainError) as e:
        _parsed(tmp_path, onnx_path)
    assert e.value.step == "parse" and isinstance(e.value.__cause__, ParsingWithRecommendationException)
    assert "/model.23/TopK (UnsupportedOperationError)" in str(e.value)
    assert "split.end_nodes): a, b, c" in str(e.value)


def test_compile_socket_failure_is_an_environment_problem(fake, tmp_path, onnx_path):
    from hailo_sdk_client.runner.client_runner import HailoToolsException

    s = _parsed(tmp_path, onnx_path)
    s.optimize(_calib(8))
    fake.compile_failures["tiny"] = HailoToolsException("Couldn't launch Hailo tool securely")
    with pytest.raises(EnvironmentProblem, match="loopback") as e:
        s.compile()
    assert e.value.step == "compile" and "--from-har" in str(e.value)
    assert isinstance(e.value.__cause__, HailoToolsException)


def test_log_permission_error_is_an_environment_problem(fake, tmp_path, onnx_path):
    fake.parse_failures["tiny"] = PermissionError(13, "Permission denied", "/ro/hailo_sdk.client.log")
    with pytest.raises(EnvironmentProblem, match="could not write its log") as e:
        _parsed(tmp_path, onnx_path)
    assert "HAILO_SDK_LOG_DIR" in str(e.value)
    gpu_probe = environment = dfc.environment_problem(PermissionError(1, "Operation not permitted"), step="optimize")
    assert gpu_probe is not None and "HAILO_DISABLE_MO_SUB_PROCESS=1" in str(environment)
    assert dfc.environment_problem(ValueError("bad shape"), step="optimize") is None


def test_unwritable_work_dir_is_an_environment_problem(fake, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    with pytest.raises(EnvironmentProblem, match="not writable"):
        dfc.DfcSession(blocker / "work")


def test_steps_run_in_the_work_dir_and_restore_cwd_and_log_dir(fake, tmp_path, onnx_path, monkeypatch):
    monkeypatch.delenv("HAILO_SDK_LOG_DIR", raising=False)
    seen = {}
    fake.parse_failures["tiny"] = None
    cwd = os.getcwd()

    def spy():
        seen["cwd"], seen["log"] = os.getcwd(), os.environ.get("HAILO_SDK_LOG_DIR")

    s = dfc.DfcSession(tmp_path / "work")
    s._step("spy", spy)
    assert seen == {"cwd": str((tmp_path / "work").resolve()), "log": str((tmp_path / "work" / "logs").resolve())}
    assert os.getcwd() == cwd and "HAILO_SDK_LOG_DIR" not in os.environ


def test_dfc_parse_verdict(fake, tmp_path, onnx_path):
    from hailo_sdk_client.model_translator.exceptions import ParsingWithRecommendationException

    ok = dfc.dfc_parse_verdict(onnx_path, net_name="tiny", start_nodes=["images"])
    assert ok.ok and ok.backend == "dfc@3.33.0+contract-fake"
    fake.parse_failures["tiny"] = ParsingWithRecommendationException(SECTION_1_10)
    bad = dfc.dfc_parse_verdict(onnx_path, net_name="tiny")
    assert not bad.ok and len(bad.errors) == 6 and bad.recommended_end_nodes == ("a", "b", "c")
    fake.parse_failures["tiny"] = ZeroDivisionError("float division by zero")
    crash = dfc.dfc_parse_verdict(onnx_path, net_name="tiny")
    assert crash.errors == (dfc.ParseIssue("ZeroDivisionError", "", "float division by zero"),)


# --- the Stage-1 runner ---------------------------------------------------------------------------------------------
IN = [TensorMeta("images", (1, 3, 8, 8), np.dtype(np.float32))]
OUT = [TensorMeta("feat", (1, 4, 8, 8), np.dtype(np.float32)), TensorMeta("pooled", (1, 4), np.dtype(np.float32))]


@pytest.fixture
def quantized_har(fake, tmp_path, onnx_path):
    s = _parsed(tmp_path, onnx_path)
    s.optimize(_calib(8))
    return s.save_har(tmp_path / "tiny_quantized.har")


@pytest.mark.parametrize("context", ["native", "fp_optimized", "quantized"])
def test_emulator_runner_has_the_stage1_interface(fake, tmp_path, onnx_path, quantized_har, context):
    x = np.random.default_rng(2).random((1, 3, 8, 8), dtype=np.float32)
    with OnnxrtRunner(onnx_path) as ref:
        want = ref.infer({"images": x})
    r = dfc.DfcEmulatorRunner(quantized_har, inputs=IN, outputs=OUT, context=context, work_dir=tmp_path / "w",
                              optimization_level=0)
    assert r.backend.name == "dfc" and r.backend.hailo and r.backend.version == "3.33.0+contract-fake"
    assert r.backend.details["context"] == context and r.backend.details["optimization_level"] == 0
    assert {m.layout for m in r.output_metadata().values()} == {"NCHW", None}
    with r:
        assert fake.open_contexts == 1
        got = r.infer({"images": x})
    assert fake.open_contexts == 0
    assert {k: v.shape for k, v in got.items()} == {"feat": (1, 4, 8, 8), "pooled": (1, 4)}
    if context == "quantized":  # the fake's synthetic "quantization": a 1/8 grid
        assert np.all(got["feat"] * 8 == np.round(got["feat"] * 8))
        np.testing.assert_allclose(got["feat"], want["feat"], atol=1 / 16 + 1e-6)
        assert r.backend.target == "emulator" and r.backend.config == "int8"
    else:
        np.testing.assert_array_equal(got["feat"], want["feat"])  # NHWC→NCHW conversion is exact
        assert r.backend.target == "float"


def test_emulator_runner_releases_the_context_on_error(fake, tmp_path, quantized_har):
    r = dfc.DfcEmulatorRunner(quantized_har, inputs=IN, outputs=OUT, work_dir=tmp_path / "w")
    fake.infer_error = RuntimeError("emulator exploded")
    with pytest.raises(ToolchainError, match="emulator exploded") as e:
        with r:
            r.infer({"images": np.zeros((1, 3, 8, 8), np.float32)})
    assert e.value.step == "infer"
    assert fake.open_contexts == 0 and not r.is_active
    with pytest.raises(InternalError):
        r.infer({"images": np.zeros((1, 3, 8, 8), np.float32)})


def test_emulator_runner_activation_failure_leaves_nothing_open(fake, tmp_path):
    r = dfc.DfcEmulatorRunner(tmp_path / "missing.har", inputs=IN, outputs=OUT)
    with pytest.raises(InputFileError, match="does not exist"):
        r.__enter__()
    assert fake.open_contexts == 0 and not r.is_active and r.session is None


def test_emulator_runner_checks_output_shapes(fake, tmp_path, quantized_har):
    wrong = [TensorMeta("feat", (1, 8, 8, 4), np.dtype(np.float32)), OUT[1]]
    with dfc.DfcEmulatorRunner(quantized_har, inputs=IN, outputs=wrong, work_dir=tmp_path / "w") as r:
        with pytest.raises(ToolchainError, match="expected \\(1, 8, 8, 4\\)"):
            r.infer({"images": np.zeros((1, 3, 8, 8), np.float32)})


def test_native_context_on_a_parsed_har_needs_no_optimize(fake, tmp_path, onnx_path):
    har = _parsed(tmp_path, onnx_path).save_har(tmp_path / "tiny.har")
    with dfc.DfcEmulatorRunner(har, inputs=IN, outputs=OUT, context="native") as r:
        assert r.infer({"images": np.ones((1, 3, 8, 8), np.float32)})["pooled"].shape == (1, 4)
    with pytest.raises(ToolchainError, match="needs a quantized model"):
        with dfc.DfcEmulatorRunner(har, inputs=IN, outputs=OUT, context="quantized"):
            pass
    assert fake.open_contexts == 0


def test_analyze_noise_reads_the_params_statistics(fake, tmp_path, onnx_path):
    s = _parsed(tmp_path, onnx_path)
    with pytest.raises(ToolchainError) as e:  # not quantized yet: the step is named
        s.analyze_noise(_calib(4))
    assert e.value.step == "analyze_noise"
    s.optimize(_calib(8))
    ranked = s.analyze_noise(_calib(4), data_count=4)
    assert ranked and all(n.source == "dfc" for n in ranked)
    assert [n.snr_db for n in ranked] == sorted(n.snr_db for n in ranked)  # worst first
    assert ("analyze_noise", s.runner.model_name, "advanced", 4) in fake.calls
