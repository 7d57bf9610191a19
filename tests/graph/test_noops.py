"""noops.eliminate against onnxslim 0.1.98's eliminations (issue #13): rule by rule on tiny graphs, and on the
registered and unseen models, where the graph it gives must be onnxslim's node for node (ops, tensor names,
attributes) with the same constants."""
from __future__ import annotations

import collections

import numpy as np
import onnx
import pytest
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper as nh

from hailo_qa.config import REPO_ROOT, SHARED_DIR
from hailo_qa.graph import prepare as P
from hailo_qa.graph.noops import eliminate

CORPUS = sorted({p.name: p for p in [*(SHARED_DIR / "models").glob("*.onnx"), *(REPO_ROOT / "fixtures/models").glob(
    "*.onnx"), *(REPO_ROOT / "fixtures/unseen").glob("*.onnx")]}.values())


# --- helpers ----------------------------------------------------------------------------------------------------

def _model(nodes, inputs, outputs, inits=(), opset=17) -> onnx.ModelProto:
    """A model with value_info from shape inference (data propagation on), as the preparation hands it over."""
    g = h.make_graph(nodes, "t", [h.make_tensor_value_info(n, T.FLOAT, s) for n, s in inputs],
                     [h.make_tensor_value_info(n, T.FLOAT, None) for n in outputs],
                     [nh.from_array(np.asarray(v), k) for k, v in dict(inits).items()])
    m = h.make_model(g, opset_imports=[h.make_opsetid("", opset)], ir_version=8)
    return onnx.shape_inference.infer_shapes(m, data_prop=True)


def _key(n: onnx.NodeProto) -> tuple:
    """(op, inputs, outputs, attributes); a subgraph attribute by its nodes (onnxslim adds value_info to bodies)."""
    def attr(a):
        if a.type == onnx.AttributeProto.GRAPH:
            return tuple(sorted(_key(b) for b in a.g.node))
        return repr(h.get_attribute_value(a))

    return n.op_type, tuple(n.input), tuple(n.output), tuple(sorted((a.name, attr(a)) for a in n.attribute))


def _nodes(m: onnx.ModelProto) -> collections.Counter:
    return collections.Counter(_key(n) for n in m.graph.node)


def _consts(m: onnx.ModelProto) -> dict:
    used = {t for n in m.graph.node for t in n.input} | {o.name for o in m.graph.output}
    return {t.name: nh.to_array(t) for t in m.graph.initializer if t.name in used}


def _diff(a: onnx.ModelProto, b: onnx.ModelProto) -> list:
    """What differs between two graphs: nodes only in one, constants missing or with other values."""
    na, nb = _nodes(a), _nodes(b)
    out = [("only in the first", x) for x in na - nb] + [("only in the second", x) for x in nb - na]
    ca, cb = _consts(a), _consts(b)
    for k in sorted(set(ca) | set(cb)):
        if k not in ca or k not in cb or ca[k].dtype != cb[k].dtype or not np.array_equal(ca[k], cb[k]):
            out.append(("constant", k))
    return out


def _slim_round(m: onnx.ModelProto, *, fold: bool, eliminations: bool) -> onnx.ModelProto:
    """One onnxslim.core.optimize round with prepare._slim's settings, folding and/or eliminations switched."""
    from onnxslim.core import optimize
    from onnxslim.core.optimization import OptimizationSettings
    from onnxslim.core.pattern.registry import DEFAULT_FUSION_PATTERNS

    P._quiet_ort()
    skip = [*P.SKIPPED_PASSES, *([] if fold else ["constant_folding"]),
            *([] if eliminations else ["graph_fusion", "dead_node_elimination"])]
    OptimizationSettings.reset(skip)
    try:
        return optimize(m, [k for k in DEFAULT_FUSION_PATTERNS if k.startswith("Fusion")])
    finally:
        OptimizationSettings.reset()


def _same_as_onnxslim(m: onnx.ModelProto) -> onnx.ModelProto:
    """eliminate(m) is onnxslim's elimination round on m (folding off), node for node; returns it."""
    ours, count = eliminate(m)
    theirs = _slim_round(m, fold=False, eliminations=True)
    assert _diff(ours, theirs) == []
    assert (count == 0) == (_nodes(ours) == _nodes(m))
    onnx.checker.check_model(ours)
    return ours


def _producer(m: onnx.ModelProto, tensor: str) -> onnx.NodeProto:
    return next(n for n in m.graph.node if tensor in n.output)


def _ops(m: onnx.ModelProto) -> list[str]:
    return sorted(n.op_type for n in m.graph.node)


# --- no-op removal (dead_node_elimination) and GraphSurgeon's erase ---------------------------------------------

