"""onnxslim's eliminations on plain ONNX protos: the no-op removal half of the preparation's simplifier (issue #13).

:func:`eliminate` runs one round of what ``onnxslim.core.optimize(model, <no fusions>)`` does with constant folding,
subexpression elimination and weight tying off (``prepare._slim``'s settings), without ONNX-GraphSurgeon: onnxslim
0.1.98's elimination patterns (``core/pattern/elimination``), matched the way its ``find_matches`` matches them
(nodes in reverse topological order, each node tried against every pattern, the graph mutated as matches are
rewritten, the merged nodes added after the walk), then its ``dead_node_elimination`` rules, with GraphSurgeon's
``cleanup`` (unused nodes, initializers and graph inputs dropped) and ``toposort`` after each. It reproduces
GraphSurgeon's semantics where they decide tensor names: ``Node.erase`` of a no-op whose input is an intermediate
tensor renames the *producer's* output to the no-op's output name; with a graph input or output as its input the
consumers are rewired instead, and a no-op between a graph input/output and a graph output stays.

In rounds, as ``prepare._slim`` runs them (fold, eliminate, infer shapes, until a round changes nothing), the result is
onnxslim's exactly when each round eliminates on the folded graph with the value_info known *before* the fold (what
onnxslim's own round sees: GraphSurgeon keeps the imported shapes of the tensors that survive folding). Folding to
convergence first and eliminating afterwards can differ: a Reshape whose shape input only folds in a later round gets
its inferred output shape as a constant ``<output>_shape`` (with -1 for a dim still symbolic) in the interleaved order,
the folded constant in the other (DEIMv2: 6 Reshapes; ``tests/graph/test_noops.py`` holds both orders).

Not reproduced: onnxslim recurses into If/Loop/Scan bodies; here the bodies are left as they are (their references
to outer tensors are followed, so nothing they use is removed or left dangling). The graphs of the registered and
unseen models have no subgraphs (``tests/graph/test_noops.py`` holds the result against onnxslim on them)."""
from __future__ import annotations

from collections import defaultdict

import numpy as np
import onnx
from onnx import helper, numpy_helper

_OUTPUT = "output"


_SUBGRAPH_OPS = frozenset({"If", "Loop", "Scan", "SequenceMap"})
"""Standard ops with graph attributes (nodes of other domains are looked at too)."""


class _Out:
    """A graph output in a user list (GraphSurgeon lists an output tensor among its producer's users)."""

    op = _OUTPUT


_OUT = _Out()


class _Node:
    __slots__ = ("_attrs", "domain", "edited", "ins", "ins0", "name", "op", "outs", "outs0", "proto", "subrefs")

    def __init__(self, op, name, domain, ins, outs, attrs, proto=None, subrefs=()):
        self.op, self.name, self.domain = op, name, domain
        self.ins, self.outs = ins, outs
        self.ins0, self.outs0 = tuple(ins), tuple(outs)  # as imported: an unchanged node is exported as it came
        self._attrs = attrs  # None: not read yet from ``proto``
        self.edited = False  # attributes changed by a rewrite
        self.proto = proto  # the NodeProto it was imported from (None for a node a rewrite made)
        self.subrefs = subrefs  # outer-scope tensors its subgraphs read

    @property
    def attrs(self) -> dict:
        """name → AttributeProto (as imported) or a python value (set by a rewrite)."""
        if self._attrs is None:
            self._attrs = {a.name: a for a in self.proto.attribute}
        return self._attrs

    @attrs.setter
    def attrs(self, value: dict) -> None:
        self._attrs = value
        self.edited = True


