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


# ---- the emulator computes the QDQ model, on any CPU --------------------------------------------------------------
@pytest.fixture(scope="module")
def wide(tmp_path_factory):
    """A 1×1 Conv over 64 channels with positive weights: uint8 activations near 255 times int8 weights near 127.

    Two such products already exceed int16 (2·255·127 = 64770 > 32767); a CPU kernel that sums pairs of u8·s8
    products in int16 with saturation (x86 AVX2 without VNNI, ``vpmaddubsw``) clips them. The QDQ model does not.
    """
    rng = np.random.default_rng(3)
    w = numpy_helper.from_array(rng.uniform(0.5, 1.0, (8, 64, 1, 1)).astype(np.float32), "w")
    g = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"], name="conv")],
        "wide", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 4, 4])], [w])
    path = tmp_path_factory.mktemp("wide") / "stage1.onnx"
    # opset 21: ONNX's reference evaluator implements DequantizeLinear from opset 19
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 21)], ir_version=10), path)
    return path


def _wide_calib(n=4):
    rng = np.random.default_rng(0)
    return ArrayCalib([rng.uniform(0.9, 1.0, (1, 64, 4, 4)) for _ in range(n)])  # range [0, 1]: u8 ≈ 230-255


def test_int8_computes_the_qdq_model_exactly_on_any_cpu(wide, tmp_path):
    """The emulator's output is what the QDQ model means (ONNX's reference evaluator), to one output step.

    ORT's CPU kernels fused from QDQ (QLinearConv, ...) are fast but CPU-dependent; on an AVX2 host without VNNI
    they saturate u8×s8 sums and this model loses ~all precision (regression: INT8 SNR of the registered models
    fell by 6-15 dB on such a host).
    """
    from onnx.reference import ReferenceEvaluator

    r = OrtEmulatorRunner(wide, _wide_calib(), OrtQuantConfig("int8"), tmp_path, input_name="x")
    x = {"x": np.random.default_rng(9).uniform(0.9, 1.0, (1, 64, 4, 4)).astype(np.float32)}  # near the top: u8≈255
    qmodel = onnx.load(str(r.prepare()))
    want = ReferenceEvaluator(qmodel).run(None, x)[0]
    with r:
        got = r.infer(x)["y"]
    step = float(numpy_helper.to_array(next(i for i in qmodel.graph.initializer if i.name == "y_scale")))
    assert np.abs(got - want).max() <= step * 1.01, "the emulator does not compute its own QDQ model"
    with OnnxrtRunner(wide) as f:
        assert snr_db(f.infer(x)["y"], got) > 35  # and the QDQ model is a close approximation of the float one


def _qdq_params(model: onnx.ModelProto) -> dict[str, tuple[np.dtype, tuple[int, ...], int | None, bool]]:
    """``quantized tensor → (zero-point dtype, scale shape, axis, all zero points 0)`` of each DequantizeLinear."""
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    out = {}
    for n in model.graph.node:
        if n.op_type != "DequantizeLinear":
            continue
        zp = inits[n.input[2]]
        axis = next((a.i for a in n.attribute if a.name == "axis"), None)
        out[n.input[0]] = (zp.dtype, inits[n.input[1]].shape, axis, bool((zp == 0).all()))
    return out


def test_quantized_model_has_the_documented_scheme(tiny, tmp_path):
    """Unsigned asymmetric per-tensor 8-bit activations, signed symmetric per-channel 8-bit weights, 16-bit overrides
    — a property of the QDQ model, so a changed ONNX Runtime default cannot pass unnoticed."""
    cal = _calib()
    q8 = _qdq_params(onnx.load(str(OrtEmulatorRunner(tiny, cal, OrtQuantConfig("int8"), tmp_path).prepare())))
    weights = {k: v for k, v in q8.items() if k.startswith(("w1", "w2"))}
    acts = {k: v for k, v in q8.items() if k not in weights}
    assert len(weights) == 2 and acts
    for dtype, shape, axis, zero in weights.values():
        assert dtype == np.int8 and zero and axis == 0 and len(shape) == 1 and shape[0] in (8, 4)
    for dtype, shape, _axis, _zero in acts.values():
        assert dtype == np.uint8 and shape == ()
    assert not all(zero for *_, zero in acts.values())  # asymmetric: the input's zero point is not 0 or 128 forced
    per_t = _qdq_params(onnx.load(str(OrtEmulatorRunner(
        tiny, cal, OrtQuantConfig("int8", weight_granularity="per_tensor"), tmp_path).prepare())))
    assert all(shape == () for k, (_, shape, _, _) in per_t.items() if k.startswith(("w1", "w2")))
    sel = _qdq_params(onnx.load(str(OrtEmulatorRunner(
        tiny, cal, OrtQuantConfig("int16_selective", int16_layers=("conv2",)), tmp_path).prepare())))
    assert sel[next(k for k in sel if k.startswith("w2"))][0] == np.int16
    assert sel[next(k for k in sel if k.startswith("w1"))][0] == np.int8
    assert {v[0] for k, v in sel.items() if k.startswith("y")} == {np.dtype(np.uint16)}
    q16 = _qdq_params(onnx.load(str(OrtEmulatorRunner(tiny, cal, OrtQuantConfig("int16"), tmp_path).prepare())))
    assert {v[0] for v in q16.values()} == {np.dtype(np.uint16), np.dtype(np.int16)}
