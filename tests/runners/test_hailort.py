"""HailortRunner against the HailoRT contract fake; also the logic of tests/test_hailo8_latency.py, exercised in CI."""
from __future__ import annotations

import sys

import numpy as np
import pytest

from hailo_qa.errors import DeviceError, InputFileError
from hailo_qa.hw.latency import measure_runner
from hailo_qa.manifest import ModelSpec
from hailo_qa.pytest_plugin.hw import determinism_report, latency_gate_failures, lsb_agreement, lsb_gate_failures
from hailo_qa.runners.base import Runner
from tests.fakes import install_fake_hailort

IN, OUT = "arcface_mobilefacenet/input_layer1", "arcface_mobilefacenet/fc1"
SCALE, ZP = 0.016738918, 144.0


@pytest.fixture
def hef(tmp_path):
    p = tmp_path / "arcface.hef"
    p.write_bytes(b"\x01HEF fake payload")
    return p


@pytest.fixture
def fake(monkeypatch, hef):
    hp, state = install_fake_hailort(monkeypatch)
    from hailo_platform import _fake

    state.hefs[str(hef)] = _fake.FakeNet([_fake.FakeStream(IN, (112, 112, 3))],
                                         [_fake.FakeStream(OUT, (512,), SCALE, ZP)], "arcface_mobilefacenet")
    return hp, state


def _runner(hef, **kw):
    from hailo_qa.runners.hailort import HailortRunner

    return HailortRunner(hef, **kw)


def _expected(x: np.ndarray) -> np.ndarray:
    """The fake's documented synthetic function, computed independently."""
    q = np.floor(7.0 * float(x.astype(np.float64).sum()) + 13.0 * np.arange(512)) % 256
    return ((q - ZP) * SCALE).astype(np.float32).reshape(1, 512)


def _x(seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (1, 112, 112, 3)).astype(np.float32)


def test_fake_refuses_import_without_fixture(monkeypatch):
    from tests.fakes import FAKES_DIR

    monkeypatch.syspath_prepend(str(FAKES_DIR))
    monkeypatch.delitem(sys.modules, "hailo_platform", raising=False)
    with pytest.raises(ImportError, match="test-only contract fake"):
        __import__("hailo_platform")


def test_metadata_and_protocol(fake, hef):
    r = _runner(hef)
    assert isinstance(r, Runner)
    assert r.input_metadata()[IN].shape == (1, 112, 112, 3) and r.input_metadata()[IN].layout == "NHWC"
    assert r.output_metadata()[OUT].shape == (1, 512) and r.output_metadata()[OUT].layout is None  # NC, as HailoRT
    assert r.quant_info(OUT) == pytest.approx((SCALE, ZP))


def test_infer_outputs_and_provenance(fake, hef):
    hp, state = fake
    x = _x()
    with _runner(hef, names={OUT: "fc1"}) as r:
        out = r.infer({IN: x})
        assert state.open_vdevices == 1 and state.open_configured == 1
        assert state.open_devices == 0  # the Device objects get_physical_devices() opened were released
        assert state.last_scheduler == hp.HailoSchedulingAlgorithm.ROUND_ROBIN
        assert set(r.setup_times) == {"open_s", "configure_s"}
        assert r.last_device_time is not None and r.last_device_time >= 0
    np.testing.assert_array_equal(out["fc1"], _expected(x))
    assert state.open_vdevices == 0 and state.open_configured == 0 and state.open_devices == 0
    b = r.backend
    assert b.name == "hailort" and b.version == "4.23.0+fake" and b.hailo and b.target == "hailo8"
    assert b.details["device"]["architecture"] == "hailo8"
    assert b.details["device"]["serial_number"] == "FAKE-SERIAL-0001"
    assert b.details["device"]["firmware_version"] == "4.23.0 (release,app,extended context switch buffer)"
    assert b.details["scheduler"] == "ROUND_ROBIN" and b.details["network_group"] == "arcface_mobilefacenet"
    assert "tests/fakes" in b.details["hailort_module"].replace("\\", "/")
    assert len(b.details["hef_sha256"]) == 64