class _Graph:
    """A mutable graph with GraphSurgeon's bookkeeping: producers and consumers per tensor name (consumers with
    multiplicity, in the order GraphSurgeon keeps them), shapes and dtypes as GraphSurgeon imports them."""

    def __init__(self, model: onnx.ModelProto):
        g = model.graph
        self.model = model
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 11)
        self.inits = {t.name: t for t in g.initializer}
        self.new_consts: dict[str, np.ndarray] = {}
        self.values: dict[str, np.ndarray] = {}
        self.inputs = [i.name for i in g.input if i.name not in self.inits]
        self.outputs = [o.name for o in g.output]
        self.input_set, self.output_set = set(self.inputs), set(self.outputs)
        self.vinfo = defaultdict(list)
        for v in g.value_info:
            self.vinfo[v.name].append(v)
        self.io_info = {i.name: i for i in g.input if i.name not in self.inits}
        self.out_info = defaultdict(list)
        for o in g.output:
            self.out_info[o.name].append(o)
        self.shapes: dict[str, object] = {}  # resolved lazily, GraphSurgeon's way (_import_shape)
        self.dtypes: dict[str, object] = {}
        self.prod: dict[str, list] = defaultdict(list)
        self.cons: dict[str, list] = defaultdict(list)
        self.nodes: list[_Node] = []
        for p in g.node:
            refs = ()
            if p.op_type in _SUBGRAPH_OPS or p.domain not in ("", "ai.onnx"):
                subs = [a for a in p.attribute if a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)]
                refs = tuple(sorted(_outer_refs(subs))) if subs else ()
            n = _Node(p.op_type, p.name, p.domain, list(p.input), list(p.output), None, p, refs)
            self.nodes.append(n)
            for t in n.ins:
                self.cons[t].append(n)
            for t in n.outs:
                self.prod[t].append(n)
        self.subrefs = {t for n in self.nodes for t in n.subrefs}
        self.reshaped: set[str] = set()  # tensors whose shape a rewrite set (exported with it)
        self.version = 0  # counts changes to node inputs and outputs

    # tensors -------------------------------------------------------------------------------------------------
    def is_const(self, t: str) -> bool:
        return t in self.inits or t in self.new_consts

    def value(self, t: str) -> np.ndarray:
        v = self.values.get(t)
        if v is None:
            v = self.new_consts[t] if t in self.new_consts else numpy_helper.to_array(self.inits[t])
            self.values[t] = v
        return v

    def const_size(self, t: str) -> int:
        if t in self.new_consts:
            return int(self.new_consts[t].size)
        return int(np.prod(self.inits[t].dims, dtype=np.int64))

    def shape(self, t: str):
        """GraphSurgeon's ``tensor.shape``: a tuple (None for unknown dims, str for symbolic ones), None when
        unknown, a list where a rewrite set it."""
        if t in self.new_consts:
            return self.new_consts[t].shape
        if t in self.inits:
            return tuple(self.inits[t].dims)
        if t not in self.shapes:
            self._import(t)
        return self.shapes[t]

    def dtype(self, t: str):
        if t in self.new_consts:
            return helper.np_dtype_to_tensor_dtype(self.new_consts[t].dtype)
        if t in self.inits:
            return self.inits[t].data_type
        if t not in self.dtypes:
            self._import(t)
        return self.dtypes[t]

    def _import(self, t: str) -> None:
        """value_info first (a later duplicate wins where it knows more dims), then the graph input, then the graph
        output merged in (onnx_importer.import_graph's order)."""
        shape = dtype = None
        seen = False
        for v in [*self.vinfo.get(t, ()), *([self.io_info[t]] if t in self.io_info else ())]:
            s, d = _vi_shape(v), _vi_dtype(v)
            if not seen:
                shape, dtype, seen = s, d, True
            elif v.name in self.io_info and v is self.io_info[t]:
                pass  # a graph input never overwrites what value_info said
            else:
                shape, dtype = _merge(shape, dtype, s, d)
        for v in self.out_info.get(t, ()):
            s, d = _vi_shape(v), _vi_dtype(v)
            if not seen:
                shape, dtype, seen = s, d, True
            else:
                shape, dtype = _merge(shape, dtype, s, d)
        self.shapes[t], self.dtypes[t] = shape, dtype

    def add_const(self, name: str, values: np.ndarray) -> str:
        self.new_consts[name] = values
        self.values[name] = values
        self.inits.pop(name, None)
        return name

    # GraphSurgeon's synchronized lists ---------------------------------------------------------------------
    def set_in(self, n: _Node, i: int, t: str) -> None:
        self.version += 1
        self.cons[n.ins[i]].remove(n)
        n.ins[i] = t
        self.cons[t].append(n)

    def set_out(self, n: _Node, i: int, t: str) -> None:
        self.version += 1
        self.prod[n.outs[i]].remove(n)
        n.outs[i] = t
        self.prod[t].append(n)

    def clear_ins(self, n: _Node) -> None:
        self.version += 1
        for t in n.ins:
            self.cons[t].remove(n)
        n.ins = []

    def clear_outs(self, n: _Node) -> None:
        self.version += 1
        for t in n.outs:
            self.prod[t].remove(n)
        n.outs = []

    def set_ins(self, n: _Node, ins: list) -> None:
        self.version += 1
        self.clear_ins(n)
        n.ins = list(ins)
        for t in n.ins:
            self.cons[t].append(n)

    def set_outs(self, n: _Node, outs: list) -> None:
        self.version += 1
        self.clear_outs(n)
        n.outs = list(outs)
        for t in n.outs:
            self.prod[t].append(n)

    def add_node(self, op, name, ins, outs, attrs) -> _Node:
        n = _Node(op, name, "", [], [], dict(attrs or {}))
        self.set_ins(n, ins)
        self.set_outs(n, outs)
        self.nodes.append(n)
        return n

    # views -------------------------------------------------------------------------------------------------
    def users(self, n: _Node) -> list:
        u = []
        for o in n.outs:
            if o in self.output_set:
                u.append(_OUT)
            u.extend(self.cons[o])
        return u

    def feeds(self, n: _Node) -> list:
        """GraphSurgeon's ``Node.feeds``: per input its producer node, or the tensor name when it has none (a graph
        input, an initializer, an omitted optional input) or when a Split produces it."""
        f = []
        for t in n.ins:
            p = self.prod[t] if not self.is_const(t) else ()
            if not p:
                f.append(t)
            else:
                f.extend(t if q.op == "Split" else q for q in p)
        return f

    def attr(self, n: _Node, name: str, default=None):
        a = n.attrs.get(name, None)
        if a is None:
            return default
        return helper.get_attribute_value(a) if isinstance(a, onnx.AttributeProto) else a

    def replace_uses(self, old: str, new: str) -> None:
        """GraphSurgeon's ``Variable.replace_all_uses_with``: producers of ``old`` produce ``new``, consumers of
        ``old`` read ``new`` (subgraph bodies reading ``old`` from the outer scope too)."""
        for p in list(self.prod[old]):
            for i, t in enumerate(p.outs):
                if t == old:
                    self.set_out(p, i, new)
        for c in list(self.cons[old]):
            for i, t in enumerate(c.ins):
                if t == old:
                    self.set_in(c, i, new)
        if old in self.subrefs:
            for n in self.nodes:
                if old in n.subrefs:
                    _rename_in_subgraphs(n, old, new)

    def erase(self, n: _Node, in_idx: int = 0, out_idx: int = 0) -> None:
        """GraphSurgeon's ``Node.erase`` (a no-op removed, names kept as onnxslim keeps them)."""
        x = n.ins[in_idx]
        if self.is_const(x):
            if any(o in self.output_set for o in n.outs):
                return
            for o in list(n.outs):
                self.replace_uses(o, x)
        else:
            io = x in self.input_set or x in self.output_set
            if io and any(o in self.output_set for o in n.outs):
                return
            if io:
                for o in list(n.outs):
                    self.replace_uses(o, x)
            else:
                self.replace_uses(x, n.outs[out_idx])
        self.clear_ins(n)
        self.clear_outs(n)

    # cleanup / toposort ------------------------------------------------------------------------------------
    def cleanup(self) -> None:
        """GraphSurgeon's ``cleanup(remove_unused_graph_inputs=True)``: keep the nodes the graph outputs depend on
        and the graph inputs they read."""
        used_t = []
        seen = set()
        for t in self.outputs:
            if t not in seen:
                seen.add(t)
                used_t.append(t)
        used_n = set()
        k = 0
        while k < len(used_t):
            t = used_t[k]
            k += 1
            for p in self.prod[t]:
                if id(p) in used_n:
                    continue
                used_n.add(id(p))
                for u in (*p.ins, *p.subrefs):
                    if u not in seen:
                        seen.add(u)
                        used_t.append(u)
        self.inputs = [i for i in self.inputs if i in seen]
        self.input_set = set(self.inputs)
        kept = []
        for n in self.nodes:
            if id(n) in used_n:
                kept.append(n)
            else:
                self.clear_ins(n)
                self.clear_outs(n)
        self.nodes = kept

    def toposort(self) -> None:
        """GraphSurgeon's ``toposort`` (:func:`level_order`)."""
        prod = self.prod

        def producers(n):
            return [p for t in (*n.ins, *n.subrefs) for p in prod.get(t, ()) if p is not n]

        self.nodes[:] = level_order(self.nodes, producers)