def test_a_noop_after_an_intermediate_tensor_renames_its_producer_output():
    m = _model([h.make_node("Relu", ["x"], ["r"]), h.make_node("Identity", ["r"], ["i"]),
                h.make_node("Neg", ["i"], ["y"])], [("x", [2, 3])], ["y"])
    out = _same_as_onnxslim(m)
    assert _ops(out) == ["Neg", "Relu"]
    assert list(_producer(out, "i").output) == ["i"] and _producer(out, "i").op_type == "Relu"  # r is gone
    assert all("r" not in n.input for n in out.graph.node)


def test_a_noop_after_a_graph_input_rewires_its_consumers():
    m = _model([h.make_node("Identity", ["x"], ["i"]), h.make_node("Neg", ["i"], ["y"])], [("x", [2, 3])], ["y"])
    out = _same_as_onnxslim(m)
    assert [(n.op_type, list(n.input)) for n in out.graph.node] == [("Neg", ["x"])]


@pytest.mark.parametrize("case", ["input_to_output", "output_to_output"])
def test_a_noop_between_observable_tensors_stays(case):
    """A no-op whose input is a graph input or output and whose output is a graph output is left (erase's guard)."""
    if case == "input_to_output":
        m = _model([h.make_node("Identity", ["x"], ["y"])], [("x", [2, 3])], ["y"])
    else:
        m = _model([h.make_node("Relu", ["x"], ["r"]), h.make_node("Identity", ["r"], ["y"])], [("x", [2, 3])],
                   ["r", "y"])
    out, count = eliminate(m)
    assert count == 0 and "Identity" in _ops(out)
    _same_as_onnxslim(m)


def test_a_noop_after_a_graph_output_keeps_the_output_and_rewires():
    m = _model([h.make_node("Relu", ["x"], ["r"]), h.make_node("Identity", ["r"], ["i"]),
                h.make_node("Neg", ["i"], ["y"])], [("x", [2, 3])], ["r", "y"])
    out = _same_as_onnxslim(m)
    assert list(_producer(out, "y").input) == ["r"] and list(_producer(out, "r").output) == ["r"]


def test_a_noop_after_an_intermediate_tensor_feeding_a_graph_output_takes_the_output_name():
    m = _model([h.make_node("Relu", ["x"], ["r"]), h.make_node("Identity", ["r"], ["y"])], [("x", [2, 3])], ["y"])
    out = _same_as_onnxslim(m)
    assert [(n.op_type, list(n.output)) for n in out.graph.node] == [("Relu", ["y"])]


def _unary(op, *, inits=(), shape=(2, 3), extra_inputs=(), post="Neg", **attrs):
    """x → Relu → r → op(r, *extra_inputs) → o → Neg → y (a Cast to float instead of Neg with ``post="Cast"``)."""
    last = h.make_node("Cast", ["o"], ["y"], to=T.FLOAT) if post == "Cast" else h.make_node("Neg", ["o"], ["y"])
    return _model([h.make_node("Relu", ["x"], ["r"]), h.make_node(op, ["r", *extra_inputs], ["o"], **attrs), last],
                  [("x", list(shape))], ["y"], inits)


NOOPS = {
    "dropout": lambda: _unary("Dropout"),
    "cast_same_type": lambda: _unary("Cast", to=T.FLOAT),
    "pad_zero": lambda: _unary("Pad", extra_inputs=["p"], inits={"p": np.zeros(4, np.int64)}),
    "reshape_same_shape": lambda: _unary("Reshape", extra_inputs=["s"], inits={"s": np.array([2, 3], np.int64)}),
    "reshape_1d": lambda: _unary("Reshape", shape=(6,), extra_inputs=["s"], inits={"s": np.array([-1], np.int64)}),
    "slice_everything": lambda: _unary("Slice", extra_inputs=["b", "e"],
                                       inits={"b": np.array([0], np.int64), "e": np.array([2 ** 62], np.int64)}),
    "mul_by_one": lambda: _unary("Mul", extra_inputs=["one"], inits={"one": np.float32(1)}),
    "mul_by_ones": lambda: _unary("Mul", extra_inputs=["one"], inits={"one": np.ones(3, np.float32)}),
    "add_zero": lambda: _unary("Add", extra_inputs=["z"], inits={"z": np.float32(0)}),
    "sub_zeros": lambda: _unary("Sub", extra_inputs=["z"], inits={"z": np.zeros((2, 3), np.float32)}),
    "div_one": lambda: _unary("Div", extra_inputs=["one"], inits={"one": np.float32(1)}),
    "expand_same_shape": lambda: _unary("Expand", extra_inputs=["s"], inits={"s": np.array([2, 3], np.int64)}),
    "transpose_identity_perm": lambda: _unary("Transpose", perm=[0, 1]),
    "concat_one_input": lambda: _unary("Concat", axis=0),
    "concat_with_empty": lambda: _unary("Concat", extra_inputs=["e"], inits={"e": np.zeros((0, 3), np.float32)},
                                        axis=0),
    "split_one_output": lambda: _unary("Split", axis=0),
}


