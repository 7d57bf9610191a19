"""The equivalence proof: ``stage2(stage1(x), x)`` against the full model in ONNX Runtime, bit-exact by default.

The proof compares what the graphs compute, so every session in it runs with ORT's graph optimizations off
(``optimize=False``): with them on, ORT fuses across what is one graph in the full model but two after the cut, and
specialises kernels to static vs dynamic shapes — legitimate choices that can move the last bit (measured: 2e-8 on
PP-OCR's classifier, 0.0 with optimizations off). Deployment speed is measured elsewhere, with optimizations on.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import onnx

from hailo_qa.evaluate.compare import CompareResult, compare_outputs
from hailo_qa.graph.prepare import static_shapes
from hailo_qa.graph.split import SplitResult
from hailo_qa.runners.onnxrt import OnnxrtRunner
from hailo_qa.runners.pipeline import HostPipeline


def pipeline_for(split: SplitResult, *, stage1=None, host_feeds: Mapping[str, np.ndarray] | None = None,
                 name: str | None = None, optimize: bool = True) -> HostPipeline:
    """A HostPipeline over a split: Stage 1 on ``stage1`` (default: ONNX Runtime on stage1.onnx), Stage 2 on ORT.

    Args:
        optimize: ORT graph optimizations for the ORT stages. Defaults to True (off inside proofs).
    """
    s1 = stage1 or OnnxrtRunner(split.stage1_path or split.stage1, name="stage1", optimize=optimize)
    s2 = OnnxrtRunner(split.stage2_path or split.stage2, name="stage2", optimize=optimize)
    return HostPipeline(s1, s2, host_feeds=host_feeds, name=name)


def proof_runners(model, split: SplitResult, *, host_feeds: Mapping[str, np.ndarray] | None = None
                  ) -> tuple[OnnxrtRunner, HostPipeline]:
    """The full model and the two-stage pipeline, both on ORT with graph optimizations off (not yet active)."""
    return (OnnxrtRunner(model, name="full", optimize=False),
            pipeline_for(split, host_feeds=host_feeds, optimize=False))


def random_model_feeds(model: onnx.ModelProto, rng: np.random.Generator, *, batch: int = 1,
                       ranges: Mapping[str, tuple[float, float]] | None = None,
                       shapes: Mapping[str, tuple[int, ...]] | None = None) -> dict[str, np.ndarray]:
    """Random feeds for every input of ``model`` (floats uniform in ``ranges`` or [0, 1]; ints in [1, 640])."""
    feeds = {}
    types = {i.name: i.type.tensor_type.elem_type for i in model.graph.input}
    for name, shape in static_shapes(model, batch=batch, overrides=shapes).items():
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


def verify_split(model: str | Path | onnx.ModelProto, split: SplitResult, *,
                 feeds: Iterable[Mapping[str, np.ndarray]] = (), rng: np.random.Generator | None = None,
                 n: int = 0, atol: float = 0.0) -> CompareResult:
    """Run the proof on ``feeds`` and ``n`` random inputs; return the first failing comparison, else the last."""
    m = model if isinstance(model, onnx.ModelProto) else onnx.load(str(model))
    shapes = {i.name: tuple(d.dim_value for d in i.type.tensor_type.shape.dim) for i in split.stage1.graph.input}
    shapes.update({i.name: tuple(d.dim_value for d in i.type.tensor_type.shape.dim) for i in split.stage2.graph.input
                   if i.name in {x.name for x in m.graph.input}})
    all_feeds = list(feeds) + [random_model_feeds(m, rng or np.random.default_rng(0), shapes=shapes)
                               for _ in range(n)]
    result = None
    full_r, pipe_r = proof_runners(m, split)
    with full_r as full, pipe_r as pipe:
        for f in all_feeds:
            result = compare_split(full, pipe, f, atol=atol)
            if not result:
                return result
    return result
