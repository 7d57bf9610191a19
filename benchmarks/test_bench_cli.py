"""CLI start-up (issue #13): ``hailo-qa lint`` of a small model vs a bare ``import onnx; onnx.load(m)``, ``--help``,
and ``lint`` / ``split`` of DEIMv2-Atto as a user runs them (a fresh interpreter each time).

Run: ``pytest benchmarks/test_bench_cli.py --benchmark-enable -s``. Each command runs in a fresh interpreter,
interleaved ``ROUNDS`` times so all see the same machine load; the medians and the lint/onnx.load ratio (target
≤ 1.5) are printed and put in ``extra_info``, never asserted (timing on a shared CI box is noise). Every run is cold:
hailo-qa keeps no cache of lint or split results. What the commands import is asserted structurally in
``tests/test_cli_startup.py``. With ``CI`` set (timing off) each command runs once.
"""
from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time

from hailo_qa.config import REPO_ROOT

MODEL = REPO_ROOT / "fixtures/models/fsq_behaviour_classifier.onnx"
DEIM = REPO_ROOT / "fixtures/models/deimv2_hgnetv2_atto_coco.onnx"
ROUNDS = int(os.environ.get("HQA_BENCH_CLI_ROUNDS", "1" if os.environ.get("CI") else "11"))


def _seconds(argv: list[str]) -> float:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
    t0 = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True, env=env, cwd=REPO_ROOT)
    return time.perf_counter() - t0


def _interleaved(commands: dict[str, list[str]], rounds: int) -> dict[str, float]:
    """Median seconds of each command, the commands interleaved round by round."""
    times: dict[str, list[float]] = {k: [] for k in commands}
    for _ in range(rounds):
        for k, argv in commands.items():
            times[k].append(_seconds(argv))
    return {k: statistics.median(v) for k, v in times.items()}


def test_lint_start_vs_onnx_load(benchmark):
    hq = [sys.executable, "-m", "hailo_qa"]
    med = _interleaved({"onnx_load": [sys.executable, "-c", f"import onnx; onnx.load({str(MODEL)!r})"],
                        "lint": [*hq, "lint", str(MODEL), "--no-dfc"], "help": [*hq, "--help"]}, ROUNDS)
    benchmark.pedantic(_seconds, args=([*hq, "lint", str(MODEL), "--no-dfc"],), rounds=1, iterations=1)
    ratio = med["lint"] / med["onnx_load"]
    benchmark.extra_info.update({"onnx_load_median_s": round(med["onnx_load"], 3),
                                 "lint_median_s": round(med["lint"], 3), "help_median_s": round(med["help"], 3),
                                 "ratio_lint_over_onnx_load": round(ratio, 3), "target_ratio_max": 1.5,
                                 "rounds": ROUNDS, "model": MODEL.name})
    print(f"\nhailo-qa lint {MODEL.name}: {med['lint']:.3f} s vs onnx.load {med['onnx_load']:.3f} s → ratio "
          f"{ratio:.2f} (target ≤ 1.5); --help {med['help']:.3f} s (target < 1 s); {ROUNDS} rounds")


def test_deimv2_lint_and_split_commands(benchmark, tmp_path):
    """``hailo-qa lint`` and ``hailo-qa split`` (with its default one-input proof and the files written) of
    DEIMv2-Atto, start-up included; the in-process medians are ``test_bench_split.py``'s."""
    hq = [sys.executable, "-m", "hailo_qa"]
    lint = [*hq, "lint", str(DEIM), "--no-dfc"]
    split = [*hq, "split", str(DEIM), "--out", str(tmp_path / "out"), "--no-dfc", "--input", "images"]
    rounds = max(1, ROUNDS // 2)
    med = _interleaved({"onnx_load": [sys.executable, "-c", f"import onnx; onnx.load({str(DEIM)!r})"],
                        "lint": lint, "split": split}, rounds)
    benchmark.pedantic(_seconds, args=(lint,), rounds=1, iterations=1)
    benchmark.extra_info.update({**{f"{k}_median_s": round(v, 3) for k, v in med.items()}, "rounds": rounds,
                                 "ratio_lint_over_onnx_load": round(med["lint"] / med["onnx_load"], 3)})
    print(f"\nDEIMv2-Atto commands: lint {med['lint']:.3f} s, split {med['split']:.3f} s, bare onnx.load "
          f"{med['onnx_load']:.3f} s; {rounds} rounds")
