"""Quantized Stage 1 vs float Stage 1, per manifest model × precision config × calibration size.

Gated by ``[models.<name>.thresholds.emulator.<config>]`` (``min_snr_db``, ``min_cosine``, ``min_top1``,
``min_detection_agreement``). With the built-in backend these are numbers of hailo-qa's ONNX Runtime
*approximation* of Hailo numerics (``ort-emulator``), never Hailo's; every figure is recorded with its backend.
"""
from __future__ import annotations

import pytest

from hailo_qa import quant_eval

pytestmark = pytest.mark.emulator

EVAL_SIZE = 4
EVAL_SEED_OFFSET = 1000  # held-out evaluation data: a different seed from calibration


_CACHE: dict[tuple[str, str, str], list] = {}


def _cached(kind: str, model, split, make):
    key = (kind, model.name, str(split.stage1_path))
    if key not in _CACHE:
        _CACHE[key] = make()
    return _CACHE[key]


def _eval_feeds(model, split):
    return _cached("feeds", model, split, lambda: _make_eval_feeds(model, split))


def _make_eval_feeds(model, split):
    from hailo_qa.calib import calib_set_for_model
    from hailo_qa.runners.emulator_ort import CalibReader

    inp = split.stage1_inputs[0]
    ev = calib_set_for_model(model, size=EVAL_SIZE, seed=model.calibration.seed + EVAL_SEED_OFFSET)
    return list(CalibReader(ev, inp, layout=model.input(inp).layout))


def _float_outputs(model, split):
    from hailo_qa.runners.onnxrt import OnnxrtRunner

    def make():
        with OnnxrtRunner(split.stage1_path) as r:
            return [r.infer(f) for f in _eval_feeds(model, split)]

    return _cached("float", model, split, make)


def stage1_metrics(model, split, runner) -> dict[str, float]:
    """SNR (all outputs, all eval inputs), worst/mean cosine, max abs error, top-1 agreement for classifiers."""
    ref = _float_outputs(model, split)
    with runner:
        test = [runner.infer(f) for f in _eval_feeds(model, split)]
    return quant_eval.stage1_metrics(ref, test, classifier=model.task == "classification")


def detection_metrics(model, split, runner) -> dict[str, float]:
    """End to end on the sample photos: quantized Stage 1 → host Stage 2 vs the float model (IoU ≥ 0.5, same label)."""
    from hailo_qa.inputs import host_feeds, sample_feeds
    from hailo_qa.runners.onnxrt import OnnxrtRunner
    from hailo_qa.runners.pipeline import HostPipeline

    samples = sample_feeds(model)
    if not samples:
        return {}
    with OnnxrtRunner(model.file) as ref_r, HostPipeline(runner, split.stage2_path, host_feeds=host_feeds(model)) as q:
        pairs = [(ref_r.infer(feeds), q.infer(feeds)) for _, feeds in samples]
    return quant_eval.detection_metrics([r for r, _ in pairs], [t for _, t in pairs], iou=0.5)


@pytest.mark.hqa_select(needs=("file",))
def test_emulator_quant(hqa_model, hqa_precision, hqa_calib_size, hqa_split, hqa_emulator, request):
    model = hqa_model
    runner = hqa_emulator(model, hqa_precision, hqa_calib_size, split=hqa_split)
    backend = runner.backend
    assert backend.name in ("ort-emulator", "dfc") and backend.hailo == (backend.name == "dfc")
    values = stage1_metrics(model, hqa_split, runner)
    if model.task == "detection" and hqa_split.stage2_path is not None:
        values.update(detection_metrics(model, hqa_split, runner))

    try:
        history = request.getfixturevalue("hqa_history")
    except pytest.FixtureLookupError:  # the golden/history plugin is not installed
        history = None
    section = f"emulator.{hqa_precision}"
    rows, failed = quant_eval.gate_rows(values, quant_eval.gates_for(model, hqa_precision))
    if history is not None:
        for metric, value in values.items():
            history.record(model=model.name, metric=metric, value=float(value), target="emulator",
                           config=hqa_precision, calib_size=hqa_calib_size, stage="stage1"
                           if metric != "detection_agreement" else "end_to_end", backend=backend,
                           extra={"int16_layers": list(getattr(runner, "int16_layers", ()))})
    table = "\n".join([f"{model.name} [{hqa_precision}, calib {hqa_calib_size}] on {backend.label()} "
                       f"(hailo={backend.hailo}; int16 layers: {list(getattr(runner, 'int16_layers', ())) or '-'})",
                       *rows])
    print(table)
    assert model.threshold(section, "min_snr_db") is not None, (
        f"{model.name}: no thresholds.{section}.min_snr_db in the manifest\n{table}")
    assert not failed, f"{model.name}: {', '.join(failed)} below threshold\n{table}"

