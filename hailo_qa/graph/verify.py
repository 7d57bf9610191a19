"""The equivalence proof: ``stage2(stage1(x), x)`` against the full model in ONNX Runtime, bit-exact by default.

The proof compares what the graphs compute, so every session in it runs with ORT's graph optimizations off
(``optimize=False``) and weight pre-packing off (``session.disable_prepacking``): with optimizations on, ORT fuses
across what is one graph in the full model but two after the cut, and specialises kernels to static vs dynamic
shapes (measured: 2e-8 on PP-OCR's classifier, 0.0 with optimizations off); with pre-packing on, a model that lists
its weights as graph inputs (old exporters) runs its convolutions through pre-packed kernels in one graph and plain
ones in the other (measured: 4.8e-7, 0.0 with pre-packing off). Deployment speed is measured elsewhere, with both on.

When a difference remains, :func:`classify_difference` re-runs the two sides (1) on ORT's other kernel path
(optimizations and pre-packing on) and (2) in float64 with ONNX's reference evaluator. Equal on either means the
graphs compute the same function and the float32 difference is a kernel last-bit effect: the proof passes and says
so. Different on both is a real difference: a :class:`ProofError` in the usual what / Note / Hint form, naming the
input, output, index and both values.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from hailo_qa.errors import GraphError
from hailo_qa.evaluate.compare import CompareResult, compare_outputs
from hailo_qa.graph.prepare import static_shapes
from hailo_qa.graph.split import SplitResult
from hailo_qa.runners.onnxrt import OnnxrtRunner
from hailo_qa.runners.pipeline import HostPipeline

FLOAT64_RTOL = 1e-9
"""Two sides whose float64 outputs agree to this (relative to the output's largest magnitude) compute the same
function: float32 kernels differ from each other by ≥ 1e-7 relative, float64 rounding by ~1e-16 per operation."""


class ProofError(GraphError):
    """The split (or the preparation) is not equivalent to the original model."""


def pipeline_for(split: SplitResult, *, stage1=None, host_feeds: Mapping[str, np.ndarray] | None = None,
                 name: str | None = None, optimize: bool = True, prepack: bool | None = None) -> HostPipeline:
    """A HostPipeline over a split: Stage 1 on ``stage1`` (default: ONNX Runtime on stage1.onnx), Stage 2 on ORT.

    Args:
        optimize: ORT graph optimizations for the ORT stages. Defaults to True (off inside proofs).
        prepack: ORT weight pre-packing for the ORT stages. Defaults to ``optimize``.
    """
    s1 = stage1 or OnnxrtRunner(split.stage1_path or split.stage1, name="stage1", optimize=optimize,
                                prepack=prepack)
    s2 = OnnxrtRunner(split.stage2_path or split.stage2, name="stage2", optimize=optimize, prepack=prepack)
    return HostPipeline(s1, s2, host_feeds=host_feeds, name=name)


def proof_runners(model, split: SplitResult, *, host_feeds: Mapping[str, np.ndarray] | None = None,
                  optimize: bool = False) -> tuple[OnnxrtRunner, HostPipeline]:
    """The full model and the two-stage pipeline on ORT (not yet active).

    Args:
        optimize: ORT graph optimizations and weight pre-packing. Defaults to False (the proof's setting).
    """
    return (OnnxrtRunner(model, name="full", optimize=optimize, prepack=optimize),
            pipeline_for(split, host_feeds=host_feeds, optimize=optimize, prepack=optimize))


def random_model_feeds(model: onnx.ModelProto, rng: np.random.Generator, *, batch: int = 1,
                       ranges: Mapping[str, tuple[float, float]] | None = None,
                       shapes: Mapping[str, tuple[int, ...]] | None = None) -> dict[str, np.ndarray]:
    """Random feeds for every input of ``model`` (floats uniform in ``ranges`` or [0, 1]; ints in [1, 640])."""
    feeds = {}
    types = {i.name: i.type.tensor_type.elem_type for i in model.graph.input}
    for name, shape in static_shapes(model, batch=batch, overrides=shapes, reshape=True).items():
        dt = onnx.helper.tensor_dtype_to_np_dtype(types[name])
        if np.issubdtype(dt, np.floating):
            lo, hi = (ranges or {}).get(name, (0.0, 1.0))
            feeds[name] = rng.uniform(lo, hi, size=shape).astype(dt)
        else:
            feeds[name] = rng.integers(1, 641, size=shape).astype(dt)
    return feeds


def compare_split(full: OnnxrtRunner, pipe: HostPipeline, feeds: Mapping[str, np.ndarray], *,
                  atol: float = 0.0) -> CompareResult:
    """Full model vs pipeline on one set of feeds (both runners already active)."""
    ref = full.infer(dict(feeds))
    got = pipe.infer(dict(feeds))
    return compare_outputs(ref, got, atol=atol)


# ---- float64 re-run --------------------------------------------------------------------------------------------
def as_float64(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of ``model`` computing in float64: float initializers, I/O, Constant values and ``Cast(to=float)``."""
    from onnx import numpy_helper as nh

    F, D = onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE
    m = onnx.ModelProto()
    m.CopyFrom(model)
    g = m.graph
    for k, t in enumerate(g.initializer):
        if t.data_type == F:
            g.initializer[k].CopyFrom(nh.from_array(nh.to_array(t).astype(np.float64), t.name))
    for vi in list(g.input) + list(g.output):
        if vi.type.tensor_type.elem_type == F:
            vi.type.tensor_type.elem_type = D
    del g.value_info[:]
    for n in g.node:
        for a in n.attribute:
            if n.op_type == "Cast" and a.name == "to" and a.i == F:
                a.i = D
            elif a.type == onnx.AttributeProto.TENSOR and a.t.data_type == F:
                a.t.CopyFrom(nh.from_array(nh.to_array(a.t).astype(np.float64), a.t.name))
            elif n.op_type == "Constant" and a.name == "value_float":
                a.CopyFrom(onnx.helper.make_attribute("value", nh.from_array(np.array(a.f, np.float64))))
            elif n.op_type == "Constant" and a.name == "value_floats":
                a.CopyFrom(onnx.helper.make_attribute("value", nh.from_array(np.array(list(a.floats), np.float64))))
    return m


def _f64(feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: (v.astype(np.float64) if np.issubdtype(v.dtype, np.floating) else v) for k, v in feeds.items()}


def _run64(model: onnx.ModelProto, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    from onnx.reference import ReferenceEvaluator

    names = [i.name for i in model.graph.input if i.name not in {t.name for t in model.graph.initializer}]
    sess = ReferenceEvaluator(as_float64(model))
    outs = sess.run(None, {k: feeds[k] for k in names})
    return dict(zip([o.name for o in model.graph.output], outs))


def _load(m) -> onnx.ModelProto:
    return m if isinstance(m, onnx.ModelProto) else onnx.load(str(m))


def float64_difference(reference: onnx.ModelProto, candidate, feeds: Mapping[str, np.ndarray]) -> float:
    """Largest relative difference (to each output's largest magnitude) of ``reference`` vs ``candidate`` in float64.

    ``candidate`` is a model or a :class:`SplitResult` (Stage 1 then Stage 2).
    """
    f = _f64(feeds)
    ref = _run64(reference, f)
    if isinstance(candidate, SplitResult):
        s1 = _run64(_load(candidate.stage1_path or candidate.stage1), f)
        s2 = _load(candidate.stage2_path or candidate.stage2)
        got = _run64(s2, {**f, **s1})
    else:
        got = _run64(_load(candidate), f)
    worst = 0.0
    for k, r in ref.items():
        r, t = np.asarray(r, np.float64), np.asarray(got[k], np.float64)
        if r.shape != t.shape:
            return float("inf")
        if r.size == 0:
            continue
        scale = max(float(np.nanmax(np.abs(r))), 1e-30)
        worst = max(worst, float(np.nanmax(np.abs(r - t))) / scale)
    return worst


# ---- classification --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Classification:
    """Why two sides differ: ``kernel`` (same function, last-bit kernel effect) or ``real``."""

    kind: str
    explanation: str


def classify_difference(reference, candidate, feeds: Mapping[str, np.ndarray], *,
                        host_feeds: Mapping[str, np.ndarray] | None = None, atol: float = 0.0) -> Classification:
    """Tell a kernel last-bit effect from a real difference between ``reference`` (a model) and ``candidate`` (a
    model or a :class:`SplitResult`) on ``feeds``: ORT's other kernel path first, then float64."""
    tried = []
    try:
        if isinstance(candidate, SplitResult):
            full_r, pipe_r = proof_runners(reference, candidate, host_feeds=host_feeds, optimize=True)
        else:
            full_r = OnnxrtRunner(reference, name="full", optimize=True, prepack=True)
            pipe_r = OnnxrtRunner(candidate, name="prepared", optimize=True, prepack=True)
        with full_r as full, pipe_r as pipe:
            other = compare_outputs(full.infer(dict(feeds)), pipe.infer(dict(feeds)), atol=atol)
        if other:
            return Classification("kernel", "bit-exact on ONNX Runtime's other kernel path (graph optimizations "
                                            "and weight pre-packing on): a kernel last-bit effect, not a real one")
        tried.append(f"ORT's other kernel path differs too (max |Δ| {_worst(other):.3g})")
    except Exception as err:  # noqa: BLE001 - a diagnostic re-run must never hide the original finding
        tried.append(f"ORT's other kernel path could not run ({err.__class__.__name__})")
    try:
        rel = float64_difference(_load(reference), candidate, {**dict(host_feeds or {}), **dict(feeds)})
        if rel <= FLOAT64_RTOL:
            return Classification("kernel", f"in float64 the two sides agree to {rel:.1e} (relative): they compute "
                                            f"the same function; the float32 difference is a kernel last-bit effect")
        tried.append(f"in float64 they still differ by {rel:.3g} (relative)")
    except Exception as err:  # noqa: BLE001
        tried.append(f"a float64 re-run was not possible ({err.__class__.__name__}: "
                     f"{str(err).strip().splitlines()[0][:120] if str(err).strip() else ''})")
    return Classification("real", "; ".join(tried) + " — a real difference, not a kernel rounding effect")


def _worst(result: CompareResult) -> float:
    vals = [o.max_abs_err for o in result.outputs if o.max_abs_err is not None]
    return max(vals) if vals else float("nan")


# ---- the proof -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ProofResult:
    """The outcome of a proof. Truthy when every input gave the same outputs (or a kernel last-bit effect only).

    Attributes:
        verdict: ``bit-exact``, ``within-atol``, ``kernel-last-bit``, ``skipped`` (nothing could be run) or
            ``mismatch``.
        inputs: the names of the inputs proven.
        feed: the input that differed (``""`` when none did).
        compare: the comparison on ``feed`` (or the last one).
        explanation: what the re-runs showed, for a difference.
    """

    verdict: str
    inputs: tuple[str, ...]
    feed: str = ""
    compare: CompareResult | None = field(default=None, repr=False)
    explanation: str = ""
    atol: float = 0.0
    what: str = "the split"

    @property
    def ok(self) -> bool:
        return self.verdict != "mismatch"

    def __bool__(self) -> bool:
        return self.ok

    def summary(self) -> str:
        n = len(self.inputs)
        if self.verdict == "bit-exact":
            return f"bit-exact on {n} input(s)"
        if self.verdict == "within-atol":
            return f"equal within atol {self.atol:g} on {n} input(s)"
        if self.verdict == "kernel-last-bit":
            return (f"equivalent on {n} input(s); '{self.feed}' differs in the last bit in float32 "
                    f"(max |Δ| {_worst(self.compare):.3g}): {self.explanation}")
        if self.verdict == "skipped":
            return f"not run: {self.explanation}"
        return f"MISMATCH on '{self.feed}'"

    def to_dict(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "inputs": list(self.inputs), "feed": self.feed,
                "explanation": self.explanation, "atol": self.atol, "summary": self.summary()}

    def error(self) -> ProofError:
        """The what / Note / Hint error for a mismatch."""
        c = self.compare
        bad = c.failed[0] if c is not None and c.failed else None
        if bad is not None and bad.first_index is not None:
            where = (f"output '{bad.name}' at index {list(bad.first_index)}: model {bad.first_ref!r}, "
                     f"{'Stage 2(Stage 1(x))' if self.what == 'the split' else 'prepared'} {bad.first_test!r} "
                     f"({bad.mismatches} of {bad.total} elements differ, max |Δ| {bad.max_abs_err:.3g})")
        elif bad is not None:
            where = f"output '{bad.name}': {bad.reason}"
        else:
            where = "; ".join(c.problems) if c is not None and c.problems else "outputs differ"
        return ProofError(f"MISMATCH: {self.what} is not equivalent to the model on '{self.feed}': {where}",
                          note=f"expected {'bit-exact equality' if not self.atol else f'|Δ| ≤ {self.atol:g}'} "
                               f"(ORT, graph optimizations and weight pre-packing off); re-run: {self.explanation}",
                          hint="report this with the model; meanwhile try an explicit --cut or --no-simplify, or "
                               "set [models.<name>.split] atol with a written justification")


def prove(model, split: SplitResult, feeds: Iterable[tuple[str, Mapping[str, np.ndarray]]], *, atol: float = 0.0,
          host_feeds: Mapping[str, np.ndarray] | None = None) -> ProofResult:
    """Compare the full model with ``stage2(stage1(x), x)`` on every named feed; classify any difference.

    Args:
        model: the reference (the original model, with any explicitly requested reshape applied).
        split: the split.
        feeds: ``(name, feeds)`` pairs.
        atol: absolute tolerance (0: bit-exact). Defaults to 0.
        host_feeds: constant feeds for host-only inputs. Defaults to none.
    """
    ref = _load(model)
    names: list[str] = []
    kernel: ProofResult | None = None
    last = None
    full_r, pipe_r = proof_runners(ref, split, host_feeds=host_feeds)
    with full_r as full, pipe_r as pipe:
        for name, f in feeds:
            names.append(name)
            last = compare_split(full, pipe, f, atol=atol)
            if last:
                continue
            cls = classify_difference(ref, split, {**dict(host_feeds or {}), **dict(f)}, host_feeds=host_feeds,
                                      atol=atol)
            if cls.kind != "kernel":
                return ProofResult("mismatch", tuple(names), name, last, cls.explanation, atol)
            kernel = kernel or ProofResult("kernel-last-bit", (), name, last, cls.explanation, atol)
    if kernel is not None:
        return ProofResult(kernel.verdict, tuple(names), kernel.feed, kernel.compare, kernel.explanation, atol)
    return ProofResult("within-atol" if atol else "bit-exact", tuple(names), "", last, "", atol)


def reference_model(model, shapes: Mapping[str, Sequence[int]] | None = None) -> onnx.ModelProto:
    """The proof's reference: the original model, its inputs re-declared at ``shapes`` when a reshape was asked
    for (a static dim changed), so ONNX Runtime runs it at the new size."""
    m = _load(model)
    if not shapes:
        return m
    from hailo_qa.graph.prepare import input_shapes

    before = input_shapes(m)
    changed = {k: v for k, v in shapes.items() if k in before and any(
        isinstance(a, int) and a > 0 and a != b for a, b in zip(before[k], v))}
    if not changed:
        return m
    out = onnx.ModelProto()
    out.CopyFrom(m)
    for i in out.graph.input:
        if i.name in changed:
            for d, v in zip(i.type.tensor_type.shape.dim, changed[i.name]):
                d.Clear()
                d.dim_value = int(v)
    del out.graph.value_info[:]
    for o in out.graph.output:
        o.type.tensor_type.ClearField("shape")
    return out


def verify_split(model: str | Path | onnx.ModelProto, split: SplitResult, *,
                 feeds: Iterable[Mapping[str, np.ndarray]] = (), rng: np.random.Generator | None = None,
                 n: int = 0, atol: float = 0.0) -> ProofResult:
    """Run the proof on ``feeds`` and ``n`` random inputs (at the split's input shapes)."""
    m = _load(model)
    shapes = split_input_shapes(m, split)
    ref = reference_model(m, shapes)
    rng = rng or np.random.default_rng(0)
    named = [(f"feeds[{k}]", f) for k, f in enumerate(feeds)]
    named += [(f"random[{k}]", random_model_feeds(ref, rng, shapes=shapes)) for k in range(n)]
    return prove(ref, split, named, atol=atol)


def split_input_shapes(model: onnx.ModelProto, split: SplitResult) -> dict[str, tuple[int, ...]]:
    """The static shape of every original input, as the split's stages declare them."""
    inputs = {x.name for x in model.graph.input}
    out = {}
    for g in (split.stage1.graph, split.stage2.graph):
        for i in g.input:
            if i.name in inputs and i.name not in out:
                out[i.name] = tuple(d.dim_value for d in i.type.tensor_type.shape.dim)
    return out
