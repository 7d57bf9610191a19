"""Hailo-8 hardware checks per compiled variant (``-m hailo8``): one test id per HEF, ``model[variant]``.

A model's Hailo-8 variants are its declared ``[[models.<m>.variants]]`` with ``target = "hailo8"`` (each its own
HEF, labelled with precision, calibration size and source), else its ``hef`` (``hef@hailo8``). Every latency row in
the history carries that variant, so ``hailo-qa report`` puts the latency beside the variant's recognition figures.

Without HailoRT or a device every test here is skipped with the exact reason (hailo_qa.pytest_plugin.hw). The logic
(determinism, latency gates, LSB agreement) is unit-tested against the HailoRT contract fake in
tests/runners/test_hailort.py; tests/test_variants_end_to_end.py runs this module on the fake device.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from hailo_qa.pytest_plugin.hw import (
    determinism_report,
    latency_gate_failures,
    lsb_agreement,
    lsb_gate_failures,
    witness_failures,
    witness_report,
)

pytestmark = [pytest.mark.hailo8, pytest.mark.hqa_select(targets=("hailo8",))]

DETERMINISM_RUNS = 20


def _nhwc(x: np.ndarray, layout: str) -> np.ndarray:
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1)) if layout == "NCHW" and x.ndim == 4 else x


def _names_for_split(runner, split) -> dict[str, str]:
    """HEF vstream → Stage-1 ONNX tensor: inputs in order; outputs by their NHWC shape (unique shapes only)."""
    names = dict(zip(runner.input_metadata(), split.stage1_inputs))
    by_shape: dict[tuple, list[str]] = {}
    for b in split.boundary:
        shp = tuple(b.shape)
        nhwc = (shp[0], shp[2], shp[3], shp[1]) if len(shp) == 4 else shp
        by_shape.setdefault(nhwc, []).append(b.name)
    for vs, m in runner.output_metadata().items():
        cands = by_shape.get(tuple(m.shape), [])
        if len(cands) != 1:
            pytest.fail(f"cannot map HEF output {vs} {m.shape} to a Stage-1 output (candidates {cands}); "
                        f"the HEF does not match the split")
        names[vs] = cands[0]
    return names


@pytest.fixture(scope="module")
def hef_model(hqa_variant):
    """The manifest model with this variant's HEF (a model may hold several compiled variants)."""
    spec, variant = hqa_variant
    return dataclasses.replace(spec, hef=variant.hef)


def _record(hqa_history, hqa_variant, *, metric: str, value: float, backend, extra: dict) -> None:
    """A history row that carries the variant: id, precision config, calibration size and source, target."""
    spec, v = hqa_variant
    hqa_history.record(model=spec.name, metric=metric, value=value, target=v.target, config=v.precision,
                       calib_size=v.calib_size, variant=v.id, backend=backend,
                       extra={"variant": v.label(), "calib_source": v.calib_source,
                              "int16_layers": list(v.int16_layers), **extra})


@pytest.fixture(scope="module")
def hw(hef_model, hqa, hqa_hef_gate):
    """(runner, device feeds, stage-1 runner is the device) for one model, or a skip naming why not."""
    from hailo_qa.inputs import random_feeds, sample_feeds
    from hailo_qa.runners.hailort import HailortRunner

    hqa_hef_gate(hef_model.hef)
    split = None
    names = None
    if hef_model.file is not None:
        from hailo_qa.graph.split import split_for_model

        split = split_for_model(hef_model, hqa.work_dir)
        names = _names_for_split(HailortRunner(hef_model.hef, network_group=hef_model.network_group or None), split)
    runner = HailortRunner(hef_model.hef, device_id=hqa.device, names=names,
                           network_group=hef_model.network_group or None)
    feeds_list = sample_feeds(hef_model) or [("random0", random_feeds(hef_model, np.random.default_rng(0)))]
    with runner:
        yield runner, split, feeds_list


def _device_feeds(model, runner, feeds):
    metas = list(runner.input_metadata().values())
    dev = model.device_inputs
    if len(metas) != len(dev):
        pytest.fail(f"{model.name}: HEF has {len(metas)} inputs, manifest declares {len(dev)} device inputs")
    return {m.name: _nhwc(feeds[s.name], s.layout).astype(np.float32) for m, s in zip(metas, dev)}


