"""Ranges reduced inside the graph (issue #13): the quantized model is bit-for-bit the one ORT's calibrators give."""
from __future__ import annotations

import hashlib

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from hailo_qa.errors import InputDataError
from hailo_qa.runners import calib_ranges
from hailo_qa.runners.calib_ranges import InGraphRanges, derivations, stats_model, tensors_to_calibrate
from hailo_qa.runners.emulator_ort import CalibReader, OrtQuantConfig, quantize_stage1

from .test_emulator_ort import ArrayCalib


def _ops_model(tmp_path):
    """Every derivation rule next to ops that have none: Conv → Relu / Clip (bounds inside and outside the range, an
    opset-13 absent min) → Transpose / Reshape / Concat, a MaxPool and a Slice (subsets: never derived), a Clip whose
    bound is computed (not derivable), and a Relu of an all-negative tensor (range [0, 0])."""
    rng = np.random.default_rng(1)
    f = lambda a, n: numpy_helper.from_array(np.asarray(a, np.float32), n)  # noqa: E731
    i = lambda a, n: numpy_helper.from_array(np.asarray(a, np.int64), n)  # noqa: E731
    inits = [f(rng.normal(0, 0.5, (8, 3, 3, 3)), "w1"), f(rng.normal(0, 0.5, (4, 3, 1, 1)), "w2"),
             f([-100.0] * 4, "bneg"),
             f(-0.25, "lo"), f(0.5, "hi"), f(100.0, "big"), i([0, 8, -1], "shp"), i([0], "s0"), i([2], "s1"),
             i([1], "ax")]
    n = helper.make_node
    nodes = [n("Conv", ["x", "w1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
             n("Relu", ["c1"], ["r1"], name="relu1"),
             n("Clip", ["c1", "lo", "hi"], ["k1"], name="clip_in"),
             n("Clip", ["r1", "", "big"], ["k2"], name="clip_wide"),
             n("Neg", ["lo"], ["m1"], name="neg"),
             n("Clip", ["c1", "lo", "m1"], ["k3"], name="clip_computed"),
             n("Transpose", ["k1"], ["t1"], name="tr", perm=[0, 2, 3, 1]),
             n("Reshape", ["r1", "shp"], ["rs"], name="reshape"),
             n("MaxPool", ["r1"], ["mp"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
             n("Slice", ["c1", "s0", "s1", "ax"], ["sl"], name="slice"),
             n("Conv", ["x", "w2", "bneg"], ["cn"], name="conv2"),
             n("Relu", ["cn"], ["rn"], name="relu_neg"),
             n("Concat", ["k1", "k2", "k3", "rn"], ["y"], name="cat", axis=1)]
    outs = [("y", [1, 8 + 8 + 8 + 4, 16, 16]), ("t1", [1, 16, 16, 8]), ("rs", [1, 8, 256]), ("mp", [1, 8, 8, 8]),
            ("sl", [1, 2, 16, 16])]
    g = helper.make_graph(nodes, "ops", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
                          [helper.make_tensor_value_info(o, TensorProto.FLOAT, s) for o, s in outs], inits)
    path = tmp_path / "ops.onnx"
    onnx.save(onnx.shape_inference.infer_shapes(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)],
                                                                   ir_version=8)), path)
    return path


def _model(tmp_path, *, hard_batch: bool = False, ops: bool = False):
    """Conv-Relu-Conv; with ``hard_batch`` a Reshape to [1, -1] + Softmax that silently mixes a batch together."""
    if ops:
        return _ops_model(tmp_path)
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
@pytest.mark.parametrize("kind", ["batchable", "batch1-only", "derived-ops"])
def test_same_quantized_model_as_orts_calibrator(tmp_path, cfg, kind):
    model = _model(tmp_path, hard_batch=kind == "batch1-only", ops=kind == "derived-ops")
    cal = _calib()  # 37 samples: with a batch of 16, two full batches and a short one
    ours, meta = quantize_stage1(model, cal, cfg, tmp_path / "graph", input_name="x")
    theirs, _ = quantize_stage1(model, cal, cfg, tmp_path / "ort", input_name="x", ranges="ort")
    assert _sha(ours) == _sha(theirs)
    r = meta["ranges"]
    assert r["collector"] == "graph" and r["samples"] == 37 and r["tensors"] >= 4
    # the Reshape to [1, -1] mixes a batch: caught on the first samples, which then run one at a time
    assert r["batchable"] is (kind != "batch1-only") and (r["batchable"] or not r["batched"])
    if cfg.method == "minmax" and kind != "batch1-only":
        assert r["reduced"] < r["tensors"]  # the Relu (and the ops model's derivable tensors) are not reduced


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
    data = np.concatenate(cal.arrays)
    assert col.ranges()["x"] == (data.min(), data.max()) and col.samples == 20 and col.batchable
    assert not hasattr(col, "intermediate_outputs")  # nothing per sample is kept


def test_percentile_histograms_do_not_depend_on_the_batch(tmp_path, monkeypatch):
    """Batched or not, every histogram is the one ORT's calibrator builds a sample at a time — also for a tensor no
    input reaches (``m1 = Neg(lo)``: one value a run, counted once a sample)."""
    monkeypatch.setattr(calib_ranges, "batch_is_faster", lambda single_s, batch_s: True)  # not left to the clock
    model = _model(tmp_path, ops=True)
    results = []
    for batch in (1, 4, 5):
        col = InGraphRanges(model, None, method="percentile", percentile=99.9, batch=batch)
        col.collect_data(CalibReader(_calib(n=23), "x"))
        assert col.samples == 23 and col.batch == batch
        results.append((col.ranges(), {t: h.tolist() for t, h in zip(col.reduced, col.hist)}))
    assert "m1" in results[0][1] and sum(results[0][1]["m1"]) == 23
    assert all(r == results[0] for r in results[1:])


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


def test_derivation_rules_pick_only_exact_ops(tmp_path):
    m = onnx.load(str(_model(tmp_path, ops=True)))
    rules = derivations(m, tensors_to_calibrate(m, None))
    assert {t: r[0] for t, r in rules.items()} == {"r1": "clip", "k1": "clip", "k2": "clip", "t1": "same",
                                                    "rs": "same", "rn": "clip", "y": "concat"}
    assert rules["k1"][2] == (-0.25, 0.5) and rules["k2"][2] == (float(np.finfo(np.float32).min), 100.0)
    # subsets (MaxPool, Slice) and a computed bound are reduced; with a source not calibrated nothing is derived
    assert not {"mp", "sl", "k3", "c1", "cn"} & set(rules)
    assert derivations(m, ["r1", "t1", "y"]) == {}


def test_derived_ranges_equal_reduced_ones(tmp_path):
    """Bit-for-bit against reducing every tensor, on data where Clip bounds cut, don't cut, and a Relu is all zero."""
    model = _model(tmp_path, ops=True)
    cal = _calib(n=9, scale=3.0)
    derived, reduced = InGraphRanges(model, None, batch=4), InGraphRanges(model, None, batch=4, derive=False)
    for col in (derived, reduced):
        col.collect_data(CalibReader(cal, "x"))
    assert len(derived.reduced) == len(derived.tensors) - 7 and reduced.reduced == reduced.tensors
    a, b = derived.ranges(), reduced.ranges()
    assert a.keys() == b.keys() and all(a[t] == b[t] for t in a), {t: (a[t], b[t]) for t in a if a[t] != b[t]}
    assert a["rn"] == (0.0, 0.0) and a["k1"] == (-0.25, 0.5) and a["k2"][1] == a["r1"][1] < 100.0


def test_a_wrong_derivation_would_be_caught(tmp_path, monkeypatch):
    """The comparison above can fail: treating a Slice (a subset of its input) as shape-only changes its range."""
    monkeypatch.setattr(calib_ranges, "SHAPE_ONLY", calib_ranges.SHAPE_ONLY | {"Slice"})
    model = _model(tmp_path, ops=True)
    derived, reduced = InGraphRanges(model, None), InGraphRanges(model, None, derive=False)
    for col in (derived, reduced):
        col.collect_data(CalibReader(_calib(n=3), "x"))
    assert derived.ranges()["sl"] != reduced.ranges()["sl"]


def test_each_reduction_runs_right_behind_its_producer(tmp_path):
    """The reductions sit behind the node whose output they reduce (tensors reduced while hot and freed at once),
    the model's own nodes keep their order, and the graph is still a valid topological order for ONNX's checker."""
    m = onnx.load(str(_model(tmp_path, ops=True)))
    tensors = tensors_to_calibrate(m, None)
    for percentile in (False, True):
        s = stats_model(m, tensors, absmin=percentile)
        onnx.checker.check_model(s, full_check=True)
        nodes = list(s.graph.node)
        produced_at = {o: k for k, n in enumerate(nodes) for o in n.output}
        added = [k for k, n in enumerate(nodes) if n.name.startswith("hqa_")]
        assert len(added) == (4 if percentile else 2) * len(tensors)
        for k in added:
            src = nodes[k].input[0]
            first = min(j for j, n in enumerate(nodes) if n.name.startswith("hqa_") and n.input[0] == src)
            # every reduction of a tensor follows its producer with only other reductions in between
            assert all(nodes[j].name.startswith("hqa_") for j in range(produced_at.get(src, -1) + 1, first + 1))
        assert [n.name for n in nodes if not n.name.startswith("hqa_")] == [n.name for n in m.graph.node]


def test_stats_model_drops_nodes_nothing_reduced_needs(tmp_path):
    m = onnx.load(str(_model(tmp_path, ops=True)))
    s = stats_model(m, ["c1"])
    assert [n.op_type for n in s.graph.node] == ["Conv", "ReduceMin", "ReduceMax"]


def test_batch_is_kept_only_when_faster(tmp_path, monkeypatch):
    """The first samples are timed one at a time and as one batch; a slower batch leaves one sample a run."""
    model = _model(tmp_path)
    monkeypatch.setattr(calib_ranges, "batch_is_faster", lambda single_s, batch_s: False)
    col = InGraphRanges(model, None, batch=8)
    col.collect_data(CalibReader(_calib(n=11), "x"))
    assert col.batchable and col.batch == 1 and not col.batched and col.samples == 11
    assert set(col.probe) == {"single_s", "batch_s"}
    monkeypatch.setattr(calib_ranges, "batch_is_faster", lambda single_s, batch_s: True)
    col = InGraphRanges(model, None, batch=8)
    col.collect_data(CalibReader(_calib(n=11), "x"))
    assert col.batch == 8 and col.batched and col.samples == 11


def test_batch_is_bounded_by_activation_memory(tmp_path):
    model = _model(tmp_path)
    assert InGraphRanges(model, None).max_batch == calib_ranges.MAX_BATCH  # a few kB a sample
    m = onnx.load(str(model))
    per_sample = calib_ranges.activation_bytes(m, tensors_to_calibrate(m, None))
    assert per_sample == 4 * (3 + 8 + 8 + 4) * 16 * 16
    assert calib_ranges.BATCH_MEMORY // (calib_ranges.BATCH_MEMORY // 3) == 3  # the rule's arithmetic, 3 a batch


def test_unknown_collector_is_a_qa_error(tmp_path):
    with pytest.raises(InputDataError, match="range collector"):
        quantize_stage1(_model(tmp_path), _calib(n=2), OrtQuantConfig("int8"), tmp_path, input_name="x",
                        ranges="numpy")


REGISTERED = ["mtcnn_onet", "fsq_classifier", "yunet", "mobilefacenet", "deimv2_atto"]


def _registered(name, tmp_path):
    """(spec, split, Stage-1 input) of a registered model, skipped when its files are absent."""
    from hailo_qa.graph.split import split_for_model
    from hailo_qa.manifest import load_manifest

    spec = load_manifest().get(name)
    if not spec.available:
        pytest.skip(f"{name} is not present: {spec.unavailable}")
    split = split_for_model(spec, tmp_path / "split")
    return spec, split, split.stage1_inputs[0]


@pytest.mark.emulator
@pytest.mark.parametrize("name", REGISTERED)
def test_registered_models_quantize_bit_for_bit_as_before(name, tmp_path):
    """The quantized Stage 1 of every registered model is byte-identical with in-graph ranges and ORT's calibrator."""
    from hailo_qa.quant.calib import calib_set_for_model
    from hailo_qa.runners.emulator_ort import quant_config_for

    spec, split, inp = _registered(name, tmp_path)
    calib = calib_set_for_model(spec, size=6)
    cfg = quant_config_for(spec, "int8")
    kw = {"input_name": inp, "layout": spec.input(inp).layout}
    ours, meta = quantize_stage1(split.stage1_path, calib, cfg, tmp_path / "graph", **kw)
    theirs, _ = quantize_stage1(split.stage1_path, calib, cfg, tmp_path / "ort", ranges="ort", **kw)
    assert _sha(ours) == _sha(theirs), f"{name}: in-graph ranges changed the quantized model"
    assert meta["ranges"]["samples"] == 6


@pytest.mark.emulator
@pytest.mark.parametrize("name", REGISTERED)
def test_registered_models_derived_ranges_are_the_reduced_ones(name, tmp_path):
    """Every calibrated tensor's min and max, derived where the rules allow, equal reducing every tensor."""
    from hailo_qa.quant.calib import calib_set_for_model

    spec, split, inp = _registered(name, tmp_path)
    calib = calib_set_for_model(spec, size=3)
    cols = [InGraphRanges(split.stage1_path, None, batch=1, derive=d) for d in (True, False)]
    for col in cols:
        col.collect_data(CalibReader(calib, inp, layout=spec.input(inp).layout))
    a, b = (c.ranges() for c in cols)
    assert cols[0].rules and len(cols[0].reduced) < len(cols[1].reduced)
    assert all(a[t] == b[t] for t in b), {t: (a[t], b[t]) for t in b if a[t] != b[t]}
