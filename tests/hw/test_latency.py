"""Latency harness: percentile maths (property-tested), stats, plans, hailortcli parsers, ORT runner on YuNet."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as nps

from hailo_qa.errors import DeviceError, InputDataError, ToolchainError
from hailo_qa.hw.latency import (
    UNSTABLE_COV_PCT,
    LatencyStats,
    collect_samples,
    measure_latency,
    measure_runner,
    parse_benchmark_csv,
    parse_benchmark_stdout,
    parse_run_csv,
    parse_run_stdout,
    run_hailortcli,
    stats_from_samples,
)

durations = nps.arrays(np.float64, st.integers(1, 200),
                       elements=st.floats(1e-6, 10.0, allow_nan=False, allow_infinity=False))


@given(durations)
def test_percentiles_ordered_within_range_and_match_numpy(x):
    s = stats_from_samples(x)
    ms = x * 1e3
    ps = [s.p50_ms, s.p90_ms, s.p95_ms, s.p99_ms, s.max_ms]
    assert all(a <= b + 1e-9 for a, b in itertools.pairwise(ps))           # monotone in q
    assert s.min_ms - 1e-9 <= s.p50_ms and s.p99_ms <= s.max_ms + 1e-9     # within [min, max]
    np.testing.assert_allclose([s.p50_ms, s.p90_ms, s.p95_ms, s.p99_ms], np.percentile(ms, [50, 90, 95, 99]),
                               rtol=1e-12)
    assert s.mean_ms == pytest.approx(ms.mean()) and s.std_ms == pytest.approx(ms.std(), abs=1e-9)
    assert s.fps == pytest.approx(1000.0 / ms.mean())
    assert s.unstable == (s.cov_pct > UNSTABLE_COV_PCT) == bool(s.warnings)


def test_stats_known_values_and_instability_warning():
    s = stats_from_samples([0.001] * 99 + [0.002], name="x")
    assert s.p50_ms == pytest.approx(1.0) and s.max_ms == pytest.approx(2.0) and s.count == 100
    assert s.cov_pct == pytest.approx(100 * np.std([1.0] * 99 + [2.0]) / 1.01)
    assert s.unstable and "unstable" in s.warnings[0]
    flat = stats_from_samples([0.005] * 10)
    assert flat.cov_pct == 0.0 and not flat.unstable and flat.fps == pytest.approx(200.0)
    d = s.to_dict()
    assert d["p95_ms"] == s.p95_ms and isinstance(d["warnings"], list)
    with pytest.raises(AttributeError):
        s.p95_ms = 0  # type: ignore[misc]  # frozen


@pytest.mark.parametrize("bad", [[], [0.1, float("nan")], [0.1, -0.01], [math.inf]])
def test_stats_rejects_bad_samples(bad):
    with pytest.raises(InputDataError):
        stats_from_samples(bad)


class Clock:
    """A fake clock: each reading advances by ``step`` seconds."""

    def __init__(self, step=0.001):
        self.t, self.step = 0.0, step

    def __call__(self):
        self.t += self.step
        return self.t


def test_counts_and_durations():
    calls = []
    done, s = collect_samples(lambda: calls.append(1), warmup=3, iterations=7, timer=Clock())
    assert done == 3 and len(s["wall"]) == 7 and len(calls) == 10
    calls.clear()
    done, s = collect_samples(lambda: calls.append(1), warmup_s=0.01, duration_s=0.02, timer=Clock(0.001))
    assert done >= 1 and len(s["wall"]) >= 1 and len(calls) == done + len(s["wall"])
    st_ = measure_latency(lambda: None, warmup=0, iterations=5, timer=Clock(0.002), name="fixed")
    assert st_.p50_ms == pytest.approx(2.0) and st_.name == "fixed"


@pytest.mark.parametrize("kw", [dict(iterations=0), dict(warmup=-1), dict(duration_s=0.0), dict(warmup_s=-1.0)])
def test_bad_plans(kw):
    with pytest.raises(InputDataError):
        measure_latency(lambda: None, **kw)


def test_probes_collect_stage_samples():
    vals = iter([0.001, 0.002, 0.003])
    _, s = collect_samples(lambda: None, warmup=0, iterations=3, probes={"dev": lambda: next(vals),
                                                                         "none": lambda: None})
    np.testing.assert_allclose(s["dev"], [0.001, 0.002, 0.003])
    assert "none" not in s


# --- hailortcli ---------------------------------------------------------------------------------------------------
RUN_STDOUT = """\
Running streaming inference (arcface.hef):
  Transform data: true
> Inference result:
 Network group: arcface_mobilefacenet
    Frames count: 1000
    FPS: 1612.44
    Send Rate: 485.11 Mbit/s
    Recv Rate: 6.60 Mbit/s
    HW Latency: 1.93 ms
    Overall Latency: 2.41 ms

