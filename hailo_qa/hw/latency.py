"""Backend-agnostic latency measurement, and parsers for ``hailortcli`` latency/benchmark output.

:func:`measure_latency` times any callable (warm-up by count or time, then N iterations or a duration) into a frozen
:class:`LatencyStats` (P50/P90/P95/P99/max, mean, std, coefficient of variation, FPS). :func:`measure_runner` times a
:class:`~hailo_qa.runners.base.Runner` and reports set-up cost (open, configure) apart from per-frame cost, and
per-stage samples: device-only (``HailortRunner.last_device_time``) and, for a ``HostPipeline``, Stage 1 / Stage 2 /
end-to-end from ``last_timings``.

Numbers are wall-clock on the host (``time.perf_counter``): HailoRT 4.23's Python API exposes no hardware latency
counter. ``hailortcli run --measure-latency`` gives the device-side figure; :func:`run_hailortcli` calls it when the
program is on PATH.
"""
from __future__ import annotations

import csv
import io
import math
import re
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from hailo_qa.errors import DeviceError, InputDataError, ToolchainError

UNSTABLE_COV_PCT = 2.5
"""Coefficient of variation (std/mean, %) above which a measurement is flagged unstable."""

QUANTILES = (50, 90, 95, 99)


@dataclass(frozen=True)
class LatencyStats:
    """Summary of per-iteration latencies, in milliseconds.

    Attributes:
        name: what was timed (``end_to_end``, ``device``, ``stage2`` ...).
        count: timed iterations.
        warmup: warm-up iterations run (and discarded) before timing.
        p50_ms, p90_ms, p95_ms, p99_ms: percentiles (linear interpolation, NumPy's default).
        min_ms, max_ms, mean_ms, std_ms: as named (std with ddof=0).
        cov_pct: coefficient of variation, 100·std/mean.
        fps: frames per second from the mean (1000 / mean_ms).
        source: ``wallclock`` (host timer) or ``hailortcli``.
        warnings: e.g. the instability warning when ``cov_pct`` > 2.5.
    """

    name: str
    count: int
    warmup: int
    p50_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float
    min_ms: float
    max_ms: float
    mean_ms: float
    std_ms: float
    cov_pct: float
    fps: float
    source: str = "wallclock"
    warnings: tuple[str, ...] = ()

    @property
    def unstable(self) -> bool:
        return self.cov_pct > UNSTABLE_COV_PCT

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["warnings"] = list(self.warnings)
        return d

    def summary(self) -> str:
        return (f"{self.name}: p50 {self.p50_ms:.3f} ms, p95 {self.p95_ms:.3f} ms, p99 {self.p99_ms:.3f} ms, "
                f"max {self.max_ms:.3f} ms, cov {self.cov_pct:.2f} %, {self.fps:.1f} FPS (n={self.count})")


def stats_from_samples(samples_s, *, name: str = "latency", warmup: int = 0,
                       source: str = "wallclock") -> LatencyStats:
    """Summarize per-iteration durations given in **seconds**.

    Raises:
        InputDataError: no samples, or NaN/Inf/negative durations.
    """
    from hailo_qa.evaluate.metrics import percentiles

    x = np.asarray(list(samples_s) if not isinstance(samples_s, np.ndarray) else samples_s, np.float64).ravel()
    if x.size == 0:
        raise InputDataError(f"{name}: no latency samples", note="expected at least one timed iteration",
                             hint="raise iterations or duration_s")
    if not np.all(np.isfinite(x)) or np.any(x < 0):
        raise InputDataError(f"{name}: latency samples hold NaN/Inf or negative values",
                             note="expected finite durations >= 0 s", hint="check the timer / the probe used")
    ms = x * 1e3
    p = percentiles(ms, QUANTILES)
    mean, std = float(ms.mean()), float(ms.std())
    cov = 100.0 * std / mean if mean > 0 else (0.0 if std == 0 else math.inf)
    warnings = ()
    if cov > UNSTABLE_COV_PCT:
        warnings = (f"unstable: coefficient of variation {cov:.2f} % > {UNSTABLE_COV_PCT} % (other load on the "
                    f"machine, thermal throttling, or too few warm-up iterations)",)
    return LatencyStats(name=name, count=int(x.size), warmup=int(warmup), p50_ms=p["p50"], p90_ms=p["p90"],
                        p95_ms=p["p95"], p99_ms=p["p99"], min_ms=float(ms.min()), max_ms=float(ms.max()),
                        mean_ms=mean, std_ms=std, cov_pct=cov, fps=1000.0 / mean if mean > 0 else math.inf,
                        source=source, warnings=warnings)