def test_multiple_inputs_outputs(fake, hef):
    from hailo_platform import _fake

    hp, state = fake
    state.hefs[str(hef)] = _fake.FakeNet([_fake.FakeStream("a", (4, 4, 2)), _fake.FakeStream("b", (3,))],
                                         [_fake.FakeStream("o1", (2, 2, 1), 0.5, 10), _fake.FakeStream("o2", (5,))])
    with _runner(hef) as r:
        out = r.infer({"a": np.ones((1, 4, 4, 2), np.float32), "b": np.full((1, 3), 2.0, np.float32)})
    assert out["o1"].shape == (1, 2, 2, 1) and out["o2"].shape == (1, 5)
    q = np.floor(7.0 * 38.0 + 13.0 * np.arange(5)) % 256  # sum = 32 + 6
    np.testing.assert_array_equal(out["o2"][0], q.astype(np.float32))


def test_wrong_feed_is_input_data_error(fake, hef):
    from hailo_qa.errors import InputDataError

    with _runner(hef) as r, pytest.raises(InputDataError, match="shape"):
        r.infer({IN: np.zeros((1, 3, 112, 112), np.float32)})


def test_timeout_is_device_error_and_releases(fake, hef):
    hp, state = fake
    state.timeout_on_run = True
    with pytest.raises(DeviceError, match="timed out after 250 ms") as ei:
        with _runner(hef, timeout_ms=250) as r:
            r.infer({IN: _x()})
    assert "Hint:" in str(ei.value) and "timeout_ms" in str(ei.value) and "status 4 HAILO_TIMEOUT" in str(ei.value)
    from hailo_platform.pyhailort.pyhailort import HailoRTTimeout  # where HailoRT keeps it: not in hailo_platform

    assert isinstance(ei.value.__cause__, HailoRTTimeout) and not hasattr(hp, "HailoRTTimeout")
    assert state.open_vdevices == 0 and state.open_configured == 0


def test_device_vanishes_mid_run(fake, hef):
    hp, state = fake
    state.vanish_after_runs = 3
    r = _runner(hef)
    with pytest.raises(DeviceError, match="vanished"):
        with r:
            for _ in range(5):
                r.infer({IN: _x()})
    assert state.runs == 3 and not r.is_active
    assert state.open_vdevices == 0 and state.open_configured == 0


def test_missing_and_unreadable_hef(fake, tmp_path):
    with pytest.raises(InputFileError, match="does not exist"):
        _runner(tmp_path / "nope.hef")
    other = tmp_path / "other.hef"
    other.write_bytes(b"junk")
    with pytest.raises(InputFileError, match="could not read HEF"):
        _runner(other)


def test_open_failure_is_device_error(fake, hef):
    _, state = fake
    r = _runner(hef)
    state.devices = []
    with pytest.raises(DeviceError, match=r"no Hailo device found: VDevice\(params\) raised HailoRTException: "
                                          r"libhailort failed with error: 74 \(HAILO_OUT_OF_PHYSICAL_DEVICES\)"):
        r.__enter__()
    assert not r.is_active and state.open_vdevices == 0


def test_no_hailort_is_device_error(monkeypatch, hef):
    monkeypatch.setitem(sys.modules, "hailo_platform", None)
    with pytest.raises(DeviceError, match="not installed"):
        _runner(hef)


def test_bad_timeout(fake, hef):
    with pytest.raises(DeviceError, match="timeout_ms"):
        _runner(hef, timeout_ms=0)


# --- the hailo8 test file's logic, on the fake --------------------------------------------------------------------
def test_determinism_report_on_fake(fake, hef):
    _, state = fake
    x = _x(1)
    with _runner(hef) as r:
        rep = determinism_report(lambda: r.infer({IN: x}), runs=6)
        assert rep and rep.differing_runs == 0 and "identical" in rep.describe()
        state.nondeterministic_every = 3
        bad = determinism_report(lambda: r.infer({IN: x}), runs=7)
    assert not bad
    assert bad.differing_runs == 2 and bad.per_output[OUT] == 2
    assert bad.max_abs_diff == pytest.approx(SCALE, rel=1e-5)
    assert "2 of 6 repeated runs differed" in bad.describe()


def test_latency_on_fake_reports_setup_and_device(fake, hef):
    x = _x()
    lat = measure_runner(_runner(hef), {IN: x}, warmup=2, iterations=15)
    assert {"enter_ms", "open_ms", "configure_ms"} <= set(lat.setup_ms)
    assert set(lat.stages) == {"end_to_end", "device"}
    e2e, dev = lat["end_to_end"], lat["device"]
    assert e2e.count == dev.count == 15 and e2e.warmup == 2
    assert dev.p50_ms <= e2e.p50_ms * 1.5 + 0.05  # device time is a part of infer()
    assert lat.to_dict()["backend"]["version"] == "4.23.0+fake"


