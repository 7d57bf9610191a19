"""A read-only index over a shape-inferred ONNX graph: tensor shapes/dtypes, producers, consumers, constants."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import onnx
from onnx import numpy_helper

FLOAT_TYPES = {onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE, onnx.TensorProto.BFLOAT16}


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple[int | str | None, ...] | None  # None: unknown rank
    elem_type: int

    @property
    def rank(self) -> int | None:
        return None if self.shape is None else len(self.shape)

    @property
    def static(self) -> bool:
        return self.shape is not None and all(isinstance(d, int) and d > 0 for d in self.shape)

    @property
    def is_float(self) -> bool:
        return self.elem_type in FLOAT_TYPES

    @property
    def dtype_name(self) -> str:
        return onnx.helper.tensor_dtype_to_np_dtype(self.elem_type).name if self.elem_type else "unknown"


def _info(vi: onnx.ValueInfoProto) -> TensorInfo:
    tt = vi.type.tensor_type
    shape = None
    if tt.HasField("shape"):
        shape = tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in tt.shape.dim)
    return TensorInfo(vi.name, shape, tt.elem_type)


class GraphIndex:
    """Index of one (already shape-inferred) graph. Node keys are node names (made unique if missing)."""

    def __init__(self, model: onnx.ModelProto) -> None:
        self.model = model
        g = model.graph
        self.nodes = list(g.node)
        self.node_name = {}
        seen: set[str] = set()
        for i, n in enumerate(self.nodes):
            name = n.name or f"{n.op_type}_{i}"
            while name in seen:
                name = f"{name}_{i}"
            seen.add(name)
            self.node_name[id(n)] = name
        self.init = {t.name: t for t in g.initializer}
        self.inputs = [i.name for i in g.input if i.name not in self.init]
        self.outputs = [o.name for o in g.output]
        self.producer: dict[str, onnx.NodeProto] = {}
        self.consumers: dict[str, list[onnx.NodeProto]] = defaultdict(list)
        for n in self.nodes:
            for o in n.output:
                if o:
                    self.producer[o] = n
            for i in n.input:
                if i:
                    self.consumers[i].append(n)
        self.constants: set[str] = set(self.init)
        for n in self.nodes:  # Constant nodes, and nodes whose inputs are all constant (unfolded constant subgraphs)
            if n.op_type == "Constant" or (n.input and all((not i) or i in self.constants for i in n.input)
                                            and n.op_type not in ("RandomNormal", "RandomUniform")):
                self.constants.update(o for o in n.output if o)

    @cached_property
    def tensors(self) -> dict[str, TensorInfo]:
        """Shapes and dtypes of the graph's tensors (read from the protos on first use: a lookup of constants and
        producers, as :func:`~hailo_qa.graph.prepare.shape_computation_nodes` makes, needs none of them)."""
        g = self.model.graph
        out = {vi.name: _info(vi) for vi in [*g.input, *g.value_info, *g.output]}
        out.update({t.name: TensorInfo(t.name, tuple(t.dims), t.data_type) for t in g.initializer})
        return out

    def name(self, node: onnx.NodeProto) -> str:
        return self.node_name[id(node)]

    def info(self, tensor: str) -> TensorInfo:
        return self.tensors.get(tensor, TensorInfo(tensor, None, 0))

    def const_value(self, tensor: str) -> np.ndarray | None:
        """The value of a constant tensor (initializer or Constant node), else None."""
        if tensor in self.init:
            return numpy_helper.to_array(self.init[tensor])
        n = self.producer.get(tensor)
        if n is not None and n.op_type == "Constant":
            for a in n.attribute:
                if a.name == "value":
                    return numpy_helper.to_array(a.t)
                if a.name in ("value_ints", "value_floats"):
                    return np.asarray(onnx.helper.get_attribute_value(a))
                if a.name in ("value_int", "value_float"):
                    return np.asarray(onnx.helper.get_attribute_value(a))
        return None

    def tensor_names(self) -> list[str]:
        names = list(self.inputs)
        for n in self.nodes:
            names.extend(o for o in n.output if o)
        return names

    def topo_nodes(self) -> list[onnx.NodeProto]:
        """Nodes in topological order (ONNX requires graphs to be sorted; we re-sort defensively).

        The order is by *wave* — a node comes in the first wave after all its inputs are ready — then by file order;
        nodes that never become ready (a cycle, a missing producer) follow in file order. Linear in the graph size
        (a wave-by-wave sweep was quadratic on a deep chain). Computed once per index (a split asks seven times);
        the list returned is a copy.
        """
        return list(self._topo)

    @cached_property
    def _topo(self) -> list[onnx.NodeProto]:
        ready0 = set(self.inputs) | set(self.init) | {""}
        nodes = list(self.nodes)
        producers: dict[str, list[int]] = {}
        for k, n in enumerate(nodes):
            for o in n.output:
                producers.setdefault(o, []).append(k)
        unknown, busy, done = -2, -1, None
        wave = [unknown] * len(nodes)  # wave number, or INF for never ready
        inf = len(nodes) + 1
        for root in range(len(nodes)):
            if wave[root] != unknown:
                continue
            stack = [root]
            while stack:
                k = stack[-1]
                if wave[k] == unknown:
                    wave[k] = busy
                    stack.extend(p for t in nodes[k].input if t not in ready0
                                 for p in producers.get(t, ()) if wave[p] == unknown)
                    continue
                stack.pop()
                if wave[k] != busy:
                    continue
                w = 0
                for t in nodes[k].input:
                    if t in ready0:
                        continue
                    ws = [wave[p] for p in producers.get(t, ())]
                    ws = [x for x in ws if x is not done and x >= 0]
                    w = max(w, (min(ws) + 1) if ws else inf)
                wave[k] = min(w, inf)
        ok = sorted((k for k in range(len(nodes)) if wave[k] < inf), key=lambda k: (wave[k], k))
        return [nodes[k] for k in ok] + [nodes[k] for k in range(len(nodes)) if wave[k] >= inf]


def attr(node: onnx.NodeProto, name: str, default=None):
    for a in node.attribute:
        if a.name == name:
            v = onnx.helper.get_attribute_value(a)
            return v.decode() if isinstance(v, bytes) else v
    return default
