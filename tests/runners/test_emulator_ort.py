"""The built-in ORT emulator on a tiny synthetic Conv-Relu-Conv model (fast, no manifest models)."""
from __future__ import annotations

import hashlib
import math

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from hailo_qa.errors import GraphError, InputDataError
from hailo_qa.evaluate.metrics import snr_db
from hailo_qa.runners.emulator_ort import OrtEmulatorRunner, OrtQuantConfig, tensor_overrides
from hailo_qa.runners.onnxrt import OnnxrtRunner


class ArrayCalib:
    """A minimal calibration set with CalibSet's streaming interface (test double for hailo_qa.quant.calib.CalibSet)."""

    def __init__(self, arrays):
        self.arrays = [np.asarray(a, np.float32) for a in arrays]
        self.count, self.input_name = len(self.arrays), "x"
        self.sha256 = hashlib.sha256(b"".join(a.tobytes() for a in self.arrays)).hexdigest()

    def iter_samples(self):
        yield from (a.copy() for a in self.arrays)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    rng = np.random.default_rng(0)
    w1 = numpy_helper.from_array(rng.normal(0, 0.5, (8, 3, 3, 3)).astype(np.float32), "w1")
    w2 = numpy_helper.from_array(rng.normal(0, 0.5, (4, 8, 1, 1)).astype(np.float32), "w2")
    g = helper.make_graph(
        [helper.make_node("Conv", ["x", "w1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
         helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
         helper.make_node("Conv", ["r1", "w2"], ["y"], name="conv2")],
        "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 16, 16])], [w1, w2])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    path = tmp_path_factory.mktemp("tiny") / "stage1.onnx"
    onnx.save(m, path)
    return path


def _calib(n=8, seed=0):
    rng = np.random.default_rng(seed)
    return ArrayCalib([rng.uniform(0, 1, (1, 3, 16, 16)) for _ in range(n)])


def _snr(path, runner, seed=5):
    x = {"x": np.random.default_rng(seed).uniform(0, 1, (1, 3, 16, 16)).astype(np.float32)}
    with OnnxrtRunner(path) as f, runner:
        return snr_db(f.infer(x)["y"], runner.infer(x)["y"])


def test_int8_is_an_approximation_with_provenance(tiny, tmp_path):
    cal = _calib()
    r = OrtEmulatorRunner(tiny, cal, OrtQuantConfig("int8"), tmp_path, input_name="x")
    s = _snr(tiny, r)
    assert 15 < s < 80  # quantized: close, but not exact
    b = r.backend
    assert (b.name, b.hailo, b.target, b.config) == ("ort-emulator", False, "emulator", "int8")
    assert b.details["calib_size"] == 8 and b.details["calib_sha256"] == cal.sha256
    assert b.details["granularity"] == "per_channel" and b.details["method"] == "minmax"
    assert "QuantizeLinear" in {n.op_type for n in onnx.load(str(r.quantized_path)).graph.node}
    assert set(r.input_metadata()) == {"x"} and set(r.output_metadata()) == {"y"}


def test_int16_beats_int8_and_selective_sits_between(tiny, tmp_path):
    cal = _calib()
    s8 = _snr(tiny, OrtEmulatorRunner(tiny, cal, OrtQuantConfig("int8"), tmp_path))
    s16 = _snr(tiny, OrtEmulatorRunner(tiny, cal, OrtQuantConfig("int16"), tmp_path))
    sel = _snr(tiny, OrtEmulatorRunner(tiny, cal, OrtQuantConfig("int16_selective", int16_layers=("conv2",)),
                                       tmp_path))
    assert s16 > s8 + 20
    assert s8 - 0.5 <= sel <= s16 + 0.5


def test_overrides_cover_fused_activation_and_weights(tiny):
    ov = tensor_overrides(onnx.load(str(tiny)), ["conv1"])
    assert set(ov) == {"c1", "r1", "w1"}  # conv output, the fused Relu's output, the weights


def test_cache_hit_and_key(tiny, tmp_path):
    cal = _calib()
    p1 = OrtEmulatorRunner(tiny, cal, OrtQuantConfig("int8"), tmp_path).prepare()
    mtime = p1.stat().st_mtime_ns
    assert OrtEmulatorRunner(tiny, _calib(), OrtQuantConfig("int8"), tmp_path).prepare() == p1
    assert p1.stat().st_mtime_ns == mtime
    p_other = OrtEmulatorRunner(tiny, _calib(seed=1), OrtQuantConfig("int8"), tmp_path).prepare()
    p_tensor = OrtEmulatorRunner(tiny, cal, OrtQuantConfig("int8", weight_granularity="per_tensor"),
                                 tmp_path).prepare()
    assert len({p1, p_other, p_tensor}) == 3
    assert not list((tmp_path / "emulator").glob("*.tmp"))


def test_percentile_method_runs(tiny, tmp_path):
    s = _snr(tiny, OrtEmulatorRunner(tiny, _calib(), OrtQuantConfig("int8", method="percentile"), tmp_path))
    assert math.isfinite(s) and s > 10


def test_bad_inputs_are_qa_errors(tiny, tmp_path):
    with pytest.raises(GraphError, match="conv_1"):
        OrtEmulatorRunner(tiny, _calib(), OrtQuantConfig("int16_selective", int16_layers=("conv_1",)),
                          tmp_path).prepare()
    bad = ArrayCalib([np.full((1, 3, 16, 16), np.nan)])
    with pytest.raises(InputDataError, match="NaN"):
        OrtEmulatorRunner(tiny, bad, OrtQuantConfig("int8"), tmp_path).prepare()
    wrong = ArrayCalib([np.zeros((1, 3, 8, 8))])
    with pytest.raises(InputDataError, match="shape"):
        OrtEmulatorRunner(tiny, wrong, OrtQuantConfig("int8"), tmp_path).prepare()
    with pytest.raises(InputDataError, match="int16_selective names no"):
        OrtQuantConfig("int16_selective")
    with pytest.raises(InputDataError, match="int4"):
        OrtQuantConfig("int4")
