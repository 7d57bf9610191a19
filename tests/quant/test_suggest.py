"""The measured INT16 suggestion: candidates from the noise analysis are only called a suggestion after each was
measured alone and together on held-out inputs (pure choice logic, the DFC path on the contract fake, and a real
model on the built-in ORT emulator)."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from hailo_qa.errors import InputDataError
from hailo_qa.quant.suggest import IMPROVES, NO_CHANGE, WORSE, Int16Suggestion, Measured, choose, verdict


def _row(what, layers, gain, har=()):
    return Measured(what, tuple(layers), tuple(har), 20.0 + gain, 0.99, gain, verdict(gain) if layers else "")


def test_verdict_and_choice_follow_the_measured_gains():
    assert (verdict(0.3), verdict(-0.01), verdict(0.0), verdict(math.nan)) == (IMPROVES, WORSE, NO_CHANGE, NO_CHANGE)
    rows = [_row("int8", (), 0.0), _row("alone", ["a"], 2.0), _row("alone", ["b"], -1.5), _row("alone", ["c"], 2.0),
            _row("together", ["a", "b", "c"], 1.0), _row("helpful together", ["a", "c"], 2.0)]
    assert choose(rows) == ("a",)  # best gain, fewest layers on a tie
    rows.append(_row("helpful together", ["a", "c"], 3.5))
    assert choose(rows) == ("a", "c")
    # the seed's fc1/conv33/dw16: every set worse than INT8 → no suggestion at all
    bad = [_row("int8", (), 0.0), _row("alone", ["fc1"], -0.4), _row("alone", ["conv33"], -0.1),
           _row("together", ["fc1", "conv33"], -0.9)]
    assert choose(bad) == ()


def _suggestion(rows, suggested, names="onnx", har=False):
    return Int16Suggestion(model="m", calib_size=16, backend={"name": "ort-emulator", "version": "1", "hailo": False},
                           noise_source="ort", names=names, candidates=("fc1", "conv33"), candidate_snr_db=(3.0, 1.0),
                           layer_map={"fc1": ("m/fc1",)} if har else {}, eval_inputs=("x",), rows=tuple(rows),
                           suggested=suggested, note="approximation")


def test_a_worse_candidate_is_reported_as_worse_and_never_suggested():
    rows = [_row("int8", (), 0.0), _row("alone", ["fc1"], -0.4), _row("alone", ["conv33"], 1.2),
            _row("together", ["fc1", "conv33"], 0.5)]
    s = _suggestion(rows, choose(rows))
    assert s.suggested == ("conv33",) and s.gain_of("fc1") == pytest.approx(-0.4)
    text = s.table()
    assert "fc1" in text and "-0.40  worse" in text and "+1.20  improves" in text
    assert 'int16_layers = ["conv33"]' in text
    assert s.alls_lines() == []  # no HAR names known: never an ONNX name in a model script
    d = json.loads(json.dumps(s.to_dict()))
    assert d["suggested"] == ["conv33"] and [r["verdict"] for r in d["rows"]] == ["", WORSE, IMPROVES, IMPROVES]
    none = _suggestion(rows[:2], ())
    assert "suggestion: none" in none.table() and none.alls_lines() == [] and none.manifest_line() == ""
    har_rows = [_row("int8", (), 0.0), _row("alone", ["fc1"], 0.7, har=["m/fc1"])]
    assert _suggestion(har_rows, ("fc1",), har=True).alls_lines() == [
        "quantization_param([m/fc1], precision_mode=a16_w16)"]


# --- the DFC path on the contract fake ----------------------------------------------------------------------------
@pytest.fixture
def fake(monkeypatch):
    from tests.fakes.hailo_sdk_client import _support

    return _support.install(monkeypatch)


def test_on_the_dfc_candidates_are_har_layer_names_and_each_is_measured(fake, tmp_path):
    from tests.quant.test_emulator import _spec

    from hailo_qa.quant.suggest import measure_int16_suggestion

    spec = _spec(tmp_path)
    s = measure_int16_suggestion(spec, calib_size=4, backend="dfc", work_dir=tmp_path / "w", k=2, n_eval=2)
    assert (s.noise_source, s.names, s.backend["name"], s.backend["hailo"]) == ("dfc", "har", "dfc", True)
    assert len(s.candidates) == 2 and all(c.startswith("tiny/") for c in s.candidates)
    assert ("analyze_noise", "tiny", "advanced", 4) in fake.calls
    assert [r.what for r in s.rows] == ["int8", "alone", "alone", "together"]
    assert [r.layers for r in s.rows[1:3]] == [(c,) for c in s.candidates]
    # every measured set was quantized with its own model script, in HN names
    scripts = [json.loads(h.read_text())["model_script"] for h in (tmp_path / "w" / "dfc").glob("*.q.har")]
    for c in s.candidates:
        assert any(f"quantization_param([{c}], precision_mode=a16_w16)" in t for t in scripts)
    # the fake's synthetic quantization ignores precision: nothing gains, so nothing is suggested
    assert all(r.verdict == NO_CHANGE for r in s.rows[1:]) and s.suggested == ()
    assert "suggestion: none" in s.table()


def test_on_ort_with_the_dfc_installed_onnx_candidates_carry_their_har_names(fake, tmp_path):
    from tests.quant.test_emulator import _spec

    from hailo_qa.quant.suggest import measure_int16_suggestion

    spec = _spec(tmp_path)
    s = measure_int16_suggestion(spec, calib_size=4, backend="ort", work_dir=tmp_path / "w", k=1, n_eval=2)
    assert (s.noise_source, s.names, s.backend["name"]) == ("ort", "onnx", "ort-emulator")
    (c,) = s.candidates
    assert not c.startswith("tiny/") and s.layer_map[c] and all(h.startswith("tiny/") for h in s.layer_map[c])
    assert s.rows[1].har_names == s.layer_map[c]


def test_bad_arguments_are_input_errors(tmp_path):
    from tests.quant.test_emulator import _spec

    from hailo_qa.quant.suggest import measure_int16_suggestion

    spec = _spec(tmp_path)
    with pytest.raises(InputDataError, match="k=0"):
        measure_int16_suggestion(spec, calib_size=4, backend="ort", work_dir=tmp_path, k=0)
    with pytest.raises(InputDataError, match="'dcf' is unknown"):
        measure_int16_suggestion(spec, calib_size=4, backend="dcf", work_dir=tmp_path, k=1)


# --- a real registered model on the built-in emulator -------------------------------------------------------------
@pytest.mark.emulator
def test_measured_suggestion_on_mtcnn_onet(tmp_path_factory, record_property):
    """MTCNN O-Net, ort-emulator, calib 16, 8 held-out inputs: every top-3 candidate is measured alone and
    together, each row's SNR is what an independent int16_selective evaluation of that set gives, and the
    suggestion is the best measured set — only when it beat INT8."""
    from hailo_qa.graph.split import split_for_model
    from hailo_qa.manifest import load_manifest
    from hailo_qa.quant.calib import calib_set_for_model
    from hailo_qa.quant.evaluation import calib_paths, eval_feeds, evaluate_quantization
    from hailo_qa.quant.suggest import measure_int16_suggestion

    spec = load_manifest().get("mtcnn_onet")
    if not spec.available:
        pytest.skip(f"mtcnn_onet: {spec.unavailable}")
    if not spec.samples:
        pytest.skip("mtcnn_onet: its calibration samples (../shared/faces) are absent")
    work = tmp_path_factory.mktemp("suggest_onet")
    split = split_for_model(spec, work)
    feeds = eval_feeds(spec, n_eval=8, exclude=calib_paths(calib_set_for_model(spec, size=16)))
    s = measure_int16_suggestion(spec, calib_size=16, backend="ort", work_dir=work, k=3, split=split, feeds=feeds)
    print(s.table())
    record_property("int16_suggestion", json.dumps(s.to_dict()))
    assert s.noise_source == "ort" and s.backend["name"] == "ort-emulator" and not s.backend["hailo"]
    graph_nodes = {n.name for n in __import__("onnx").load(str(split.stage1_path)).graph.node}
    assert len(s.candidates) == 3 and set(s.candidates) <= graph_nodes
    assert [r.what for r in s.rows][:5] == ["int8", "alone", "alone", "alone", "together"]
    base = s.baseline.snr_db
    for r in s.rows[1:]:
        assert r.gain_db == pytest.approx(r.snr_db - base) and r.verdict == verdict(r.gain_db)
    assert s.suggested == choose(s.rows)
    if s.suggested:  # the suggested set, evaluated the way `hailo-qa emulate --config int16_selective` does
        again = evaluate_quantization(spec, config="int16_selective", calib_size=16, backend="ort", work_dir=work,
                                      int16_layers=s.suggested, feeds=feeds, split=split)
        assert again.snr_db == pytest.approx(s.suggested_row.snr_db, abs=1e-6)
        assert again.snr_db > base