@pytest.mark.parametrize("case", sorted(NOOPS))
def test_each_noop_rule_removes_the_node_as_onnxslim_does(case):
    m = NOOPS[case]()
    out = _same_as_onnxslim(m)
    assert _ops(out) == ["Neg", "Relu"] and list(_producer(out, "o").output) == ["o"]


KEPT = {
    "cast_other_type": lambda: _unary("Cast", to=T.FLOAT16, post="Cast"),
    "pad_nonzero": lambda: _unary("Pad", extra_inputs=["p"], inits={"p": np.array([0, 1, 0, 0], np.int64)}),
    "mul_by_ones_broadcasting": lambda: _unary("Mul", extra_inputs=["one"], inits={"one": np.ones((2, 2, 3),
                                                                                                  np.float32)}),
    "mul_by_two": lambda: _unary("Mul", extra_inputs=["k"], inits={"k": np.float32(2)}),
    "sub_from_zero": lambda: _model([h.make_node("Relu", ["x"], ["r"]), h.make_node("Sub", ["z", "r"], ["o"]),
                                     h.make_node("Neg", ["o"], ["y"])], [("x", [2, 3])], ["y"],
                                    {"z": np.float32(0)}),
    "slice_part": lambda: _unary("Slice", extra_inputs=["b", "e"],
                                 inits={"b": np.array([1], np.int64), "e": np.array([2], np.int64)}),
    "transpose": lambda: _unary("Transpose", perm=[1, 0]),
}


@pytest.mark.parametrize("case", sorted(KEPT))
def test_a_node_that_is_no_noop_stays(case):
    m = KEPT[case]()
    out, count = eliminate(m)
    assert count == 0 and _nodes(out) == _nodes(m)
    _same_as_onnxslim(m)


def test_a_reshape_with_a_computed_shape_gets_a_constant_shape():
    """dead_node_elimination writes the inferred output shape as ``<output>_shape`` when the shape input is
    computed."""
    m = _model([h.make_node("Relu", ["x"], ["r"]), h.make_node("Shape", ["w"], ["s"]),
                h.make_node("Reshape", ["r", "s"], ["o"]), h.make_node("Neg", ["o"], ["y"])],
               [("x", [2, 3]), ("w", [3, 2])], ["y"])
    out = _same_as_onnxslim(m)
    assert list(_producer(out, "o").input) == ["r", "o_shape"]
    assert _consts(out)["o_shape"].tolist() == [3, 2]
    assert [i.name for i in out.graph.input] == ["x"]  # w feeds nothing any more: dropped, as onnxslim does


def test_a_resize_without_mode_gets_nearest():
    m = _model([h.make_node("Resize", ["x", "", "sc"], ["y"])], [("x", [1, 1, 2, 2])], ["y"],
               {"sc": np.array([1, 1, 2, 2], np.float32)})
    out, count = eliminate(m)
    assert count == 1 and h.get_attribute_value(out.graph.node[0].attribute[0]) == b"nearest"
    _same_as_onnxslim(m)


def test_a_concat_of_a_graph_output_rewires_its_consumers():
    """Concat's own graph-output branch: a one-input Concat of a graph output is bypassed."""
    m = _model([h.make_node("Relu", ["x"], ["r"]), h.make_node("Concat", ["r"], ["c"], axis=0),
                h.make_node("Neg", ["c"], ["y"])], [("x", [2, 3])], ["r", "y"])
    out = _same_as_onnxslim(m)
    assert list(_producer(out, "y").input) == ["r"]


# --- the elimination patterns -------------------------------------------------------------------------------------

def test_concat_of_concat_merges():
    m = _model([h.make_node("Relu", ["x"], ["a"]), h.make_node("Concat", ["a", "a"], ["c0"], axis=1),
                h.make_node("Concat", ["x", "c0"], ["c1"], axis=1), h.make_node("Neg", ["c1"], ["y"])],
               [("x", [2, 3])], ["y"])
    out = _same_as_onnxslim(m)
    assert [(n.op_type, list(n.input)) for n in out.graph.node if n.op_type == "Concat"] == [
        ("Concat", ["x", "a", "a"])]


def test_concat_of_concat_on_another_axis_stays():
    m = _model([h.make_node("Relu", ["x"], ["a"]), h.make_node("Concat", ["a", "a"], ["c0"], axis=0),
                h.make_node("Concat", ["w", "c0"], ["c1"], axis=1), h.make_node("Neg", ["c1"], ["y"])],
               [("x", [4, 3]), ("w", [8, 2])], ["y"])
    assert eliminate(m)[1] == 0
    _same_as_onnxslim(m)