def _check_plan(warmup: int, iterations: int | None, duration_s: float | None, warmup_s: float | None) -> None:
    if warmup < 0 or (warmup_s is not None and warmup_s < 0):
        raise InputDataError(f"warm-up must be >= 0 (got warmup={warmup}, warmup_s={warmup_s})",
                             note="expected a count or a duration >= 0")
    if duration_s is None and (iterations is None or iterations < 1):
        raise InputDataError(f"iterations={iterations} with no duration", note="expected iterations >= 1 or "
                             "duration_s > 0", hint="e.g. iterations=200")
    if duration_s is not None and duration_s <= 0:
        raise InputDataError(f"duration_s={duration_s}", note="expected a positive duration in seconds")


def collect_samples(fn: Callable[[], Any], *, warmup: int = 20, iterations: int | None = 200,
                    duration_s: float | None = None, warmup_s: float | None = None,
                    probes: Mapping[str, Callable[[], float | None]] | None = None,
                    timer: Callable[[], float] = time.perf_counter) -> tuple[int, dict[str, np.ndarray]]:
    """Run ``fn`` for warm-up then timing; return (warm-up count, {"wall": seconds[], probe: seconds[] ...}).

    Args:
        fn: the work of one iteration.
        warmup: warm-up iterations. Defaults to 20. Ignored when ``warmup_s`` is given.
        iterations: timed iterations. Defaults to 200. Ignored when ``duration_s`` is given.
        duration_s: time for this long instead of a count. Defaults to none.
        warmup_s: warm up for this long instead of a count. Defaults to none.
        probes: name → callable read after each timed iteration, returning that stage's duration in seconds
            (e.g. ``lambda: runner.last_device_time``). Defaults to none.
        timer: the clock. Defaults to ``time.perf_counter``.
    """
    _check_plan(warmup, iterations, duration_s, warmup_s)
    done = 0
    if warmup_s is not None:
        end = timer() + warmup_s
        while timer() < end:
            fn()
            done += 1
    else:
        for _ in range(warmup):
            fn()
        done = warmup
    wall: list[float] = []
    extra: dict[str, list[float]] = {k: [] for k in (probes or {})}
    stop = timer() + duration_s if duration_s is not None else None
    while True:
        t0 = timer()
        fn()
        wall.append(timer() - t0)
        for k, probe in (probes or {}).items():
            v = probe()
            if v is not None:
                extra[k].append(float(v))
        if stop is not None:
            if timer() >= stop:
                break
        elif len(wall) >= iterations:
            break
    out = {"wall": np.asarray(wall)}
    out.update({k: np.asarray(v) for k, v in extra.items() if v})
    return done, out


def measure_latency(fn: Callable[[], Any], *, warmup: int = 20, iterations: int | None = 200,
                    duration_s: float | None = None, warmup_s: float | None = None, name: str = "latency",
                    timer: Callable[[], float] = time.perf_counter) -> LatencyStats:
    """Time ``fn``: warm-up (count or ``warmup_s``), then ``iterations`` or ``duration_s``; see :func:`collect_samples`.

    Example::

        stats = measure_latency(lambda: runner.infer(feeds), warmup=10, iterations=100)
        assert stats.p95_ms < 20
    """
    done, s = collect_samples(fn, warmup=warmup, iterations=iterations, duration_s=duration_s, warmup_s=warmup_s,
                              timer=timer)
    return stats_from_samples(s["wall"], name=name, warmup=done)


@dataclass(frozen=True)
class RunnerLatency:
    """Latency of one runner: set-up cost (ms, paid once) apart from per-frame stats per stage.

    ``stages`` always has ``end_to_end`` (``infer`` as the caller sees it, incl. feed checks); ``device`` for a
    HailoRT Stage 1 (time inside ``ConfiguredInferModel.run``), ``stage1``/``stage2``/``total`` for a HostPipeline.
    """

    runner: str
    backend: Mapping[str, Any]
    setup_ms: Mapping[str, float]
    stages: Mapping[str, LatencyStats]
    iterations: int = 0

    def __getitem__(self, stage: str) -> LatencyStats:
        return self.stages[stage]

    def to_dict(self) -> dict[str, Any]:
        return {"runner": self.runner, "backend": dict(self.backend), "setup_ms": dict(self.setup_ms),
                "stages": {k: v.to_dict() for k, v in self.stages.items()}}


