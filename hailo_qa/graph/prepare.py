"""Preparation before lint/split: pin dynamic dims to static sizes, fold constants and shape subgraphs with onnxslim
(fusions disabled, so the prepared graph computes bit-for-bit what the original does), and infer shapes."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import onnx
import onnx.numpy_helper

from hailo_qa.errors import GraphError
from hailo_qa.graph.index import GraphIndex


@dataclass(frozen=True)
class Prepared:
    """A prepared model and what preparation did to it."""

    model: onnx.ModelProto
    pinned: Mapping[str, tuple[tuple[int | str | None, ...], tuple[int, ...]]]  # input → (before, after)
    shape_nodes_raw: tuple[str, ...] = ()  # shape-computation nodes found in the original graph
    dynamic_raw: tuple[str, ...] = ()  # tensors with dynamic dims in the original graph inputs
    nodes_before: int = 0
    nodes_after: int = 0
    simplifier: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)


def input_shapes(model: onnx.ModelProto) -> dict[str, tuple[int | str | None, ...]]:
    init = {t.name for t in model.graph.initializer}
    out = {}
    for i in model.graph.input:
        if i.name in init:
            continue
        dims = i.type.tensor_type.shape.dim
        out[i.name] = tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in dims)
    return out


def static_shapes(model: onnx.ModelProto, *, batch: int = 1,
                  overrides: Mapping[str, Sequence[int]] | None = None) -> dict[str, tuple[int, ...]]:
    """Static shapes for every graph input: ``overrides`` first, else dynamic dims → ``batch`` (dim 0) or 1.

    Raises:
        GraphError: an override names no input or has the wrong rank.
    """
    shapes = input_shapes(model)
    overrides = dict(overrides or {})
    for name, shp in overrides.items():
        if name not in shapes:
            from hailo_qa.errors import did_you_mean

            raise GraphError(f"input shape given for '{name}', which is not a model input",
                             note=f"model inputs: {list(shapes)}", hint=did_you_mean(name, shapes) or "")
        if len(shp) != len(shapes[name]):
            raise GraphError(f"input '{name}' has rank {len(shapes[name])} but the shape given is {list(shp)}",
                             note=f"the model declares {list(shapes[name])}", hint="give one size per dim")
        fixed = [(k, d, int(v)) for k, (d, v) in enumerate(zip(shapes[name], shp)) if isinstance(d, int) and d > 0
                 and int(v) != d]
        if fixed:
            k, d, v = fixed[0]
            raise GraphError(f"--shape {name}={','.join(map(str, shp))} conflicts with the model: axis {k} is fixed "
                             f"at {d}, not {v}", note=f"the model declares {list(shapes[name])}; only its dynamic "
                             f"dims can be set", hint=f"keep the static sizes, e.g. {name}="
                             + ",".join(str(x if isinstance(x, int) and x > 0 else y)
                                        for x, y in zip(shapes[name], shp)))
    out = {}
    for name, dims in shapes.items():
        if name in overrides:
            out[name] = tuple(int(d) for d in overrides[name])
            _check_size(name, out[name])
            continue
        dynamic = [k for k, d in enumerate(dims) if k > 0 and not (isinstance(d, int) and d > 0)]
        if dynamic:
            example = ",".join(str(d) if isinstance(d, int) and d > 0 else ("1" if k == 0 else "N")
                               for k, d in enumerate(dims))
            raise GraphError(f"input '{name}' has dynamic non-batch dims {list(dims)} (axes {dynamic})",
                             note="the Hailo-8 needs a static input size, and only the batch can be pinned for you",
                             hint=f"pass the size you deploy at: --shape {name}={example} (N = your size), or set "
                                  f"the input's shape in the manifest")
        out[name] = tuple(d if isinstance(d, int) and d > 0 else batch for d in dims)
        _check_size(name, out[name])
    return out


def _check_size(name: str, shape: Sequence[int]) -> None:
    """Refuse absurd input sizes before anything is allocated (see :data:`hailo_qa.options.MAX_INPUT_ELEMENTS`)."""
    from hailo_qa.options import MAX_INPUT_ELEMENTS, size_problem

    why = size_problem(shape)
    if why:
        raise GraphError(f"input '{name}' would have shape {list(shape)}: {why}",
                         note=f"expected positive dims below 2**31 and at most {MAX_INPUT_ELEMENTS:,} elements per "
                              "input (the Hailo-8 takes one frame of a few megabytes)",
                         hint="check --shape / --batch (or the manifest's split.batch)")


def shape_computation_nodes(model: onnx.ModelProto) -> list[str]:
    """Nodes that compute shapes: Shape ops and everything whose non-constant inputs derive only from them."""
    g = GraphIndex(model)
    shapey: set[str] = set()
    names = []
    for n in g.topo_nodes():
        live = [i for i in n.input if i and i not in g.constants]
        if n.op_type == "Shape" or (live and all(i in shapey for i in live)):
            shapey.update(o for o in n.output if o)
            names.append(g.name(n))
    return names


def infer_shapes(model: onnx.ModelProto) -> onnx.ModelProto:
    try:
        return onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True, data_prop=True)
    except Exception as err:
        raise GraphError(f"shape inference failed: {str(err).strip().splitlines()[0]}",
                         note="expected a graph whose shapes can be inferred once inputs are static",
                         hint="check the model with onnx.checker; pass explicit input shapes") from err


def prepare(model: onnx.ModelProto, *, batch: int = 1, shapes: Mapping[str, Sequence[int]] | None = None,
            simplify: bool = True) -> Prepared:
    """Pin dynamic dims, fold constants and shape subgraphs (onnxslim, no fusions), infer shapes.

    Args:
        model: the original model.
        batch: size for a dynamic batch dim. Defaults to 1.
        shapes: explicit static shapes per input. Defaults to pinning dynamic dims.
        simplify: run onnxslim. Defaults to True.
    """
    before = input_shapes(model)
    static = static_shapes(model, batch=batch, overrides=shapes)
    dynamic_raw = tuple(n for n, d in before.items() if any(not (isinstance(x, int) and x > 0) for x in d))
    shape_nodes = tuple(shape_computation_nodes(model))
    notes = []
    plain = _nothing_to_fold(model, shape_nodes) if simplify else None
    if plain is not None:  # onnxslim would only turn Constant nodes into initializers: do that, skip its import
        out = plain
        for i in out.graph.input:
            if i.name in static:
                for d, v in zip(i.type.tensor_type.shape.dim, static[i.name]):
                    d.Clear()
                    d.dim_value = v
        simplifier = "none needed (no shape subgraph, no foldable constants, no op onnxslim rewrites)"
        notes.append(f"{len(shape_nodes)} shape-computation nodes in the original graph; "
                     f"{len(model.graph.node)} → {len(out.graph.node)} nodes after folding")
    elif simplify:
        import onnxslim
        from onnxslim.core.pattern.registry import DEFAULT_FUSION_PATTERNS

        skip = [k for k in DEFAULT_FUSION_PATTERNS if k.startswith("Fusion")]
        try:
            out = onnxslim.slim(model, input_shapes=[f"{k}:{','.join(map(str, v))}" for k, v in static.items()],
                                skip_fusion_patterns=skip)
        except Exception as err:
            raise GraphError(f"onnxslim could not simplify the model: {err.__class__.__name__}: {err}",
                             note="expected a graph that folds once its inputs are static",
                             hint="try --no-simplify, or pass explicit input shapes") from err
        out.ir_version = model.ir_version  # keep runtimes that cap the IR version happy
        simplifier = f"onnxslim {onnxslim.__version__} (constant folding, shape folding, eliminations; no fusions)"
        notes.append(f"{len(shape_nodes)} shape-computation nodes in the original graph; "
                     f"{len(model.graph.node)} → {len(out.graph.node)} nodes after folding")
    else:
        out = onnx.ModelProto()
        out.CopyFrom(model)
        for i in out.graph.input:
            if i.name in static:
                for d, v in zip(i.type.tensor_type.shape.dim, static[i.name]):
                    d.Clear()
                    d.dim_value = v
        simplifier = "none"
    out = infer_shapes(out)
    pinned = {n: (before[n], static[n]) for n in static if tuple(before[n]) != tuple(static[n])}
    return Prepared(out, pinned, shape_nodes, dynamic_raw, len(model.graph.node), len(out.graph.node), simplifier,
                    tuple(notes))


PLAIN_OPS = frozenset({
    "Conv", "ConvTranspose", "Relu", "PRelu", "LeakyRelu", "Sigmoid", "Tanh", "HardSigmoid", "HardSwish", "Elu",
    "Selu", "Softplus", "Clip", "Add", "Sub", "Mul", "Div", "MatMul", "Gemm", "MaxPool", "AveragePool",
    "GlobalAveragePool", "GlobalMaxPool", "BatchNormalization", "Softmax", "LogSoftmax", "Flatten", "Round", "Floor",
    "Ceil", "Abs", "Neg", "Exp", "Log", "Sqrt", "Erf", "Constant",
})
"""Ops onnxslim has nothing to fold or eliminate in when their inputs are activations (a graph of only these, with
no all-constant node and no shape subgraph, comes out of onnxslim with its Constant nodes turned into initializers
and nothing else changed — tests/graph/test_prepare.py holds this against onnxslim on the registered and unseen
models). Transpose, Reshape, Concat, Identity, Pad, Slice, ... are left out on purpose: onnxslim merges or drops
them."""


def _nothing_to_fold(model: onnx.ModelProto, shape_nodes: Sequence[str]) -> onnx.ModelProto | None:
    """The model with its Constant nodes as initializers (equal ones merged) when that is all onnxslim would do,
    else None.

    Spares ``hailo-qa lint``/``split`` of a small plain model the import of onnxslim (and of ONNX Runtime, which
    onnxslim's constant folding loads): most of their start-up time.
    """
    if shape_nodes or any(n.op_type not in PLAIN_OPS or n.domain not in ("", "ai.onnx") for n in model.graph.node):
        return None
    consts = {i.name for i in model.graph.initializer}
    used = {t for n in model.graph.node for t in n.input} | {o.name for o in model.graph.output}
    seen_nodes: set[tuple] = set()
    for n in model.graph.node:
        if any(o and o not in used for o in n.output):
            return None  # a dead output: onnxslim would prune
        if n.op_type == "Constant":
            if len(n.attribute) != 1 or n.attribute[0].name != "value" or n.attribute[0].t.data_location:
                return None
            consts.update(n.output)
            continue
        if all((not i) or i in consts for i in n.input):
            return None  # an all-constant node: onnxslim would fold it
        sig = (n.op_type, tuple(n.input), tuple(a.SerializeToString() for a in n.attribute))
        if sig in seen_nodes:
            return None  # a repeated node: onnxslim would merge
        seen_nodes.add(sig)

    def key(t: onnx.TensorProto) -> tuple:
        return (t.data_type, tuple(t.dims), onnx.numpy_helper.to_array(t).tobytes())

    if len({key(i) for i in model.graph.initializer}) != len(model.graph.initializer):
        return None  # equal initializers: onnxslim would merge them
    out = onnx.ModelProto()
    out.CopyFrom(model)
    first: dict[tuple, str] = {}
    rename: dict[str, str] = {}
    for n in out.graph.node:
        if n.op_type == "Constant":
            t = onnx.TensorProto()
            t.CopyFrom(n.attribute[0].t)
            k = key(t)
            if k in first:
                rename[n.output[0]] = first[k]
                continue
            first[k] = t.name = n.output[0]
            out.graph.initializer.append(t)
    if set(first) & {key(i) for i in model.graph.initializer} or set(rename) & {o.name for o in out.graph.output}:
        return None
    kept = [n for n in out.graph.node if n.op_type != "Constant"]
    for n in kept:
        for k, i in enumerate(n.input):
            if i in rename:
                n.input[k] = rename[i]
    del out.graph.node[:]
    out.graph.node.extend(kept)
    return out