def level_order(nodes: list, producers) -> list:
    """GraphSurgeon's topological order: each node's level is 0 when nothing in the graph feeds it, else 1 + the
    highest level of its producers; the result is a stable sort by level of the order in which levels were *found*
    — list order, except that a producer not yet seen is found (depth first, inputs in order) just before the first
    node that reads it. A merged node appended at the end of the list therefore sorts, among equal levels, where
    its first reader pulled it in, as in onnxslim."""
    level: dict[int, int] = {}
    found: list = []
    for root in nodes:
        if id(root) in level:
            continue
        ps = producers(root)
        if all(id(p) in level for p in ps):  # the usual case: every producer came earlier in the list
            level[id(root)] = 1 + max((level[id(p)] for p in ps), default=-1)
            found.append(root)
            continue
        stack = [(root, iter(ps))]
        path = {id(root)}
        while stack:
            n, todo = stack[-1]
            nxt = next((p for p in todo if id(p) not in level and id(p) not in path), None)
            if nxt is not None:
                stack.append((nxt, iter(producers(nxt))))
                path.add(id(nxt))
                continue
            stack.pop()
            path.discard(id(n))
            level[id(n)] = 1 + max((level.get(id(p), -1) for p in producers(n)), default=-1)
            found.append(n)
    return sorted(found, key=lambda n: level[id(n)])


def _vi_shape(v: onnx.ValueInfoProto):
    tt = v.type.tensor_type
    if not v.type.HasField("tensor_type") or not tt.HasField("shape"):
        return None
    return tuple(d.dim_value if k == "dim_value" else d.dim_param if k == "dim_param" else None
                 for d in tt.shape.dim for k in (d.WhichOneof("value"),))


def _vi_dtype(v: onnx.ValueInfoProto):
    t = v.type
    if t.HasField("tensor_type"):
        return t.tensor_type.elem_type
    if t.HasField("sequence_type"):
        return t.sequence_type.elem_type.tensor_type.elem_type
    if t.HasField("optional_type"):
        return t.optional_type.elem_type
    if t.HasField("sparse_tensor_type"):
        return t.sparse_tensor_type.elem_type
    return None


def _merge(shape, dtype, s, d):
    """onnx_importer's overwrite rule: keep a known dtype, take the other shape where it has more int dims."""
    dtype = dtype if dtype else d
    if s is not None and (shape is None or sum(isinstance(x, int) for x in s) > sum(isinstance(x, int) for x in shape)):
        shape = s
    return shape, dtype


def _outer_refs(attrs) -> set[str]:
    """Names subgraph bodies read that they do not define (their outer-scope tensors)."""
    refs: set[str] = set()

    def walk(g: onnx.GraphProto, outer_defined: set[str]):
        defined = {i.name for i in g.input} | {t.name for t in g.initializer} | set(outer_defined)
        for n in g.node:
            for t in n.input:
                if t and t not in defined:
                    refs.add(t)
            for a in n.attribute:
                for sub in ([a.g] if a.type == onnx.AttributeProto.GRAPH else
                            list(a.graphs) if a.type == onnx.AttributeProto.GRAPHS else []):
                    walk(sub, defined)
            defined.update(n.output)
        for o in g.output:
            if o.name not in defined:
                refs.add(o.name)

    for a in attrs:
        for sub in [a.g] if a.type == onnx.AttributeProto.GRAPH else list(a.graphs):
            walk(sub, set())
    return refs


def _rename_in_subgraphs(n: _Node, old: str, new: str) -> None:
    def walk(g: onnx.GraphProto):
        if any(i.name == old for i in g.input) or any(t.name == old for t in g.initializer):
            return  # shadowed
        for m in g.node:
            for i, t in enumerate(m.input):
                if t == old:
                    m.input[i] = new
            for a in m.attribute:
                for sub in ([a.g] if a.type == onnx.AttributeProto.GRAPH else
                            list(a.graphs) if a.type == onnx.AttributeProto.GRAPHS else []):
                    walk(sub)
        for o in g.output:
            if o.name == old:
                o.name = new

    attrs = dict(n.attrs)
    for k, a in attrs.items():
        if isinstance(a, onnx.AttributeProto) and a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS):
            a2 = onnx.AttributeProto()
            a2.CopyFrom(a)
            for sub in [a2.g] if a2.type == onnx.AttributeProto.GRAPH else list(a2.graphs):
                walk(sub)
            attrs[k] = a2
    n.attrs = attrs
    n.subrefs = tuple(sorted({new if t == old else t for t in n.subrefs}))