def _probes(runner) -> dict[str, Callable[[], float | None]]:
    probes: dict[str, Callable[[], float | None]] = {}
    if hasattr(runner, "last_timings"):  # HostPipeline
        for key in ("stage1_s", "stage2_s", "total_s"):
            probes[key[:-2]] = (lambda k=key: (runner.last_timings or {}).get(k))
        inner = getattr(runner, "stage1", None)
        if inner is not None and hasattr(inner, "last_device_time"):
            probes["device"] = lambda: inner.last_device_time
    elif hasattr(runner, "last_device_time"):
        probes["device"] = lambda: runner.last_device_time
    return probes


def measure_runner(runner, feeds: Mapping[str, np.ndarray], *, warmup: int = 20, iterations: int | None = 200,
                   duration_s: float | None = None, warmup_s: float | None = None) -> RunnerLatency:
    """Time ``runner.infer(feeds)``; activates the runner (timing it as set-up) when it is not active yet.

    Set-up: ``enter_ms`` (the whole ``__enter__``), plus the runner's own ``setup_times`` (``open_s``,
    ``configure_s`` of :class:`~hailo_qa.runners.hailort.HailortRunner`) in ms.
    """
    _check_plan(warmup, iterations, duration_s, warmup_s)
    owned = not getattr(runner, "is_active", False)
    setup: dict[str, float] = {}
    if owned:
        t0 = time.perf_counter()
        runner.__enter__()
        setup["enter_ms"] = (time.perf_counter() - t0) * 1e3
    try:
        for k, v in (getattr(runner, "setup_times", None) or {}).items():
            setup[k.removesuffix("_s") + "_ms"] = float(v) * 1e3
        done, s = collect_samples(lambda: runner.infer(feeds), warmup=warmup, iterations=iterations,
                                  duration_s=duration_s, warmup_s=warmup_s, probes=_probes(runner))
    finally:
        if owned:
            runner.__exit__(None, None, None)
    stages = {"end_to_end": stats_from_samples(s.pop("wall"), name="end_to_end", warmup=done)}
    stages.update({k: stats_from_samples(v, name=k, warmup=done) for k, v in s.items()})
    backend = runner.backend.to_dict() if hasattr(runner, "backend") else {}
    return RunnerLatency(getattr(runner, "name", "runner"), backend, setup, stages, stages["end_to_end"].count)


# --- hailortcli ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CliResult:
    """One row of ``hailortcli run``/``benchmark`` figures (ms, FPS, W). Missing figures are None.

    ``network_group`` is the CSV's ``net_name``: a network group, or one network of it (``group/network``) when the
    group holds several; each is its own row, reported separately.
    """

    network_group: str
    command: str
    fps: float | None = None
    hw_only_fps: float | None = None
    frames: int | None = None
    hw_latency_ms: float | None = None
    overall_latency_ms: float | None = None
    send_rate_mbit_s: float | None = None
    recv_rate_mbit_s: float | None = None
    status: str = ""
    status_code: int | None = None
    min_power_w: float | None = None
    average_power_w: float | None = None
    max_power_w: float | None = None
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        """HailoRT reported a non-zero status for this row (its figures are then empty or partial)."""
        return (self.status_code not in (None, 0)) or (bool(self.status) and self.status != "HAILO_SUCCESS")

    def describe(self) -> str:
        if self.failed:
            return f"{self.network_group}: FAILED with status {self.status_code} ({self.status})"
        parts = [f"HW latency {self.hw_latency_ms:.3f} ms" if self.hw_latency_ms is not None else "no HW latency"]
        if self.overall_latency_ms is not None:
            parts.append(f"overall {self.overall_latency_ms:.3f} ms")
        if self.fps is not None:
            parts.append(f"{self.fps:.1f} FPS")
        if self.average_power_w is not None:
            parts.append(f"power avg {self.average_power_w:.3f} W (max {self.max_power_w})")
        return f"{self.network_group}: " + ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["extra"] = dict(self.extra)
        d["failed"] = self.failed
        return d


def _num(v: str | None, kind=float):
    if v is None or not str(v).strip():
        return None
    try:
        return kind(float(v)) if kind is int else kind(v)
    except ValueError as err:
        raise ToolchainError(f"hailortcli output has a non-numeric value {v!r}", note="expected a number",
                             hint="check the hailortcli version; the parser follows HailoRT 4.23",
                             step="latency") from err


