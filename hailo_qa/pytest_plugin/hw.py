"""pytest fixtures and hooks for the hardware area (``hailo8`` marker): device discovery, HailoRT runners.

Registered by the main plugin (``PLUGIN_MODULES``) or with ``-p hailo_qa.pytest_plugin.hw``. The device is probed once, and
only when a collected test carries the ``hailo8`` marker; every ``hailo8`` item is then skipped with the exact reason
when the environment cannot run it (no HailoRT, no device, HailoRT 5.x ...). Per-HEF reasons (Hailo-8L device vs a
Hailo-8 HEF, DFC/HailoRT skew) come from :func:`hef_skip_reason` through the ``hqa_hef_gate`` fixture.

The helpers below (:func:`determinism_report`, :func:`latency_gate_failures`, :func:`lsb_agreement`,
:func:`lsb_gate_failures`) hold the logic
of ``tests/test_hailo8_latency.py`` so it is unit-tested against the HailoRT contract fake in CI.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pytest

_STATUS_KEY = pytest.StashKey[object]()


def _device_option(config: pytest.Config) -> str | None:
    try:
        return config.getoption("--hqa-device")
    except ValueError:  # main plugin not loaded
        from hailo_qa import config as hqa_config

        return hqa_config.DEVICE_ID


def device_status(config: pytest.Config):
    """The session's :class:`~hailo_qa.hw.device.DeviceStatus` (probed on first use, then cached)."""
    from hailo_qa.hw.device import probe_device

    if _STATUS_KEY not in config.stash:
        config.stash[_STATUS_KEY] = probe_device(_device_option(config))
    return config.stash[_STATUS_KEY]


def mark_hailo8_items(config: pytest.Config, items: Sequence[pytest.Item],
                      probe: Callable[[pytest.Config], object] = device_status) -> int:
    """Add a skip mark with the exact reason to every ``hailo8`` item when no usable device is present.

    Returns:
        how many items were marked skipped.
    """
    hw = [it for it in items if it.get_closest_marker("hailo8") is not None]
    if not hw:
        return 0
    status = probe(config)
    if getattr(status, "usable", False):
        return 0
    mark = pytest.mark.skip(reason=status.reason)
    for it in hw:
        it.add_marker(mark)
    return len(hw)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    mark_hailo8_items(config, items)


@pytest.fixture(scope="session")
def hqa_device(request: pytest.FixtureRequest):
    """The Hailo device's :class:`~hailo_qa.hw.device.DeviceIdentity`; skips with the exact reason when there is none.

    Example::

        @pytest.mark.hailo8
        def test_x(hqa_device):
            assert hqa_device.architecture == "hailo8"
    """
    status = device_status(request.config)
    if not status.usable:
        pytest.skip(status.reason)
    return status.identity


@pytest.fixture(scope="session")
def hqa_hef_gate(request: pytest.FixtureRequest, hqa_device):
    """A callable ``gate(hef_path)`` that skips the test when that HEF cannot run on this device (arch, skew).

    Example::

        def test_x(hqa_hef_gate, hqa_model):
            hqa_hef_gate(hqa_model.hef)
    """
    from hailo_qa.hw.device import hef_skip_reason

    status = device_status(request.config)

    def gate(hef_path) -> None:
        reason = hef_skip_reason(status, hef_path)
        if reason:
            pytest.skip(reason)

    return gate


# --- test logic shared with the fake-backed unit tests ----------------------------------------------------------
@dataclass(frozen=True)
class DeterminismReport:
    """Outcome of running the same input N times: how many runs differed from the first, and by how much."""

    runs: int
    differing_runs: int
    max_abs_diff: float
    per_output: Mapping[str, int]

    @property
    def deterministic(self) -> bool:
        return self.differing_runs == 0

    def __bool__(self) -> bool:
        return self.deterministic

    def describe(self) -> str:
        if self.deterministic:
            return f"all {self.runs} runs gave identical outputs"
        outs = ", ".join(f"{k}: {v} runs" for k, v in self.per_output.items() if v)
        return (f"{self.differing_runs} of {self.runs - 1} repeated runs differed from the first "
                f"(max |diff| {self.max_abs_diff:.6g}; per output: {outs})")


