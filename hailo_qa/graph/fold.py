"""Constant and shape folding on plain ONNX protos: what ONNX-GraphSurgeon's ``fold_constants`` does for onnxslim
(the settings :mod:`hailo_qa.graph.prepare` used), without its Python graph model.

GraphSurgeon imports the whole graph into Python objects, copies it, toposorts it and exports it again on every
round: about 0.5 s a round on DEIMv2-Atto's 867 nodes, where the work itself — which tensors are constant, and their
values — is a dictionary walk and one ONNX Runtime run of the foldable nodes. This module does that walk on the
protos and leaves the arithmetic to ONNX Runtime, as GraphSurgeon does:

1. ``Constant`` nodes (``value``, ``value_float(s)``, ``value_int(s)``) become initializers;
2. a node is foldable when every input is constant, it is deterministic and not a (de)quantizer, and it carries no
   subgraph; a ``Shape`` (``start``/``end`` honoured) of a tensor whose shape is static folds to its dims, and so do
   a ``Gather``/``Slice`` of a ``Shape`` that pick only static dims;
3. the foldable tensors a non-foldable node reads are computed in one ONNX Runtime session and become initializers
   under their own names; graph outputs are never folded; nodes and initializers nothing uses any more are dropped.

Differences from GraphSurgeon, on purpose: nodes with subgraphs (If/Loop/Scan) are not folded or flattened,
functions are not entered, and random ops are never folded (GraphSurgeon would freeze one draw of a RandomUniform
with no inputs into a constant). None of the registered, unseen or tried third-party models has any of these. :func:`hailo_qa.graph.prepare.prepare` proves every prepared graph against the original
whichever folder made it, and ``tests/graph/test_fold.py`` holds the result equal to GraphSurgeon's on the
registered and unseen models.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import onnx
from onnx import numpy_helper

NO_FOLD_OPS = frozenset({"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "SequenceEmpty",
                         "RandomUniform", "RandomNormal", "RandomUniformLike", "RandomNormalLike", "Multinomial",
                         "Bernoulli"})
"""Ops never folded: quantization nodes (GraphSurgeon keeps them, so a QDQ graph stays one) and random ones."""

_CONSTANT_ATTRS = ("value", "value_float", "value_floats", "value_int", "value_ints")


def static_dims(model: onnx.ModelProto) -> dict[str, tuple[int, ...]]:
    """The fully static shapes known for the graph's tensors (inputs, value_info, outputs, initializers)."""
    out: dict[str, tuple[int, ...]] = {}
    g = model.graph
    for vi in [*g.input, *g.value_info, *g.output]:
        tt = vi.type.tensor_type
        if vi.type.HasField("tensor_type") and tt.HasField("shape") \
                and all(d.HasField("dim_value") and d.dim_value >= 0 for d in tt.shape.dim):
            out[vi.name] = tuple(d.dim_value for d in tt.shape.dim)
    for t in g.initializer:
        out[t.name] = tuple(t.dims)
    return out


def freeze(model: onnx.ModelProto) -> None:
    """Take initializers off the graph's input list, in place (old exporters list weights as inputs; a folder
    must see them as constants, as onnxslim's ``freeze`` makes it)."""
    init = {t.name for t in model.graph.initializer}
    keep = [i for i in model.graph.input if i.name not in init]
    if len(keep) != len(model.graph.input):
        del model.graph.input[:]
        model.graph.input.extend(keep)


def lower_constant_nodes(model: onnx.ModelProto) -> bool:
    """Turn ``Constant`` nodes (single value attribute of a kind GraphSurgeon lowers) into initializers, in place.
    Returns whether anything changed."""
    g = model.graph
    keep, changed = [], False
    outputs = {o.name for o in g.output}
    for n in g.node:
        if n.op_type == "Constant" and n.domain in ("", "ai.onnx") and len(n.attribute) == 1 \
                and n.attribute[0].name in _CONSTANT_ATTRS and not n.attribute[0].ref_attr_name \
                and n.output[0] not in outputs:
            a = n.attribute[0]
            if a.name == "value":
                t = onnx.TensorProto()
                t.CopyFrom(a.t)
            else:
                v = onnx.helper.get_attribute_value(a)
                dtype = np.float32 if a.name.startswith("value_float") else np.int64
                t = numpy_helper.from_array(np.array(v, dtype=dtype))
            t.name = n.output[0]
            g.initializer.append(t)
            changed = True
            continue
        keep.append(n)
    if changed:
        del g.node[:]
        g.node.extend(keep)
    return changed


