"""The proof (hailo_qa.graph.verify) and the preparation proof (hailo_qa.graph.prepare): a difference is classified
as a kernel last-bit effect or a real one, a real one is a what / Note / Hint error, preparation falls back."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper as nh

from hailo_qa.errors import GraphError
from hailo_qa.graph import prepare as prep_mod
from hailo_qa.graph.prepare import prepare, static_shapes
from hailo_qa.graph.split import stages_from_onnx
from hailo_qa.graph.verify import as_float64, classify_difference, prove, verify_split
from hailo_qa.runners.onnxrt import session_from_onnx
from tests.graph import models


def _sum3(order: str, scale: float = 1.0) -> onnx.ModelProto:
    """y = (a + b) + c or a + (b + c): the same function, rounded differently in float32."""
    nodes = ([h.make_node("Add", ["a", "b"], ["ab"]), h.make_node("Add", ["ab", "c"], ["y0"])] if order == "left"
             else [h.make_node("Add", ["b", "c"], ["bc"]), h.make_node("Add", ["a", "bc"], ["y0"])])
    nodes.append(h.make_node("Mul", ["y0", "k"], ["y"]))
    vi = [h.make_tensor_value_info(n, T.FLOAT, [1, 64]) for n in "abc"]
    k = nh.from_array(np.array(scale, np.float32), "k")
    g = h.make_graph(nodes, "sum3", vi, [h.make_tensor_value_info("y", T.FLOAT, [1, 64])], [k])
    return h.make_model(g, opset_imports=[h.make_opsetid("", 17)], ir_version=8)


def _feeds():
    rng = np.random.default_rng(3)
    return {"a": rng.uniform(-1e4, 1e4, (1, 64)).astype(np.float32),
            "b": rng.uniform(-1, 1, (1, 64)).astype(np.float32),
            "c": rng.uniform(-1e-3, 1e-3, (1, 64)).astype(np.float32)}


def test_reassociation_is_a_kernel_effect_not_a_mismatch():
    a, b = _sum3("left"), _sum3("right")
    with pytest.raises(AssertionError):  # the float32 results really differ
        np.testing.assert_array_equal(*(session_from_onnx(m, optimize=False).run(None, _feeds())[0] for m in (a, b)))
    cls = classify_difference(a, b, _feeds())
    assert cls.kind == "kernel" and "float64" in cls.explanation and "same function" in cls.explanation


def test_a_changed_constant_is_a_real_difference():
    cls = classify_difference(_sum3("left"), _sum3("right", scale=1.001), _feeds())
    assert cls.kind == "real" and "still differ" in cls.explanation and "not a kernel rounding effect" in cls.explanation


def test_float64_copy_keeps_the_function():
    m = models.conv_topk(batch=1)
    d = as_float64(m)
    assert all(t.data_type != T.FLOAT for t in d.graph.initializer)
    assert d.graph.input[0].type.tensor_type.elem_type == T.DOUBLE


def test_proof_sessions_disable_prepacking_and_optimizations():
    s = session_from_onnx(models.conv_topk(batch=1), optimize=False)
    assert s.get_session_options().get_session_config_entry("session.disable_prepacking") == "1"
    s = session_from_onnx(models.conv_topk(batch=1))
    with pytest.raises(RuntimeError):  # not set: ORT's default (pre-packing on) outside proofs
        s.get_session_options().get_session_config_entry("session.disable_prepacking")


def test_weights_listed_as_graph_inputs_prove_bit_exact():
    """Old exporters list every initializer as a graph input too (the case ORT's pre-packing moved by 4.8e-7)."""
    m = models.conv_topk(batch=1)
    for t in m.graph.initializer:
        m.graph.input.append(h.make_tensor_value_info(t.name, t.data_type, list(t.dims)))
    r = stages_from_onnx(m)
    proof = verify_split(m, r, n=2)
    assert proof.verdict == "bit-exact", proof.summary()


def _conv_reducesum() -> onnx.ModelProto:
    """images[1,3,32,32] → Conv(16) (device) → ReduceSum(all, keepdims 0) (host): a sum of 16384 values."""
    w = nh.from_array(np.random.default_rng(1).normal(size=(16, 3, 3, 3)).astype(np.float32), "w")
    ax = nh.from_array(np.array([1, 2, 3], np.int64), "ax")
    nodes = [h.make_node("Conv", ["images", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             h.make_node("ReduceSum", ["c", "ax"], ["y"], name="sum", keepdims=0)]
    g = h.make_graph(nodes, "cs", [h.make_tensor_value_info("images", T.FLOAT, [1, 3, 32, 32])],
                     [h.make_tensor_value_info("y", T.FLOAT, [1])], [w, ax])
    return h.make_model(g, opset_imports=[h.make_opsetid("", 17)], ir_version=8)


def test_proof_passes_a_last_bit_split_and_says_why():
    """A Stage 2 that sums in another order computes the same function: the proof passes and says why."""
    m = _conv_reducesum()
    r = stages_from_onnx(m)
    assert [b.name for b in r.boundary] == ["c"]
    s2 = r.stage2  # Stage 2 becomes sum(3·c) / 3: the same function, rounded differently
    s2.graph.initializer.append(nh.from_array(np.array(3.0, np.float32), "three"))
    s2.graph.node.insert(0, h.make_node("Mul", ["c", "three"], ["c3"], name="m3"))
    s2.graph.node[1].input[0] = "c3"
    s2.graph.node[1].output[0] = "y3"
    s2.graph.node.append(h.make_node("Div", ["y3", "three"], ["y"], name="d3"))
    proof = verify_split(m, r, n=1)
    assert proof.ok and proof.verdict == "kernel-last-bit", proof.summary()
    assert "kernel last-bit effect" in proof.summary() and "random[0]" in proof.summary()
    s2.graph.node[-1].op_type = "Mul"  # sum(3·c) · 3: a real change
    proof = verify_split(m, r, n=1)
    assert not proof.ok and "MISMATCH" in str(proof.error())


def test_static_dim_override_is_refused_unless_reshape():
    m = models.conv_topk(batch=1)  # images [1, 3, 8, 8], all static
    with pytest.raises(GraphError) as e:
        static_shapes(m, overrides={"images": [1, 3, 16, 16]})
    err = e.value
    assert "--shape images=1,3,16,16" in err.what and "axis 2 is fixed at 8, not 16" in err.what
    assert "--reshape" in err.hint
    assert static_shapes(m, overrides={"images": [1, 3, 16, 16]}, reshape=True)["images"] == (1, 3, 16, 16)
    assert static_shapes(m, overrides={"images": [1, 3, 8, 8]})["images"] == (1, 3, 8, 8)


def test_reshape_is_covered_by_the_proof():
    m = models.conv_topk(batch=1)
    r = stages_from_onnx(m, shapes={"images": [1, 3, 16, 16]}, reshape=True)
    assert r.report["preparation"]["pinned"]["images"]["to"] == [1, 3, 16, 16]
    proof = verify_split(m, r, n=1)
    assert proof.verdict == "bit-exact"


def _folds_wrong(real):
    def broken(model, static, extra):  # the pass "folds the wrong way": one weight changes
        out = real(model, static, extra)
        if not extra.get("skip_optimizations"):
            w = next(t for t in out.graph.initializer if len(t.dims) == 4)
            w.CopyFrom(nh.from_array(nh.to_array(w) * np.float32(1.01), w.name))
        return out
    return broken


def test_preparation_that_changes_the_model_falls_back(monkeypatch):
    """Our folder wrong → onnxslim's own passes; both wrong → onnxslim without eliminations. Each step is proven."""
    monkeypatch.setattr(prep_mod, "_fast", _folds_wrong(prep_mod._fast))
    p = prepare(models.conv_topk(batch=1))
    assert p.simplifier.startswith("onnxslim") and "by onnxslim's own passes" in p.simplifier
    assert any("'fold' changed what the model computes" in n and "fell back" in n for n in p.notes)
    assert p.proof["verdict"] == "bit-exact"
    monkeypatch.setattr(prep_mod, "_slim", _folds_wrong(prep_mod._slim))
    p = prepare(models.conv_topk(batch=1))
    assert "constant and shape folding only" in p.simplifier and p.proof["verdict"] == "bit-exact"
    assert any("'onnxslim' changed what the model computes" in n for n in p.notes)


def test_a_folder_that_fails_falls_back(monkeypatch):
    def fails(model, static, extra):
        raise prep_mod.GraphError("the folder could not fold the model: boom")

    monkeypatch.setattr(prep_mod, "_fast", fails)
    p = prepare(models.conv_topk(batch=1))
    assert p.simplifier.startswith("onnxslim") and p.proof["verdict"] == "bit-exact"
    assert any("'fold' failed (the folder could not fold the model: boom)" in n for n in p.notes)


def test_preparation_proof_is_reported():
    p = prepare(models.conv_topk())
    assert p.proof["verdict"] == "bit-exact" and p.simplifier.startswith("hailo-qa's folder")
    p = prepare(models.conv_topk(), simplify=False)
    assert p.simplifier == "none" and p.proof["verdict"] == "bit-exact"


def test_prove_names_every_input():
    m = models.conv_topk(batch=1)
    r = stages_from_onnx(m)
    rng = np.random.default_rng(0)
    feeds = [(f"x{k}", {"images": rng.random((1, 3, 8, 8), dtype=np.float32)}) for k in range(3)]
    p = prove(m, r, feeds)
    assert p.inputs == ("x0", "x1", "x2") and p.to_dict()["summary"] == "bit-exact on 3 input(s)"