def determinism_report(infer: Callable[[], Mapping[str, np.ndarray]], runs: int = 10) -> DeterminismReport:
    """Call ``infer`` ``runs`` times on the same input and compare every result bit-for-bit with the first."""
    if runs < 2:
        raise ValueError("runs must be >= 2")
    first = {k: np.array(v, copy=True) for k, v in infer().items()}
    differing, worst = 0, 0.0
    per = dict.fromkeys(first, 0)
    for _ in range(runs - 1):
        out = infer()
        diff_here = False
        for k, ref in first.items():
            got = np.asarray(out[k])
            if got.shape != ref.shape or not np.array_equal(got, ref, equal_nan=True):
                per[k] += 1
                diff_here = True
                if got.shape == ref.shape:
                    worst = max(worst, float(np.nanmax(np.abs(got.astype(np.float64) - ref.astype(np.float64)))))
                else:
                    worst = float("inf")
        differing += diff_here
    return DeterminismReport(runs, differing, worst, per)


def latency_gate_failures(model, e2e, core) -> list[str]:
    """Manifest latency gates vs measured stats: ``hailo8.max_p95_ms`` (end to end), ``hailo8.max_core_p95_ms``
    (device only), ``hailo8.max_cov_pct``. Returns one message per failed gate (empty: all pass or none set)."""
    fails = []
    checks = (("max_p95_ms", e2e, "end-to-end"), ("max_core_p95_ms", core, "device-only"))
    for key, stats, what in checks:
        limit = model.threshold("hailo8", key)
        if limit is not None and stats is not None and stats.p95_ms > limit:
            fails.append(f"{model.name}: {what} p95 {stats.p95_ms:.3f} ms > hailo8.{key} = {limit} ms "
                         f"({stats.summary()})")
    cov_limit = model.threshold("hailo8", "max_cov_pct")
    if cov_limit is not None:
        for stats in (e2e, core):
            if stats is not None and stats.cov_pct > cov_limit:
                fails.append(f"{model.name}: {stats.name} cov {stats.cov_pct:.2f} % > hailo8.max_cov_pct = "
                             f"{cov_limit} %")
    return fails


def lsb_agreement(ref: Mapping[str, np.ndarray], test: Mapping[str, np.ndarray],
                  scales: Mapping[str, float]) -> dict[str, float]:
    """Max disagreement per output in quantization steps (``|ref − test| / qp_scale``), via ``metrics.lsb_error``."""
    from hailo_qa.evaluate.metrics import lsb_error

    return {k: float(lsb_error(np.asarray(ref[k]), np.asarray(test[k]), scales[k])) for k in test if k in ref}


LSB_ROUNDING = 1.0
"""One output step for the device's own final requantization: the device rounds its output onto its uint8 grid, and
two roundings of the same value onto one grid differ by at most one step."""

DFC_LSB_VS_EMULATOR = LSB_ROUNDING
"""Device vs Hailo's DFC emulator (``SDK_QUANTIZED``), default gate in output steps: both run the same quantized HAR
(same scales, zero points and integer weights), so the final rounding is the only difference step math allows. Hailo
promises no bit-exactness (HAILO_TOOLCHAIN.md, "What the emulator claims"): a larger difference is the emulator vs
hardware mismatch users report, which this gate is there to catch. Derived, not measured (no DFC or device here)."""

ORT_LSB_FACTOR = 4.0
"""hailo-qa's ort-emulator is *another* int8 quantization of the model (its own calibration grid and rounding), not
the HEF's, so the default gates scale with its own distance from float ``e`` (max |emulator − float| per output, in the
device's output steps, measured in the same run on the same inputs): device vs ort-emulator ≤ 4·e + 1 and device vs
float ≤ 4·e + 1. Measured (ort-emulator int8, calibration 16 vs 64, 8 held-out inputs; 17 Stage-1 outputs of
mtcnn_onet, fsq_classifier, yunet, mobilefacenet, in the 16-sample quantization's steps): two valid quantizations
differ by up to 2.47× the smaller one's distance from float (mtcnn_onet ``dense_5``: 14.3 steps apart, e = 5.8 and
10.1), and one's distance from float is up to 3.27× the other's (mtcnn_onet ``softmax_2``: 4.3 vs 1.3 steps); 4
covers both with a margin, +1 for the device's final rounding (:data:`LSB_ROUNDING`)."""


