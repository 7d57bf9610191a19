"""One elimination round on DEIMv2-Atto: :func:`hailo_qa.graph.noops.eliminate` against onnxslim's own round
(``onnxslim.core.optimize`` with constant folding off and eliminations only, ONNX-GraphSurgeon underneath), on the
same folded graph, interleaved in one run (issue #13: lint and split of DEIMv2 under 1 s cold).

Run: ``pytest benchmarks/test_bench_noops.py --benchmark-enable -s``. The medians and their ratio are printed and put
in ``extra_info``, never asserted (timing on a shared CI box is noise). With ``CI`` set (timing off) each side runs
once."""
from __future__ import annotations

import os
import time

import numpy as np
import onnx
import pytest

from hailo_qa.graph import prepare as P
from hailo_qa.graph.noops import eliminate
from hailo_qa.manifest import load_manifest

REPEATS = 1 if os.environ.get("CI") else 15


@pytest.fixture(scope="module")
def folded():
    """DEIMv2 pinned and folded by onnxslim's folder with eliminations off: what the first elimination round
    meets (outside the timing)."""
    spec = load_manifest().get("deimv2_atto")
    m = onnx.load(spec.file)
    static = P.static_shapes(m, overrides={i.name: i.shape for i in spec.inputs if i.shape})
    return P._slim(m, static, {"skip_optimizations": ["graph_fusion", "dead_node_elimination"]})


def _onnxslim_round(m: onnx.ModelProto) -> onnx.ModelProto:
    from onnxslim.core import optimize
    from onnxslim.core.optimization import OptimizationSettings
    from onnxslim.core.pattern.registry import DEFAULT_FUSION_PATTERNS

    OptimizationSettings.reset(["constant_folding", *P.SKIPPED_PASSES])
    try:
        return optimize(m, [k for k in DEFAULT_FUSION_PATTERNS if k.startswith("Fusion")])
    finally:
        OptimizationSettings.reset()


def _nodes(m: onnx.ModelProto) -> list:
    return sorted((n.op_type, tuple(n.input), tuple(n.output)) for n in m.graph.node)


def test_elimination_round_deimv2(benchmark, folded):
    ours, count = benchmark(eliminate, folded)
    assert count > 0 and _nodes(ours) == _nodes(_onnxslim_round(folded))  # the same graph, or the ratio is moot
    times = {"eliminate": [], "onnxslim": []}
    for _ in range(REPEATS):  # interleaved, so that the load of a shared machine falls on both alike
        for name, fn in (("eliminate", eliminate), ("onnxslim", _onnxslim_round)):
            t0 = time.perf_counter()
            fn(folded)
            times[name].append(time.perf_counter() - t0)
    med = {k: float(np.median(v) * 1e3) for k, v in times.items()}
    ratio = med["onnxslim"] / med["eliminate"]
    benchmark.extra_info.update({"eliminate_ms": round(med["eliminate"], 1), "onnxslim_ms": round(med["onnxslim"], 1),
                                 "speedup": round(ratio, 1), "nodes": len(folded.graph.node)})
    print(f"\nelimination round on DEIMv2-Atto ({len(folded.graph.node)} nodes): eliminate {med['eliminate']:.1f} ms, "
          f"onnxslim {med['onnxslim']:.1f} ms (medians of {REPEATS}, interleaved): {ratio:.1f}x")