def test_reshape_of_reshape_merges_under_the_first_name():
    m = _model([h.make_node("Relu", ["x"], ["a"]), h.make_node("Reshape", ["a", "s0"], ["r0"]),
                h.make_node("Reshape", ["r0", "s1"], ["r1"]), h.make_node("Neg", ["r1"], ["y"])],
               [("x", [2, 3, 4])], ["y"], {"s0": np.array([6, 4], np.int64), "s1": np.array([4, 6], np.int64)})
    out = _same_as_onnxslim(m)
    assert [(n.op_type, list(n.input), list(n.output)) for n in out.graph.node if n.op_type == "Reshape"] == [
        ("Reshape", ["a", "s1"], ["r1"])]


def test_reshape_of_reshape_with_the_first_a_graph_output_stays():
    """The graph-output guard of the patterns: a matched node other than the last produces a graph output."""
    m = _model([h.make_node("Relu", ["x"], ["a"]), h.make_node("Reshape", ["a", "s0"], ["r0"]),
                h.make_node("Reshape", ["r0", "s1"], ["r1"]), h.make_node("Neg", ["r1"], ["y"])],
               [("x", [2, 3, 4])], ["r0", "y"], {"s0": np.array([6, 4], np.int64), "s1": np.array([4, 6], np.int64)})
    out, count = eliminate(m)
    assert count == 0 and _ops(out) == ["Neg", "Relu", "Reshape", "Reshape"]
    _same_as_onnxslim(m)


def test_a_rebuilt_shape_becomes_the_shape():
    """EliminationReshapeAs: Shape → Gather(i) → Unsqueeze → Concat rebuilding the whole shape is the Shape (two
    dynamic dims, so that no-op removal does not write the Reshape's shape as a constant afterwards)."""
    nodes = [h.make_node("Relu", ["x"], ["a"]), h.make_node("Shape", ["a"], ["s"])]
    for i in range(3):
        nodes += [h.make_node("Gather", ["s", f"i{i}"], [f"g{i}"], axis=0),
                  h.make_node("Unsqueeze", [f"g{i}", "ax"], [f"u{i}"])]
    nodes += [h.make_node("Concat", ["u0", "u1", "u2"], ["c"], axis=0), h.make_node("Reshape", ["b", "c"], ["y"])]
    m = _model(nodes, [("x", ["N", "K", 4]), ("b", ["M"])], ["y"],
               {**{f"i{i}": np.int64(i) for i in range(3)}, "ax": np.array([0], np.int64)})
    out = _same_as_onnxslim(m)
    assert list(_producer(out, "y").input) == ["b", "s"] and "Concat" not in _ops(out)
    m.graph.output.append(h.make_tensor_value_info("g0", T.INT64, []))  # the graph-output guard (matched chain)
    out, count = eliminate(m)
    assert count == 0 and "Concat" in _ops(out)
    _same_as_onnxslim(m)


def test_a_chain_is_matched_from_its_end():
    """Matches are looked for from the last node back (onnxslim's find_matches), and a node a match consumed is not
    matched again in the round: of R0 → R1 → R2, R1 and R2 merge first, under R1's output name."""
    m = _model([h.make_node("Relu", ["x"], ["a"]), h.make_node("Reshape", ["a", "s0"], ["r0"]),
                h.make_node("Reshape", ["r0", "s1"], ["r1"]), h.make_node("Reshape", ["r1", "s2"], ["r2"]),
                h.make_node("Neg", ["r2"], ["y"])], [("x", [2, 3, 4])], ["y"],
               {"s0": np.array([6, 4], np.int64), "s1": np.array([4, 6], np.int64), "s2": np.array([24], np.int64)})
    out = _same_as_onnxslim(m)
    assert sorted((list(n.input), list(n.output)) for n in out.graph.node if n.op_type == "Reshape") == [
        (["a", "s0"], ["r0"]), (["r0", "s2"], ["r2"])]
    out = _same_as_onnxslim(_infer(out))
    assert [(list(n.input), list(n.output)) for n in out.graph.node if n.op_type == "Reshape"] == [
        (["a", "s2"], ["r2"])]


def test_slice_of_slice_merges():
    m = _model([h.make_node("Relu", ["x"], ["a"]), h.make_node("Slice", ["a", "b0", "e0", "x0", "st"], ["s0"]),
                h.make_node("Slice", ["s0", "b1", "e1", "x1", "st"], ["s1"]), h.make_node("Neg", ["s1"], ["y"])],
               [("x", [4, 6])], ["y"], {"b0": np.array([1], np.int64), "e0": np.array([3], np.int64),
                                        "x0": np.array([0], np.int64), "b1": np.array([2], np.int64),
                                        "e1": np.array([5], np.int64), "x1": np.array([-1], np.int64),
                                        "st": np.array([1], np.int64)})
    out = _same_as_onnxslim(m)
    s = _producer(out, "s1")
    assert list(s.input) == ["a", "s0_starts", "s0_ends", "s0_axes", "s0_steps"]
    assert _consts(out)["s0_axes"].tolist() == [0, 1] and _consts(out)["s0_starts"].tolist() == [1, 2]