def test_arch_matches_device(hef_model, hqa_device, hqa_hef_gate):
    from hailo_qa.hw.hef import hef_runs_on, read_hef

    info = read_hef(hef_model.hef)
    assert hef_runs_on(str(info.hw_arch), hqa_device.architecture), (
        f"{hef_model.name}: HEF arch {info.hw_arch} does not run on {hqa_device.describe()}")


def test_latency_gates(hef_model, hqa_variant, hqa, hw, hqa_history):
    from hailo_qa.hw.latency import measure_runner
    from hailo_qa.runners.pipeline import HostPipeline

    if all(hef_model.threshold("hailo8", k) is None for k in ("max_p95_ms", "max_core_p95_ms")):
        pytest.skip(f"{hef_model.name}: no gate for hailo8.max_p95_ms or hailo8.max_core_p95_ms in the manifest")
    runner, split, feeds_list = hw
    feeds = feeds_list[0][1]
    core = measure_runner(runner, _device_feeds(hef_model, runner, feeds), warmup=hqa.latency_warmup,
                          iterations=hqa.latency_iterations)
    if split is not None:
        from hailo_qa.inputs import host_feeds

        pipe = HostPipeline(runner, split.stage2_path, host_feeds=host_feeds(hef_model))
        try:  # the pipeline's __exit__ also closes the shared Stage-1 runner: reopen it for the next tests
            e2e = measure_runner(pipe, feeds, warmup=hqa.latency_warmup, iterations=hqa.latency_iterations)
        finally:
            runner.activate()
        e2e_stats = e2e["end_to_end"]
    else:
        e2e_stats = core["end_to_end"]
    core_stats = core["device"]
    for metric, st in (("p95_ms", e2e_stats), ("core_p95_ms", core_stats)):
        _record(hqa_history, hqa_variant, metric=metric, value=st.p95_ms, backend=runner.backend, extra=st.to_dict())
    fails = latency_gate_failures(hef_model, e2e_stats, core_stats)
    assert not fails, "\n".join(fails)


def test_hailortcli_second_witness(hef_model, hqa_variant, hqa, hw, hqa_history):
    """HailoRT's own device-side latency (``hailortcli run --measure-latency``) next to the host percentiles.

    ``--measure-overall-latency`` only for single-input networks, ``--measure-power`` where the board has a sensor;
    every network of the group is its own row; a row HailoRT marked failed fails the test.
    """
    from dataclasses import replace

    from hailo_qa import toolchain
    from hailo_qa.hw.latency import measure_runner, run_hailortcli

    if not toolchain.hailortcli():
        pytest.skip("hailo8: hailortcli is not on PATH, so there is no device-side witness (it ships with the "
                    "hailort package)")
    runner, _, feeds_list = hw
    host = measure_runner(runner, _device_feeds(hef_model, runner, feeds_list[0][1]), warmup=hqa.latency_warmup,
                          iterations=hqa.latency_iterations)
    runner.deactivate()  # hailortcli opens the device itself: release ours for the duration
    try:
        rows = run_hailortcli(hef_model.hef, device_id=hqa.device, frames=max(100, hqa.latency_iterations))
    finally:
        runner.activate()
    backend = replace(runner.backend, name="hailortcli")
    for r in rows:
        for metric, value in (("hailortcli_hw_latency_ms", r.hw_latency_ms),
                              ("hailortcli_overall_latency_ms", r.overall_latency_ms),
                              ("hailortcli_avg_power_w", r.average_power_w)):
            if value is not None and not r.failed:
                _record(hqa_history, hqa_variant, metric=metric, value=value, backend=backend,
                        extra={"network_group": r.network_group, **r.to_dict()})
    fails = witness_failures(rows, host["device"])
    assert not fails, "\n".join(fails + ["", witness_report(rows, host)])


def test_hef_only_outputs_vs_golden(hef_model, hqa_variant, hw, hqa_golden):
    """A HEF-only entry has no float reference: its committed device golden is a regression check (a first run
    creates it and fails, asking for review). Models with an ONNX are compared with the float Stage 1 instead."""
    runner, split, feeds_list = hw
    if split is not None:
        pytest.skip(f"{hef_model.name}: has an ONNX; checked against the float reference "
                    f"(test_outputs_vs_emulator_and_float_in_quantization_steps)")
    min_cos = hef_model.threshold("hailo8", "min_cosine_vs_golden")
    for name, feeds in feeds_list:
        out = runner.infer(_device_feeds(hef_model, runner, feeds))
        hqa_golden.check(out, model=hef_model, target="hailo8", name=_golden_name(hqa_variant, name),
                         backend=runner.backend,
                         min_cosine=min_cos)


