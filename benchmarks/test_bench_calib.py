"""Calibration streaming memory: 1k vs 8k samples of 112x112x3 must stay flat (peak delta < 50 MB).

Materialised, 8k float32 samples of 3x112x112 are ~1.15 GB (~301 MB even as uint8); streamed through
``iter_samples`` + ``summary`` the peak (tracemalloc, which sees NumPy's allocations) must not grow with the
sample count. Memory, not wall clock, so an assert is fine; the figures go to ``benchmark.extra_info``.
"""
from __future__ import annotations

import tracemalloc

import numpy as np

from hailo_qa.manifest import InputSpec, Preprocess
from hailo_qa.quant.calib import calib_set_from_files

SHAPE = (1, 3, 112, 112)
MB = 1024 * 1024


def _peak_streaming(files, inp: InputSpec, size: int) -> tuple[int, int]:
    """(peak bytes, samples seen) while building, streaming and summarising a set of ``size`` samples."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    try:
        cs = calib_set_from_files(files, inp, size=size, seed=0, model="bench", augment=True)  # opt-in since #10
        seen = sum(1 for _ in cs.iter_samples())
        s = cs.summary()
        assert s.count == size == seen
        return tracemalloc.get_traced_memory()[1], seen
    finally:
        tracemalloc.stop()


def test_calib_streaming_memory_is_flat(benchmark, tmp_path):
    rng = np.random.default_rng(0)
    files = []
    for i in range(16):  # 16 real samples; the rest is the lazily built, seeded augmentation stream
        p = tmp_path / f"s{i:02d}.npy"
        np.save(p, rng.uniform(-1, 1, SHAPE).astype(np.float32))
        files.append(p)
    inp = InputSpec("input", SHAPE, range=(-1.0, 1.0),
                    preprocess=Preprocess("RGB", (127.5,) * 3, (127.5,) * 3))

    def run():
        return _peak_streaming(files, inp, 1000), _peak_streaming(files, inp, 8000)

    (peak_1k, n1), (peak_8k, n8) = benchmark.pedantic(run, rounds=1, iterations=1)
    delta = peak_8k - peak_1k
    materialised = 8000 * int(np.prod(SHAPE)) * 4
    benchmark.extra_info.update({
        "peak_1k_mb": round(peak_1k / MB, 2), "peak_8k_mb": round(peak_8k / MB, 2),
        "delta_mb": round(delta / MB, 2), "ratio_8k_over_1k": round(peak_8k / peak_1k, 3),
        "materialised_8k_mb": round(materialised / MB, 1), "samples": [n1, n8]})
    assert delta < 50 * MB, f"peak grew by {delta / MB:.1f} MB from 1k to 8k samples (limit 50 MB)"
    assert peak_8k < materialised / 10  # nowhere near holding the set


# ---- calibration at the floor (issue #13) ----------------------------------------------------------------------
import os  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import pytest  # noqa: E402

CALIB_SIZES = [int(s) for s in os.environ.get("HQA_BENCH_CALIB_SIZES",
                                              "16" if os.environ.get("CI") else "128,1024").split(",")]
"""Samples of YuNet's Stage 1 (issue #13 asks for 128 and 1024; CI runs 16 so the suite stays short)."""


@pytest.fixture(scope="module")
def yunet_stage1(tmp_path_factory):
    from hailo_qa.graph.split import split_for_model
    from hailo_qa.manifest import load_manifest

    spec = load_manifest().get("yunet")
    if not spec.available:
        pytest.skip(f"yunet is not present: {spec.unavailable}")
    return spec, split_for_model(spec, tmp_path_factory.mktemp("split"))


@pytest.mark.parametrize("size", CALIB_SIZES)
def test_range_collection_vs_float_inference(benchmark, yunet_stage1, size):
    """Collecting activation ranges (in-graph ReduceMin/ReduceMax, batched) vs float inference of the same samples.

    Both stream the same samples from the same CalibSet; the sample decoding is timed apart and left out of both.
    Prints the ratio (target ≤ 1.5) and the tracemalloc peak of the collection (flat in the sample count).
    """
    from hailo_qa.quant.calib import calib_set_for_model
    from hailo_qa.runners.calib_ranges import InGraphRanges
    from hailo_qa.runners.emulator_ort import CalibReader
    from hailo_qa.runners.onnxrt import OnnxrtRunner

    spec, split = yunet_stage1
    inp = split.stage1_inputs[0]
    calib = calib_set_for_model(spec, size=size)
    layout = spec.input(inp).layout
    samples = list(CalibReader(calib, inp, layout=layout))  # decoded once, so both timings see only the model
    it = iter(samples)

    class Reader:
        def get_next(self):
            return next(it, None)

        def rewind(self):
            nonlocal it
            it = iter(samples)

    with OnnxrtRunner(split.stage1_path) as f:
        f.infer(samples[0], check=False)
        t0 = time.perf_counter()
        for feeds in samples:
            f.infer(feeds, check=False)
        t_float = time.perf_counter() - t0

    def collect():
        Reader().rewind()
        col = InGraphRanges(split.stage1_path, None)
        tracemalloc.start()
        t = time.perf_counter()
        col.collect_data(Reader())
        dt = time.perf_counter() - t
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return col, dt, peak

    col, t_graph, peak = benchmark.pedantic(collect, rounds=1, iterations=1)
    sample_mb = samples[0][inp].nbytes / MB
    info = {"model": "yunet", "samples": size, "float_s": round(t_float, 3), "ranges_s": round(t_graph, 3),
            "ratio_ranges_over_float": round(t_graph / t_float, 3), "target_ratio_max": 1.5,
            "batched": bool(col.batched), "batch": col.batch, "tensors": len(col.tensors),
            "python_peak_mb": round(peak / MB, 2), "one_sample_mb": round(sample_mb, 2)}
    benchmark.extra_info.update(info)
    print(f"\nyunet Stage 1, {size} samples: ranges {t_graph:.2f} s vs float {t_float:.2f} s → ratio "
          f"{t_graph / t_float:.2f} (target ≤ 1.5); batched={col.batched}; peak {peak / MB:.1f} MB (Python side)")
    assert col.samples == size
    assert peak < (col.batch + 4) * sample_mb * MB + 64 * MB  # a batch in flight, never the set