def _spec(**hw):
    return ModelSpec(name="m", file=None, task="embedding", inputs=(), thresholds={"hailo8": hw})


def test_latency_gate_failures():
    from hailo_qa.hw.latency import stats_from_samples

    e2e = stats_from_samples([0.010, 0.011, 0.012], name="end_to_end")
    core = stats_from_samples([0.004, 0.004, 0.005], name="device")
    assert latency_gate_failures(_spec(max_p95_ms=20.0, max_core_p95_ms=5.0), e2e, core) == []
    fails = latency_gate_failures(_spec(max_p95_ms=5.0, max_core_p95_ms=1.0, max_cov_pct=0.1), e2e, core)
    assert len(fails) == 4
    assert "end-to-end p95" in fails[0] and "hailo8.max_p95_ms = 5.0" in fails[0]
    assert "device-only p95" in fails[1]
    assert latency_gate_failures(_spec(), e2e, core) == []


def test_lsb_agreement_against_emulator_like_reference(fake, hef):
    x = _x(2)
    with _runner(hef) as r:
        hw = r.infer({IN: x})
        scale = r.quant_info(OUT)[0]
    ref = {OUT: hw[OUT] + np.float32(2 * scale)}  # an emulator off by exactly two steps
    assert lsb_agreement(ref, hw, {OUT: scale})[OUT] == pytest.approx(2.0, rel=1e-4)


def _linear_device(state, hef, offset_steps: float = 0.0):
    """The fake runs a float function ``f`` "on the device" (quantized by the fake onto its uint8 grid), optionally
    off by ``offset_steps`` output steps: a device whose output is wrong by that much."""
    from hailo_platform import _fake

    w = np.random.default_rng(7).normal(0, 1e-4, 512)

    def f(x: np.ndarray) -> np.ndarray:
        return (float(x.astype(np.float64).mean()) * 0.01 + np.arange(512) * 1e-3 + w).reshape(1, 512)

    state.hefs[str(hef)] = _fake.FakeNet([_fake.FakeStream(IN, (112, 112, 3))],
                                         [_fake.FakeStream(OUT, (512,), SCALE, ZP)], "arcface_mobilefacenet",
                                         compute=lambda feeds: {OUT: f(next(iter(feeds.values()))) +
                                                                offset_steps * SCALE})
    return f


@pytest.mark.parametrize("backend", ["ort", "dfc"])
def test_device_off_by_more_steps_than_the_lsb_gates_fails(fake, hef, backend):
    """Float f(x), an emulator that quantized f onto another grid (ort-emulator) or the device's (DFC), and the
    device: within the default gates; a device off by 6 steps fails both the emulator and the float gate."""
    _, state = fake
    x = _x(3)
    f = _linear_device(state, hef)
    flt = f(x)
    grid = SCALE * (1.3 if backend == "ort" else 1.0)  # ort-emulator: its own calibration, its own step
    emu = {OUT: (np.round(flt / grid) * grid).astype(np.float32)}
    with _runner(hef) as r:
        hw = r.infer({IN: x})
    e = lsb_agreement({OUT: flt}, emu, {OUT: SCALE})
    d_emu, d_flt = lsb_agreement(emu, hw, {OUT: SCALE}), lsb_agreement({OUT: flt}, hw, {OUT: SCALE})
    assert d_flt[OUT] <= 0.5 + 1e-3 and 0 < e[OUT] <= 0.65 + 1e-3
    fails, lines = lsb_gate_failures("m", d_emu, d_flt, e, backend)
    assert fails == [], lines
    f = _linear_device(state, hef, offset_steps=6.0)
    with _runner(hef) as r:
        bad = r.infer({IN: x})
    d_emu, d_flt = lsb_agreement(emu, bad, {OUT: SCALE}), lsb_agreement({OUT: flt}, bad, {OUT: SCALE})
    assert 5.4 < d_flt[OUT] < 6.6
    fails, _ = lsb_gate_failures("m", d_emu, d_flt, e, backend)
    assert len(fails) == 2 and "steps from the " in fails[0] and "from the float Stage 1" in fails[1], fails
    # a manifest gate replaces the default: 7 steps from both passes the same device
    assert lsb_gate_failures("m", d_emu, d_flt, e, backend, max_vs_emulator=7, max_vs_float=7)[0] == []


