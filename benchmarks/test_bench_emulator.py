"""Built-in emulator (``ort-emulator``): calibration time, and quantized vs float Stage-1 inference time.

Run: ``pytest benchmarks/test_bench_emulator.py --benchmark-enable --benchmark-json=bench.json``.
The inference target (quantized ≤ 2× float, same Stage 1, same input, one run) is reported in ``extra_info`` as
medians of interleaved runs and their ratio; it is not asserted (timing on a shared CI box is noise).
The model is MobileFaceNet when its file is present (``shared:``), else YuNet.
"""
from __future__ import annotations

import itertools
import statistics
import time

import numpy as np
import pytest

from hailo_qa.graph.split import split_for_model
from hailo_qa.manifest import load_manifest
from hailo_qa.quant.calib import calib_set_for_model
from hailo_qa.quant.emulator import make_emulator
from hailo_qa.runners.emulator_ort import quant_config_for, quantize_stage1
from hailo_qa.runners.onnxrt import OnnxrtRunner

CALIB_SIZE = 8
INTERLEAVED = 30


@pytest.fixture(scope="module")
def model():
    m = load_manifest()
    for name in ("mobilefacenet", "yunet"):
        spec = m.get(name)
        if spec.available:
            return spec
    pytest.skip("neither mobilefacenet nor yunet is present")


@pytest.fixture(scope="module")
def split(model, tmp_path_factory):
    return split_for_model(model, tmp_path_factory.mktemp("split"))


def test_calibration_time(benchmark, model, split, tmp_path_factory):
    calib = calib_set_for_model(model, size=CALIB_SIZE)
    cfg = quant_config_for(model, "int8")
    inp = split.stage1_inputs[0]
    fresh = (tmp_path_factory.mktemp(f"q{k}") for k in itertools.count())  # a new cache folder per round

    def quantize():
        return quantize_stage1(split.stage1_path, calib, cfg, next(fresh), input_name=inp,
                               layout=model.input(inp).layout)

    path, meta = benchmark.pedantic(quantize, rounds=3, iterations=1)
    benchmark.extra_info.update({"model": model.name, "calib_size": CALIB_SIZE, "config": "int8"})
    assert path.is_file() and path.stat().st_size > 0


def test_quantized_vs_float_inference(benchmark, model, split, tmp_path):
    calib = calib_set_for_model(model, size=CALIB_SIZE)
    inp = split.stage1_inputs[0]
    x = next(iter(calib.iter_samples(as_onnx_input=True)))
    if model.input(inp).layout == "NHWC":
        x = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    feeds = {inp: x}
    q = make_emulator(model, split, backend="ort", config="int8", calib=calib, work_dir=tmp_path)
    with OnnxrtRunner(split.stage1_path, name="float") as f, q:
        f.infer(feeds), q.infer(feeds)  # warm-up
        tf, tq = [], []
        for _ in range(INTERLEAVED):  # interleaved, so both see the same machine load
            t0 = time.perf_counter()
            f.infer(feeds)
            t1 = time.perf_counter()
            q.infer(feeds)
            tf.append(t1 - t0)
            tq.append(time.perf_counter() - t1)
        out = benchmark(q.infer, feeds)
    mf, mq = statistics.median(tf) * 1e3, statistics.median(tq) * 1e3
    benchmark.extra_info.update({"model": model.name, "float_median_ms": round(mf, 3),
                                 "quantized_median_ms": round(mq, 3), "ratio_quantized_over_float": round(mq / mf, 3),
                                 "target_ratio_max": 2.0, "interleaved_runs": INTERLEAVED,
                                 "backend": q.backend.label()})
    assert out and all(np.isfinite(v).all() for v in out.values())