@pytest.mark.parametrize("perm1, merged", [([0, 2, 1], "Transpose"), ([1, 0, 2], None)])
def test_transpose_of_transpose_composes(perm1, merged):
    """Two Transposes compose; when they cancel the Identity left is removed in the same round."""
    m = _model([h.make_node("Relu", ["x"], ["a"]), h.make_node("Transpose", ["a"], ["t0"], perm=[1, 0, 2]),
                h.make_node("Transpose", ["t0"], ["t1"], perm=perm1), h.make_node("Neg", ["t1"], ["y"])],
               [("x", [2, 3, 4])], ["y"])
    out = _same_as_onnxslim(m)
    if merged:
        t = _producer(out, "t1")
        assert t.op_type == "Transpose" and list(t.input) == ["a"] and list(t.attribute[0].ints) == [1, 2, 0]
    else:
        assert _ops(out) == ["Neg", "Relu"] and list(_producer(out, "t1").output) == ["t1"]


@pytest.mark.parametrize("view", ["Reshape", "Unsqueeze", "Squeeze"])
def test_transpose_view_transpose_moves_the_view_first(view):
    inits = {"Reshape": {"s": np.array([3, 2, 4, 1], np.int64)}, "Unsqueeze": {"s": np.array([0], np.int64)},
             "Squeeze": {"s": np.array([1], np.int64)}}[view]
    shape = [1, 6, 4] if view == "Squeeze" else [4, 6, 1] if view == "Reshape" else [2, 3, 4]
    perm = [1, 0, 2]
    m = _model([h.make_node("Relu", ["x"], ["a"]), h.make_node("Transpose", ["a"], ["t0"], perm=perm),
                h.make_node(view, ["t0", "s"], ["v"]),
                h.make_node("Transpose", ["v"], ["t1"], perm=list(range(4 if view != "Squeeze" else 2))[::-1]),
                h.make_node("Neg", ["t1"], ["y"])], [("x", shape)], ["y"], inits)
    out = _same_as_onnxslim(m)
    assert [n.input[0] for n in out.graph.node if n.op_type == view] == ["a"]


@pytest.mark.parametrize("opset", [11, 13])
def test_unsqueeze_of_unsqueeze_merges(opset):
    if opset >= 13:
        nodes = [h.make_node("Unsqueeze", ["a", "ax0"], ["u0"]), h.make_node("Unsqueeze", ["u0", "ax1"], ["u1"])]
        inits = {"ax0": np.array([0], np.int64), "ax1": np.array([-1], np.int64)}
    else:
        nodes = [h.make_node("Unsqueeze", ["a"], ["u0"], axes=[0]), h.make_node("Unsqueeze", ["u0"], ["u1"], axes=[-1])]
        inits = {}
    m = _model([h.make_node("Relu", ["x"], ["a"]), *nodes, h.make_node("Neg", ["u1"], ["y"])], [("x", [2, 3])],
               ["y"], inits, opset=opset)
    out = _same_as_onnxslim(m)
    u = _producer(out, "u1")
    assert u.op_type == "Unsqueeze" and u.input[0] == "a" and _ops(out).count("Unsqueeze") == 1


def test_a_transpose_of_unit_axes_next_to_a_reshape_becomes_a_reshape():
    m = _model([h.make_node("Relu", ["x"], ["a"]), h.make_node("Reshape", ["a", "s"], ["r"]),
                h.make_node("Transpose", ["r"], ["t"], perm=[1, 0, 2]), h.make_node("Neg", ["t"], ["y"])],
               [("x", [6])], ["y"], {"s": np.array([1, 2, 3], np.int64)})
    out = _same_as_onnxslim(m)
    assert "Transpose" not in _ops(out)


# --- the whole ---------------------------------------------------------------------------------------------------

def test_a_graph_with_nothing_to_eliminate_comes_back_unchanged():
    m = _model([h.make_node("Conv", ["x", "w"], ["c"]), h.make_node("Relu", ["c"], ["y"])], [("x", [1, 2, 4, 4])],
               ["y"], {"w": np.ones((3, 2, 1, 1), np.float32)})
    before = m.SerializeToString()
    out, count = eliminate(m)
    assert count == 0 and m.SerializeToString() == before  # the input is not modified
    assert list(out.graph.node) == list(m.graph.node) and list(out.graph.initializer) == list(m.graph.initializer)
    assert list(out.graph.input) == list(m.graph.input) and list(out.graph.output) == list(m.graph.output)


def test_the_input_model_is_not_modified():
    m = NOOPS["mul_by_one"]()
    before = m.SerializeToString()
    eliminate(m)
    assert m.SerializeToString() == before


