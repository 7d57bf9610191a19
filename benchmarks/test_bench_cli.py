"""CLI start-up (issue #13): ``hailo-qa lint`` of a small model vs a bare ``import onnx; onnx.load(m)``.

Run: ``pytest benchmarks/test_bench_cli.py --benchmark-enable -s``. Each command runs in a fresh interpreter,
interleaved ``ROUNDS`` times so both see the same machine load; the medians and their ratio (target ≤ 1.5) are
printed and put in ``extra_info``, never asserted (timing on a shared CI box is noise). What the commands import is
asserted structurally in ``tests/test_cli.py``.
"""
from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time

from hailo_qa.config import REPO_ROOT

MODEL = REPO_ROOT / "fixtures/models/fsq_behaviour_classifier.onnx"
ROUNDS = int(os.environ.get("HQA_BENCH_CLI_ROUNDS", "3" if os.environ.get("CI") else "11"))


def _seconds(argv: list[str]) -> float:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
    t0 = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True, env=env, cwd=REPO_ROOT)
    return time.perf_counter() - t0


def test_lint_start_vs_onnx_load(benchmark):
    bare = [sys.executable, "-c", f"import onnx; onnx.load({str(MODEL)!r})"]
    lint = [sys.executable, "-m", "hailo_qa", "lint", str(MODEL), "--no-dfc"]
    help_ = [sys.executable, "-m", "hailo_qa", "--help"]
    tb, tl, th = [], [], []
    for _ in range(ROUNDS):
        tb.append(_seconds(bare))
        tl.append(_seconds(lint))
        th.append(_seconds(help_))
    mb, ml, mh = (statistics.median(t) for t in (tb, tl, th))
    benchmark.pedantic(_seconds, args=(lint,), rounds=1, iterations=1)
    info = {"onnx_load_median_s": round(mb, 3), "lint_median_s": round(ml, 3), "help_median_s": round(mh, 3),
            "ratio_lint_over_onnx_load": round(ml / mb, 3), "target_ratio_max": 1.5, "rounds": ROUNDS,
            "model": MODEL.name}
    benchmark.extra_info.update(info)
    print(f"\nhailo-qa lint {MODEL.name}: {ml:.3f} s vs onnx.load {mb:.3f} s → ratio {ml / mb:.2f} (target ≤ 1.5); "
          f"--help {mh:.3f} s")
