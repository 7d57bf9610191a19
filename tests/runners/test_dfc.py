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


# --- the corrections of HAILO_TOOLCHAIN.md §8 -------------------------------------------------------------------
@pytest.mark.parametrize("shape", ["both", "nested", "flat"])
def test_params_statistics_are_read_per_hn_layer_and_by_flat_keys(fake, tmp_path, onnx_path, shape):
    """Contract: the DFC's statistics object is indexed per layer (stats[layer]['layer_noise_analysis/snr'], as
    Hailo's high_precision_inspector reads it) and by flat '<layer>/layer_noise_analysis/…' keys; either shape
    alone must give the same ranking, in HN layer names with their ONNX original_names."""
    fake.stats_shape = shape
    s = _parsed(tmp_path, onnx_path)
    s.optimize(_calib(8))
    ranked = s.analyze_noise(_calib(4), data_count=4)
    hn = s.hn()["layers"]
    assert {n.layer for n in ranked} == {n for n, l in hn.items() if l["type"] not in ("input_layer", "output_layer")}
    assert all(n.layer.startswith("tiny/") and n.onnx_names == tuple(hn[n.layer]["original_names"]) for n in ranked)
    conv = next(n for n in ranked if n.layer == "tiny/conv1")
    assert conv.onnx_names == ("/conv/Conv", "/relu/Relu") and conv.op_type == "conv"
    assert [n.snr_db for n in ranked] == sorted(n.snr_db for n in ranked)
    # the fake's synthetic SNR is 40 - 3·(HN index): conv1 is layer 1 → 37 dB, whatever the shape
    assert conv.snr_db == pytest.approx(37.0)


def test_flat_noise_results_and_partial_snr_are_read_when_snr_is_missing():
    flat = {"n/conv1/layer_noise_analysis/noise_results/n/output_layer1": np.array([[12.0, 9.0]]),
            "n/conv1/layer_noise_analysis/noise_results/n/output_layer2": np.array([[15.0]]),
            "n/conv2/layer_noise_analysis/partial_snr": np.float32(20.0),
            "n/conv3/stats/min": 0.0}
    got = {n.layer: n.snr_db for n in dfc.dfc_layer_noise(flat)}
    assert got == {"n/conv1": 9.0, "n/conv2": 20.0}  # worst output; the inspector's partial_snr fallback
    nested = {"n/conv1": {"layer_noise_analysis/partial_snr": 11.0, "layer_noise_analysis/snr": [14.0, 6.0]},
              "n/input_layer1": {"layer_noise_analysis/snr": 80.0}}
    hn = {"layers": {"n/input_layer1": {"type": "input_layer"}, "n/conv1": {"type": "conv",
                                                                           "original_names": ["/c/Conv"]}}}
    (only,) = dfc.dfc_layer_noise(nested, hn=hn)  # the input layer is skipped like Hailo's inspector does
    assert (only.layer, only.snr_db, only.onnx_names) == ("n/conv1", 6.0, ("/c/Conv",))
    with pytest.raises(dfc.InputDataError, match="analyze_noise"):
        dfc.dfc_layer_noise({"n/conv3/stats/min": 0.0})


@pytest.mark.parametrize("sinks,level", [
    (("logging",), 0), (("hailo_sdk.client.log",), 0), (("acceleras.log",), 0), ((), None)])
def test_level_is_read_from_the_dfc_log_files_too_and_never_guessed(fake, tmp_path, onnx_path, sinks, level):
    fake.level_log = sinks
    s = _parsed(tmp_path, onnx_path)
    s.load_model_script("model_optimization_flavor(optimization_level=2)\n")
    assert s.optimize(_calib(8)) == level  # no GPU: the DFC reduced 2 → 0 (when it says so somewhere)
    if sinks and sinks[0].endswith(".log"):
        assert "Reducing optimization level to 0" in (tmp_path / "work" / sinks[0]).read_text()
        assert "Reducing" not in s.logs["optimize"] and "Reducing" in s.file_logs["optimize"]
    # a second session in the same work dir reads only what its own step appended
    s2 = _parsed(tmp_path, onnx_path)
    fake.gpu = True
    s2.load_model_script("model_optimization_flavor(optimization_level=2)\n")
    assert s2.optimize(_calib(8)) == (1 if sinks else None)


def test_an_unknown_level_is_reported_as_unknown_not_the_requested_one(fake, tmp_path):
    from tests.quant.test_emulator import _spec

    from hailo_qa.graph.split import split_for_model
    from hailo_qa.quant import emulator
    from hailo_qa.quant.calib import calib_set_for_model

    fake.level_log = ()
    spec = _spec(tmp_path, extra="min_optimization_level = 1")
    split = split_for_model(spec, tmp_path / "w")
    with pytest.warns(dfc.OptimizationLevelWarning, match="unknown"):
        r = emulator.make_emulator(spec, split, backend="dfc", config="int8", calib=calib_set_for_model(spec, size=4),
                                   work_dir=tmp_path / "w")
    assert r.backend.details["optimization_level"] == "unknown"
    assert dfc.DfcEmulatorRunner(r.har, inputs=IN, outputs=OUT).backend.details["optimization_level"] == "unknown"


def test_on_chip_normalization_feeds_native_normalized_and_quantized_raw(fake, tmp_path, onnx_path):
    """With a model-script normalization layer, SDK_NATIVE runs without it (normalized data in) and
    SDK_FP_OPTIMIZED / SDK_QUANTIZED with it (raw 0–255 in); the runner takes normalized Stage-1 data in all."""
    mean, std = (127.5, 127.5, 127.5), (128.0, 128.0, 128.0)
    s = _parsed(tmp_path, onnx_path)
    s.load_model_script(f"normalization1 = normalization({list(mean)}, {list(std)})\n")
    s.optimize(_calib(8) * 255)
    har = s.save_har(tmp_path / "norm.har")
    x = np.random.default_rng(3).uniform(-1, 1, (1, 3, 8, 8)).astype(np.float32)
    with OnnxrtRunner(onnx_path) as ref:
        want = ref.infer({"images": x})["feat"]
    for context in ("native", "fp_optimized"):
        with dfc.DfcEmulatorRunner(har, inputs=IN, outputs=OUT, context=context,
                                   on_chip_normalization=(mean, std)) as r:
            np.testing.assert_allclose(r.infer({"images": x})["feat"], want, rtol=1e-5, atol=1e-5)
            assert r.backend.details["input_domain"] == ("normalized" if context == "native"
                                                          else "raw 0-255 (on-chip normalization)")
    with dfc.DfcEmulatorRunner(har, inputs=IN, outputs=OUT, context="fp_optimized") as wrong:  # fed normalized
        assert not np.allclose(wrong.infer({"images": x})["feat"], want, atol=1e-3)


def test_save_har_writes_a_temporary_name_ending_in_har(fake, tmp_path, onnx_path):
    s = _parsed(tmp_path, onnx_path)
    seen = []
    real = s.runner.save_har
    s.runner.save_har = lambda path, **kw: (seen.append(path), real(path, **kw))[1]
    out = s.save_har(tmp_path / "out" / "model.har")
    assert out.is_file() and seen and seen[0].endswith(".har") and seen[0] != str(out)
    assert dfc.har_temp_path(out).name.endswith(".partial.har")
    s.runner.save_har = lambda path, **kw: None  # a DFC that writes nothing: a clear error, nothing left behind
    with pytest.raises(ToolchainError, match="wrote nothing"):
        s.save_har(tmp_path / "out" / "other.har")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["model.har"]
