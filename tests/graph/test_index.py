"""GraphIndex.topo_nodes: the same wave-then-file order as a wave-by-wave sweep, in linear time (issue #13)."""
from __future__ import annotations

import random

import onnx
import pytest
from onnx import TensorProto, helper

from hailo_qa.config import REPO_ROOT
from hailo_qa.graph.index import GraphIndex

MODELS = sorted((REPO_ROOT / "fixtures" / "models").glob("*.onnx")) + sorted(
    (REPO_ROOT / "fixtures" / "unseen").glob("*.onnx"))


def key(nodes) -> list[tuple]:
    return [(n.op_type, tuple(n.output)) for n in nodes]


def sweep(g: GraphIndex) -> list[onnx.NodeProto]:
    """The reference: wave by wave over the pending nodes (quadratic on a deep chain)."""
    ready = set(g.inputs) | set(g.init) | {""}
    pending, out = list(g.nodes), []
    while pending:
        progressed = [n for n in pending if all(i in ready for i in n.input)]
        if not progressed:
            return out + pending
        for n in progressed:
            ready.update(n.output)
        out += progressed
        pending = [n for n in pending if n not in progressed]
    return out


@pytest.mark.parametrize("path", MODELS, ids=[p.stem for p in MODELS])
def test_same_order_as_the_sweep_on_real_models_shuffled(path):
    m = onnx.load(str(path), load_external_data=False)
    g = GraphIndex(m)
    assert key(g.topo_nodes()) == key(sweep(g))
    nodes = list(m.graph.node)
    random.Random(0).shuffle(nodes)
    del m.graph.node[:]
    m.graph.node.extend(nodes)
    m.graph.node[0].input.append("no_such_tensor")  # a missing producer: it and its descendants go last
    g = GraphIndex(m)
    assert key(g.topo_nodes()) == key(sweep(g))


def test_cycle_goes_last_in_file_order():
    g = helper.make_graph(
        [helper.make_node("Relu", ["b"], ["a"], name="r1"), helper.make_node("Relu", ["a"], ["b"], name="r2"),
         helper.make_node("Relu", ["x"], ["y"], name="r0")],
        "cyc", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    idx = GraphIndex(helper.make_model(g))
    assert [n.name for n in idx.topo_nodes()] == ["r0", "r1", "r2"] == [n.name for n in sweep(idx)]