def _attr(n: onnx.NodeProto, name: str, default=None):
    for a in n.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def _shape_slice(n: onnx.NodeProto, dims: tuple[int, ...]) -> tuple[int, ...] | None:
    """The dims a ``Shape`` node (with its opset-15 ``start``/``end``) returns for a tensor of shape ``dims``."""
    rank = len(dims)
    start, end = _attr(n, "start", 0), _attr(n, "end", None)
    start = rank + start if start < 0 else start
    end = rank if end is None else (rank + end if end < 0 else end)
    start, end = max(0, min(start, rank)), max(0, min(end, rank))
    return None if start > end else tuple(dims[start:end])


def fold_constants(model: onnx.ModelProto) -> tuple[onnx.ModelProto, int]:
    """One folding pass (see the module doc), **in place**: the rounds own the model they fold, and a copy per
    round cost a full copy of the weights (the eliminations copy once more). ``model`` must be topologically sorted
    and carry the value_info of a shape inference. Returns the model and the number of tensors folded (0: nothing
    to fold)."""
    import onnxruntime

    m = model
    g = m.graph
    lowered = lower_constant_nodes(m)
    init = {t.name: t for t in g.initializer}
    shapes = static_dims(m)
    producer = {o: n for n in g.node for o in n.output if o}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for n in g.node:
        for i in n.input:
            if i:
                consumers.setdefault(i, []).append(n)

    # GraphSurgeon's quirk, kept for identical results: an initializer read as the data of a Gather and, besides,
    # by exactly one Transpose is not treated as constant (an embedding table shared with its transposed use)
    consts = {k for k in init if not (any(c.op_type == "Gather" and c.input[0] == k for c in consumers.get(k, ()))
                                      and len(consumers[k]) == 2
                                      and any(c.op_type == "Transpose" for c in consumers[k]))}
    foldable: list[onnx.NodeProto] = []
    shape_values: dict[str, np.ndarray] = {}

    def walk() -> None:
        for n in g.node:
            if n.op_type in NO_FOLD_OPS or n.domain not in ("", "ai.onnx") \
                    or any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) or a.ref_attr_name
                           for a in n.attribute) or any(o in consts for o in n.output if o):
                continue
            if all((not i) or i in consts for i in n.input):
                foldable.append(n)
                consts.update(o for o in n.output if o)

    walk()
    for n in g.node:  # shape folding: Shape, and Gather / Slice of a Shape, on static dims
        if not n.output or n.output[0] in consts:
            continue
        value = _fold_shape(n, producer, consts, shapes, init)
        if value is not None:
            shape_values[n.output[0]] = value
            consts.add(n.output[0])
    if shape_values:
        walk()

    in_fold = {id(n) for n in foldable}
    wanted = [t for n in foldable for t in n.output
              if t and t not in shape_values and any(id(c) not in in_fold for c in consumers.get(t, ()))]
    values: dict[str, np.ndarray] = dict(shape_values)
    if wanted:
        values.update(_evaluate(m, foldable, wanted, shape_values, init, onnxruntime))
    values = {k: v for k, v in values.items() if consumers.get(k)}  # graph outputs (no consumer) stay computed
    if not values:
        return (m, 0) if not lowered else (_cleanup(m), 0)
    for k, v in values.items():
        t = numpy_helper.from_array(np.asarray(v), name=k)
        g.initializer.append(t)
    for k in values:
        p = producer.get(k)
        if p is not None:  # the producer's other outputs may still be used: it is dropped by the cleanup if not
            for j, o in enumerate(p.output):
                if o == k:
                    p.output[j] = ""  # computed no more; the initializer of that name takes over
    return _cleanup(m), len(values)


def _fold_shape(n: onnx.NodeProto, producer: Mapping, consts: set, shapes: Mapping,
                init: Mapping) -> np.ndarray | None:
    """The value of a Shape, or of a Gather/Slice of a Shape, when the dims it returns are static; else None."""
    def shape_of(node) -> tuple[int, ...] | None:
        if node is None or node.op_type != "Shape" or node.input[0] in consts:
            return None
        dims = shapes.get(node.input[0])
        return None if dims is None else _shape_slice(node, dims)

    def const(name: str) -> np.ndarray | None:
        return numpy_helper.to_array(init[name]) if name in init else None

    if n.op_type == "Shape" and n.domain in ("", "ai.onnx"):
        dims = shape_of(n)
        return None if dims is None else np.array(dims, dtype=np.int64)
    if n.op_type == "Gather" and len(n.input) == 2:
        dims = shape_of(producer.get(n.input[0]))
        idx = const(n.input[1])
        if dims is None or idx is None:
            return None
        picked = []
        for i in np.atleast_1d(idx).tolist():
            i = i + len(dims) if i < 0 else i
            if not 0 <= i < len(dims):
                return None
            picked.append(dims[i])
        return np.array(picked if idx.ndim else picked[0], dtype=np.int64)
    if n.op_type == "Slice" and len(n.input) >= 3:
        dims = shape_of(producer.get(n.input[0]))
        parts = [const(x) if x else None for x in n.input[1:5]] + [None] * (5 - len(n.input))
        if dims is None or parts[0] is None or parts[1] is None or any(
                x and p is None for x, p in zip(n.input[3:5], parts[2:])):
            return None
        if parts[2] is not None and int(np.ravel(parts[2])[0]) != 0:
            return None
        step = int(np.ravel(parts[3])[0]) if parts[3] is not None else 1
        sel = dims[int(np.ravel(parts[0])[0]):int(np.ravel(parts[1])[0]):step]
        return np.array(sel, dtype=np.int64)
    return None


