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
        cs = calib_set_from_files(files, inp, size=size, seed=0, model="bench")
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