# ---------------------------------------------------------------------------------------------------------------
# the elimination patterns (onnxslim/core/pattern/elimination), in registry order


def _feed_node(g: _Graph, n: _Node, op: str, exact: int | None = None):
    """The node feeding ``n``'s first input when it is an ``op`` node with ``exact`` (or ≥ 1) feeds (the chain
    step of onnxslim's PatternMatcher.match_), else None."""
    f = g.feeds(n)
    if not f or isinstance(f[0], str):
        return None
    p = f[0]
    return p if _is(g, p, op, exact) else None


def _is(g: _Graph, n, op: str, exact: int | None = None) -> bool:
    if not isinstance(n, _Node) or n.op != op:
        return False
    k = len(g.feeds(n))
    return k == exact if exact is not None else k >= 1


def _is_graph_out(g: _Graph, *nodes: _Node) -> bool:
    """has_intermediate_graph_output: a matched node other than the match point produces a graph output."""
    return any(o in g.output_set for n in nodes for o in n.outs)


def _pair(g: _Graph, n: _Node, op: str, exact: int | None = None):
    """The first node of an ``op → op`` pattern matched at ``n`` (its second), None when there is none or when it
    produces a graph output."""
    if not _is(g, n, op, exact):
        return None
    first = _feed_node(g, n, op, exact)
    return None if first is None or _is_graph_out(g, first) else first


def _concat(g: _Graph, n1: _Node, mm: dict) -> None:
    if not _is(g, n1, "Concat"):
        return
    n0 = next((f for f in g.feeds(n1) if _is(g, f, "Concat")), None)
    if n0 is None or _is_graph_out(g, n0):
        return
    axis0 = g.attr(n0, "axis", 0)
    if all(isinstance(u, _Node) and u.op == "Concat" and g.attr(u, "axis", 0) == axis0 for u in g.users(n0)):
        index = n1.ins.index(n0.outs[0])
        ins = n1.ins[:index] + list(n0.ins) + n1.ins[index + 1:]
        outs = list(n1.outs)
        g.clear_ins(n1)
        g.clear_outs(n1)
        mm[outs[0]] = ("Concat", ins, outs, {"axis": axis0})


def _reshape(g: _Graph, r1: _Node, mm: dict) -> None:
    r0 = _pair(g, r1, "Reshape", 2)
    if r0 is None:
        return
    first = g.prod[r1.ins[0]][0]
    if len(g.users(first)) != 1:
        return
    s = r1.ins[1]
    if g.is_const(s) and g.attr(r1, "allowzero", 0) == 0 and np.any(g.value(s) == 0):
        return

    def mergeable(r: _Node) -> bool:
        if g.is_const(r.ins[1]):
            in_shape = g.shape(r.ins[0])
            want = g.value(r.ins[1]).tolist()
            if in_shape is not None and np.any(np.array(want) == 0):
                shape = [in_shape[i] if d == 0 else d for i, d in enumerate(want)]
                if not all(isinstance(x, int) for x in shape):
                    return False
        return True

    if mergeable(first) and mergeable(r1):
        ins = [first.ins[0], r1.ins[1]]
        outs = list(r1.outs)
        key = first.outs[0]
        attrs = dict(r1.attrs)
        g.clear_outs(first)
        g.clear_ins(r1)
        g.clear_outs(r1)
        mm[key] = ("Reshape", ins, outs, attrs)


def _reshape_as(g: _Graph, concat: _Node, mm: dict) -> None:
    if not _is(g, concat, "Concat"):
        return
    unsq = _feed_node(g, concat, "Unsqueeze")
    gather = unsq and _feed_node(g, unsq, "Gather")
    shape = gather and _feed_node(g, gather, "Shape")
    if not shape:
        return
    dims = g.shape(shape.outs[0])
    if dims is None:
        return
    users = g.users(shape)
    if len(users) != dims[0] or not all(isinstance(u, _Node) and u.op == "Gather" for u in users):
        return
    for idx, u in enumerate(users):
        if not g.is_const(u.ins[1]):
            return
        v = g.value(u.ins[1])
        if v.shape != () or v != idx:
            return
    if len(concat.ins) != len(users):
        return
    for idx, t in enumerate(concat.ins):
        if g.is_const(t) or not g.prod[t]:
            return
        u = g.prod[t][0]
        if u.op != "Unsqueeze" or u.ins[0] not in users[idx].outs:
            return
    if _is_graph_out(g, shape, gather, unsq):
        return
    old = concat.outs[0]
    new = shape.outs[0]
    for c in list(g.cons[old]):
        for i, t in enumerate(c.ins):
            if t == old:
                g.set_in(c, i, new)
    if old in g.output_set:
        g.set_out(shape, 0, old)
    g.clear_ins(concat)
    g.clear_outs(concat)


