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
    """Collecting activation ranges vs float inference of the same samples, interleaved sample by sample.

    The samples stream from one seeded random CalibSet (``source="random"``: the model's declared input range, as
    the DFC's ``--use-random-calib-set``; never all in memory). Each sample the collector asks for is first run
    through the float Stage 1 twice, timed apart: optimized as ORT runs it by default (``ENABLE_ALL``, the issue's
    reference) and unoptimized (``DISABLE_ALL``, the kernels the collector must use to stay bit-exact with ORT's
    calibrator). The collection time is the wall time of building the collector and ``collect_data`` minus the
    sample decoding and those float runs, so all three see the same samples under the same machine load. Prints
    both ratios (the issue's target: ≤ 1.5 vs optimized) and the collection's tracemalloc peak, which must not grow
    with the sample count (a batch in flight, never the set). A third timed run per sample puts the same reductions
    on ORT's optimized kernels (``ENABLE_ALL``, which changes the last bits of the ranges, so not what calibration
    uses): what giving up bit-exactness would buy.
    """
    from hailo_qa.quant.calib import calib_set_for_model
    from hailo_qa.runners.calib_ranges import InGraphRanges, stats_model
    from hailo_qa.runners.emulator_ort import CalibReader
    from hailo_qa.runners.onnxrt import session_from_onnx

    spec, split = yunet_stage1
    inp = split.stage1_inputs[0]
    calib = calib_set_for_model(spec, size=size, source="random")
    layout = spec.input(inp).layout
    floats = {"opt": session_from_onnx(split.stage1_path),
              "noopt": session_from_onnx(split.stage1_path, optimize=False, prepack=True)}  # prepack as the collector
    # the road not taken: the same stats model on ORT's optimized kernels (not exact: NCHWc moves last bits)
    probe = InGraphRanges(split.stage1_path, None)
    floats["stats_opt"] = session_from_onnx(stats_model(probe._model, probe.reduced))
    warm = next(iter(CalibReader(calib, inp, layout=layout)))
    for sess in floats.values():
        sess.run(None, warm)
    spent = {"opt": 0.0, "noopt": 0.0, "stats_opt": 0.0, "outside": 0.0}

    class Reader:  # decodes a sample, runs both float models on it (timed apart), hands it to the collector
        def __init__(self):
            self.it = iter(CalibReader(calib, inp, layout=layout))

        def get_next(self):
            t0 = time.perf_counter()
            item = next(self.it, None)
            if item is not None:
                for k, sess in floats.items():
                    t = time.perf_counter()
                    sess.run(None, item)
                    spent[k] += time.perf_counter() - t
            spent["outside"] += time.perf_counter() - t0
            return item

        def rewind(self):
            self.it = iter(CalibReader(calib, inp, layout=layout))

    def collect():
        tracemalloc.start()
        t = time.perf_counter()
        col = InGraphRanges(split.stage1_path, None)
        col.collect_data(Reader())
        dt = time.perf_counter() - t - spent["outside"]
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return col, dt, peak

    col, t_ranges, peak = benchmark.pedantic(collect, rounds=1, iterations=1)
    sample_mb = warm[inp].nbytes / MB
    r_opt, r_noopt = t_ranges / spent["opt"], t_ranges / spent["noopt"]
    r_inexact = spent["stats_opt"] / spent["opt"]
    info = {"model": "yunet", "samples": size, "float_optimized_s": round(spent["opt"], 3),
            "float_unoptimized_s": round(spent["noopt"], 3), "ranges_s": round(t_ranges, 3),
            "ratio_vs_optimized_float": round(r_opt, 3), "target_ratio_max": 1.5,
            "ratio_vs_unoptimized_float": round(r_noopt, 3),
            "unoptimized_over_optimized_float": round(spent["noopt"] / spent["opt"], 3),
            "inexact_optimized_ranges_over_optimized_float": round(r_inexact, 3),
            "batch": col.batch, "batchable": bool(col.batchable), "probe": col.probe,
            "tensors": len(col.tensors), "reduced": len(col.reduced),
            "python_peak_mb": round(peak / MB, 2), "one_sample_mb": round(sample_mb, 2)}
    benchmark.extra_info.update(info)
    print(f"\nyunet Stage 1, {size} samples: ranges {t_ranges:.2f} s; float optimized {spent['opt']:.2f} s → ratio "
          f"{r_opt:.2f} (target ≤ 1.5); float unoptimized {spent['noopt']:.2f} s → ratio {r_noopt:.2f} "
          f"(the floor for bit-exact ranges is unoptimized/optimized = {spent['noopt'] / spent['opt']:.2f}; "
          f"the same reductions on the optimized, inexact kernels: {r_inexact:.2f}); "
          f"batch {col.batch}; {len(col.reduced)} of {len(col.tensors)} tensors reduced; Python peak "
          f"{peak / MB:.1f} MB")
    assert col.samples == size
    assert peak < (col.max_batch + 4) * sample_mb * MB + 64 * MB  # a batch in flight, never the set


