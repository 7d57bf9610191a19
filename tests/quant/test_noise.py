"""Per-layer noise localisation: the DFC statistics reader (pure, on dicts), ranking and suggestion, ORT's
qdq_loss_debug on a tiny model, and on a real model that the suggestion raises output SNR over plain INT8."""
from __future__ import annotations

import math

import numpy as np
import pytest

from hailo_qa.errors import InputDataError
from hailo_qa.quant.noise import (
    SNR_KEY,
    LayerNoise,
    alls_lines,
    dfc_layer_noise,
    format_table,
    ort_layer_noise,
    rank_layers,
    suggest_int16,
)


def _tiny_calib(n=8, seed=0):
    import hashlib

    rng = np.random.default_rng(seed)
    arrays = [rng.uniform(0, 1, (1, 3, 16, 16)).astype(np.float32) for _ in range(n)]

    class ArrayCalib:  # CalibSet's streaming interface (test double)
        count, input_name = n, "x"
        sha256 = hashlib.sha256(b"".join(a.tobytes() for a in arrays)).hexdigest()

        def iter_samples(self):
            yield from (a.copy() for a in arrays)

    return ArrayCalib()


STATS = {
    "net/conv1": {SNR_KEY: 31.5, "other": 1},
    "net/conv2": {SNR_KEY: np.array([12.0, 7.5])},  # per output: worst counts
    "net/conv3": {SNR_KEY: 22.0},
    "net/input_layer1": {"stats/min": 0.0},  # no noise entry: skipped
}


def test_dfc_layer_noise_reads_params_statistics():
    noise = dfc_layer_noise(STATS)
    assert {n.layer: n.snr_db for n in noise} == {"net/conv1": 31.5, "net/conv2": 7.5, "net/conv3": 22.0}
    assert all(n.source == "dfc" for n in noise)
    assert [n.layer for n in rank_layers(noise)] == ["net/conv2", "net/conv3", "net/conv1"]
    assert suggest_int16(noise, 2) == ("net/conv2", "net/conv3")
    assert "<10 dB" in format_table(noise)


def test_dfc_layer_noise_without_analysis_is_a_clear_error():
    with pytest.raises(InputDataError, match="analyze_noise"):
        dfc_layer_noise({"net/conv1": {"stats/min": 0.0}})
    with pytest.raises(InputDataError):
        dfc_layer_noise([1, 2])


def test_ranking_prefers_added_noise_and_dedups():
    noise = [LayerNoise("a", "a", "Conv", snr_db=30, added_db=1.0),
             LayerNoise("b", "b", "Conv", snr_db=20, added_db=9.0),
             LayerNoise("b", "b2", "Conv", snr_db=19, added_db=8.0),
             LayerNoise("c", "c", "Conv", snr_db=10, added_db=math.nan)]
    assert suggest_int16(noise, 2) == ("b", "a")
    assert suggest_int16(noise, 2, exclude=["b"]) == ("a", "c")
    assert suggest_int16(noise, 0) == ()
    with pytest.raises(InputDataError):
        suggest_int16(noise, -1)


def test_alls_lines_are_model_script_commands_in_hn_names():
    from hailo_qa.errors import ManifestError
    from hailo_qa.quant.model_script import layer_map_from_hn

    hn = {"layers": {"net/conv1": {"original_names": ["/c1/Conv"]}, "net/conv7": {"original_names": ["/m/Conv",
                                                                                                   "/m/Relu"]}}}
    assert alls_lines(["net/conv1", "/m/Conv", "/m/Relu"], layer_map=layer_map_from_hn(hn)) == [
        "quantization_param(net/conv1, precision_mode=a16_w16)",
        "quantization_param(net/conv7, precision_mode=a16_w16)"]
    with pytest.raises(ManifestError, match="did you mean"):
        alls_lines(["/m/Cnv"], layer_map=layer_map_from_hn(hn))