def test_ort_lsb_default_scales_with_the_emulators_own_distance_from_float():
    from hailo_qa.pytest_plugin.hw import ORT_LSB_FACTOR

    # mtcnn_onet dense_5, measured: emulator 5.8 steps from float; another valid calibration 14.3 steps from it
    fails, lines = lsb_gate_failures("mtcnn_onet", {"dense_5": 14.3}, {"dense_5": 10.1}, {"dense_5": 5.8}, "ort")
    assert fails == [] and f"gate {ORT_LSB_FACTOR * 5.8 + 1:.2f}" in lines[0]
    assert lsb_gate_failures("mtcnn_onet", {"dense_5": 25.0}, {"dense_5": 10.1}, {"dense_5": 5.8}, "ort")[0]
    # the DFC runs the HEF's own quantized program: two steps apart is a mismatch
    assert lsb_gate_failures("m", {"o": 2.0}, {"o": 3.0}, {"o": 2.5}, "dfc")[0] == [
        "m: output o: device is 2.00 steps from the dfc emulator > 1.00 (default: DFC 1 step; float e + 1)"]


# --- the sequence of Hailo's HailoRT 4.23 tutorial, on the fake that models the real defaults -----------------------
def test_device_id_goes_into_params_and_keeps_the_scheduler(fake, hef):
    """``VDevice(params, device_ids=...)`` would drop params (no scheduler → HAILO_STREAM_NOT_ACTIVATED at run)."""
    hp, state = fake
    with _runner(hef, device_id="0000:01:00.0") as r:
        out = r.infer({IN: _x()})
    assert state.last_scheduler == hp.HailoSchedulingAlgorithm.ROUND_ROBIN
    np.testing.assert_array_equal(out[OUT], _expected(_x()))


def test_unknown_device_id_is_no_device_found(fake, hef):
    with pytest.raises(DeviceError, match=r"no Hailo device found: VDevice\(params, params.device_ids="
                                          r"\['0000:09:00.0'\]\) raised HailoRTInvalidArgumentException"):
        with _runner(hef, device_id="0000:09:00.0"):
            pass


def test_unscheduled_runner_activates_the_configured_model(fake, hef):
    hp, state = fake
    with _runner(hef, scheduler=False) as r:
        out = r.infer({IN: _x()})
        assert state.last_scheduler == hp.HailoSchedulingAlgorithm.NONE
    np.testing.assert_array_equal(out[OUT], _expected(_x()))
    assert r.backend.details["scheduler"] == "NONE" and state.open_configured == 0


def test_hang_in_hailort_ends_within_timeout_not_never(fake, hef):
    import threading
    import time

    _, state = fake
    state.hang_on_run = threading.Event()
    try:
        with _runner(hef, timeout_ms=100, grace_s=0.3) as r:
            t0 = time.monotonic()
            with pytest.raises(DeviceError, match="did not return within 100 ms"):
                r.infer({IN: _x()})
            assert time.monotonic() - t0 < 5.0  # 0.4 s expected; a hang would never get here
            with pytest.raises(DeviceError, match="vanished earlier"):
                r.infer({IN: _x()})
        assert any("stuck" in e for e in r.release_errors)
    finally:
        state.hang_on_run.set()


def test_nms_output_by_class(fake, hef):
    from hailo_platform import _fake

    _, state = fake
    state.hefs[str(hef)] = _fake.FakeNet([_fake.FakeStream("det/in", (8, 8, 3))],
                                         [_fake.FakeStream("det/nms", (), nms=(3, 4))], "det")
    with _runner(hef) as r:
        assert r.output_metadata()["det/nms"].shape == (1, 3, 5, 4)
        out = r.infer({"det/in": np.ones((1, 8, 8, 3), np.float32)})["det/nms"]
        by_class = r.last_detections["det/nms"]
    assert out.shape == (1, 3, 5, 4) and len(by_class) == 3 and all(c.shape == (1, 5) for c in by_class)
    total = 8 * 8 * 3
    for c in range(3):
        want = (0.1, 0.2, 0.3, 0.4, ((7 * total + 13 * c) % 256) / 255)
        np.testing.assert_allclose(by_class[c][0], want, rtol=1e-6)
        np.testing.assert_allclose(out[0, c, :, 0], want, rtol=1e-6)
        assert not out[0, c, :, 1:].any()


