"""The manifest's host step (``[models.<name>.host_step]``) placed between the two stages of a split.

For ``op = "fsq"`` the split cuts before the model's ``Round`` (Hailo-8 cannot run it). The model's own quantizer is
``Round(bounded) → Div(by (L − 1) / 2)``; the plan finds that pair in Stage 2, checks the manifest's ``levels``
against the projection width and the model's divisor, and cuts Stage 2 after the ``Div`` so the rest (the classifier
head) runs on ORT while the FSQ step runs in NumPy (:func:`hailo_qa.runners.hostops.fsq_quantize`).
:func:`verify_fsq_step` proves the NumPy step equals the model's quantizer bit for bit.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import numpy_helper

from hailo_qa.errors import GraphError, InputDataError, ManifestError
from hailo_qa.graph.split import SplitResult
from hailo_qa.manifest import ModelSpec
from hailo_qa.runners.hostops import HostStepRunner, fsq_quantize
from hailo_qa.runners.onnxrt import OnnxrtRunner
from hailo_qa.runners.pipeline import HostPipeline


@dataclass(frozen=True)
class FsqHostPlan:
    """Where the FSQ host step sits: ``cut`` (Stage-1 output, the ``Round`` input) → ``output`` (the ``Div``
    output the head reads); ``head`` is Stage 2 from ``output`` on; ``quantizer`` is Stage 2's ``Round → Div``."""

    cut: str
    output: str
    levels: tuple[int, ...]
    width: int
    model_half: float
    head: onnx.ModelProto = field(repr=False)
    quantizer: onnx.ModelProto = field(repr=False)

    def step(self, x: np.ndarray) -> np.ndarray:
        return fsq_quantize(x, self.levels)


def _const(g: onnx.GraphProto, name: str) -> np.ndarray | None:
    for i in g.initializer:
        if i.name == name:
            return numpy_helper.to_array(i)
    for n in g.node:
        if n.op_type == "Constant" and name in n.output:
            for a in n.attribute:
                if a.name == "value":
                    return numpy_helper.to_array(a.t)
    return None


def fsq_host_plan(spec: ModelSpec, split: SplitResult) -> FsqHostPlan:
    """The FSQ host step for ``spec``'s split, checked against the model.

    Raises:
        ManifestError: no ``host_step``, a level count that does not match the projection width (the seed's
            post-processing passed 5 levels for an 8-wide output), or levels whose ``(L − 1) / 2`` is not the
            model's own divisor.
        GraphError: the cut does not feed a ``Round → Div`` quantizer.
    """
    hs = spec.host_step
    ctx = f"{spec.name} | host_step"
    if hs is None or hs.op != "fsq":
        raise ManifestError(f"model '{spec.name}' declares no FSQ host step", context=ctx,
                            note="expected [models.<name>.host_step] op = \"fsq\", levels = [...]")
    if len(split.boundary) != 1:
        raise GraphError(f"the FSQ host step needs one cut tensor; the split has {len(split.boundary)}",
                         note=f"cut: {[b.name for b in split.boundary]}", context=ctx,
                         hint="cut the split at the tensor feeding the FSQ Round (split.cut = [\"...\"])")
    b = split.boundary[0]
    width = int(b.shape[-1])
    if len(hs.levels) != width:
        raise ManifestError(f"host_step.levels lists {len(hs.levels)} level counts, but the projection '{b.name}' "
                            f"is {width} wide (shape {list(b.shape)})", context=ctx,
                            note="expected one level count per projection dimension",
                            hint=f"list {width} odd level counts, e.g. levels = {[hs.levels[0]] * width}")
    g = split.stage2.graph
    consumers = [n for n in g.node if b.name in n.input]
    rnd = [n for n in consumers if n.op_type == "Round"]
    if len(rnd) != 1 or len(consumers) != 1:
        raise GraphError(f"the cut '{b.name}' does not feed exactly one Round (consumers: "
                         f"{[n.op_type for n in consumers]})", context=ctx,
                         note="an FSQ host step replaces the model's Round → Div quantizer")
    div = [n for n in g.node if rnd[0].output[0] in n.input]
    if len(div) != 1 or div[0].op_type != "Div" or div[0].input[0] != rnd[0].output[0]:
        raise GraphError(f"the Round on '{b.name}' does not feed one Div (consumers: {[n.op_type for n in div]})",
                         context=ctx, note="expected FSQ's Round(x) / ((L − 1) / 2)")
    d = _const(g, div[0].input[1])
    if d is None:
        raise GraphError(f"the FSQ divisor '{div[0].input[1]}' is not a constant", context=ctx)
    want = (np.asarray(hs.levels, np.float64) - 1) / 2
    have = np.broadcast_to(np.asarray(d, np.float64).reshape(-1), (width,)) if d.size in (1, width) else None
    if have is None or not np.array_equal(have, want):
        raise ManifestError(f"host_step.levels {list(hs.levels)} give half-widths {want.tolist()}, but the model's "
                            f"quantizer divides by {np.asarray(d).ravel().tolist()}", context=ctx,
                            note="the host FSQ step must be the model's own quantizer",
                            hint="set levels to 2·divisor + 1 per dimension (the model's FSQ levels)")
    out = div[0].output[0]
    ex = onnx.utils.Extractor(split.stage2)
    other_inputs = [i for i in split.stage2_inputs if i != b.name]
    head = ex.extract_model([out, *other_inputs], list(split.outputs))
    quantizer = ex.extract_model([b.name], [out])
    return FsqHostPlan(cut=b.name, output=out, levels=tuple(hs.levels), width=width,
                       model_half=float(np.asarray(d).ravel()[0]), head=head, quantizer=quantizer)


