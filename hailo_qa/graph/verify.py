"""The equivalence proof: ``stage2(stage1(x), x)`` against the full model in ONNX Runtime, bit-exact by default."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import onnx

from hailo_qa.compare import CompareResult, compare_outputs
from hailo_qa.graph.prepare import static_shapes
from hailo_qa.graph.split import SplitResult
from hailo_qa.runners.onnxrt import OnnxrtRunner
from hailo_qa.runners.pipeline import HostPipeline


def pipeline_for(split: SplitResult, *, stage1=None, host_feeds: Mapping[str, np.ndarray] | None = None,
                 name: str | None = None) -> HostPipeline:
    """A HostPipeline over a split: Stage 1 on ``stage1`` (default: ONNX Runtime on stage1.onnx), Stage 2 on ORT."""
    s1 = stage1 or OnnxrtRunner(split.stage1_path or split.stage1, name="stage1")
    return HostPipeline(s1, split.stage2_path or split.stage2, host_feeds=host_feeds, name=name)


def random_model_feeds(model: onnx.ModelProto, rng: np.random.Generator, *, batch: int = 1,
                       ranges: Mapping[str, tuple[float, float]] | None = None) -> dict[str, np.ndarray]:
    """Random feeds for every input of ``model`` (floats uniform in ``ranges`` or [0, 1]; ints in [1, 640])."""
    feeds = {}
    types = {i.name: i.type.tensor_type.elem_type for i in model.graph.input}
    for name, shape in static_shapes(model, batch=batch).items():
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
    all_feeds = list(feeds) + [random_model_feeds(m, rng or np.random.default_rng(0)) for _ in range(n)]
    result = None
    with OnnxrtRunner(m, name="full") as full, pipeline_for(split) as pipe:
        for f in all_feeds:
            result = compare_split(full, pipe, f, atol=atol)
            if not result:
                return result
    return result
