"""``hailo-qa report`` on a history of 1,037 runs (a build host and a Pi, ~27,000 rows), the size the issue measured.

Run: ``pytest benchmarks/test_bench_report.py --benchmark-enable``. The issue measured 2 min 08 s (128 s) for that
size before the report was rebuilt; ``extra_info["ratio_to_before"]`` is this run's time over those 128 s (the
target is a few seconds: well under 0.1). Not asserted (timing on a shared CI box is noise).
"""
from __future__ import annotations

import time

import pytest

from hailo_qa.store import history as H
from hailo_qa.store import report as R
from tests.store import synth

RUNS = 1037
BEFORE_S = 128.0


@pytest.fixture(scope="module")
def big_history(tmp_path_factory):
    path = tmp_path_factory.mktemp("bench-report") / "history.sqlite"
    with H.History(path) as h:
        rows = synth.fill(h, RUNS)
    return path, rows


def test_report_of_a_thousand_runs(benchmark, big_history, tmp_path):
    path, rows = big_history
    with H.History(path, readonly=True) as h:
        t = time.perf_counter()
        files = benchmark.pedantic(R.write_report, args=(h, tmp_path / "out"), kwargs={"progress": None},
                                   rounds=1, iterations=1)
        took = time.perf_counter() - t
    benchmark.extra_info.update(runs=RUNS, rows=rows, plots=len(files.plots), seconds=round(took, 2),
                                ratio_to_before=round(took / BEFORE_S, 4),
                                html_kb=files.html.stat().st_size // 1024)
    assert len(files.plots) == 7 and files.html.stat().st_size < 3_000_000