def _tiny_quantized(tmp_path, cfg=None):
    """A Conv+Relu float model, its INT8 QDQ twin and two probe feeds."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from hailo_qa.runners.emulator_ort import OrtEmulatorRunner, OrtQuantConfig

    rng = np.random.default_rng(0)
    w1 = numpy_helper.from_array(rng.normal(0, 0.5, (8, 3, 3, 3)).astype(np.float32), "w1")
    g = helper.make_graph([helper.make_node("Conv", ["x", "w1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
                           helper.make_node("Relu", ["c1"], ["y"], name="relu1")], "t",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 16, 16])], [w1])
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), path)
    q = OrtEmulatorRunner(path, _tiny_calib(), cfg or OrtQuantConfig("int8"), tmp_path).prepare()
    return path, q, [{"x": s} for s in _tiny_calib(2, seed=3).iter_samples()]


def test_ort_layer_noise_on_tiny_model(tmp_path):
    path, q, feeds = _tiny_quantized(tmp_path)
    noise = ort_layer_noise(path, q, feeds, work_dir=tmp_path)
    by_layer = {n.layer: n for n in noise}
    assert "conv1" in by_layer and by_layer["conv1"].op_type == "Conv+Relu"  # fused, as Hailo sees it
    assert 10 < by_layer["conv1"].snr_db < 80 and math.isfinite(by_layer["conv1"].added_db)
    with pytest.raises(InputDataError):
        ort_layer_noise(path, q, [])


def test_cached_layer_noise_is_the_same_analysis_and_misses_when_a_model_or_input_changes(tmp_path, monkeypatch):
    """The noise analysis of an int16_selective run is cached (pytest-xdist workers and later runs share it): read
    back, the records are the analysis' own (every float exact); a changed float model, quantized model or probe
    input is another entry."""
    import json
    import shutil

    import onnx

    import hailo_qa.quant.noise as noise_mod
    from hailo_qa.quant.noise import cached_layer_noise
    from hailo_qa.runners.emulator_ort import OrtQuantConfig

    path, q, feeds = _tiny_quantized(tmp_path)
    runs = []
    real = noise_mod.ort_layer_noise
    monkeypatch.setattr(noise_mod, "ort_layer_noise", lambda *a, **k: runs.append(a) or real(*a, **k))
    first = cached_layer_noise(path, q, feeds, tmp_path)
    again = cached_layer_noise(path, q, feeds, tmp_path)
    assert len(runs) == 1
    as_json = [json.dumps(n.to_dict()) for n in first]  # NaN-safe equality
    assert [json.dumps(n.to_dict()) for n in again] == as_json
    assert as_json == [json.dumps(n.to_dict()) for n in real(path, q, feeds, work_dir=tmp_path)]
    cached_layer_noise(path, q, [{"x": feeds[0]["x"] + np.float32(1e-3)}, feeds[1]], tmp_path)
    assert len(runs) == 2  # another probe input
    (tmp_path / "pt").mkdir()
    per_tensor = _tiny_quantized(tmp_path / "pt", OrtQuantConfig("int8", weight_granularity="per_tensor"))[1]
    cached_layer_noise(path, per_tensor, feeds, tmp_path)
    assert len(runs) == 3  # another quantized model
    model = onnx.load(str(path))
    model.doc_string = "re-exported"
    other = tmp_path / "other" / "m.onnx"
    other.parent.mkdir()
    onnx.save(model, other)
    shutil.copy(q, tmp_path / "other" / "q.onnx")
    cached_layer_noise(other, tmp_path / "other" / "q.onnx", feeds, tmp_path)
    assert len(runs) == 4  # another float model (same name, other bytes)
    cached_layer_noise(path, q, feeds, tmp_path)
    assert len(runs) == 4  # and the first entry is still there


@pytest.mark.slow
def test_suggestion_raises_output_snr_on_mobilefacenet(tmp_path_factory, record_property):
    """Applying the suggested a16_w16 layers must beat plain INT8 at the output (ort-emulator, MobileFaceNet,
    calib 16, 12 held-out inputs). YuNet is not used: there the suggestion's effect is within eval noise."""
    from hailo_qa.evaluate.metrics import snr_db
    from hailo_qa.graph.split import split_for_model
    from hailo_qa.manifest import load_manifest
    from hailo_qa.quant.calib import calib_set_for_model
    from hailo_qa.quant.emulator import make_emulator
    from hailo_qa.quant.noise import suggest_for_model
    from hailo_qa.runners.emulator_ort import CalibReader
    from hailo_qa.runners.onnxrt import OnnxrtRunner

    spec = load_manifest().get("mobilefacenet")
    if not spec.available:
        pytest.skip(f"mobilefacenet: {spec.unavailable}")
    work = tmp_path_factory.mktemp("noise_mfn")
    split = split_for_model(spec, work)
    calib = calib_set_for_model(spec, size=16)
    layers, noise = suggest_for_model(spec, split, calib, work, k=3)
    assert len(layers) == 3 and len(noise) > 10
    ev = list(CalibReader(calib_set_for_model(spec, size=12, seed=99), "input"))

    def out_snr(config, int16_layers=()):
        r = make_emulator(spec, split, backend="ort", config=config, calib=calib, work_dir=work,
                          int16_layers=int16_layers)
        with OnnxrtRunner(split.stage1_path) as f, r:
            ref = np.concatenate([np.concatenate([v.ravel() for v in f.infer(x).values()]) for x in ev])
            got = np.concatenate([np.concatenate([v.ravel() for v in r.infer(x).values()]) for x in ev])
        return snr_db(ref, got)

    base, selective = out_snr("int8"), out_snr("int16_selective", layers)
    gain = selective - base
    record_property("int16_selective_gain_db", gain)
    print(f"mobilefacenet: int8 {base:.2f} dB, int16_selective {layers} {selective:.2f} dB, gain {gain:+.2f} dB")
    assert gain > 0, f"suggested layers {layers} did not raise output SNR (int8 {base:.2f} dB → {selective:.2f} dB)"
