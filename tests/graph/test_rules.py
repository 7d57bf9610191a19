"""The rule table is data: every entry is well formed, and the conditional checks decide as documented."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper as nh

from hailo_qa.graph.index import GraphIndex
from hailo_qa.graph.rules import CHECKS, evaluate, load_rules

SEED_REJECTS = ["GridSample", "GatherElements", "TopK", "Mod", "Round", "Erf"]


def test_table_loads_and_covers_the_seed_rejects():
    rules = load_rules()
    for op in SEED_REJECTS:
        assert rules[op].status == "unsupported" and rules[op].workaround, op
    for r in rules.values():
        for c in r.conditions:
            assert c["check"] in CHECKS


def _one(op, inputs, out_shape, inits=(), out_type=T.FLOAT, **attrs):
    node = h.make_node(op, [i[0] for i in inputs] + [t.name for t in inits], ["y"], name="n", **attrs)
    g = h.make_graph([node], "g", [h.make_tensor_value_info(n, T.FLOAT, s) for n, s in inputs],
                     [h.make_tensor_value_info("y", out_type, out_shape)], list(inits))
    m = h.make_model(g, opset_imports=[h.make_opsetid("", 17)], ir_version=8)
    m = onnx.shape_inference.infer_shapes(m)
    gi = GraphIndex(m)
    return evaluate(gi, gi.nodes[0])


@pytest.mark.parametrize("keepdims,axes,ok", [(1, [1], True), (0, [1], False), (1, [2], False), (1, [-3], True)])
def test_reducemax_keepdims_and_axis(keepdims, axes, ok):
    v = _one("ReduceMax", [("x", [1, 4, 5, 5])], None, keepdims=keepdims, axes=axes)
    assert v.ok is ok, v.reason


@pytest.mark.parametrize("reps,ok", [([1, 2, 1, 1], True), ([2, 1, 1, 1], False)])
def test_tile_on_batch_is_rejected(reps, ok):
    v = _one("Tile", [("x", [1, 4, 5, 5])], None, inits=[nh.from_array(np.array(reps, np.int64), "r")])
    assert v.ok is ok, v.reason


@pytest.mark.parametrize("axes,shape,ok", [([1], [1, 8, 4, 4], True), ([0], [2, 8, 4, 4], False),
                                           ([1], [1, 10, 16], False), ([2], [1, 10, 16], True)])
def test_slice_off_the_feature_axis(axes, shape, ok):
    inits = [nh.from_array(np.array([0], np.int64), "s"), nh.from_array(np.array([1], np.int64), "e"),
             nh.from_array(np.array(axes, np.int64), "a")]
    v = _one("Slice", [("x", shape)], None, inits=inits)
    assert v.ok is ok, v.reason


def test_unknown_op_is_not_assumed_supported():
    v = _one("Celu", [("x", [1, 4, 5, 5])], None)
    assert not v.ok and v.rule == "op:unknown"


def test_dynamic_shapes_are_rejected():
    v = _one("Relu", [("x", ["N", 4, 5, 5])], None)
    assert not v.ok and v.rule == "generic:static_shape"


def _slice(shape, axes, steps, starts=None, ends=None):
    n = len(axes)
    inits = [nh.from_array(np.array(starts or [0] * n, np.int64), "s"),
             nh.from_array(np.array(ends or [2**62] * n, np.int64), "e"),
             nh.from_array(np.array(axes, np.int64), "a"), nh.from_array(np.array(steps, np.int64), "st")]
    return _one("Slice", [("x", shape)], None, inits=inits)


@pytest.mark.parametrize("axes,steps", [([2], [2]), ([3], [2]), ([2, 3], [2, 2])])
def test_focus_stem_strided_slices_run_on_the_device(axes, steps):
    """YOLOv5/YOLOX 'Focus': x[..., ::2, ::2] and friends, space-to-depth by slicing (the Zoo compiles it)."""
    v = _slice([1, 3, 64, 64], axes, steps)
    assert v.ok, v.reason


@pytest.mark.parametrize("shape,axes,steps,why", [
    ([1, 3, 64, 64], [1], [2], "step 2 on axis 1"),  # strided on channels
    ([1, 3, 64, 64], [2], [3], "step 3 on axis 2"),
    ([1, 3, 4, 8, 85], [4], [1], "rank 5"),  # the seed's parser rejected exactly this
    ([1, 3, 4, 8, 85], [2], [1], "rank 5"),
])
def test_other_strided_and_rank5_slices_are_rejected(shape, axes, steps, why):
    v = _slice(shape, axes, steps)
    assert not v.ok and why in v.reason, v.reason