def _parse_csv(text: str, command: str, needed: tuple[str, ...]) -> list[CliResult]:
    rows = list(csv.DictReader(io.StringIO(text.strip())))
    header = set(rows[0]) if rows else set(next(csv.reader(io.StringIO(text.strip())), []))
    missing = [c for c in needed if c not in header]
    if missing:
        raise ToolchainError(f"hailortcli {command} CSV lacks columns {missing}",
                             note=f"expected a header with {', '.join(needed)}",
                             hint="pass the file written by --csv (HailoRT 4.x)", step="latency")
    out = []
    for r in rows:
        known = {"net_name", "status", "status_description", "fps", "hw_only_fps", "num_of_frames",
                 "num_of_frames_hw_only", "send_rate", "recv_rate", "hw_latency", "overall_latency", "min_power",
                 "average_power", "max_power"}
        out.append(CliResult(
            network_group=r["net_name"], command=command, fps=_num(r.get("fps")),
            hw_only_fps=_num(r.get("hw_only_fps")), frames=_num(r.get("num_of_frames"), int),
            hw_latency_ms=_num(r.get("hw_latency")), overall_latency_ms=_num(r.get("overall_latency")),
            send_rate_mbit_s=_num(r.get("send_rate")), recv_rate_mbit_s=_num(r.get("recv_rate")),
            status=(r.get("status_description") or "").strip(), status_code=_num(r.get("status"), int),
            min_power_w=_num(r.get("min_power")), average_power_w=_num(r.get("average_power")),
            max_power_w=_num(r.get("max_power")),
            extra={k: v for k, v in r.items() if k not in known and k is not None and v}))
    return out


def parse_run_csv(text: str) -> list[CliResult]:
    """``hailortcli run --measure-latency --csv FILE`` contents → one :class:`CliResult` per network group."""
    return _parse_csv(text, "run", ("net_name", "fps", "hw_latency", "overall_latency"))


def parse_benchmark_csv(text: str) -> list[CliResult]:
    """``hailortcli benchmark --csv FILE`` contents → one :class:`CliResult` per network group."""
    return _parse_csv(text, "benchmark", ("net_name", "fps", "hw_only_fps", "hw_latency", "overall_latency"))


_RUN_LINE = re.compile(r"^\s*(Frames count|FPS|Send Rate|Recv Rate|HW Latency|Overall Latency):\s*([-+0-9.eE]+)")


def parse_run_stdout(text: str) -> list[CliResult]:
    """``hailortcli run`` stdout (``> Inference result:`` blocks) → one :class:`CliResult` per network group."""
    results: list[dict[str, Any]] = []
    for line in text.splitlines():
        m = re.match(r"^\s*Network group:\s*(\S+)", line)
        if m:
            results.append({"network_group": m.group(1)})
            continue
        m = _RUN_LINE.match(line)
        if m and results:
            key = {"Frames count": "frames", "FPS": "fps", "Send Rate": "send_rate_mbit_s",
                   "Recv Rate": "recv_rate_mbit_s", "HW Latency": "hw_latency_ms",
                   "Overall Latency": "overall_latency_ms"}[m.group(1)]
            results[-1][key] = _num(m.group(2), int if key == "frames" else float)
    if not results:
        raise ToolchainError("no 'Network group:' result block in the hailortcli run output",
                             note="expected '> Inference result:' followed by ' Network group: <name>' and figures",
                             hint="the run may have failed; read its stderr", step="latency")
    return [CliResult(command="run", **r) for r in results]


def parse_benchmark_stdout(text: str) -> CliResult:
    """``hailortcli benchmark`` stdout summary (FPS hw_only/streaming, Latency hw/overall) → :class:`CliResult`."""
    vals: dict[str, float] = {}
    section = ""
    for line in text.splitlines():
        m = re.match(r"^\s*(FPS|Latency)?\s*\((\w+)\)\s*=\s*([-+0-9.eE]+)", line)
        if not m:
            continue
        section = m.group(1) or section
        vals[f"{section}.{m.group(2)}"] = float(m.group(3))
    name = re.search(r"Network group:\s*(\S+)|network\s+(\S+)", text)
    if not vals:
        raise ToolchainError("no 'FPS (...) = ' / 'Latency (...) = ' lines in the hailortcli benchmark output",
                             note="expected the benchmark summary block", hint="the benchmark may have failed",
                             step="latency")
    return CliResult(network_group=(name.group(1) or name.group(2)) if name else "", command="benchmark",
                     fps=vals.get("FPS.streaming"), hw_only_fps=vals.get("FPS.hw_only"),
                     hw_latency_ms=vals.get("Latency.hw"), overall_latency_ms=vals.get("Latency.overall"))


_HELP_CACHE: dict[str, str] = {}