def _slice(g: _Graph, s1: _Node, mm: dict) -> None:
    s0 = _pair(g, s1, "Slice", 5)
    if s0 is None:
        return
    first_in = list(s0.ins)
    first_name = s0.outs[0]
    if not all(g.is_const(t) for t in first_in[1:]):
        return
    users = g.users(s0)
    if not all(isinstance(u, _Node) and u.op == "Slice" and all(g.is_const(t) for t in u.ins[1:]) for u in users):
        return
    if any(len(u.ins) < 5 for u in users):
        return  # onnxslim would raise (IndexError) here; such a user is left alone
    starts0, ends0, axes0, steps0 = (g.value(t).tolist() for t in first_in[1:5])
    in_shape = g.shape(first_in[0])
    if in_shape is None and any(a < 0 for a in axes0):
        return
    if in_shape is not None:
        rank = len(in_shape)
        axes0 = [a + rank if a < 0 else a for a in axes0]
    for u in users:
        axes1 = g.value(u.ins[3]).tolist()
        if in_shape is None and any(a < 0 for a in axes1):
            return
        if in_shape is not None:
            axes1 = [a + rank if a < 0 else a for a in axes1]
        merged = axes0 + axes1
        if len(merged) != len(set(merged)):
            return
    for u in users:
        starts1, ends1, axes1, steps1 = (g.value(t).tolist() for t in u.ins[1:5])
        if in_shape is not None:
            axes1 = [a + rank if a < 0 else a for a in axes1]
        second_name = u.outs[0]
        base = first_name if len(users) == 1 else second_name
        ins = [s0.ins[0]] + [g.add_const(base + sfx, np.array(v, dtype=np.int64)) for sfx, v in
                             (("_starts", starts0 + starts1), ("_ends", ends0 + ends1), ("_axes", axes0 + axes1),
                              ("_steps", steps0 + steps1))]
        outs = list(u.outs)
        g.clear_outs(s0)
        attrs = dict(s0.attrs if len(users) == 1 else u.attrs)
        g.clear_ins(u)
        g.clear_outs(u)
        mm[first_name if len(users) == 1 else second_name] = ("Slice", ins, outs, attrs)


def _perm(g: _Graph, n: _Node):
    if "perm" in n.attrs:
        return list(g.attr(n, "perm"))
    s = g.shape(n.ins[0])
    return None if s is None else list(reversed(range(len(s))))


def _transpose(g: _Graph, t1: _Node, mm: dict) -> None:
    t0 = _pair(g, t1, "Transpose", 1)
    if t0 is None:
        return
    if len(g.users(t0)) != 1:
        return
    p0, p1 = _perm(g, t0), _perm(g, t1)
    if p0 is None or p1 is None:
        return
    combined = [p0[p] for p in p1]
    ins = [t0.ins[0]]
    outs = list(t1.outs)
    key = t0.outs[0]
    g.clear_ins(t1)
    g.clear_outs(t1)
    if combined == list(range(len(combined))):
        mm[key] = ("Identity", ins, outs, {})
    else:
        mm[key] = ("Transpose", ins, outs, {"perm": combined})


def _split_groups_by_origin(transposed, requested, perm0):
    groups = [None] * len(perm0)
    cursor, n = 0, len(requested)
    for j, target in enumerate(transposed):
        start, prod = cursor, 1
        while True:
            if cursor >= n:
                return None
            prod *= requested[cursor]
            cursor += 1
            if prod >= target:
                break
        if prod != target:
            return None
        groups[perm0[j]] = (start, cursor)
    return groups if cursor == n else None


def _reshape_as_perm(transposed, requested):
    src_real = [i for i, d in enumerate(transposed) if d != 1]
    dst_real = [i for i, d in enumerate(requested) if d != 1]
    if [transposed[i] for i in src_real] != [requested[i] for i in dst_real]:
        return None
    src_ones = [i for i, d in enumerate(transposed) if d == 1]
    dst_ones = [i for i, d in enumerate(requested) if d == 1]
    perm = [0] * len(transposed)
    for s, d in zip(src_real, dst_real):
        perm[d] = s
    for s, d in zip(src_ones, dst_ones):
        perm[d] = s
    return perm


def _view_reshape(g: _Graph, v: _Node, a_shape, perm0):
    if not g.is_const(v.ins[1]):
        return None
    requested = [int(d) for d in g.value(v.ins[1]).tolist()]
    if any(d <= 0 for d in requested):
        return None
    rank0 = len(perm0)
    transposed = [a_shape[p] for p in perm0]
    if len(requested) == rank0:
        rp = _reshape_as_perm(transposed, requested)
        if rp is None:
            return None
        return [perm0[p] for p in rp], list(a_shape), [(f"{v.outs[0]}_shape", np.array(a_shape, dtype=np.int64))]
    if len(requested) < rank0:
        return None
    groups = _split_groups_by_origin(transposed, requested, perm0)
    if groups is None:
        return None
    new_shape, new_perm = [], [0] * len(requested)
    for start, end in groups:
        for k in range(start, end):
            new_perm[k] = len(new_shape)
            new_shape.append(requested[k])
    return new_perm, new_shape, [(f"{v.outs[0]}_shape", np.array(new_shape, dtype=np.int64))]


def _view_unsqueeze(g: _Graph, v: _Node, a_shape, perm0):
    if not g.is_const(v.ins[1]):
        return None
    raw = g.value(v.ins[1]).tolist()
    rank0, k = len(perm0), len(raw)
    new_rank = rank0 + k
    axes = sorted(int(a) + new_rank if a < 0 else int(a) for a in raw)
    if len(set(axes)) != k or any(a < 0 or a >= new_rank for a in axes):
        return None
    added = [False] * new_rank
    for a in axes:
        added[a] = True
    axes_map = [i for i in range(new_rank) if not added[i]]
    new_perm, new_shape, j, ai = [], [], 0, 0
    for i in range(new_rank):
        if added[i]:
            new_perm.append(i)
            new_shape.append(1)
        else:
            new_perm.append(axes_map[perm0[j]])
            j += 1
            new_shape.append(a_shape[ai])
            ai += 1
    return new_perm, new_shape, [v.ins[1]]