# ---- 1024-8192 real files (issue #10 item 7) --------------------------------------------------------------------
FILE_COUNTS = [int(s) for s in os.environ.get("HQA_BENCH_CALIB_FILES",
                                              "32,128" if os.environ.get("CI") else "1024,8192").split(",")]
"""Real image files per calibration set (issue #10 asks for 1024-8192; CI runs 32 and 128 so it stays fast)."""
FILE_INPUT = (1, 3, 112, 112)
PER_FILE_BUDGET = 2048
"""Bytes the file list may cost per file at the peak (a path string and a slotted record; measured 432 B between 1024
and 8192 files, README: margin 4.7x). One sample is 147 KB as float32: a set holding its samples would exceed this
70 times over."""
STREAM_RATIO_MAX = 1.25
"""Bound of the streaming peak above the list at the largest N over the smallest (measured 0.992 for 8192 / 1024
files: flat; a set that kept one 147 KB sample per 50 files would already exceed it)."""


def _photo_pool() -> list[np.ndarray]:
    """Real photos (../shared/faces, the DEIMv2 sample), decoded once at <= 320 px, to cut real-looking files from."""
    from pathlib import Path

    from PIL import Image

    from hailo_qa.config import SHARED_DIR

    repo = Path(__file__).resolve().parents[1]
    paths = sorted(Path(SHARED_DIR, "faces").rglob("*.jp*g")) + sorted(Path(SHARED_DIR, "faces").rglob("*.png"))
    paths.append(repo / "fixtures/models/deimv2_sample.jpg")
    pool = []
    for p in paths:
        if p.is_file():
            with Image.open(p) as im:
                im = im.convert("RGB")
                im.thumbnail((320, 320))
                pool.append(np.asarray(im))
    return pool


def _write_files(d, n: int, pool: list[np.ndarray]) -> None:
    """``n`` JPEGs of 96-160 px a side, any aspect ratio: seeded crops of the real photos (a camera-like folder)."""
    from PIL import Image

    d.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        src = pool[i % len(pool)]
        h, w = src.shape[:2]
        ch, cw = int(h * rng.uniform(0.5, 1.0)), int(w * rng.uniform(0.5, 1.0))
        y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
        size = (int(rng.integers(96, 161)), int(rng.integers(96, 161)))
        Image.fromarray(src[y:y + ch, x:x + cw]).resize(size).save(d / f"frame_{i:05d}.jpg", quality=85)