def _run_help(exe: str) -> str:
    """``hailortcli run --help`` (cached per program): which flags this hailortcli has."""
    if exe not in _HELP_CACHE:
        try:
            proc = subprocess.run([exe, "run", "--help"], capture_output=True, text=True, timeout=30, check=False)
            _HELP_CACHE[exe] = proc.stdout + proc.stderr
        except (OSError, subprocess.TimeoutExpired):
            _HELP_CACHE[exe] = ""
    return _HELP_CACHE[exe]


def single_input(hef: str | Path) -> bool:
    """Whether every network group of ``hef`` has exactly one input: ``hailortcli run --measure-overall-latency``
    refuses multi-input networks (``run_command.cpp``). False when the HEF cannot be read."""
    from hailo_qa.hw.hef import HefError, read_hef

    try:
        info = read_hef(hef)
    except HefError:
        return False
    return all(len(g.inputs) == 1 for g in info.network_groups)


def run_hailortcli(hef: str | Path, *, frames: int = 1000, device_id: str | None = None, timeout_s: float = 300,
                   exe: str | None = None, overall_latency: bool | None = None,
                   power: bool | None = None) -> list[CliResult]:
    """Run ``hailortcli run HEF --measure-latency [--measure-overall-latency] [--measure-power] --csv`` and parse it.

    HailoRT's own device-side witness: ``hw_latency`` comes from the device's latency counters, not a host timer.

    Args:
        hef: the HEF.
        frames: ``--frames-count``. Defaults to 1000.
        device_id: ``--device-id``. Defaults to HailoRT's choice.
        timeout_s: kill the program after this long. Defaults to 300.
        exe: path of ``hailortcli``. Defaults to the one on PATH.
        overall_latency: add ``--measure-overall-latency``. Defaults to only for single-input networks (HailoRT
            refuses it otherwise).
        power: add ``--measure-power``. Defaults to when this hailortcli has the flag; if the run then fails (the
            board has no power sensor), it is rerun without, and each row's ``extra["power"]`` says why.

    Returns:
        One :class:`CliResult` per CSV row; rows HailoRT marked failed have ``failed`` set (check it).

    Raises:
        DeviceError: ``hailortcli`` is absent, failed, or timed out.
    """
    import tempfile

    from hailo_qa import toolchain

    exe = exe or toolchain.hailortcli()
    if not exe:
        raise DeviceError("hailortcli is not on PATH", note="expected HailoRT's command-line tool",
                          hint="install the hailort package (it ships hailortcli)", step="latency")
    if overall_latency is None:
        overall_latency = single_input(hef)
    power_note = "not requested"
    if power is None:
        power = "--measure-power" in _run_help(exe)
        power_note = "" if power else "not available: this hailortcli has no --measure-power"
    with tempfile.TemporaryDirectory() as tmp:
        csv_path = Path(tmp) / "run.csv"
        base = [exe, "run", str(hef), "--frames-count", str(frames), "--measure-latency"]
        if overall_latency:
            base.append("--measure-overall-latency")
        tail = ["--csv", str(csv_path)]
        if "--dont-show-progress" in _run_help(exe):
            tail.append("--dont-show-progress")
        if device_id:
            tail += ["--device-id", device_id]
        cmd = base + (["--measure-power"] if power else []) + tail
        proc = _run_cli(cmd, timeout_s)
        if power and (proc.returncode != 0 or not csv_path.is_file()):
            why = _tail(proc)
            cmd = base + tail
            proc = _run_cli(cmd, timeout_s)
            power_note = f"not available on this board: hailortcli run --measure-power failed ({why})"
        elif power:
            power_note = "measured"
        if proc.returncode != 0 or not csv_path.is_file():
            raise DeviceError(f"hailortcli run failed (exit {proc.returncode}): {_tail(proc)}",
                              note="expected exit 0 and a CSV", hint=f"rerun by hand: {' '.join(cmd)}",
                              step="latency")
        rows = parse_run_csv(csv_path.read_text())
    info = {"command": " ".join(cmd), "power": power_note,
            "overall_latency": "measured" if overall_latency else "not measured (multi-input network or unreadable "
                                                                  "HEF: HailoRT refuses it)"}
    return [replace(r, extra={**r.extra, **info}) for r in rows]


def _run_cli(cmd: list[str], timeout_s: float) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired as err:
        raise DeviceError(f"hailortcli run timed out after {timeout_s} s", note="expected it to finish",
                          hint="lower frames, check the device with `hailortcli scan`", step="latency") from err


def _tail(proc: subprocess.CompletedProcess) -> str:
    return " / ".join((proc.stderr or proc.stdout or "").strip().splitlines()[-3:])
