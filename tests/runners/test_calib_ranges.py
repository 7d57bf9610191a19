"""Ranges reduced inside the graph (issue #13): the quantized model is bit-for-bit the one ORT's calibrators give."""
from __future__ import annotations

import hashlib

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from hailo_qa.errors import InputDataError
from hailo_qa.runners.calib_ranges import InGraphRanges, stats_model, tensors_to_calibrate
from hailo_qa.runners.emulator_ort import CalibReader, OrtQuantConfig, quantize_stage1

from .test_emulator_ort import ArrayCalib


def _model(tmp_path, *, hard_batch: bool = False):
    """Conv-Relu-Conv; with ``hard_batch`` a Reshape to [1, -1] + Softmax that silently mixes a batch together."""
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.normal(0, 0.5, (8, 3, 3, 3)).astype(np.float32), "w1"),
             numpy_helper.from_array(rng.normal(0, 0.5, (4, 8, 1, 1)).astype(np.float32), "w2")]
    nodes = [helper.make_node("Conv", ["x", "w1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
             helper.make_node("Conv", ["r1", "w2"], ["y" if not hard_batch else "c2"], name="conv2")]
    out_shape = [1, 4, 16, 16]
    if hard_batch:
        inits.append(numpy_helper.from_array(np.array([1, -1], np.int64), "shape"))
        nodes += [helper.make_node("Reshape", ["c2", "shape"], ["flat"], name="flat"),
                  helper.make_node("Softmax", ["flat"], ["y"], name="softmax", axis=1)]
        out_shape = [1, 4 * 16 * 16]
    g = helper.make_graph(nodes, "m", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)], inits)
    path = tmp_path / ("hard.onnx" if hard_batch else "m.onnx")
    onnx.save(onnx.shape_inference.infer_shapes(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)],
                                                                   ir_version=8)), path)
    return path


def _calib(n=37, seed=0, scale=1.0):
    rng = np.random.default_rng(seed)
    return ArrayCalib([rng.uniform(-scale, scale, (1, 3, 16, 16)) for _ in range(n)])


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("cfg", [OrtQuantConfig("int8"), OrtQuantConfig("int8", method="percentile"),
                                 OrtQuantConfig("int16"), OrtQuantConfig("int8", weight_granularity="per_tensor"),
                                 OrtQuantConfig("int16_selective", int16_layers=("conv2",))],
                         ids=["int8", "percentile", "int16", "per_tensor", "selective"])
@pytest.mark.parametrize("hard", [False, True], ids=["batchable", "batch1-only"])
def test_same_quantized_model_as_orts_calibrator(tmp_path, cfg, hard):
    model = _model(tmp_path, hard_batch=hard)
    cal = _calib()  # 37 samples: two full batches of 16 and a short one
    ours, meta = quantize_stage1(model, cal, cfg, tmp_path / "graph", input_name="x")
    theirs, _ = quantize_stage1(model, cal, cfg, tmp_path / "ort", input_name="x", ranges="ort")
    assert _sha(ours) == _sha(theirs)
    r = meta["ranges"]
    assert r["collector"] == "graph" and r["samples"] == 37 and r["tensors"] >= 4
    assert r["batched"] is (not hard)  # the Reshape to [1, -1] mixes a batch: caught on the first batch


def test_a_different_calibration_set_gives_a_different_model(tmp_path):
    """The equality above is not vacuous: the ranges do reach the quantized model."""
    model = _model(tmp_path)
    a, _ = quantize_stage1(model, _calib(), OrtQuantConfig("int8"), tmp_path / "a", input_name="x")
    b, _ = quantize_stage1(model, _calib(scale=2.0), OrtQuantConfig("int8"), tmp_path / "b", input_name="x")
    assert _sha(a) != _sha(b)


def test_stats_model_outputs_only_reductions(tmp_path):
    m = onnx.load(str(_model(tmp_path)))
    tensors = tensors_to_calibrate(m, None)
    assert {"x", "c1", "r1", "y"} <= set(tensors) and "w1" not in tensors
    s = stats_model(m, tensors)
    assert len(s.graph.output) == 2 * len(tensors) and not s.graph.value_info
    assert s.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "hqa_batch"


def test_ranges_are_exact_min_max_and_memory_does_not_hold_samples(tmp_path):
    model = _model(tmp_path)
    cal = _calib(n=20)
    col = InGraphRanges(model, None, batch=8)
    col.collect_data(CalibReader(cal, "x"))
    k = col.tensors.index("x")
    data = np.concatenate(cal.arrays)
    assert col.lo[k] == data.min() and col.hi[k] == data.max() and col.samples == 20 and col.batched
    assert not hasattr(col, "intermediate_outputs")  # nothing per sample is kept


def test_percentile_range_is_within_one_bin_of_the_exact_percentile(tmp_path):
    """The stated error bound, checked on the model input (where the exact percentile is computable)."""
    model = _model(tmp_path)
    cal = _calib(n=12)
    col = InGraphRanges(model, None, method="percentile", percentile=99.9, batch=5)
    col.collect_data(CalibReader(cal, "x"))
    td = col.compute_data()["x"]
    a = np.abs(np.concatenate(cal.arrays).ravel())
    exact = np.percentile(a, 99.9)
    width = (a.max() - a.min()) / 2048
    assert exact - width - 1e-7 <= float(td.range_value[1]) <= exact + 1e-7
    assert float(td.range_value[0]) == -float(td.range_value[1])


def test_unknown_collector_is_a_qa_error(tmp_path):
    with pytest.raises(InputDataError, match="range collector"):
        quantize_stage1(_model(tmp_path), _calib(n=2), OrtQuantConfig("int8"), tmp_path, input_name="x",
                        ranges="numpy")


@pytest.mark.emulator
@pytest.mark.parametrize("name", ["mtcnn_onet", "fsq_classifier", "yunet", "mobilefacenet", "deimv2_atto"])
def test_registered_models_quantize_bit_for_bit_as_before(name, tmp_path):
    """The quantized Stage 1 of every registered model is byte-identical with in-graph ranges and ORT's calibrator."""
    from hailo_qa.graph.split import split_for_model
    from hailo_qa.manifest import load_manifest
    from hailo_qa.quant.calib import calib_set_for_model
    from hailo_qa.runners.emulator_ort import quant_config_for

    spec = load_manifest().get(name)
    if not spec.available:
        pytest.skip(f"{name} is not present: {spec.unavailable}")
    split = split_for_model(spec, tmp_path / "split")
    calib = calib_set_for_model(spec, size=6)
    inp = split.stage1_inputs[0]
    cfg = quant_config_for(spec, "int8")
    kw = dict(input_name=inp, layout=spec.input(inp).layout)
    ours, meta = quantize_stage1(split.stage1_path, calib, cfg, tmp_path / "graph", **kw)
    theirs, _ = quantize_stage1(split.stage1_path, calib, cfg, tmp_path / "ort", ranges="ort", **kw)
    assert _sha(ours) == _sha(theirs), f"{name}: in-graph ranges changed the quantized model"
    assert meta["ranges"]["samples"] == 6
