"""Our folder (:mod:`hailo_qa.graph.fold`, with :mod:`hailo_qa.graph.noops` in :func:`prepare._fast`) against
onnxslim's own passes (issue #13: the cold DEIMv2 lint spent 2 of its 2.5 s in GraphSurgeon's graph model).

The same graph, node for node and value for value, on every registered and unseen model; unit cases for what the
folder must and must not fold."""
from __future__ import annotations

import collections

import numpy as np
import onnx
import pytest
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper as nh

from hailo_qa.graph import prepare as prep_mod
from hailo_qa.graph.fold import fold_constants, freeze, lower_constant_nodes
from tests.graph.test_prepare import REAL, _static


def _signature(m: onnx.ModelProto):
    """The graph as a multiset of (op, inputs, outputs, attributes) and the values of the initializers it reads."""
    nodes = collections.Counter((n.op_type, tuple(n.input), tuple(n.output),
                                 tuple(sorted((a.name, a.SerializeToString()) for a in n.attribute)))
                                for n in m.graph.node)
    used = {i for n in m.graph.node for i in n.input} | {o.name for o in m.graph.output}
    values = {t.name: nh.to_array(t) for t in m.graph.initializer if t.name in used}
    return nodes, values


def _same_graph(a: onnx.ModelProto, b: onnx.ModelProto) -> list[str]:
    """What differs between two prepared graphs (empty: the same)."""
    (na, va), (nb, vb) = _signature(a), _signature(b)
    out = [f"only in ours: {k[0]} {k[2]}" for k in (na - nb)] + [f"only in onnxslim's: {k[0]} {k[2]}" for k in (nb - na)]
    for k in sorted(set(va) | set(vb)):
        if k not in va or k not in vb:
            out.append(f"initializer {k} only in {'onnxslim' if k in vb else 'ours'}")
        elif va[k].dtype != vb[k].dtype or va[k].shape != vb[k].shape or not np.array_equal(va[k], vb[k],
                                                                                              equal_nan=True):
            out.append(f"initializer {k} differs")
    if [o.name for o in a.graph.output] != [o.name for o in b.graph.output]:
        out.append("graph outputs differ")
    if not out and [tuple(n.output) for n in a.graph.node] != [tuple(n.output) for n in b.graph.node]:
        out.append("node order differs")  # the order decides the order of a split's boundary tensors
    return out


@pytest.mark.parametrize("path", REAL, ids=[p.stem for p in REAL])
def test_our_folder_gives_onnxslims_graph(path):
    """Node for node (in order), initializer for initializer: so every cut, report and quantized model stays what it
    was (initializers may be listed in another order)."""
    m = onnx.load(str(path))
    static = _static(m)
    ours = prep_mod._fast(m, static, {})
    assert _same_graph(ours, prep_mod._slim(m, static, {})) == []


def _model(nodes, inputs, outputs, inits=(), opset=17):
    g = h.make_graph(nodes, "g", inputs, outputs, initializer=list(inits))
    return onnx.shape_inference.infer_shapes(h.make_model(g, opset_imports=[h.make_opsetid("", opset)]),
                                             data_prop=True)


def _x(shape=(1, 3, 4, 4)):
    return h.make_tensor_value_info("x", T.FLOAT, list(shape))


def _y(name="y"):
    return h.make_tensor_value_info(name, T.FLOAT, None)


def _ops(m):
    return [n.op_type for n in m.graph.node]


def test_a_shape_chain_folds_to_one_initializer_named_after_its_tensor():
    """Shape → Gather → Unsqueeze → Concat → Reshape: the Concat's value becomes the initializer of that name."""
    i = nh.from_array(np.array(1, np.int64), "i")
    ax = nh.from_array(np.array([0], np.int64), "ax")
    m1 = nh.from_array(np.array([-1], np.int64), "m1")
    m = _model([h.make_node("Shape", ["x"], ["s"]), h.make_node("Gather", ["s", "i"], ["c"], axis=0),
                h.make_node("Unsqueeze", ["c", "ax"], ["cu"]), h.make_node("Concat", ["cu", "m1"], ["shp"], axis=0),
                h.make_node("Reshape", ["x", "shp"], ["y"])], [_x()], [_y()], [i, ax, m1])
    out, n = fold_constants(m)
    assert out is m  # in place: the rounds own the model
    assert _ops(out) == ["Reshape"] and n >= 1
    assert nh.to_array(next(t for t in out.graph.initializer if t.name == "shp")).tolist() == [3, -1]


def test_shape_start_end_and_gather_or_slice_of_a_shape_fold():
    st = nh.from_array(np.array([2], np.int64), "st")
    en = nh.from_array(np.array([4], np.int64), "en")
    idx = nh.from_array(np.array([-1], np.int64), "idx")
    m = _model([h.make_node("Shape", ["x"], ["s"], start=1, end=-1), h.make_node("Shape", ["x"], ["t"]),
                h.make_node("Slice", ["t", "st", "en"], ["hw"]), h.make_node("Gather", ["t", "idx"], ["w"], axis=0),
                h.make_node("Concat", ["s", "hw", "w"], ["all"], axis=0), h.make_node("Reshape", ["x", "all"], ["y"])],
               [_x((1, 2, 3, 4))], [_y()], [st, en, idx])
    out, _ = fold_constants(m)
    vals = {t.name: nh.to_array(t).tolist() for t in out.graph.initializer}
    assert _ops(out) == ["Reshape"] and vals["all"] == [2, 3, 3, 4, 4]


def test_a_dynamic_shape_does_not_fold():
    m = _model([h.make_node("Shape", ["x"], ["s"]), h.make_node("Reshape", ["x", "s"], ["y"])],
               [_x(("N", 3, 4, 4))], [_y()])
    out, n = fold_constants(m)
    assert n == 0 and _ops(out) == ["Shape", "Reshape"]