"""
RUN_CSV = ("net_name,status,status_description,fps,num_of_frames,send_rate,recv_rate,hw_latency,overall_latency,"
           "min_power,average_power,max_power,min_current,average_current,max_current,min_temp,average_temp,max_temp\n"
           "arcface_mobilefacenet,0,HAILO_SUCCESS,1612.44,1000,485.11,6.6,1.93,2.41,,,,,,,,,\n")
BENCH_STDOUT = """\
=======
Summary
=======
FPS     (hw_only)                 = 3449.95
        (streaming)               = 3447.01
Latency (hw)                      = 1.79 ms
        (overall)                 = 2.03 ms
"""
BENCH_CSV = ("net_name,fps,hw_only_fps,num_of_frames,num_of_frames_hw_only,hw_latency,overall_latency,min_power,"
             "average_power,max_power\narcface_mobilefacenet,3447.01,3449.95,51705,51749,1.79,2.03,,,\n")


def test_parse_run_stdout_and_csv_agree():
    a, = parse_run_stdout(RUN_STDOUT)
    b, = parse_run_csv(RUN_CSV)
    for r in (a, b):
        assert r.network_group == "arcface_mobilefacenet" and r.frames == 1000
        assert r.fps == pytest.approx(1612.44) and r.hw_latency_ms == pytest.approx(1.93)
        assert r.overall_latency_ms == pytest.approx(2.41) and r.send_rate_mbit_s == pytest.approx(485.11)
    assert b.status == "HAILO_SUCCESS"


def test_parse_benchmark_stdout_and_csv():
    a = parse_benchmark_stdout(BENCH_STDOUT)
    b, = parse_benchmark_csv(BENCH_CSV)
    for r in (a, b):
        assert r.fps == pytest.approx(3447.01) and r.hw_only_fps == pytest.approx(3449.95)
        assert r.hw_latency_ms == pytest.approx(1.79) and r.overall_latency_ms == pytest.approx(2.03)
    assert b.frames == 51705 and b.to_dict()["command"] == "benchmark"


def test_parse_failed_run_csv_row():
    r, = parse_run_csv(RUN_CSV.splitlines()[0] + "\nnet,4,HAILO_TIMEOUT,,,,,,,,,,,,,,,\n")
    assert r.status == "HAILO_TIMEOUT" and r.fps is None and r.hw_latency_ms is None
    assert r.failed and r.status_code == 4 and "FAILED with status 4 (HAILO_TIMEOUT)" in r.describe()
    ok, = parse_run_csv(RUN_CSV)
    assert not ok.failed and ok.status_code == 0 and ok.to_dict()["failed"] is False


@pytest.mark.parametrize("fn, text", [(parse_run_stdout, "Error: device not found\n"),
                                      (parse_benchmark_stdout, "nothing here"),
                                      (parse_run_csv, "a,b,c\n1,2,3\n"),
                                      (parse_run_csv, RUN_CSV.replace("1612.44", "fast"))])
def test_parse_errors(fn, text):
    with pytest.raises(ToolchainError):
        fn(text)


def test_run_hailortcli_absent_or_failing(tmp_path, monkeypatch):
    from hailo_qa import toolchain

    monkeypatch.setattr(toolchain, "hailortcli", lambda: None)
    with pytest.raises(DeviceError, match="not on PATH"):
        run_hailortcli(tmp_path / "x.hef")
    exe = tmp_path / "hailortcli"
    exe.write_text("#!/bin/sh\necho '[HailoRT] [error] CHECK failed - no device' >&2\nexit 3\n")
    exe.chmod(0o755)
    with pytest.raises(DeviceError, match="exit 3"):
        run_hailortcli(tmp_path / "x.hef", exe=str(exe))


def test_run_hailortcli_parses_the_csv_it_asked_for(tmp_path):
    exe = tmp_path / "hailortcli"   # a stand-in program that writes the CSV where --csv says
    exe.write_text("#!/bin/sh\nwhile [ $# -gt 0 ]; do if [ \"$1\" = --csv ]; then shift; "
                   f"printf '%s' '{RUN_CSV}' > \"$1\"; fi; shift; done\n")
    exe.chmod(0o755)
    r, = run_hailortcli(tmp_path / "x.hef", exe=str(exe))
    assert r.hw_latency_ms == pytest.approx(1.93)


# --- the harness on a real model through the ORT runner (CI) ----------------------------------------------------
def test_harness_on_yunet_with_ort(hqa_manifest):
    from hailo_qa.inputs import random_feeds
    from hailo_qa.runners.onnxrt import OnnxrtRunner

    spec = hqa_manifest.get("yunet")
    feeds = random_feeds(spec, np.random.default_rng(0))
    lat = measure_runner(OnnxrtRunner(spec.file, threads=1), feeds, warmup=2, iterations=8)
    s = lat["end_to_end"]
    assert isinstance(s, LatencyStats) and s.count == 8 and s.warmup == 2
    assert 0 < s.min_ms <= s.p50_ms <= s.p90_ms <= s.p95_ms <= s.p99_ms <= s.max_ms
    assert math.isfinite(s.cov_pct) and s.cov_pct >= 0 and s.fps > 0
    assert lat.setup_ms["enter_ms"] > 0 and lat.backend["name"] == "onnxruntime"


# --- hailortcli as the second witness (item 5 of issue 9) ----------------------------------------------------------
HEADER = RUN_CSV.splitlines()[0]
TWO_NETS_CSV = (f"{HEADER}\n"
                "g/net_a,0,HAILO_SUCCESS,900.5,1000,100,10,1.25,2.5,1.1,1.4,1.9,,,,,,\n"
                "g/net_b,0,HAILO_SUCCESS,450.0,1000,100,10,2.75,3.5,1.1,1.4,1.9,,,,,,\n")


def test_several_networks_and_power_are_separate_rows():
    a, b = parse_run_csv(TWO_NETS_CSV)
    assert (a.network_group, a.hw_latency_ms, b.network_group, b.hw_latency_ms) == ("g/net_a", 1.25, "g/net_b", 2.75)
    assert (a.min_power_w, a.average_power_w, a.max_power_w) == (1.1, 1.4, 1.9)
    assert "power avg 1.400 W" in a.describe() and "HW latency 2.750 ms" in b.describe()


def _shared_hef(name):
    from hailo_qa import config

    p = config.SHARED_DIR / "hef" / name
    if not p.is_file():
        pytest.skip(f"shared HEF missing at {p}")
    return p


def test_overall_latency_only_for_single_input_networks(tmp_path, monkeypatch):
    from hailo_qa.hw import latency
    from tests.fakes.hailortcli import calls, write_fake_hailortcli

    hef = _shared_hef("hand_landmark_lite_hailo8_fmt0.hef")
    assert latency.single_input(hef) and not latency.single_input(tmp_path / "missing.hef")
    exe, log = write_fake_hailortcli(tmp_path / "bin", RUN_CSV)
    r, = run_hailortcli(hef, exe=str(exe), device_id="0000:01:00.0", frames=50)
    run = calls(log)[-1]
    assert run[:3] == ["run", str(hef), "--frames-count"] and "--measure-overall-latency" in run
    assert run[run.index("--device-id") + 1] == "0000:01:00.0" and "--dont-show-progress" in run
    assert r.extra["overall_latency"] == "measured" and r.extra["power"] == "measured"
    monkeypatch.setattr(latency, "single_input", lambda hef: False)  # a multi-input network: HailoRT refuses it
    r, = run_hailortcli(hef, exe=str(exe))
    assert "--measure-overall-latency" not in calls(log)[-1] and "--measure-latency" in calls(log)[-1]
    assert r.extra["overall_latency"].startswith("not measured (multi-input")


def test_power_where_available_else_said_why(tmp_path):
    from tests.fakes.hailortcli import calls, write_fake_hailortcli

    hef = _shared_hef("hand_landmark_lite_hailo8_fmt0.hef")
    exe, log = write_fake_hailortcli(tmp_path / "nosensor", RUN_CSV,
                                     fail_with_power="[HailoRT CLI] [error] power measurement not supported")
    r, = run_hailortcli(hef, exe=str(exe))
    runs = [c for c in calls(log) if c[:2] != ["run", "--help"]]
    assert ["--measure-power" in c for c in runs] == [True, False]
    assert r.extra["power"].startswith("not available on this board") and "not supported" in r.extra["power"]
    old, log_old = write_fake_hailortcli(tmp_path / "old", RUN_CSV, help_text="  --measure-latency\n")
    r, = run_hailortcli(hef, exe=str(old))
    assert "--measure-power" not in calls(log_old)[-1] and r.extra["power"].startswith("not available: this")


def test_flags_exist_in_the_real_hailortcli():
    """Every flag run_hailortcli passes is one the real HailoRT 4.23 ``hailortcli run`` accepts."""
    import subprocess

    from tests.fakes import hailortcli_exe

    help_text = subprocess.run([hailortcli_exe(), "run", "--help"], capture_output=True, text=True, timeout=60).stdout
    for flag in ("--frames-count", "--measure-latency", "--measure-overall-latency", "--measure-power", "--csv",
                 "--dont-show-progress", "--device-id"):
        assert flag in help_text, flag
    assert "--measure-overall-latency Needs: --measure-latency" in help_text
