"""The independent Stage-1 check (hailo_qa.graph.devicecheck) fails on what Hailo-8 cannot run."""
from __future__ import annotations

import onnx
import pytest
from onnx import TensorProto, helper

from hailo_qa.graph.devicecheck import independent_device_check, unsupported_ops
from hailo_qa.graph.rules import load_rules


def _model(op: str, shape=(1, 8)) -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, list(shape))
    g = helper.make_graph([helper.make_node(op, ["x"], ["y"], name=f"n_{op}")], "g", [x], [y])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def test_accepts_a_plain_stage():
    v = independent_device_check(_model("Relu"), use_dfc=False)
    assert v and v.problems == () and "unsupported-op list" in v.authority


@pytest.mark.parametrize("op", ["Round", "Erf"])
def test_rejects_ops_hailo8_cannot_run(op):
    v = independent_device_check(_model(op), use_dfc=False)
    assert not v and f"n_{op} ({op})" in v.problems[0]


def test_rejects_dynamic_shapes():
    v = independent_device_check(_model("Relu", shape=("N", 8)), use_dfc=False)
    assert not v and "not a static shape" in v.problems[0]


def test_the_list_is_its_own_data_with_evidence():
    ops = unsupported_ops()
    assert all(isinstance(e, str) and len(e) > 10 for e in ops.values())
    assert "Round" in ops and "TopK" in ops
    # a separate source: the rule table is not consulted (it has its own file and format)
    assert set(ops) != {k for k, r in load_rules().items() if r.status == "unsupported"}
