"""Tiny ONNX models built in code for unit tests (like Polygraphy's tests/models + make_models.py)."""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper as nh


def _model(nodes, inputs, outputs, inits=(), opset=17) -> onnx.ModelProto:
    g = h.make_graph(nodes, "test", inputs, outputs, list(inits))
    m = h.make_model(g, opset_imports=[h.make_opsetid("", opset)], ir_version=8)
    onnx.checker.check_model(m)
    return m


def conv_topk(batch="N") -> onnx.ModelProto:
    """images[N,3,8,8] → Conv → Relu → ReduceMax(axis 1, keepdims 0) → Flatten → TopK(k=3): a device head + host tail."""
    w = nh.from_array(np.random.default_rng(0).normal(size=(4, 3, 3, 3)).astype(np.float32), "w")
    k = nh.from_array(np.array([3], np.int64), "k")
    nodes = [h.make_node("Conv", ["images", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             h.make_node("Relu", ["c"], ["r"], name="relu"),
             h.make_node("ReduceMax", ["r"], ["m"], name="reducemax", axes=[1], keepdims=0),
             h.make_node("Flatten", ["m"], ["f"], name="flatten", axis=1),
             h.make_node("TopK", ["f", "k"], ["vals", "idx"], name="topk")]
    return _model(nodes, [h.make_tensor_value_info("images", T.FLOAT, [batch, 3, 8, 8])],
                  [h.make_tensor_value_info("vals", T.FLOAT, [batch, 3]), h.make_tensor_value_info("idx", T.INT64, [batch, 3])],
                  [w, k], opset=13)


def two_branch() -> onnx.ModelProto:
    """images → Conv → a ; a → Relu → b ; out = Add(a-derived Sigmoid, b) — a cut at 'b' alone does not separate."""
    w = nh.from_array(np.ones((2, 3, 1, 1), np.float32), "w")
    nodes = [h.make_node("Conv", ["images", "w"], ["a"], name="conv"),
             h.make_node("Relu", ["a"], ["b"], name="relu"),
             h.make_node("Sigmoid", ["a"], ["s"], name="sig"),
             h.make_node("Add", ["b", "s"], ["out"], name="add")]
    return _model(nodes, [h.make_tensor_value_info("images", T.FLOAT, [1, 3, 4, 4])],
                  [h.make_tensor_value_info("out", T.FLOAT, [1, 2, 4, 4])], [w])


def tokens_only() -> onnx.ModelProto:
    """A model whose only input is int64 token ids: nothing image-like."""
    emb = nh.from_array(np.ones((10, 4), np.float32), "emb")
    nodes = [h.make_node("Gather", ["emb", "ids"], ["e"], name="gather")]
    return _model(nodes, [h.make_tensor_value_info("ids", T.INT64, [1, 5])],
                  [h.make_tensor_value_info("e", T.FLOAT, [1, 5, 4])], [emb])


def all_unsupported() -> onnx.ModelProto:
    """images → GridSample (rejected) → out: no device-compatible node."""
    grid = nh.from_array(np.zeros((1, 4, 4, 2), np.float32), "grid")
    nodes = [h.make_node("GridSample", ["images", "grid"], ["out"], name="gs")]
    return _model(nodes, [h.make_tensor_value_info("images", T.FLOAT, [1, 3, 4, 4])],
                  [h.make_tensor_value_info("out", T.FLOAT, [1, 3, 4, 4])], [grid])


def save(model: onnx.ModelProto, path) -> str:
    onnx.save(model, str(path))
    return str(path)