def _view_squeeze(g: _Graph, v: _Node, a_shape, perm0):
    rank0 = len(perm0)
    if len(v.ins) >= 2:
        if not g.is_const(v.ins[1]):
            return None
        axes = [int(a) + rank0 if a < 0 else int(a) for a in g.value(v.ins[1]).tolist()]
    else:
        axes = [i for i in range(rank0) if a_shape[perm0[i]] == 1]
    if len(set(axes)) != len(axes) or any(a < 0 or a >= rank0 for a in axes):
        return None
    if any(a_shape[perm0[a]] != 1 for a in axes):
        return None
    removed = {perm0[a] for a in axes}
    axes_map, j = {}, 0
    for i in range(rank0):
        if i not in removed:
            axes_map[i] = j
            j += 1
    new_perm = [axes_map[p] for p in perm0 if p not in removed]
    new_shape = [a_shape[i] for i in range(rank0) if i not in removed]
    return new_perm, new_shape, [(f"{v.outs[0]}_axes", np.array(sorted(removed), dtype=np.int64))]


_VIEWS = (("Reshape", 5, _view_reshape), ("Unsqueeze", 13, _view_unsqueeze), ("Squeeze", 13, _view_squeeze))


def _transpose_view_transpose(g: _Graph, t1: _Node, mm: dict) -> None:
    if not _is(g, t1, "Transpose", 1):
        return
    f = g.feeds(t1)
    v = f[0] if f and isinstance(f[0], _Node) else None
    for op, min_opset, plan_of in _VIEWS:
        if g.opset < min_opset or v is None or not _is(g, v, op):
            continue
        t0 = _feed_node(g, v, "Transpose", 1)
        if t0 is None or len(g.users(t0)) != 1 or len(g.users(v)) != 1:
            continue
        if _is_graph_out(g, t0, v):
            continue
        a = t0.ins[0]
        a_shape = g.shape(a)
        if a_shape is None or any(not isinstance(d, int) or d <= 0 for d in a_shape):
            return
        perm0 = list(g.attr(t0, "perm")) if "perm" in t0.attrs else list(reversed(range(len(a_shape))))
        plan = plan_of(g, v, a_shape, perm0)
        if plan is None:
            return
        new_perm, new_shape, extra = plan
        extra = [e if isinstance(e, str) else g.add_const(*e) for e in extra]
        b, c = t0.outs[0], v.outs[0]
        g.clear_ins(t0)
        g.clear_outs(t0)
        g.clear_ins(v)
        g.clear_outs(v)
        g.set_ins(v, [a, *extra])
        g.set_outs(v, [b])
        g.set_ins(t0, [b])
        g.set_outs(t0, [c])
        t0.attrs = {**t0.attrs, "perm": list(new_perm)}
        g.shapes[b] = list(new_shape)  # a list, as onnxslim sets it (GraphSurgeon's imported shapes are tuples)
        g.dtypes[b] = g.dtype(a)
        g.reshaped.add(b)
        return


def _unsqueeze(g: _Graph, n1: _Node, mm: dict) -> None:
    n0 = _pair(g, n1, "Unsqueeze")
    if n0 is None:
        return
    if not (len(g.users(n0)) == 1 and g.shape(n0.ins[0]) and g.shape(n1.ins[0])):
        return
    v13 = g.opset >= 13

    def axes_of(n: _Node):
        dim = len(g.shape(n.ins[0]))
        if v13:
            if len(n.ins) < 2 or not g.is_const(n.ins[1]):
                return None
            axes = g.value(n.ins[1]).tolist()
        else:
            axes = list(g.attr(n, "axes"))
        return [a + dim + len(axes) if a < 0 else a for a in axes]

    ax0, ax1 = axes_of(n0), axes_of(n1)
    if ax0 is None or ax1 is None:
        return

    def shifted(axis):
        for ins_axis in sorted(ax1):
            if ins_axis <= axis:
                axis += 1
        return axis

    merged = [shifted(a) for a in ax0] + ax1
    key = n0.outs[0]
    index = n1.ins.index(key)
    first = (n1.ins[:index] + list(n0.ins) + n1.ins[index + 1:])[0]
    outs = list(n1.outs)
    g.clear_ins(n1)
    g.clear_outs(n1)
    if v13:
        mm[key] = ("Unsqueeze", [first, g.add_const(f"{key}_axes", np.array(merged, dtype=np.int64))], outs, {})
    else:
        mm[key] = ("Unsqueeze", [first], outs, {"axes": merged})


def _transpose_as_reshape(g: _Graph, n: _Node, mm: dict) -> None:
    if g.opset < 5 or not _is(g, n, "Transpose", 1) or not n.ins or not n.outs:
        return
    prev = any(p.op == "Reshape" for p in g.prod[n.ins[0]]) if not g.is_const(n.ins[0]) else False
    nxt = any(isinstance(u, _Node) and u.op == "Reshape" for u in g.users(n))
    if not (prev or nxt):
        return
    data = n.ins[0]
    shape = g.shape(data)
    if shape is None or any(isinstance(d, int) and d == 0 for d in shape):
        return
    perm = list(g.attr(n, "perm")) if "perm" in n.attrs else list(reversed(range(len(shape))))
    axes = [(p, shape[p], isinstance(shape[p], int) and shape[p] > 0) for p in perm]
    real = [p for p, d, static in axes if not (static and d == 1)]
    if real != sorted(real) or sum(1 for _, _, static in axes if not static) > 1:
        return
    new_shape = [d if static else -1 for _, d, static in axes]
    name = n.outs[0]
    ins = [data, g.add_const(f"{name}_shape", np.array(new_shape, dtype=np.int64))]
    outs = list(n.outs)
    g.clear_ins(n)
    g.clear_outs(n)
    mm[name] = ("Reshape", ins, outs, {})