def test_per_feature_quant_infos(fake, hef):
    from hailo_platform import _fake

    _, state = fake
    zps, scales = (10.0, 20.0, 30.0), (0.5, 0.25, 0.125)
    state.hefs[str(hef)] = _fake.FakeNet([_fake.FakeStream("n/in", (2, 2, 1))],
                                         [_fake.FakeStream("n/out", (3,), scales[0], zps[0], qp_zps=zps,
                                                           qp_scales=scales)], "n")
    r = _runner(hef)
    assert r.quant_info("n/out") == (scales[0], zps[0])  # from the HEF's vstream info: per tensor
    with r:
        assert r.quant_infos("n/out") == list(zip(scales, zps))  # InferStream.quant_infos once configured
        s, z = r.quant_info("n/out")
        np.testing.assert_array_equal(s, scales) and np.testing.assert_array_equal(z, zps)
        out = r.infer({"n/in": np.ones((1, 2, 2, 1), np.float32)})["n/out"]
    q = np.floor(7.0 * 4 + 13.0 * np.arange(3)) % 256
    np.testing.assert_allclose(out[0], (q - np.array(zps)) * np.array(scales), rtol=1e-6)


def test_network_group_chosen_by_name(fake, hef):
    from hailo_platform import _fake

    _, state = fake
    a = _fake.FakeNet([_fake.FakeStream("a/in", (2, 2, 1))], [_fake.FakeStream("a/out", (4,))], "a")
    b = _fake.FakeNet([_fake.FakeStream("b/in", (3, 3, 1))], [_fake.FakeStream("b/out", (5,), 0.5, 1.0)], "b")
    state.hefs[str(hef)] = _fake.FakeHef([a, b])
    with pytest.raises(InputFileError, match=r"holds 2 network groups \['a', 'b'\]") as ei:
        _runner(hef)
    assert "network_group" in str(ei.value)
    with pytest.raises(InputFileError, match="has no network group 'c'"):
        _runner(hef, network_group="c")
    with _runner(hef, network_group="b") as r:
        assert list(r.input_metadata()) == ["b/in"]
        out = r.infer({"b/in": np.ones((1, 3, 3, 1), np.float32)})
    q = np.floor(7.0 * 9 + 13.0 * np.arange(5)) % 256
    np.testing.assert_allclose(out["b/out"][0], (q - 1.0) * 0.5)


def test_hailort_older_than_infer_model_api_is_refused(fake, hef, monkeypatch):
    hp, _ = fake
    monkeypatch.setattr(hp, "__version__", "4.17.1")
    with pytest.raises(DeviceError, match=r"predates the InferModel API \(added in HailoRT 4.18\)"):
        _runner(hef)


def test_hailortcli_witness_next_to_host_percentiles(fake, hef):
    from hailo_qa.hw.latency import CliResult
    from hailo_qa.pytest_plugin.hw import witness_failures, witness_report

    host = measure_runner(_runner(hef), {IN: _x()}, warmup=1, iterations=5)
    dev = host["device"]
    agree = [CliResult("g/net_a", "run", hw_latency_ms=dev.p50_ms * 0.5, status="HAILO_SUCCESS", status_code=0,
                       extra={"power": "measured", "overall_latency": "measured"}),
             CliResult("g/net_b", "run", hw_latency_ms=dev.p50_ms * 0.9, status="HAILO_SUCCESS", status_code=0)]
    assert witness_failures(agree, dev) == []
    report = witness_report(agree, host)
    assert "host device: p50" in report and "hailortcli g/net_a: HW latency" in report and "g/net_b" in report
    bad = [agree[0], CliResult("g/net_b", "run", hw_latency_ms=dev.p50_ms * 2, status_code=0),
           CliResult("g/net_c", "run", status="HAILO_STREAM_ABORT", status_code=63), CliResult("g/net_d", "run")]
    fails = witness_failures(bad, dev)
    assert len(fails) == 3 and "g/net_c: FAILED with status 63 (HAILO_STREAM_ABORT)" in fails[0]
    assert "g/net_b: hailortcli HW latency" in fails[1] and "g/net_d: no HW latency" in fails[2]
    assert witness_failures([], dev) == ["hailortcli run wrote no result row"]
