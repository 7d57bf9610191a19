"""Preparation before lint/split: pin dynamic dims to static sizes, fold constants and shape subgraphs the way
onnxslim's passes do (no fusions) — by our folder (:mod:`hailo_qa.graph.fold`, :mod:`hailo_qa.graph.noops`), onnxslim
itself as the fallback — infer shapes, and prove the prepared graph against the original before anything uses it.

A simplifier pass can change what a model computes (seen: a ``Pad`` folded the wrong way), so :func:`prepare` runs
the original and the prepared graph on a seeded random input (ONNX Runtime, optimizations and pre-packing off) and,
on a real difference, falls back to a safer preparation (:data:`PREPARATIONS`) and says so in ``notes``. A graph with
nothing to fold (:func:`_nothing_to_fold`, a cheap look) is only pinned: no onnxslim, no ONNX Runtime, no proof.
``--shape`` and a manifest ``shape`` only fill dynamic dims; changing a static dim needs an explicit reshape."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

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
    ("fold", "constant and shape folding, eliminations; no fusions, subexpression merging or weight tying",
     {"folder": "fast"}),
    ("onnxslim", "the same, by onnxslim's own passes", {}),
    ("fold-only", "constant and shape folding only (eliminations off)", {"skip_optimizations": ["graph_fusion"]}),
    ("none", "no simplifier: dynamic dims pinned only", None),
)
"""The preparations tried in order: when one changes what the model computes, the next (safer) one is used. The
first is :func:`_fast` (our folder: onnxslim's result without its graph model), the next the same by onnxslim
itself (:func:`_slim`), then onnxslim without eliminations, then nothing."""

FOLD_ROUNDS = 10
"""At most this many fold → shape-inference rounds (onnxslim's own iteration cap); a round that leaves nothing to
fold ends it."""

SKIPPED_PASSES = ("subexpression_elimination", "weight_tying")
"""onnxslim passes the preparation never runs: lint and split need folded constants and shapes, not merged
duplicates, and weight tying compares every pair of constants (quadratic: most of the ×3 per-node cost from 200 to
2000 nodes). Skipping both changes no node of the registered and unseen models (``tests/graph/test_prepare.py``)."""


def _pin(model: onnx.ModelProto, static: Mapping[str, Sequence[int]]) -> onnx.ModelProto:
    out = onnx.ModelProto()
    out.CopyFrom(model)
    for i in out.graph.input:
        if i.name in static:
            for d, v in zip(i.type.tensor_type.shape.dim, static[i.name]):
                d.Clear()
                d.dim_value = int(v)
    return out


def _start(model: onnx.ModelProto, static: Mapping[str, Sequence[int]]) -> onnx.ModelProto:
    """The model as both folders start from: inputs pinned, stale shapes dropped, initializers off the input list,
    shapes inferred."""
    from hailo_qa.graph.fold import freeze

    m = _pin(model, static)
    del m.graph.value_info[:]  # shapes inferred before pinning may contradict the pinned sizes
    for o in m.graph.output:  # as may an output dim declared -1 (onnxslim.slim sets them after folding too)
        for d in o.type.tensor_type.shape.dim:
            if d.HasField("dim_value") and d.dim_value <= 0:
                d.Clear()
    freeze(m)
    return _round_shapes(m)


LIGHT_WEIGHT_ELEMENTS = 4096
"""Float initializers from this many elements up are declared inputs (type and shape) for the shape inference of
the folding rounds, instead of being serialized into it (:func:`_round_shapes`)."""


def _round_shapes(m: onnx.ModelProto) -> onnx.ModelProto:
    """ONNX's shape inference with data propagation, as the folding rounds need it — run on a light copy whose large
    float weights are declared inputs, its shapes then put on ``m`` (in place). The inference serializes the whole
    model on every call: five calls on a 54 MB OCR model took 1.5 s of its 1.9 s preparation. Weights are never
    shape data (data propagation follows integer shape tensors, and those stay), so the shapes are the same
    (``tests/graph/test_fold.py`` compares whole prepared graphs)."""
    g = m.graph
    big = {t.name for t in g.initializer
           if t.data_type in _FLOATS and _elements(t) >= LIGHT_WEIGHT_ELEMENTS}
    if not big:
        return onnx.shape_inference.infer_shapes(m, data_prop=True)
    light = onnx.ModelProto()
    for f, v in m.ListFields():
        if f.name != "graph":
            getattr(light, f.name).extend(v) if f.is_repeated else (
                getattr(light, f.name).CopyFrom(v) if f.message_type is not None else setattr(light, f.name, v))
    lg = light.graph
    for f, v in g.ListFields():
        if f.name == "initializer":
            lg.initializer.extend(t for t in v if t.name not in big)
        elif f.is_repeated:
            getattr(lg, f.name).extend(v)
        elif f.message_type is not None:
            getattr(lg, f.name).CopyFrom(v)
        else:
            setattr(lg, f.name, v)
    lg.input.extend(onnx.helper.make_tensor_value_info(t.name, t.data_type, list(t.dims))
                    for t in g.initializer if t.name in big)
    inferred = onnx.shape_inference.infer_shapes(light, data_prop=True).graph
    del g.value_info[:]
    g.value_info.extend(inferred.value_info)
    del g.output[:]
    g.output.extend(inferred.output)
    return m


_FLOATS = frozenset({onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE,
                     onnx.TensorProto.BFLOAT16})


def _elements(t: onnx.TensorProto) -> int:
    n = 1
    for d in t.dims:
        n *= d
    return n


def _rounds(m: onnx.ModelProto, one_round, fold: bool) -> onnx.ModelProto:
    """Fold → eliminate rounds with ONNX's shape inference (C++, data propagation on) between them, so shape
    subgraphs fold; they stop when a round changes no node (as ``onnxslim.slim``'s do) or after
    :data:`FOLD_ROUNDS`. A round folds only while :func:`_foldable` finds work (later rounds mostly only
    eliminate)."""
    for _ in range(FOLD_ROUNDS):
        before = _structure(m)
        m = _round_shapes(one_round(m, fold and _foldable(m)))
        if _structure(m) == before:
            break
    return m


def _folded(model: onnx.ModelProto, static: Mapping[str, Sequence[int]], one_round, fold: bool,
            who: str) -> onnx.ModelProto:
    """The rounds of one folder from the pinned model; its failure is a :class:`GraphError` naming ``who`` (the
    preparation then tries the next way)."""
    _quiet_ort()
    try:
        m = _rounds(_start(model, static), one_round, fold)
    except Exception as err:
        raise GraphError(f"{who} could not fold the model: {err.__class__.__name__}: {err}",
                         note="expected a graph that folds once its inputs are static",
                         hint="try --no-simplify, or pass explicit input shapes") from err
    m.ir_version = model.ir_version  # keep runtimes that cap the IR version happy
    return m


def _fast(model: onnx.ModelProto, static: Mapping[str, Sequence[int]], extra: Mapping) -> onnx.ModelProto:
    """Fold like :func:`_slim` without onnxslim's graph model: :mod:`hailo_qa.graph.fold` (the foldable nodes
    computed in one ONNX Runtime session a round) and :mod:`hailo_qa.graph.noops` (onnxslim's eliminations and
    no-op removal, on the protos). Same rounds, same result on every registered, unseen and real model tried
    (``tests/graph/test_fold.py``), 3.9× faster on DEIMv2-Atto (``benchmarks/test_bench_split.py``)."""
    from hailo_qa.graph.fold import fold_constants, toposort
    from hailo_qa.graph.noops import eliminate

    def one_round(m: onnx.ModelProto, fold: bool) -> onnx.ModelProto:
        if fold:  # sorted first, as onnxslim's round does: the order of equal-level nodes follows the sorted list
            m, _ = fold_constants(toposort(m))
        return eliminate(m)[0]

    return _folded(model, static, one_round, True, "the folder")


def _slim(model: onnx.ModelProto, static: Mapping[str, Sequence[int]], extra: Mapping) -> onnx.ModelProto:
    """Fold with onnxslim's own passes, one round at a time: its constant folder (ONNX-GraphSurgeon's, evaluated in
    ONNX Runtime), eliminations and no-op removal, with ONNX's shape inference between rounds (:func:`_rounds`) —
    in place of ``onnxslim.slim``'s Python symbolic shape inference, and without its fusions, subexpression merging
    and weight tying (:data:`SKIPPED_PASSES`). The reference :func:`_fast` is held to, and the fallback when the
    fast folder's result fails the proof."""
    from onnxslim.core import optimize
    from onnxslim.core.optimization import OptimizationSettings
    from onnxslim.core.pattern.registry import DEFAULT_FUSION_PATTERNS

    OptimizationSettings.reset([*SKIPPED_PASSES, *extra.get("skip_optimizations", ())])
    skip_fusions = [k for k in DEFAULT_FUSION_PATTERNS if k.startswith("Fusion")]  # eliminations only
    fold = OptimizationSettings.constant_folding

    def one_round(m: onnx.ModelProto, fold_now: bool) -> onnx.ModelProto:
        OptimizationSettings.constant_folding = fold_now
        return optimize(m, skip_fusions)

    try:
        return _folded(model, static, one_round, fold, "onnxslim")
    finally:
        OptimizationSettings.reset()


def _quiet_ort() -> None:
    """The folder's ONNX Runtime sessions take the default logger: keep its optimizer's warnings ("UnsqueezeElimination
    cannot remove node ...", two dozen lines on DEIMv2) off the console; errors still print."""
    import onnxruntime

    onnxruntime.set_default_logger_severity(3)


def _foldable(model: onnx.ModelProto) -> bool:
    """Whether a constant-folding pass would find work: a Constant node, a node whose inputs are all constant, or a
    Shape/Size of a tensor whose shape is static (folding costs ONNX Runtime sessions; this look one pass over the
    nodes)."""
    consts = {t.name for t in model.graph.initializer}
    shaped = {n.input[0] for n in model.graph.node if n.op_type in ("Shape", "Size") and n.input}
    static = {v.name for v in [*model.graph.input, *model.graph.value_info, *model.graph.output]
              if v.name in shaped and v.type.tensor_type.HasField("shape")
              and all(d.HasField("dim_value") and d.dim_value > 0 for d in v.type.tensor_type.shape.dim)}
    for n in model.graph.node:
        if n.op_type == "Constant":
            return True
        if n.op_type in ("Shape", "Size") and n.input[0] in static:
            return True
        if all((not i) or i in consts for i in n.input):
            return True
    return False


def _structure(model: onnx.ModelProto) -> list[tuple]:
    return [(n.op_type, tuple(n.input), tuple(n.output)) for n in model.graph.node]


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
            simplify: bool = True, reshape: bool = False, prove: bool = True,
            cache_dir: str | Path | None = None) -> Prepared:
    """Pin dynamic dims, fold constants and shape subgraphs (onnxslim's folder, no fusions), infer shapes — and prove
    that the prepared graph computes what the original does, falling back to a safer preparation when it does not
    (:data:`PREPARATIONS`: no-op removal off, then no simplifier); ``notes`` say what happened. A graph with nothing
    to fold is only pinned (its Constant nodes written as initializers), unproven since nothing changed.

    Args:
        model: the original model.
        batch: size for a dynamic batch dim. Defaults to 1.
        shapes: static shapes per input, for its dynamic dims. Defaults to pinning dynamic dims.
        simplify: run onnxslim. Defaults to True.
        reshape: let ``shapes`` change static dims. Defaults to False.
        prove: compare the prepared graph with the original. Defaults to True.
        cache_dir: a folder of proven prepared graphs (:mod:`hailo_qa.graph.prepcache`): an entry for the same
            model bytes, options and preparation code is used as is (no simplifier, no proof); a new one is proven,
            then stored. Unused without ``prove`` and for a graph with nothing to fold. Defaults to None (no cache).

    Raises:
        InputFileError: ``cache_dir`` holds no entry and cannot be written (checked before the work).
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
    plain = _nothing_to_fold(model, shape_nodes) if simplify else None
    key = None
    if plain is not None:  # the folder would only write Constant nodes as initializers: no onnxslim, ORT or proof
        out = infer_shapes(_pin(plain, static))
        simplifier = NOTHING_TO_FOLD
        steps = ()
    elif cache_dir is not None and prove:
        from hailo_qa.fsutil import writable_dir
        from hailo_qa.graph import prepcache

        # batch, --shape and --reshape act only through the static shapes: the same static shapes are the same
        # preparation (a lint with the batch pinned to 1 and a split with --shape images=1,... share one entry)
        key = prepcache.cache_key(model, {"static": {k: list(v) for k, v in static.items()}, "simplify": simplify})
        hit = prepcache.load(cache_dir, key)
        if hit is not None:
            try:
                return _from_entry(*hit)
            except (KeyError, TypeError, ValueError, AttributeError):
                pass  # an entry that does not read back as one is rebuilt, never trusted
        writable_dir(cache_dir, "the preparation cache")  # before the work, not after it
    for k, (name, desc, extra) in enumerate(steps):
        try:
            candidate = _pin(model, static) if extra is None else \
                (_fast if extra.get("folder") == "fast" else _slim)(model, static, extra)
        except GraphError as err:
            if k + 1 < len(steps):
                notes.append(f"preparation '{name}' failed ({err.what}); trying the next")
                continue
            raise
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
            simplifier = _describe(desc, extra) if simplify else "none"
            break
        notes.append(f"preparation '{name}' changed what the model computes ({proof.error().what}); "
                     f"fell back to a safer preparation")
    assert out is not None
    if simplify and simplifier != "none":
        notes.append(f"{len(shape_nodes)} shape-computation nodes in the original graph; "
                     f"{len(model.graph.node)} → {len(out.graph.node)} nodes after folding")
    if proof is not None and proof.verdict == "kernel-last-bit":
        notes.append(f"preparation proof: {proof.summary()}")
    if proof is not None and not proof.ok:
        raise proof.error()
    pinned = {n: (before[n], static[n]) for n in static if tuple(before[n]) != tuple(static[n])}
    result = Prepared(out, pinned, shape_nodes, dynamic_raw, len(model.graph.node), len(out.graph.node), simplifier,
                      tuple(notes), proof.to_dict() if proof is not None else None)
    if key is not None:  # proven (a failed proof raised above)
        from hailo_qa.graph import prepcache

        prepcache.store(cache_dir, key, _to_entry(result), out)
    return result


def _to_entry(p: Prepared) -> dict:
    """What :func:`_from_entry` needs besides the model, as JSON."""
    return {"pinned": {k: [list(a), list(b)] for k, (a, b) in p.pinned.items()},
            "shape_nodes_raw": list(p.shape_nodes_raw), "dynamic_raw": list(p.dynamic_raw),
            "nodes_before": p.nodes_before, "nodes_after": p.nodes_after, "simplifier": p.simplifier,
            "notes": list(p.notes), "proof": p.proof}


def _from_entry(meta: Mapping, model: onnx.ModelProto) -> Prepared:
    return Prepared(model, {k: (tuple(a), tuple(b)) for k, (a, b) in meta["pinned"].items()},
                    tuple(meta["shape_nodes_raw"]), tuple(meta["dynamic_raw"]), int(meta["nodes_before"]),
                    int(meta["nodes_after"]), str(meta["simplifier"]), tuple(meta["notes"]), meta["proof"])


def _describe(desc: str, extra: Mapping | None) -> str:
    """What the report says made the prepared graph (versions from package metadata: no import)."""
    from importlib.metadata import version

    if extra is None:
        return desc
    if extra.get("folder") == "fast":
        return (f"hailo-qa's folder: onnxslim {version('onnxslim')}'s passes re-done on the graph, values by ONNX "
                f"Runtime {version('onnxruntime')} ({desc})")
    return f"onnxslim {version('onnxslim')} ({desc})"


NOTHING_TO_FOLD = "none needed (no shape subgraph, nothing to fold, no op the folder rewrites)"

PLAIN_OPS = frozenset({
    "Conv", "ConvTranspose", "Relu", "PRelu", "LeakyRelu", "Sigmoid", "Tanh", "HardSigmoid", "HardSwish", "Elu",
    "Selu", "Softplus", "Clip", "Add", "Sub", "Mul", "Div", "MatMul", "Gemm", "MaxPool", "AveragePool",
    "GlobalAveragePool", "GlobalMaxPool", "BatchNormalization", "Softmax", "LogSoftmax", "Flatten", "Round", "Floor",
    "Ceil", "Abs", "Neg", "Exp", "Log", "Sqrt", "Erf", "Constant",
})
"""Ops the folder leaves alone when their inputs are activations: a graph of only these, with no all-constant node,
no shape subgraph, no dead output and no Add/Sub/Mul/Div by a neutral constant, comes out of :func:`_slim` with its
Constant nodes written as initializers and nothing else changed (``tests/graph/test_prepare.py`` holds this against
the folder on the registered and unseen models). Reshape, Transpose, Concat, Identity, Pad, Slice, Cast, ... are
left out on purpose: onnxslim's no-op removal drops some of them."""