def fsq_pipeline(split: SplitResult, plan: FsqHostPlan, *, stage1=None, host_feeds=None,
                 name: str | None = None) -> HostPipeline:
    """Stage 1 (default: ORT on stage1.onnx) → the NumPy FSQ step → the head on ORT."""
    s1 = stage1 or OnnxrtRunner(split.stage1_path or split.stage1, name="stage1")
    step = HostStepRunner(s1, plan.cut, plan.output, plan.step, step=f"fsq{list(plan.levels)}")
    return HostPipeline(step, OnnxrtRunner(plan.head, name="head"), host_feeds=host_feeds, name=name)


def verify_fsq_step(plan: FsqHostPlan, boundary: np.ndarray) -> int:
    """Run the NumPy step and the model's own ``Round → Div`` (ORT, no graph optimizations) on ``boundary``
    values plus every rounding tie in the level range; return how many values were compared.

    Raises:
        InputDataError: any value differs in any bit (reports the first).
    """
    x = np.asarray(boundary, np.float32).reshape(-1, plan.width)
    half = max((lv - 1) / 2 for lv in plan.levels)
    ties = np.arange(-half - 0.5, half + 1.0, 0.5, dtype=np.float32)  # ±k.5 ties and the integers themselves
    edge = np.concatenate([ties, np.nextafter(ties, np.float32(np.inf)), np.nextafter(ties, np.float32(-np.inf))])
    pad = (-edge.size) % plan.width
    extra = np.concatenate([edge, np.zeros(pad, np.float32)]).reshape(-1, plan.width)
    x = np.concatenate([x, extra])
    with OnnxrtRunner(plan.quantizer, name="model-quantizer", optimize=False) as q:
        (in_meta,) = q.input_metadata().values()
        shape = tuple(d if isinstance(d, int) and d > 0 else 1 for d in in_meta.shape)
        rows = [x[i:i + 1].reshape(shape) for i in range(x.shape[0])]
        ref = np.concatenate([q.infer({in_meta.name: r})[plan.output].reshape(1, -1) for r in rows])
    got = plan.step(x)
    same = ref.view(np.uint32) == got.view(np.uint32)
    if not same.all():
        i = np.argwhere(~same)[0]
        raise InputDataError(f"the host FSQ step differs from the model's quantizer at {tuple(i)}: input "
                             f"{x[tuple(i)]!r} → host {got[tuple(i)]!r}, model {ref[tuple(i)]!r}",
                             note="expected bit-identical results", context="fsq host step")
    return int(x.size)