def test_a_subgraph_reading_a_renamed_tensor_follows_the_rename():
    """Bodies are left as they are, but a tensor they read from the outer graph is renamed in them when onnxslim
    renames it, and is never dropped."""
    then_g = h.make_graph([h.make_node("Neg", ["r"], ["t"])], "then", [], [h.make_tensor_value_info("t", T.FLOAT,
                                                                                                      None)])
    else_g = h.make_graph([h.make_node("Abs", ["r"], ["e"])], "else", [], [h.make_tensor_value_info("e", T.FLOAT,
                                                                                                     None)])
    m = _model([h.make_node("Relu", ["x"], ["r"]), h.make_node("Identity", ["r"], ["i"]),
                h.make_node("Neg", ["i"], ["y"]), h.make_node("If", ["c"], ["z"], then_branch=then_g,
                                                               else_branch=else_g)],
               [("x", [2, 3])], ["y", "z"])
    m.graph.input.append(h.make_tensor_value_info("c", T.BOOL, []))
    out = _same_as_onnxslim(m)
    body = next(n for n in out.graph.node if n.op_type == "If").attribute
    assert {a.g.node[0].input[0] for a in body} == {"i"}


# --- the corpus ---------------------------------------------------------------------------------------------------

def _static(m: onnx.ModelProto):
    return P.static_shapes(m, overrides={i.name: [d.dim_value if d.dim_value > 0 else (1 if k == 0 else 64)
                                                  for k, d in enumerate(i.type.tensor_type.shape.dim)]
                                         for i in m.graph.input if i.name not in {t.name for t in m.graph.initializer}})


def _start(m: onnx.ModelProto, static) -> onnx.ModelProto:
    """prepare._slim's start: pinned, stale shapes dropped, initializers frozen, shapes inferred."""
    from onnxslim.core import freeze

    x = P._pin(m, static)
    del x.graph.value_info[:]
    for o in x.graph.output:
        for d in o.type.tensor_type.shape.dim:
            if d.HasField("dim_value") and d.dim_value <= 0:
                d.Clear()
    freeze(x)
    return onnx.shape_inference.infer_shapes(x, data_prop=True)


def _infer(m: onnx.ModelProto) -> onnx.ModelProto:
    return onnx.shape_inference.infer_shapes(m, data_prop=True)


def _interleaved(m: onnx.ModelProto, static) -> onnx.ModelProto:
    """prepare._slim's rounds with onnxslim's eliminations replaced by eliminate: fold (onnxslim's folder,
    eliminations off), eliminate on the folded graph with the shapes known before the fold, infer shapes."""
    x = _start(m, static)
    for _ in range(P.FOLD_ROUNDS):
        before = P._structure(x)
        f = _slim_round(x, fold=True, eliminations=False) if P._foldable(x) else x
        x = _infer(eliminate(f)[0])
        if P._structure(x) == before:
            break
    return x


def _fold_first(m: onnx.ModelProto, static) -> onnx.ModelProto:
    """Fold to convergence first (onnxslim's folder, eliminations off), then alternate eliminate and fold rounds,
    shapes inferred after each, until neither changes anything."""
    x = P._slim(m, static, {"skip_optimizations": ["graph_fusion", "dead_node_elimination"]})
    for _ in range(3 * P.FOLD_ROUNDS):
        e, count = eliminate(x)
        e = _infer(e)
        f = _infer(_slim_round(e, fold=True, eliminations=False))
        x = f
        if count == 0 and P._structure(f) == P._structure(e):
            return x
    raise AssertionError("eliminate and the folder did not converge")


@pytest.fixture(scope="module")
def reference():
    """prepare._slim (onnxslim's folder and eliminations, interleaved in rounds) per corpus model, computed once."""
    cache = {}

    def get(path):
        if path not in cache:
            m = onnx.load(path)
            static = _static(m)
            cache[path] = (m, static, P._slim(m, static, {}))
        return cache[path]

    return get


@pytest.mark.slow
@pytest.mark.parametrize("path", CORPUS, ids=[p.stem for p in CORPUS])
def test_in_slim_rounds_eliminate_gives_onnxslim_graph(path, reference):
    """Round for round as prepare._slim runs them, with eliminate in place of onnxslim's eliminations: the same
    graph, tensor names and constants included."""
    m, static, theirs = reference(path)
    assert _diff(_interleaved(m, static), theirs) == []


FOLD_FIRST_DIFFERS = {
    "deimv2_hgnetv2_atto_coco": {f"/model/decoder/decoder/layers.{k}/cross_attn/Reshape_{r}_output_0"
                                 for k in range(3) for r in (5, 6)},
}
"""Reshapes whose shape input differs when everything is folded before the first elimination: in onnxslim's
interleaved rounds, round 1's no-op removal meets these Reshapes while their shape input (a Concat of Shape→Gather
values of tensors whose shapes are only known after round 1's shape inference) is not folded yet, and writes the
inferred output shape as a constant ``<output>_shape`` with -1 for the dim still symbolic ([8, 1, -1, 6], [1, 64,
-1]); folded first, the shape input is the folded Concat (``…/Concat_5_output_0`` = [8, 1, 100, 6], ``…/Concat_7_
output_0`` = [1, 64, 100]) and no rule touches it. Same computation, other constant names and values."""