def test_calib_of_real_files_streams_in_flat_memory(benchmark, tmp_path):
    """List, validate, stream through the emulator's CalibReader and summarise sets of N real image files.

    tracemalloc (it sees NumPy's and PIL's allocations) separates the file list (a name and a small record per file,
    :data:`PER_FILE_BUDGET`) from the streaming above it, which must not grow with N (:data:`STREAM_RATIO_MAX`);
    every set says it holds N real files and 0 augmented.
    """
    from hailo_qa.manifest import CalibrationSpec, InputSpec, ModelSpec, Preprocess
    from hailo_qa.quant.calib import calib_set_for_model, validate_calib
    from hailo_qa.runners.emulator_ort import CalibReader

    pool = _photo_pool()
    if not pool:
        pytest.skip("no real photos under HAILO_QA_SHARED/faces to cut calibration files from")
    inp = InputSpec("input", FILE_INPUT, range=(-1.0, 1.0),
                    preprocess=Preprocess("RGB", (127.5,) * 3, (127.5,) * 3, resize="letterbox"))
    dirs = {}
    for n in FILE_COUNTS:
        dirs[n] = tmp_path / f"calib{n}"
        _write_files(dirs[n], n, pool)

    def one(n: int) -> dict:
        spec = ModelSpec(name="bench", file=None, task="generic", inputs=(inp,),
                         calibration=CalibrationSpec(source=str(dirs[n])), manifest_path=tmp_path / "m.toml")
        tracemalloc.start()
        tracemalloc.reset_peak()
        try:
            t = time.perf_counter()
            cs = calib_set_for_model(spec, size=n, validate=False)  # list the folder: names, no sample data
            listed, list_peak = tracemalloc.get_traced_memory()
            phases = {}
            for phase, fn in (("validate", lambda: validate_calib(cs)),  # every real sample decoded and checked
                              ("reader", lambda: sum(1 for _ in CalibReader(cs, "input"))),  # the emulator's feed
                              ("summary", cs.summary)):
                tracemalloc.reset_peak()
                phases[phase] = (fn(), tracemalloc.get_traced_memory()[1])
            seen, s = phases["reader"][0], phases["summary"][0]
            stream_peak = max(peak for _, peak in phases.values())
            dt = time.perf_counter() - t
        finally:
            tracemalloc.stop()
        assert (seen, s.count, s.real, s.augmented, s.requested, s.shortfall) == (n, n, n, 0, n, 0)
        return {"files": n, "list_peak_mb": round(list_peak / MB, 2), "listed_mb": round(listed / MB, 2),
                **{f"{k}_over_list_mb": round((v[1] - listed) / MB, 2) for k, v in phases.items()},
                "stream_over_list_mb": round((stream_peak - listed) / MB, 2), "peak_mb": round(
                    max(list_peak, stream_peak) / MB, 2), "seconds": round(dt, 1),
                "_peak": max(list_peak, stream_peak), "_stream": stream_peak - listed}

    runs = benchmark.pedantic(lambda: [one(n) for n in FILE_COUNTS], rounds=1, iterations=1)
    lo, hi = runs[0], runs[-1]
    sample = int(np.prod(FILE_INPUT)) * 4
    per_file = (hi["_peak"] - lo["_peak"]) / max(1, hi["files"] - lo["files"])
    stream_ratio = hi["_stream"] / lo["_stream"]
    info = {"runs": [{k: v for k, v in r.items() if not k.startswith("_")} for r in runs],
            "ratio_peak": round(hi["_peak"] / lo["_peak"], 3), "ratio_stream_over_list": round(stream_ratio, 3),
            "stream_ratio_max": STREAM_RATIO_MAX, "bytes_per_extra_file": round(per_file),
            "per_file_budget": PER_FILE_BUDGET, "one_sample_bytes": sample,
            "materialised_mb": round(hi["files"] * sample / MB, 1)}
    benchmark.extra_info.update(info)
    print("\ncalibration from real files: " + "; ".join(
        f"{r['files']} files: peak {r['peak_mb']} MB (listing peak {r['list_peak_mb']} MB, {r['listed_mb']} MB "
        f"held; streaming {r['stream_over_list_mb']} MB above it: validate {r['validate_over_list_mb']}, reader "
        f"{r['reader_over_list_mb']}, summary {r['summary_over_list_mb']}) in {r['seconds']} s" for r in runs)
        + f"; peak ratio {info['ratio_peak']}, streaming ratio {info['ratio_stream_over_list']} (bound "
          f"{STREAM_RATIO_MAX}); {info['bytes_per_extra_file']} B per extra file (budget {PER_FILE_BUDGET} B); "
          f"materialised {info['materialised_mb']} MB")
    assert stream_ratio < STREAM_RATIO_MAX, f"streaming peak grew {stream_ratio:.2f}x (bound {STREAM_RATIO_MAX})"
    assert per_file < PER_FILE_BUDGET, f"{per_file:.0f} B per extra file (budget {PER_FILE_BUDGET} B)"