def test_graph_outputs_random_quantizers_and_subgraphs_are_never_folded():
    one = nh.from_array(np.ones((2,), np.float32), "one")
    sc = nh.from_array(np.array(0.5, np.float32), "sc")
    cond = nh.from_array(np.array(True), "cond")
    branch = h.make_graph([h.make_node("Identity", ["one"], ["b"])], "br", [], [h.make_tensor_value_info("b", T.FLOAT,
                                                                                                         [2])])
    m = _model([h.make_node("Neg", ["one"], ["out_const"]),  # a graph output: stays computed
                h.make_node("RandomUniform", [], ["r"], shape=[2]), h.make_node("Add", ["r", "one"], ["ra"]),
                h.make_node("QuantizeLinear", ["one", "sc"], ["q"]), h.make_node("DequantizeLinear", ["q", "sc"], ["dq"]),
                h.make_node("If", ["cond"], ["ifo"], then_branch=branch, else_branch=branch),
                h.make_node("Sum", ["ra", "dq", "ifo"], ["y"])],
               [], [h.make_tensor_value_info("out_const", T.FLOAT, [2]), _y()], [one, sc, cond])
    out, n = fold_constants(m)
    assert n == 0
    assert _ops(out) == ["Neg", "RandomUniform", "Add", "QuantizeLinear", "DequantizeLinear", "If", "Sum"]


def test_constant_nodes_become_initializers_and_dead_ones_go():
    m = _model([h.make_node("Constant", [], ["k"], value_floats=[2.0, 3.0]),
                h.make_node("Constant", [], ["dead"], value_int=7),
                h.make_node("Constant", [], ["kk"], value=nh.from_array(np.full((1, 3, 1, 1), 2, np.float32))),
                h.make_node("Mul", ["x", "kk"], ["y"])], [_x()], [_y()])
    work = onnx.ModelProto()
    work.CopyFrom(m)
    assert lower_constant_nodes(work) and "Constant" not in _ops(work)
    out, n = fold_constants(m)
    assert _ops(out) == ["Mul"] and {t.name for t in out.graph.initializer} == {"kk"} and n == 0


def test_a_failing_evaluation_folds_only_the_shapes(monkeypatch):
    """Like GraphSurgeon with error_ok: when ONNX Runtime cannot run the foldable nodes, nothing but the shape values
    folds, and the preparation goes on."""
    import onnxruntime

    class Broken:
        def __init__(self, *a, **kw):
            raise RuntimeError("no kernel")

    one = nh.from_array(np.ones((1,), np.float32), "one")
    m = _model([h.make_node("Neg", ["one"], ["n"]), h.make_node("Add", ["x", "n"], ["a"]),
                h.make_node("Shape", ["a"], ["s"]), h.make_node("Reshape", ["a", "s"], ["y"])], [_x()], [_y()], [one])
    monkeypatch.setattr(onnxruntime, "InferenceSession", Broken)
    out, n = fold_constants(m)
    assert _ops(out) == ["Neg", "Add", "Reshape"] and n == 1


def test_initializers_listed_as_inputs_are_frozen_into_constants():
    """Old exporters list weights as graph inputs: they are constants to the folder, as onnxslim's freeze makes them."""
    w = nh.from_array(np.ones((3,), np.float32), "w")
    m = _model([h.make_node("Neg", ["w"], ["n"]), h.make_node("Add", ["x", "n"], ["y"])],
               [h.make_tensor_value_info("x", T.FLOAT, [3]), h.make_tensor_value_info("w", T.FLOAT, [3])], [_y()], [w])
    freeze(m)
    assert [i.name for i in m.graph.input] == ["x"]
    out, n = fold_constants(m)
    assert _ops(out) == ["Add"] and n == 1 and nh.to_array(out.graph.initializer[-1]).tolist() == [-1.0] * 3


def test_a_folder_result_that_differs_is_found():
    """The comparison above can fail: one changed value, one node left unfolded."""
    m = onnx.load(str(REAL[0]))
    static = _static(m)
    a = prep_mod._fast(m, static, {})
    b = onnx.ModelProto()
    b.CopyFrom(a)
    t = next(t for t in b.graph.initializer if t.dims)
    t.CopyFrom(nh.from_array(nh.to_array(t) + 1, t.name))
    assert any("differs" in d for d in _same_graph(a, b))
    b.CopyFrom(a)
    b.graph.node.append(h.make_node("Identity", [b.graph.output[0].name], ["extra"]))
    assert any("only in ours" in d for d in _same_graph(b, a))
    b.CopyFrom(a)
    first = onnx.NodeProto()
    first.CopyFrom(b.graph.node[0])
    del b.graph.node[0]
    b.graph.node.append(first)
    assert _same_graph(b, a) == ["node order differs"]


def test_the_order_is_graphsurgeons_a_merged_node_sorts_where_its_reader_finds_it():
    """Level order over the order levels are found: "merged" (appended last, as onnxslim appends a merged node) is
    found through the Concat that reads it first, so it sorts before "r1" of the same level; a stable sort of the
    list would keep list order (r1, merged) — and a split's boundary tensors in another order."""
    from hailo_qa.graph.fold import toposort

    m = _model([h.make_node("Relu", ["x"], ["a"], name="x0"),
                h.make_node("Concat", ["m", "r"], ["y"], axis=0, name="reader"),
                h.make_node("Neg", ["a"], ["r"], name="r1"), h.make_node("Abs", ["a"], ["m"], name="merged")],
               [_x()], [_y()])
    assert [n.name for n in toposort(m).graph.node] == ["x0", "merged", "r1", "reader"]