_PATTERNS = (("Concat", _concat), ("Reshape", _reshape), ("Concat", _reshape_as), ("Slice", _slice),
             ("Transpose", _transpose), ("Transpose", _transpose_view_transpose), ("Unsqueeze", _unsqueeze),
             ("Transpose", _transpose_as_reshape))
"""onnxslim's elimination patterns in its registry order (EliminationConcat … EliminationTransposeAsReshape), each
with the op of the node it is matched at (the last node of its pattern)."""
_BY_OP = {op: tuple(f for o, f in _PATTERNS if o == op) for op, _ in _PATTERNS}


def _fuse(g: _Graph) -> None:
    """onnxslim's graph_fusion with the elimination patterns: find_matches, then the merged nodes, cleanup."""
    mm: dict = {}
    version = g.version
    for n in reversed(list(g.nodes)):
        if not n.outs or n.outs[0] in mm:
            continue
        for pattern in _BY_OP.get(n.op, ()):
            pattern(g, n, mm)
    for key, (op, ins, outs, attrs) in mm.items():
        g.add_node(op, key, ins, outs, attrs)
    g.cleanup()
    if g.version != version:  # else the order is the one sorted before
        g.toposort()


# ---------------------------------------------------------------------------------------------------------------
# dead_node_elimination (onnxslim/core/optimization/dead_node_elimination.py)


def _check_shape(shape) -> bool:
    strs = sum(1 for d in shape if isinstance(d, str))
    pos = sum(1 for d in shape if isinstance(d, int) and d > 0)
    return (strs == 1 and pos == len(shape) - 1) or pos == len(shape)


def _is_noop_slice(g: _Graph, n: _Node) -> bool:
    if len(n.ins) < 3:
        return False
    data = g.shape(n.ins[0])
    if not data or not all(isinstance(d, int) for d in data):
        return False
    if not g.is_const(n.ins[1]) or not g.is_const(n.ins[2]):
        return False
    starts = g.value(n.ins[1]).flatten().tolist()
    ends = g.value(n.ins[2]).flatten().tolist()
    axes = g.value(n.ins[3]).flatten().tolist() if len(n.ins) > 3 and g.is_const(n.ins[3]) \
        else list(range(len(starts)))
    steps = g.value(n.ins[4]).flatten().tolist() if len(n.ins) > 4 and g.is_const(n.ins[4]) else [1] * len(starts)
    ndim = len(data)
    for start, end, axis, step in zip(starts, ends, axes, steps):
        if axis < 0:
            axis = ndim + axis
        if axis < 0 or axis >= ndim:
            return False
        dim = data[axis]
        if step != 1:
            return False
        if start < 0:
            start = max(0, dim + start)
        if start != 0:
            return False
        if end < 0:
            end = dim + end
        if end < dim:
            return False
    return True


def _const_and_var(g: _Graph, n: _Node):
    """(index of the first constant input, index of the other input) when one of the two is a constant and the
    other is not, else None."""
    if len(n.ins) < 2:
        return None
    c0, c1 = g.is_const(n.ins[0]), g.is_const(n.ins[1])
    if c0 == c1:
        return None
    idx = next(i for i, t in enumerate(n.ins) if g.is_const(t))
    return idx, (0 if idx == 1 else 1)


def _dead_nodes(g: _Graph) -> None:
    for n in list(g.nodes):
        op = n.op
        if not n.ins and op not in ("Identity", "Dropout"):
            continue
        if op in ("Identity", "Dropout"):
            if n.ins:
                g.erase(n)
        elif op == "Pad":
            if len(n.ins) > 1 and g.is_const(n.ins[1]):
                v = g.value(n.ins[1]).tolist()
                v = v if isinstance(v, list) else [v]
                if all(x == 0 for x in v):
                    g.erase(n)
        elif op == "Cast":
            d = g.dtype(n.ins[0])
            if d is not None and d == g.attr(n, "to"):
                g.erase(n)
        elif op == "Reshape":
            si, so = g.shape(n.ins[0]), g.shape(n.outs[0])
            if (si and len(si) == 1 and so and len(so) == 1) or (si and so and si == so):
                g.erase(n)
            elif so and _check_shape(so) and not g.is_const(n.ins[1]):
                new = g.add_const(f"{n.outs[0]}_shape",
                                  np.array([d if isinstance(d, int) else -1 for d in so], dtype=np.int64))
                g.set_in(n, 1, new)
        elif op == "Slice":
            si, so = g.shape(n.ins[0]), g.shape(n.outs[0])
            if si and so and si == so and all(isinstance(d, int) for d in si) and _is_noop_slice(g, n):
                g.erase(n)
        elif op in ("Mul", "Add"):
            cv = _const_and_var(g, n)
            if cv is None:
                continue
            idx, var = cv
            value = g.value(n.ins[idx])

            def same(var=var, n=n):
                return g.shape(n.ins[var]) is not None and g.shape(n.ins[var]) == g.shape(n.outs[0])

            if (op == "Mul" and np.all(value == 1) and (value.ndim == 0 or same())) or \
                    (op == "Add" and ((value.ndim == 0 and value == 0) or (np.all(value == 0) and same()))):
                g.erase(n, var, 0)
        elif op in ("Sub", "Div"):
            if len(n.ins) > 1 and g.is_const(n.ins[1]) and not g.is_const(n.ins[0]):
                value = g.value(n.ins[1])
                neutral = 0 if op == "Sub" else 1
                if (value.ndim == 0 and value == neutral) or (
                        np.all(value == neutral) and g.shape(n.ins[0]) is not None
                        and g.shape(n.ins[0]) == g.shape(n.outs[0])):
                    g.erase(n)
        elif op == "Expand":
            if len(n.ins) > 1 and g.is_const(n.ins[1]):
                value = g.value(n.ins[1])
                if (g.shape(n.ins[0]) is not None and g.shape(n.ins[0]) == g.shape(n.outs[0])) or \
                        (value.ndim == 0 and value == 1):
                    g.erase(n)
        elif op == "Transpose":
            perm = g.attr(n, "perm")
            if perm is not None and list(perm) == list(range(len(perm))):
                g.erase(n)
        elif op == "Concat":
            _dead_concat(g, n)
        elif op == "Split":
            if len(n.outs) == 1 and g.shape(n.outs[0]) and g.shape(n.ins[0]) and \
                    g.shape(n.outs[0]) == g.shape(n.ins[0]):
                g.erase(n)
        elif op == "Resize" and g.attr(n, "mode") is None:
            n.attrs = {**n.attrs, "mode": "nearest"}