@pytest.mark.slow
@pytest.mark.parametrize("path", CORPUS, ids=[p.stem for p in CORPUS])
def test_folded_first_then_eliminated_gives_onnxslim_graph(path, reference):
    """Fold to convergence, then alternate eliminate and folding: onnxslim's graph, except for the Reshapes of
    FOLD_FIRST_DIFFERS (an effect of the order, held here precisely)."""
    m, static, theirs = reference(path)
    ours = _fold_first(m, static)
    diff = _diff(ours, theirs)
    expected = FOLD_FIRST_DIFFERS.get(path.stem, set())
    assert {x[1][2][0] for x in diff if x[0] != "constant"} == expected
    for x in diff:
        if x[0] == "constant":
            continue
        assert x[1][0] == "Reshape"  # only the shape input's name differs
    for out in expected:
        a, b = _producer(ours, out), _producer(theirs, out)
        assert a.input[0] == b.input[0] and a.input[1] != b.input[1] and b.input[1] == f"{out}_shape"
        want, got = _consts(theirs)[b.input[1]], _consts(ours)[a.input[1]]
        assert list(want).count(-1) == 1 and all(w in (-1, g) for w, g in zip(want, got))


# --- random graphs --------------------------------------------------------------------------------------------------

def _random_graph(seed: int) -> onnx.ModelProto | None:
    """A random chain of the ops the eliminations look at (no-ops and not-quite no-ops, Reshape/Transpose/Unsqueeze/
    Squeeze/Slice/Concat chains, rebuilt shapes, computed Reshape shapes), some intermediates as graph outputs, the
    batch dim symbolic in some; opset 11 or 17. None when the draw is not a valid model."""
    rng = np.random.default_rng(seed)
    opset = 11 if seed % 3 == 0 else 17
    shape0 = [int(d) for d in rng.choice([1, 2, 3, 4], size=rng.integers(2, 5))]
    pool, nodes, inits, count = [("x", shape0)], [], {}, [0]

    def new(prefix: str) -> str:
        count[0] += 1
        return f"{prefix}{count[0]}"

    def const(v) -> str:
        k = new("k")
        inits[k] = np.asarray(v)
        return k

    def axes_node(op, t, o, axes):
        return h.make_node(op, [t, const(np.array(axes, np.int64))], [o]) if opset >= 13 else \
            h.make_node(op, [t], [o], axes=axes)

    for _ in range(rng.integers(2, 30)):
        t, s = pool[rng.integers(len(pool))] if rng.random() < 0.4 else pool[-1]
        o, n, ns = new("t"), int(np.prod(s)), list(s)
        op = str(rng.choice(["Identity", "Dropout", "Relu", "Reshape", "ReshapeLike", "Transpose", "Unsqueeze",
                             "Squeeze", "Concat", "Slice", "Mul", "Add", "Sub", "Div", "Cast", "Expand", "Pad",
                             "RebuiltShape"]))
        if op in ("Identity", "Dropout", "Relu"):
            nodes.append(h.make_node(op, [t], [o]))
        elif op == "Reshape":
            ns = [1] * int(rng.integers(1, 5))
            for f in (p for p in (2, 3) for _ in range(50) if n % p ** (_ + 1) == 0):
                ns[rng.integers(len(ns))] *= f
            want = list(ns)
            if rng.random() < 0.3:
                want[rng.integers(len(want))] = -1
            nodes.append(h.make_node("Reshape", [t, const(np.array(want, np.int64))], [o]))
        elif op == "ReshapeLike":
            like = [(u, us) for u, us in pool if int(np.prod(us)) == n and u != t]
            if not like:
                continue
            u, ns = like[rng.integers(len(like))]
            sh = new("s")
            nodes += [h.make_node("Shape", [u], [sh]), h.make_node("Reshape", [t, sh], [o])]
        elif op == "Transpose":
            perm = [int(p) for p in rng.permutation(len(s))] if rng.random() < 0.8 else list(range(len(s)))
            nodes.append(h.make_node("Transpose", [t], [o], perm=perm))
            ns = [s[p] for p in perm]
        elif op == "Unsqueeze":
            ax = int(rng.integers(-(len(s) + 1), len(s) + 1))
            nodes.append(axes_node("Unsqueeze", t, o, [ax]))
            a = ax + len(s) + 1 if ax < 0 else ax
            ns = s[:a] + [1] + s[a:]
        elif op == "Squeeze":
            ones = [i for i, d in enumerate(s) if d == 1]
            if not ones or len(s) == 1:
                continue
            ax = ones[rng.integers(len(ones))]
            nodes.append(axes_node("Squeeze", t, o, [ax]))
            ns = s[:ax] + s[ax + 1:]
        elif op == "Concat":
            ax = int(rng.integers(len(s)))
            like = [(u, us) for u, us in pool if len(us) == len(s) and all(
                a == b for i, (a, b) in enumerate(zip(us, s)) if i != ax)]
            u, us = like[rng.integers(len(like))]
            ins = [t, u] if rng.random() < 0.8 else [t]
            if rng.random() < 0.2:
                ins.append(const(np.zeros([0 if i == ax else d for i, d in enumerate(s)], np.float32)))
            nodes.append(h.make_node("Concat", ins, [o], axis=ax))
            ns[ax] = s[ax] + (us[ax] if ins[1:2] == [u] else 0)
        elif op == "Slice":
            ax, = rng.integers(len(s), size=1)
            d = s[ax]
            b = int(rng.integers(0, d))
            e = int(rng.integers(b + 1, d + 1)) if rng.random() < 0.7 else 2 ** 62
            axis = int(ax) - len(s) if rng.random() < 0.3 else int(ax)
            nodes.append(h.make_node("Slice", [t, *(const(np.array([v], np.int64)) for v in (b, e, axis, 1))], [o]))
            ns[ax] = min(e, d) - b
        elif op in ("Mul", "Add", "Sub", "Div"):
            v = float(rng.choice([0, 1, 2]))
            cs = [] if rng.random() < 0.5 else [1] * int(rng.integers(1, len(s) + 2))
            k = const(np.full(cs, v, np.float32))
            nodes.append(h.make_node(op, [k, t] if op in ("Mul", "Add") and rng.random() < 0.3 else [t, k], [o]))
            ns = [1] * (max(len(s), len(cs)) - len(s)) + list(s)
        elif op == "Cast":
            nodes.append(h.make_node("Cast", [t], [o], to=T.FLOAT))
        elif op == "Expand":
            nodes.append(h.make_node("Expand", [t, const(np.array(s if rng.random() < 0.6 else [1], np.int64))],
                                     [o]))
        elif op == "Pad":
            pads = np.zeros(2 * len(s), np.int64)
            pads[0] = int(rng.random() < 0.3)
            nodes.append(h.make_node("Pad", [t, const(pads)], [o]))
            ns[0] += int(pads[0])
        else:  # RebuiltShape: Shape → Gather(i) → Unsqueeze → Concat → Reshape
            sh, us = new("s"), []
            nodes.append(h.make_node("Shape", [t], [sh]))
            for i in range(len(s)):
                g, u = new("g"), new("u")
                nodes += [h.make_node("Gather", [sh, const(np.int64(i))], [g], axis=0), axes_node("Unsqueeze", g, u, [0])]
                us.append(u)
            c = new("c")
            nodes += [h.make_node("Concat", us, [c], axis=0), h.make_node("Reshape", [t, c], [o])]
        pool.append((o, [int(d) for d in ns]))
    if len(pool) == 1:
        return None
    outs = [pool[-1]] + [(t, s) for t, s in pool[1:-1] if rng.random() < 0.15]
    sym = rng.random() < 0.4
    g = h.make_graph(nodes, "random", [h.make_tensor_value_info("x", T.FLOAT, ["N", *shape0[1:]] if sym else shape0)],
                     [h.make_tensor_value_info(t, T.FLOAT, [None] * len(s) if sym else s) for t, s in outs],
                     [nh.from_array(v, k) for k, v in inits.items()])
    m = h.make_model(g, opset_imports=[h.make_opsetid("", opset)], ir_version=8)
    try:
        onnx.checker.check_model(m, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError):
        return None
    return _infer(m)


@pytest.mark.slow
@pytest.mark.parametrize("block", range(4))
def test_random_graphs_converge_to_onnxslim_graph(block):
    """eliminate rounds (shapes inferred between) against onnxslim's rounds, to convergence, on 100 random graphs
    per block (3000 single rounds and 1500 convergences of such graphs matched onnxslim 0.1.98 when this was
    written)."""
    built = 0
    for seed in range(100 * block, 100 * (block + 1)):
        m = _random_graph(seed)
        if m is None:
            continue
        built += 1
        theirs = m
        for _ in range(P.FOLD_ROUNDS):
            nxt = _infer(_slim_round(theirs, fold=False, eliminations=True))
            done, theirs = P._structure(nxt) == P._structure(theirs), nxt
            if done:
                break
        ours = m
        for _ in range(P.FOLD_ROUNDS):
            out, count = eliminate(ours)
            ours = _infer(out)
            if count == 0:
                break
        assert _diff(ours, theirs) == [], f"seed {seed}"
    assert built >= 90  # the generator draws valid models
