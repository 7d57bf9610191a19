"""CLI start-up (issue #13): ``hailo-qa lint`` of a small model vs a bare ``import onnx; onnx.load(m)``, ``--help``,
and ``lint`` / ``split`` of DEIMv2-Atto as a user runs them (a fresh interpreter each time).

Run: ``pytest benchmarks/test_bench_cli.py --benchmark-enable -s``. Each command runs in a fresh interpreter,
interleaved ``ROUNDS`` times so all see the same machine load; the medians and the lint/onnx.load ratio (target
≤ 1.5) are printed and put in ``extra_info``, never asserted (timing on a shared CI box is noise). The small model
has nothing to fold (no cache is involved); DEIMv2's commands run cold (``--no-cache``: folding and proof every time)
and warm (the proven prepared graph from a primed cache in a private state folder). What the commands import is
asserted structurally in ``tests/test_cli_startup.py``. With ``CI`` set (timing off) each command runs once.
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


def _seconds(argv: list[str], extra_env: dict[str, str] | None = None) -> float:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]),
           **(extra_env or {})}
    t0 = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True, env=env, cwd=REPO_ROOT)
    return time.perf_counter() - t0


def _interleaved(commands: dict[str, list[str]], rounds: int, extra_env: dict[str, str] | None = None) -> dict[str, float]:
    """Median seconds of each command, the commands interleaved round by round."""
    times: dict[str, list[float]] = {k: [] for k in commands}
    for _ in range(rounds):
        for k, argv in commands.items():
            times[k].append(_seconds(argv, extra_env))
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
    DEIMv2-Atto, start-up included, cold (``--no-cache``) and warm (the cache primed once, outside the timing); the
    in-process medians are ``test_bench_split.py``'s."""
    hq = [sys.executable, "-m", "hailo_qa"]
    state = {"HAILO_QA_STATE_DIR": str(tmp_path / "state")}
    lint = [*hq, "lint", str(DEIM), "--no-dfc"]
    split = [*hq, "split", str(DEIM), "--out", str(tmp_path / "out"), "--no-dfc", "--input", "images"]
    _seconds(lint, state)  # primes the cache of proven prepared graphs the warm runs read
    rounds = max(1, ROUNDS // 2)
    med = _interleaved({"onnx_load": [sys.executable, "-c", f"import onnx; onnx.load({str(DEIM)!r})"],
                        "lint_cold": [*lint, "--no-cache"], "lint_warm": lint,
                        "split_cold": [*split, "--no-cache"], "split_warm": split}, rounds, state)
    benchmark.pedantic(_seconds, args=(lint, state), rounds=1, iterations=1)
    benchmark.extra_info.update({**{f"{k}_median_s": round(v, 3) for k, v in med.items()}, "rounds": rounds,
                                 "ratio_lint_cold_over_onnx_load": round(med["lint_cold"] / med["onnx_load"], 3)})
    print(f"\nDEIMv2-Atto commands: lint {med['lint_cold']:.3f} s cold / {med['lint_warm']:.3f} s warm, split "
          f"{med['split_cold']:.3f} s / {med['split_warm']:.3f} s, bare onnx.load {med['onnx_load']:.3f} s; "
          f"{rounds} rounds")