def _dead_concat(g: _Graph, n: _Node) -> None:
    axis = g.attr(n, "axis", 0)
    for t in list(n.ins):
        if len(n.ins) == 1:
            break
        if g.is_const(t):
            empty = g.const_size(t) == 0
        else:
            s = g.shape(t)
            a = axis + len(s) if s is not None and axis < 0 else axis
            empty = s is not None and 0 <= a < len(s) and isinstance(s[a], int) and s[a] == 0
        if empty:
            i = n.ins.index(t)
            g.cons[t].remove(n)
            del n.ins[i]
            g.version += 1
    if len(n.ins) == 1:
        x, y = n.ins[0], n.outs[0]
        if x in g.output_set and y not in g.output_set:
            for c in list(g.cons[y]):
                for i, t in enumerate(c.ins):
                    if t == y:
                        g.set_in(c, i, x)
            g.clear_ins(n)
            g.clear_outs(n)
        elif x not in g.output_set:
            g.erase(n)


# ---------------------------------------------------------------------------------------------------------------


def eliminate(model: onnx.ModelProto) -> tuple[onnx.ModelProto, int]:
    """One elimination round equivalent to onnxslim.core.optimize(model, skip_fusions) with
    OptimizationSettings.constant_folding = False and subexpression_elimination / weight_tying off (what
    prepare._slim runs): onnxslim's elimination patterns (EliminationConcat, EliminationReshape,
    EliminationReshapeAs, EliminationSlice, EliminationTranspose, EliminationTransposeViewTranspose,
    EliminationUnsqueeze, EliminationTransposeAsReshape) then its dead_node_elimination rules, then removal of
    nodes/initializers nothing uses (and of graph inputs nothing reads, as onnxslim's cleanup does). ``model``
    carries value_info from onnx shape inference (data_prop=True) and has no Constant nodes (they are
    initializers). Returns the new model and how many nodes of ``model`` were removed or rewritten (0 = converged:
    the same nodes come back). The input model is not modified."""
    g = _Graph(model)
    g.toposort()
    _fuse(g)
    version = g.version
    _dead_nodes(g)
    if g.version != version:  # else cleanup and toposort would change nothing
        g.cleanup()
        g.toposort()
    return _export(g)


def _export(g: _Graph) -> tuple[onnx.ModelProto, int]:
    model = g.model
    src = model.graph
    nodes = []
    kept_protos = set()
    for n in g.nodes:
        p = n.proto
        if p is not None and not n.edited and tuple(n.ins) == n.ins0 and tuple(n.outs) == n.outs0:
            nodes.append(p)
            kept_protos.add(id(p))
            continue
        q = onnx.NodeProto()
        if p is not None:
            q.CopyFrom(p)
            del q.input[:], q.output[:], q.attribute[:]
        else:
            q.op_type, q.name = n.op, n.name
        q.input.extend(n.ins)
        q.output.extend(n.outs)
        for k, a in n.attrs.items():
            if isinstance(a, onnx.AttributeProto):
                q.attribute.append(a)
            else:
                q.attribute.append(helper.make_attribute(k, a))
        nodes.append(q)
    changed = sum(1 for p in src.node if id(p) not in kept_protos)

    used = {t for n in g.nodes for t in (*n.ins, *n.subrefs)} | set(g.outputs)
    produced = {t for n in g.nodes for t in n.outs}
    out = onnx.ModelProto()
    out.CopyFrom(model)  # one C++ copy, then pruned in place: extending a fresh graph copies every weight one by one
    og = out.graph
    del og.node[:]
    og.node.extend(nodes)
    _keep_only(og.input, lambda i: i.name in g.input_set)
    _keep_only(og.initializer, lambda t: t.name in used and t.name in g.inits)
    for name, values in g.new_consts.items():
        if name in used:
            og.initializer.append(numpy_helper.from_array(values, name))
    keep = produced - g.output_set - g.input_set
    infos = [v for v in og.value_info if v.name in keep and v.name not in g.reshaped]
    infos += [helper.make_tensor_value_info(name, g.dtypes[name], g.shapes[name]) for name in g.reshaped
              if name in keep and g.dtypes[name] is not None]
    del og.value_info[:]
    og.value_info.extend(infos)
    return out, changed


def _keep_only(field, wanted) -> None:
    """Delete the elements of a repeated proto field ``wanted`` rejects, in place and in order (no copies)."""
    for k in range(len(field) - 1, -1, -1):
        if not wanted(field[k]):
            del field[k]
