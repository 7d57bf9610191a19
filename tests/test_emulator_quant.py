"""Quantized Stage 1 vs float Stage 1, per manifest model × precision config × calibration size.

Gated by ``[models.<name>.thresholds.emulator.<config>]`` (``min_snr_db``, ``min_cosine``, ``min_top1``,
``min_detection_agreement``; the agreement gates on the 95 % Wilson lower bound over the held-out agreement set, a
count too small to show the gate skips saying how many it needs) and, for ``int16_selective``, by beating int8 on
``quantization.int16_target`` at the same calibration size ("int16_selective did not help: …" fails unless the
manifest records it in ``quantization.int16_no_gain``). The evaluation is :func:`hailo_qa.quant.evaluation.evaluate_quantization` — the same one
``hailo-qa emulate`` and ``hailo-qa validate`` run, on the same held-out inputs — so a gate means one thing
everywhere. With the built-in backend these are numbers of hailo-qa's ONNX Runtime *approximation* of Hailo
numerics (``ort-emulator``), never Hailo's; every figure is recorded with its backend.
"""
from __future__ import annotations

import pytest

from hailo_qa.quant import evaluation as quant_eval
from hailo_qa.runners.base import BackendInfo

pytestmark = pytest.mark.emulator


@pytest.mark.hqa_select(needs=("file",))
def test_emulator_quant(hqa_model, hqa_precision, hqa_calib_size, hqa_split, hqa, hqa_history):
    model = hqa_model
    result = quant_eval.evaluate_quantization(model, config=hqa_precision, calib_size=hqa_calib_size,
                                              backend=hqa.emulator, work_dir=hqa.work_dir, split=hqa_split)
    backend = result.backend
    assert backend["name"] in ("ort-emulator", "dfc") and backend["hailo"] == (backend["name"] == "dfc")
    for metric, value in result.metrics.items():
        hqa_history.record(model=model.name, metric=metric, value=float(value), target="emulator",
                           config=hqa_precision, calib_size=result.calib_size,
                           stage="end_to_end" if metric in ("detection_agreement", "top1") else "stage1",
                           backend=BackendInfo(**backend),
                           extra={"int16_layers": list(result.int16_layers), "eval_inputs": list(result.eval_inputs),
                                  **({"agreement": result.to_dict()["agreement"][metric]}
                                     if metric in result.counts else {}),
                                  **({"vs_int8": dict(result.vs_int8)} if result.vs_int8 else {})})
    table = result.table()
    print(table)
    # the same gates as hailo-qa validate (result.failed): a metric without a manifest gate is reported, not failed
    assert not result.failed, f"{model.name}: {', '.join(result.failed)} failed\n{table}"
    if result.not_gated:
        pytest.skip(f"{model.name}: other gates passed; not gated: {'; '.join(result.not_gated)}")
