"""Lint and split cost against node count (issue #13): registered and unseen models plus synthetic chains 10× apart.

Run: ``pytest benchmarks/test_bench_lint_scaling.py --benchmark-enable -s``. Prints milliseconds per node for each
model and the ratio of per-node cost between a 10× larger and a smaller synthetic chain (≈ 1 when linear). Timing is
reported, never asserted (a shared CI box is noise). Every run is cold (no preparation cache is passed); imports
are warm.
With ``CI`` set (timing off) each figure is measured once and the chains are 10× smaller.
"""
from __future__ import annotations

import os
import statistics
import time

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from hailo_qa.config import REPO_ROOT, SHARED_DIR
from hailo_qa.graph.lint import lint_onnx
from hailo_qa.graph.split import stages_from_onnx

CI = bool(os.environ.get("CI"))
REPEATS = 1 if CI else 3
BLOCKS = (4, 40) if CI else (40, 400)  # × 5 nodes: 200 → 2000 nodes (20 → 200 in CI)


def chain(n_blocks: int) -> onnx.ModelProto:
    """Blocks of 5 nodes, each with folding work: a Transpose of a weight (a constant subgraph), Conv, Relu, and a
    Shape → Reshape (a shape subgraph onnx's data propagation resolves and the folder removes)."""
    rng = np.random.default_rng(0)
    nodes, inits, x = [], [], "x"
    for k in range(n_blocks):
        inits.append(numpy_helper.from_array(rng.normal(0, 0.1, (1, 1, 8, 8)).astype(np.float32), f"w{k}"))
        nodes += [helper.make_node("Transpose", [f"w{k}"], [f"wt{k}"], perm=[2, 3, 0, 1]),
                  helper.make_node("Conv", [x, f"wt{k}"], [f"c{k}"]),
                  helper.make_node("Relu", [f"c{k}"], [f"r{k}"]),
                  helper.make_node("Shape", [f"r{k}"], [f"s{k}"]),
                  helper.make_node("Reshape", [f"r{k}", f"s{k}"], [f"y{k}"])]
        x = f"y{k}"
    g = helper.make_graph(nodes, "chain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 8, 16, 16])],
                          [helper.make_tensor_value_info(x, TensorProto.FLOAT, ["N", 8, 16, 16])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def _median(fn, n: int = REPEATS) -> float:
    ts = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


MODELS = sorted({p.name: p for p in [*(SHARED_DIR / "models").glob("*.onnx"),
                                     *(REPO_ROOT / "fixtures" / "models").glob("*.onnx"),
                                     *(REPO_ROOT / "fixtures" / "unseen").glob("*.onnx")]}.values())


def _shapes(m: onnx.ModelProto) -> dict[str, list[int]]:
    init = {t.name for t in m.graph.initializer}
    return {i.name: [d.dim_value if d.dim_value > 0 else (1 if k == 0 else 64)
                     for k, d in enumerate(i.type.tensor_type.shape.dim)] for i in m.graph.input if i.name not in init}


@pytest.mark.parametrize("path", MODELS, ids=[p.stem for p in MODELS])
def test_lint_cost_per_node(benchmark, path):
    m = onnx.load(str(path))
    shapes = _shapes(m)
    t = benchmark.pedantic(lambda: _median(lambda: lint_onnx(path, shapes=shapes, use_dfc=False)),
                           rounds=1, iterations=1)
    n = len(m.graph.node)
    benchmark.extra_info.update({"nodes": n, "lint_s": round(t, 4), "ms_per_node": round(1e3 * t / n, 4)})
    print(f"\nlint {path.stem}: {n} nodes, {t:.3f} s, {1e3 * t / n:.3f} ms/node")


def test_lint_and_split_are_linear_in_node_count(benchmark, tmp_path):
    small, large = chain(BLOCKS[0]), chain(BLOCKS[1])
    ns, nl = len(small.graph.node), len(large.graph.node)
    ps, pl = tmp_path / "small.onnx", tmp_path / "large.onnx"
    onnx.save(small, ps)
    onnx.save(large, pl)

    def run():
        out = {}
        for name, p in (("small", ps), ("large", pl)):
            out[f"lint_{name}"] = _median(lambda p=p: lint_onnx(p, use_dfc=False))
            out[f"split_{name}"] = _median(lambda p=p: stages_from_onnx(p, image_inputs=["x"], use_dfc=False))
        return out

    t = benchmark.pedantic(run, rounds=1, iterations=1)
    ratio_lint = (t["lint_large"] / nl) / (t["lint_small"] / ns)
    ratio_split = (t["split_large"] / nl) / (t["split_small"] / ns)
    benchmark.extra_info.update({**{k: round(v, 4) for k, v in t.items()}, "nodes": [ns, nl],
                                 "per_node_ratio_lint_10x": round(ratio_lint, 3),
                                 "per_node_ratio_split_10x": round(ratio_split, 3)})
    print(f"\nlint {ns} → {nl} nodes: {t['lint_small']:.3f} → {t['lint_large']:.3f} s "
          f"({1e3 * t['lint_small'] / ns:.2f} → {1e3 * t['lint_large'] / nl:.2f} ms/node), per-node ratio "
          f"{ratio_lint:.2f} (1 = linear); split: {t['split_small']:.3f} → {t['split_large']:.3f} s "
          f"({1e3 * t['split_small'] / ns:.2f} → {1e3 * t['split_large'] / nl:.2f} ms/node), per-node ratio "
          f"{ratio_split:.2f}")