_NEUTRAL = {"Add": 0.0, "Sub": 0.0, "Mul": 1.0, "Div": 1.0}


def _nothing_to_fold(model: onnx.ModelProto, shape_nodes: Sequence[str]) -> onnx.ModelProto | None:
    """The model with its Constant nodes written as initializers when that is all the folder would do, else None.

    A cheap look at the graph (no onnxslim, no ONNX Runtime): spares ``hailo-qa lint``/``split`` of a plain model
    the import of both and the preparation proof, since the result computes what the original does by construction.
    """
    if shape_nodes or any(n.op_type not in PLAIN_OPS or n.domain not in ("", "ai.onnx") for n in model.graph.node):
        return None
    import numpy as np
    from onnx import numpy_helper

    values = {i.name: i for i in model.graph.initializer}
    used = {t for n in model.graph.node for t in n.input} | {o.name for o in model.graph.output}
    for n in model.graph.node:
        if any(o and o not in used for o in n.output):
            return None  # a dead output: the folder prunes it
        if n.op_type == "Constant":
            a = n.attribute
            if len(a) != 1 or a[0].name != "value" or a[0].t.data_location or n.output[0] in values:
                return None
            values[n.output[0]] = a[0].t
            continue
        if all((not i) or i in values for i in n.input):
            return None  # an all-constant node: the folder folds it
        if n.op_type in _NEUTRAL and any(
                i in values and np.all(numpy_helper.to_array(values[i]) == _NEUTRAL[n.op_type]) for i in n.input):
            return None  # x + 0, x * 1, ...: the folder's no-op removal drops it
    out = onnx.ModelProto()
    out.CopyFrom(model)
    kept = []
    for n in out.graph.node:
        if n.op_type != "Constant":
            kept.append(n)
            continue
        t = onnx.TensorProto()
        t.CopyFrom(n.attribute[0].t)
        t.name = n.output[0]
        out.graph.initializer.append(t)
    if any(o.name in values and o.name not in {i.name for i in model.graph.initializer} for o in out.graph.output):
        return None  # a Constant node feeding a graph output directly
    del out.graph.node[:]
    out.graph.node.extend(kept)
    return out