def _evaluate(m: onnx.ModelProto, foldable: list, wanted: list[str], shape_values: Mapping, init: Mapping,
              ort) -> dict[str, np.ndarray]:
    """Compute ``wanted`` with one ONNX Runtime session over the foldable nodes they need (optimizations on, as
    GraphSurgeon's folder has them; hailo-qa's shared options for the rest); on failure nothing but the shape values
    is folded (GraphSurgeon's error_ok)."""
    need = set(wanted)
    nodes = []
    for n in reversed(foldable):
        if any(o in need for o in n.output):
            nodes.append(n)
            need.update(i for i in n.input if i)
    nodes.reverse()
    g = onnx.helper.make_graph(
        nodes, "fold", [], [onnx.ValueInfoProto(name=k) for k in wanted],
        initializer=[init[k] for k in need if k in init]
        + [numpy_helper.from_array(v, name=k) for k, v in shape_values.items() if k in need])
    sub = onnx.helper.make_model(g, opset_imports=m.opset_import, ir_version=m.ir_version)
    try:
        from hailo_qa.runners.onnxrt import session_options

        sess = ort.InferenceSession(sub.SerializeToString(), session_options(), providers=["CPUExecutionProvider"])
        return dict(zip(wanted, sess.run(wanted, {})))
    except Exception:  # noqa: BLE001 - like GraphSurgeon with error_ok: fold less, never fail the preparation
        return {}


def toposort(model: onnx.ModelProto) -> onnx.ModelProto:
    """GraphSurgeon's node order (:func:`hailo_qa.graph.noops.level_order`), in place. onnxslim sorts before it
    folds; nodes of equal level keep their order, so folding an unsorted list would order ties (and with them a
    split's boundary tensors) differently."""
    from hailo_qa.graph.noops import level_order

    g = model.graph
    nodes = list(g.node)
    prod = {o: n for n in nodes for o in n.output if o}

    def producers(n):
        seen: dict[int, onnx.NodeProto] = {}
        for t in (*n.input, *_body_reads(n)) if _may_have_body(n) else n.input:
            p = prod.get(t) if t else None
            if p is not None and p is not n:
                seen.setdefault(id(p), p)
        return list(seen.values())

    order = level_order(nodes, producers)
    if any(a is not b for a, b in zip(order, nodes)):
        del g.node[:]
        g.node.extend(order)
    return model


_BODY_OPS = frozenset({"If", "Loop", "Scan", "SequenceMap"})


def _may_have_body(n: onnx.NodeProto) -> bool:
    """Whether ``n`` can carry a subgraph: a standard op with a body attribute, or any op of another domain."""
    return n.op_type in _BODY_OPS or n.domain not in ("", "ai.onnx")


def _body_reads(n: onnx.NodeProto) -> set[str]:
    """Every tensor name the subgraphs of ``n`` (If/Loop/Scan bodies, nested) read: outer tensors among them must
    stay."""
    out: set[str] = set()
    for a in n.attribute:
        for body in ([a.g] if a.type == onnx.AttributeProto.GRAPH else
                     list(a.graphs) if a.type == onnx.AttributeProto.GRAPHS else []):
            for b in body.node:
                out.update(i for i in b.input if i)
                out.update(_body_reads(b))
    return out


def _cleanup(m: onnx.ModelProto) -> onnx.ModelProto:
    """Drop nodes none of whose outputs is used (repeatedly), then initializers nothing reads, in place."""
    g = m.graph
    outputs = {o.name for o in g.output}
    nodes = list(g.node)
    used = set(outputs)
    keep = []
    for n in reversed(nodes):
        if any(o and o in used for o in n.output):
            keep.append(n)
            used.update(i for i in n.input if i)
            if _may_have_body(n):
                used.update(_body_reads(n))
    keep.reverse()
    if len(keep) != len(nodes):
        del g.node[:]
        g.node.extend(keep)
    for k in range(len(g.initializer) - 1, -1, -1):  # in place: rebuilding the list would copy every weight
        if g.initializer[k].name not in used:
            del g.initializer[k]
    names = {t.name for t in g.initializer}
    vis = [v for v in g.value_info if v.name in used and v.name not in names]
    del g.value_info[:]
    g.value_info.extend(vis)
    return m