def _golden_name(hqa_variant, name: str) -> str:
    """One golden per HEF: the sample name, prefixed with the variant when the model declares several."""
    spec, v = hqa_variant
    return name if not spec.declared_variants else f"{v.id.replace('@', '_at_')}__{name}"


def _device_emulator_float(hef_model, hqa_variant, hqa_emulator, hw):
    """Per output: device, emulator and float Stage-1 outputs (NCHW) and the device's quantization step. The
    emulator is built as the variant says it was compiled (precision, 16-bit layers, calibration size and source);
    a HEF whose build is not described is compared with INT8 at the first calibration size."""
    runner, split, feeds_list = hw
    if split is None:
        pytest.skip(f"{hef_model.name}: HEF-only model (no ONNX), no emulator or float Stage 1 to compare with")
    from hailo_qa.runners.base import nhwc_to_nchw
    from hailo_qa.runners.onnxrt import OnnxrtRunner

    variant = hqa_variant[1]
    emu = hqa_emulator(hef_model, variant.precision or "int8", variant.calib_size or hef_model.calibration.sizes[0],
                       variant.int16_layers, split=split, calib_source=variant.calib_source)
    rows = []
    with emu, OnnxrtRunner(split.stage1_path, name="float-stage1") as flt:
        for name, feeds in feeds_list:
            hwout = runner.infer(_device_feeds(hef_model, runner, feeds))
            hw_nchw = {k: nhwc_to_nchw(v) for k, v in hwout.items()}
            emu_out = emu.infer({k: feeds[k] for k in emu.input_metadata()})
            flt_out = flt.infer({k: feeds[k] for k in flt.input_metadata()})
            scales = {k: runner.quant_info(k)[0] for k in hwout}
            rows.append((name, hw_nchw, emu_out, flt_out, scales))
    return rows


def _lsb_distances(hef_model, hqa_variant, hqa_emulator, hw):
    """Per output, the max over the samples of: device vs emulator, device vs float, emulator vs float (steps)."""
    d_emu, d_flt, e = {}, {}, {}
    for _, hw_out, emu_out, flt_out, scales in _device_emulator_float(hef_model, hqa_variant, hqa_emulator, hw):
        for into, (ref, test) in ((d_emu, (emu_out, hw_out)), (d_flt, (flt_out, hw_out)),
                                  (e, (flt_out, {k: emu_out[k] for k in hw_out if k in emu_out}))):
            for k, v in lsb_agreement(ref, test, scales).items():
                into[k] = max(into.get(k, 0.0), v)
    return d_emu, d_flt, e


def test_outputs_vs_emulator_and_float_in_quantization_steps(hef_model, hqa_variant, hqa, hqa_emulator, hw,
                                                             hqa_history):
    """Device vs the emulator and vs the float Stage 1, in the device's output steps (gates: the manifest's
    ``hailo8.max_lsb_vs_emulator`` / ``max_lsb_vs_float``, else the derived defaults of
    :func:`hailo_qa.pytest_plugin.hw.lsb_gate_failures`). Replaces comparing the device with its own first run."""
    d_emu, d_flt, e = _lsb_distances(hef_model, hqa_variant, hqa_emulator, hw)
    assert d_emu and d_flt, f"{hef_model.name}: no device output matches an emulator / float output by name"
    fails, lines = lsb_gate_failures(hef_model.name, d_emu, d_flt, e, hqa.emulator_backend(),
                                     max_vs_emulator=hef_model.threshold("hailo8", "max_lsb_vs_emulator"),
                                     max_vs_float=hef_model.threshold("hailo8", "max_lsb_vs_float"))
    for metric, values in (("lsb_vs_emulator", d_emu), ("lsb_vs_float", d_flt)):
        _record(hqa_history, hqa_variant, metric=metric, value=max(values.values()), backend=hw[0].backend,
                extra={"per_output": values, "emulator_vs_float": e})
    print("\n".join(lines))
    assert not fails, "\n".join(fails + lines)


def test_determinism(hef_model, hw):
    runner, _, feeds_list = hw
    feeds = _device_feeds(hef_model, runner, feeds_list[0][1])
    rep = determinism_report(lambda: runner.infer(feeds), runs=DETERMINISM_RUNS)
    assert rep, f"{hef_model.name}: non-deterministic on {runner.backend.label()}: {rep.describe()}"
