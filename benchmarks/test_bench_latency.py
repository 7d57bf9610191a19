"""Latency benchmarks stored by pytest-benchmark (run with --benchmark-enable to measure).

The benchmark fixture times the float ORT runner on YuNet; ``benchmark.extra_info`` carries hailo-qa's own
percentiles (LatencyStats) of the same runner, so both land in the pytest-benchmark JSON.
"""
from __future__ import annotations

import numpy as np
import pytest

from hailo_qa.hw.latency import measure_runner


@pytest.fixture(scope="module")
def yunet(hqa_manifest):
    from hailo_qa.inputs import random_feeds

    spec = hqa_manifest.get("yunet")
    return spec, random_feeds(spec, np.random.default_rng(0))


def test_bench_ort_yunet_latency(benchmark, yunet):
    from hailo_qa.runners.onnxrt import OnnxrtRunner

    spec, feeds = yunet
    with OnnxrtRunner(spec.file, threads=1) as r:
        lat = measure_runner(r, feeds, warmup=2, iterations=10)
        out = benchmark(r.infer, feeds)
    s = lat["end_to_end"]
    benchmark.extra_info.update({"model": spec.name, "backend": r.backend.label(), **{
        k: v for k, v in s.to_dict().items() if k.endswith("_ms") or k in ("cov_pct", "fps", "count")}})
    assert out and 0 < s.p50_ms <= s.p95_ms <= s.max_ms
