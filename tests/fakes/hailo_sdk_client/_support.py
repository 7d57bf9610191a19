"""Test helpers for the ``hailo_sdk_client`` contract fake: install into ``sys.modules``, build a tiny ONNX."""
from __future__ import annotations

import functools
import importlib
import sys
from pathlib import Path

import numpy as np

_MODULES = ("", ".exposed_definitions", ".model_translator", ".model_translator.exceptions", ".runner",
            ".runner.client_runner")


def install(monkeypatch):
    """Put the fake into ``sys.modules`` as ``hailo_sdk_client`` (undone by monkeypatch); return its BEHAVIOUR,
    reset to defaults."""
    from hailo_qa import toolchain

    base = __name__.rsplit(".", 1)[0]
    for suffix in _MODULES:
        monkeypatch.setitem(sys.modules, "hailo_sdk_client" + suffix, importlib.import_module(base + suffix))
    cr = importlib.import_module(base + ".runner.client_runner")
    monkeypatch.setattr(cr, "BEHAVIOUR", cr.Behaviour())
    # a fresh cache for the probe while the fake is installed: the real probe's answer comes back with the undo,
    # so "the DFC is installed" never outlives the test (a later test in the worker would otherwise believe it)
    monkeypatch.setattr(toolchain, "dfc", functools.cache(toolchain.dfc.__wrapped__))
    return cr.BEHAVIOUR


def tiny_onnx(path: Path, *, name: str = "tiny") -> Path:
    """A 1×3×8×8 → Conv(4) → Relu → 1×4×8×8 model (output ``feat``), plus a 1×4 pooled output ``pooled``."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.normal(size=(4, 3, 3, 3)).astype(np.float32), "w")
    nodes = [helper.make_node("Conv", ["images", "w"], ["conv_out"], name="/conv/Conv", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["conv_out"], ["feat"], name="/relu/Relu"),
             helper.make_node("GlobalAveragePool", ["feat"], ["gap"], name="/gap/GlobalAveragePool"),
             helper.make_node("Flatten", ["gap"], ["pooled"], name="/flat/Flatten")]
    g = helper.make_graph(nodes, name, [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 8, 8])],
                          [helper.make_tensor_value_info("feat", TensorProto.FLOAT, [1, 4, 8, 8]),
                           helper.make_tensor_value_info("pooled", TensorProto.FLOAT, [1, 4])], [w])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.save(m, str(path))
    return path
