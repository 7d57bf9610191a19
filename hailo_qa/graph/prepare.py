"""Preparation before lint/split: pin dynamic dims to static sizes, fold constants and shape subgraphs with onnxslim
(fusions disabled, so the prepared graph computes bit-for-bit what the original does), and infer shapes."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import onnx

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
    if simplify:
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