def lsb_gate_failures(model: str, dev_vs_emulator: Mapping[str, float], dev_vs_float: Mapping[str, float],
                      emulator_vs_float: Mapping[str, float], backend: str, *, max_vs_emulator: float | None = None,
                      max_vs_float: float | None = None) -> tuple[list[str], list[str]]:
    """Device outputs against the emulator and the float Stage 1, in the device's output quantization steps.

    Args:
        model: for messages.
        dev_vs_emulator, dev_vs_float, emulator_vs_float: per output, the max distance in steps.
        backend: the emulator that produced the reference: ``dfc`` or ``ort``.
        max_vs_emulator, max_vs_float: the manifest's ``hailo8.max_lsb_vs_emulator`` / ``max_lsb_vs_float``; without
            them the defaults: DFC ≤ :data:`DFC_LSB_VS_EMULATOR` from the emulator and ≤ e + 1 from float (the
            triangle inequality); ort-emulator ≤ :data:`ORT_LSB_FACTOR`·e + 1 from both, e = the emulator's own
            distance from float on that output.

    Returns:
        (failure messages, one line per output with the values and the gates that applied).
    """
    fails, lines = [], []
    for k in sorted(set(dev_vs_emulator) | set(dev_vs_float)):
        e = float(emulator_vs_float.get(k, 0.0))
        if backend == "dfc":
            d_emu, d_flt, how = DFC_LSB_VS_EMULATOR, e + LSB_ROUNDING, "default: DFC 1 step; float e + 1"
        else:
            d_emu = d_flt = ORT_LSB_FACTOR * e + LSB_ROUNDING
            how = f"default: ort-emulator {ORT_LSB_FACTOR:g}·e + 1"
        lim_emu = max_vs_emulator if max_vs_emulator is not None else d_emu
        lim_flt = max_vs_float if max_vs_float is not None else d_flt
        src = how if max_vs_emulator is None and max_vs_float is None else "manifest" + (
            "" if max_vs_emulator is not None and max_vs_float is not None else f" / {how}")
        lines.append(f"{k}: device vs emulator {dev_vs_emulator.get(k, float('nan')):.2f} (gate {lim_emu:.2f}), vs "
                     f"float {dev_vs_float.get(k, float('nan')):.2f} (gate {lim_flt:.2f}); emulator vs float e = "
                     f"{e:.2f} steps [{src}; {backend}]")
        if k in dev_vs_emulator and not dev_vs_emulator[k] <= lim_emu:
            fails.append(f"{model}: output {k}: device is {dev_vs_emulator[k]:.2f} steps from the {backend} emulator "
                         f"> {lim_emu:.2f} ({src})")
        if k in dev_vs_float and not dev_vs_float[k] <= lim_flt:
            fails.append(f"{model}: output {k}: device is {dev_vs_float[k]:.2f} steps from the float Stage 1 > "
                         f"{lim_flt:.2f} ({src}; the emulator is {e:.2f} from float)")
    return fails, lines


WITNESS_MARGIN = 1.10
"""hailortcli's HW latency may exceed the host-timed device p50 by at most 10 %: the device-side time is part of
every host-timed ``run``; the margin covers the two clocks (device counter vs host ``perf_counter``) and hailortcli
streaming many frames where the runner sends one at a time. Unmeasured without a device: revisit with Pi data."""


def witness_failures(rows, device) -> list[str]:
    """``hailortcli run`` rows (HailoRT's device-side witness) vs the host-timed device stats of the same HEF.

    Fails on: no rows; any row HailoRT marked failed (status != 0); a row without HW latency; a HW latency above
    the host device p50 × :data:`WITNESS_MARGIN` (the witnesses disagree). Each network is judged on its own row.
    """
    if not rows:
        return ["hailortcli run wrote no result row"]
    fails = [f"hailortcli run: {r.describe()}" for r in rows if r.failed]
    for r in rows:
        if r.failed:
            continue
        if r.hw_latency_ms is None:
            fails.append(f"hailortcli run: {r.network_group}: no HW latency in the CSV (--measure-latency)")
        elif device is not None and r.hw_latency_ms > device.p50_ms * WITNESS_MARGIN:
            fails.append(f"{r.network_group}: hailortcli HW latency {r.hw_latency_ms:.3f} ms > host-timed device "
                         f"p50 {device.p50_ms:.3f} ms x {WITNESS_MARGIN} (the two witnesses disagree)")
    return fails


def witness_report(rows, host) -> str:
    """HailoRT's HW latency per network next to the host percentiles, one line each (for messages and reports)."""
    lines = [f"host {name}: p50 {s.p50_ms:.3f} ms, p95 {s.p95_ms:.3f} ms, p99 {s.p99_ms:.3f} ms (n={s.count})"
             for name, s in host.stages.items()]
    lines += [f"hailortcli {r.describe()} [power {r.extra.get('power', '?')}; overall latency "
              f"{r.extra.get('overall_latency', '?')}]" for r in rows]
    return "\n".join(lines)
