"""Preparation before lint/split: pin dynamic dims to static sizes, fold constants and shape subgraphs with onnxslim
(fusions disabled), infer shapes — and prove the prepared graph against the original before anything uses it.

A simplifier pass can change what a model computes (seen: a ``Pad`` folded the wrong way), so :func:`prepare` runs
the original and the prepared graph on a seeded random input (ONNX Runtime, optimizations and pre-packing off) and,
on a real difference, falls back to a safer preparation (:data:`PREPARATIONS`) and says so in ``notes``.
``--shape`` and a manifest ``shape`` only fill dynamic dims; changing a static dim needs an explicit reshape."""
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
    proof: Mapping | None = None  # the preparation proof (ProofResult.to_dict()), None when not run


def input_shapes(model: onnx.ModelProto) -> dict[str, tuple[int | str | None, ...]]:
    init = {t.name for t in model.graph.initializer}
    out = {}
    for i in model.graph.input:
        if i.name in init:
            continue
        dims = i.type.tensor_type.shape.dim
        out[i.name] = tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in dims)
    return out


def static_shapes(model: onnx.ModelProto, *, batch: int = 1, overrides: Mapping[str, Sequence[int]] | None = None,
                  reshape: bool = False) -> dict[str, tuple[int, ...]]:
    """Static shapes for every graph input: ``overrides`` set dynamic dims, other dynamic dims → ``batch`` (dim 0).

    Args:
        overrides: shapes per input (``--shape``, the manifest's input ``shape``); they may only fill dynamic dims.
        reshape: allow an override to change a static dim (an explicit reshape; the proof then runs the original
            model at the new size). Defaults to False.

    Raises:
        GraphError: an override names no input, has the wrong rank, or changes a static dim without ``reshape``.
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
        fixed = [(k, d, int(v)) for k, (d, v) in enumerate(zip(shapes[name], shp))
                 if isinstance(d, int) and d > 0 and d != int(v)]
        if fixed and not reshape:
            k, d, v = fixed[0]
            example = ",".join(str(d if isinstance(d, int) and d > 0 else v) for d, v in zip(shapes[name], shp))
            raise GraphError(f"--shape {name}={','.join(map(str, shp))} conflicts with the model: axis {k} is fixed "
                             f"at {d}, not {v}",
                             note=f"the model declares {list(shapes[name])}; a shape (--shape or the manifest's "
                                  f"input shape) only sets dynamic dims",
                             hint=f"use {name}={example}, or ask for a reshape explicitly (--reshape, or "
                                  f"[models.<name>.split] reshape = true); the proof then covers it")
    out = {}
    for name, dims in shapes.items():
        if name in overrides:
            out[name] = tuple(int(d) for d in overrides[name])
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
    return out


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


PREPARATIONS = (
    ("onnxslim", "constant folding, shape folding, eliminations; no fusions", {}),
    ("onnxslim-fold-only", "constant and shape folding only (eliminations, subexpression merging and weight tying "
                           "off)", {"skip_optimizations": ["graph_fusion", "subexpression_elimination",
                                                            "weight_tying"]}),
    ("none", "no simplifier: dynamic dims pinned only", None),
)
"""The preparations tried in order: when one changes what the model computes, the next (safer) one is used."""


def _pin(model: onnx.ModelProto, static: Mapping[str, Sequence[int]]) -> onnx.ModelProto:
    out = onnx.ModelProto()
    out.CopyFrom(model)
    for i in out.graph.input:
        if i.name in static:
            for d, v in zip(i.type.tensor_type.shape.dim, static[i.name]):
                d.Clear()
                d.dim_value = int(v)
    return out


def _slim(model: onnx.ModelProto, static: Mapping[str, Sequence[int]], extra: Mapping) -> onnx.ModelProto:
    import onnxslim
    from onnxslim.core.pattern.registry import DEFAULT_FUSION_PATTERNS

    skip = [k for k in DEFAULT_FUSION_PATTERNS if k.startswith("Fusion")]
    try:
        out = onnxslim.slim(model, input_shapes=[f"{k}:{','.join(map(str, v))}" for k, v in static.items()],
                            skip_fusion_patterns=skip, **extra)
    except Exception as err:
        raise GraphError(f"onnxslim could not simplify the model: {err.__class__.__name__}: {err}",
                         note="expected a graph that folds once its inputs are static",
                         hint="try --no-simplify, or pass explicit input shapes") from err
    out.ir_version = model.ir_version  # keep runtimes that cap the IR version happy
    return out


def prove_preparation(original: onnx.ModelProto, prepared: onnx.ModelProto, static: Mapping[str, Sequence[int]],
                      *, seed: int = 0):
    """The prepared model against the original on one seeded random input (ORT, optimizations and pre-packing
    off); a difference is classified like the split proof's. Returns a :class:`~hailo_qa.graph.verify.ProofResult`
    with ``what = "the preparation"``."""
    import numpy as np

    from hailo_qa.graph.verify import ProofResult, classify_difference, random_model_feeds, reference_model
    from hailo_qa.evaluate.compare import compare_outputs
    from hailo_qa.runners.onnxrt import OnnxrtRunner

    ref = reference_model(original, static)
    feeds = random_model_feeds(ref, np.random.default_rng(seed), shapes=static)
    try:
        with OnnxrtRunner(ref, name="original", optimize=False) as a:
            want = a.infer(feeds)
    except Exception as err:  # noqa: BLE001 - the original itself does not run on random data: nothing to prove
        return ProofResult("skipped", (), explanation=f"the original model does not run on random inputs "
                                                      f"({err.__class__.__name__})", what="the preparation")
    try:
        with OnnxrtRunner(prepared, name="prepared", optimize=False) as b:
            result = compare_outputs(want, b.infer(feeds))
    except Exception as err:  # noqa: BLE001 - a prepared graph ORT cannot run is a failed preparation
        return ProofResult("mismatch", ("random[0]",), "random[0]", None,
                           f"ONNX Runtime could not run the prepared graph ({err.__class__.__name__}: "
                           f"{str(err).strip().splitlines()[0][:200] if str(err).strip() else ''})",
                           what="the preparation")
    if result:
        return ProofResult("bit-exact", ("random[0]",), what="the preparation")
    cls = classify_difference(ref, prepared, feeds)
    verdict = "kernel-last-bit" if cls.kind == "kernel" else "mismatch"
    return ProofResult(verdict, ("random[0]",), "random[0]", result, cls.explanation, what="the preparation")


def prepare(model: onnx.ModelProto, *, batch: int = 1, shapes: Mapping[str, Sequence[int]] | None = None,
            simplify: bool = True, reshape: bool = False, prove: bool = True) -> Prepared:
    """Pin dynamic dims, fold constants and shape subgraphs (onnxslim, no fusions), infer shapes — and prove that
    the prepared graph computes what the original does, falling back to a safer preparation when it does not
    (:data:`PREPARATIONS`: eliminations off, then no simplifier); ``notes`` say what happened.

    Args:
        model: the original model.
        batch: size for a dynamic batch dim. Defaults to 1.
        shapes: static shapes per input, for its dynamic dims. Defaults to pinning dynamic dims.
        simplify: run onnxslim. Defaults to True.
        reshape: let ``shapes`` change static dims. Defaults to False.
        prove: compare the prepared graph with the original. Defaults to True.
    """
    before = input_shapes(model)
    static = static_shapes(model, batch=batch, overrides=shapes, reshape=reshape)
    dynamic_raw = tuple(n for n, d in before.items() if any(not (isinstance(x, int) and x > 0) for x in d))
    shape_nodes = tuple(shape_computation_nodes(model))
    notes: list[str] = []
    steps = PREPARATIONS if simplify else PREPARATIONS[-1:]
    out = None
    simplifier = "none"
    proof = None
    for k, (name, desc, extra) in enumerate(steps):
        candidate = _pin(model, static) if extra is None else _slim(model, static, extra)
        try:
            candidate = infer_shapes(candidate)
        except GraphError:
            if k + 1 < len(steps):
                notes.append(f"preparation '{name}' gave a graph whose shapes cannot be inferred; trying the next")
                continue
            raise
        proof = prove_preparation(model, candidate, static) if prove else None
        if proof is None or proof.ok or k + 1 == len(steps):
            out = candidate
            simplifier = (f"onnxslim {_slim_version()} ({desc})" if extra is not None else desc) \
                if simplify else "none"
            break
        notes.append(f"preparation '{name}' changed what the model computes ({proof.error().what}); "
                     f"fell back to a safer preparation")
    assert out is not None
    if simplify and simplifier.startswith("onnxslim"):
        notes.append(f"{len(shape_nodes)} shape-computation nodes in the original graph; "
                     f"{len(model.graph.node)} → {len(out.graph.node)} nodes after folding")
    if proof is not None and proof.verdict == "kernel-last-bit":
        notes.append(f"preparation proof: {proof.summary()}")
    if proof is not None and not proof.ok:
        raise proof.error()
    pinned = {n: (before[n], static[n]) for n in static if tuple(before[n]) != tuple(static[n])}
    return Prepared(out, pinned, shape_nodes, dynamic_raw, len(model.graph.node), len(out.graph.node), simplifier,
                    tuple(notes), proof.to_dict() if proof is not None else None)


def _slim_version() -> str:
    import onnxslim

    return onnxslim.__version__
