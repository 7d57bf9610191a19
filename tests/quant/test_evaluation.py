"""hailo_qa.quant.evaluation: metric helpers, gate table, knee, evaluation inputs, and one real evaluation."""
from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest

from hailo_qa.errors import InputDataError
from hailo_qa.quant import evaluation as qe


def _outs(rng, n=3, noise=0.0):
    ref = [{"a": rng.normal(size=(1, 4, 2, 2)), "logits": rng.normal(size=(1, 10))} for _ in range(n)]
    test = [{k: v + noise * rng.normal(size=v.shape) for k, v in r.items()} for r in ref]
    return ref, test


def test_stage1_metrics_identical_outputs():
    ref, _ = _outs(np.random.default_rng(0))
    m = qe.stage1_metrics(ref, ref, classifier=True)
    assert m["snr_db"] == math.inf and m["cosine"] == pytest.approx(1.0) and m["max_abs_err"] == 0.0
    per_output = {f"{k}/{n}" for k in ("snr_db", "cosine") for n in ref[0]}  # two outputs: each kept on its own
    assert m["top1"] == 1.0 and set(m) == {"snr_db", "cosine", "cosine_mean", "max_abs_err", "top1"} | per_output


def test_raw_heads_keep_per_output_snr_and_cosine():
    """A raw-head detector's heads are its task outputs: a bad head is visible on its own, not averaged away."""
    rng = np.random.default_rng(1)
    ref = [{"box": rng.normal(size=(1, 64, 4, 4)), "cls": rng.normal(size=(1, 4, 4, 4))} for _ in range(3)]
    test = [{"box": r["box"] + 1e-3, "cls": -r["cls"]} for r in ref]  # box fine, class head broken
    m = qe.stage1_metrics(ref, test)
    assert m["snr_db/box"] > 50 and m["cosine/box"] > 0.999
    assert m["cosine/cls"] < 0 and m["snr_db/cls"] < 0


def test_stage1_metrics_known_noise_and_worst_cosine():
    ref = [{"y": np.array([1.0, 0.0])}, {"y": np.array([0.0, 1.0])}]
    test = [{"y": np.array([1.0, 0.0])}, {"y": np.array([1.0, 1.0])}]  # second: cosine 1/sqrt(2), error 1
    m = qe.stage1_metrics(ref, test)
    assert m["snr_db"] == pytest.approx(10 * math.log10(2 / 1))
    assert m["cosine"] == pytest.approx(1 / math.sqrt(2)) and m["cosine_mean"] == pytest.approx((1 + 2 ** -0.5) / 2)
    assert m["max_abs_err"] == 1.0 and "top1" not in m


def test_stage1_metrics_top1_counts_flips():
    ref = [{"l": np.array([[0.0, 1.0]])}, {"l": np.array([[1.0, 0.0]])}]
    test = [{"l": np.array([[0.0, 1.0]])}, {"l": np.array([[0.0, 1.0]])}]
    assert qe.stage1_metrics(ref, test, classifier=True)["top1"] == 0.5


@pytest.mark.parametrize("ref,test", [([], []), ([{"a": np.zeros(2)}], []),
                                      ([{"a": np.zeros(2)}], [{"b": np.zeros(2)}])])
def test_stage1_metrics_rejects_mismatches(ref, test):
    with pytest.raises(InputDataError, match="Note:"):
        qe.stage1_metrics(ref, test)


def test_detection_metrics_means_the_agreement():
    det = {"boxes": np.array([[0, 0, 10, 10.0]]), "labels": np.array([1]), "scores": np.array([0.9])}
    moved = {**det, "boxes": np.array([[50, 50, 60, 60.0]])}
    assert qe.detection_metrics([det, det], [det, moved]) == {"detection_agreement": 0.5}


def test_gate_rows_flags_below_gate_and_nan():
    rows, failed = qe.gate_rows({"snr_db": 20.0, "cosine": math.nan, "max_abs_err": 3.0},
                                {"snr_db": 25.0, "cosine": 0.9})
    assert failed == ["snr_db", "cosine"]
    assert "≥ 25" in rows[0] and rows[0].endswith("FAIL") and rows[2].endswith("ok") and "(no gate)" in rows[2]


# --- knee -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("sizes,snr,tol,knee", [
    ([16, 64, 256, 1024], [20.0, 29.7, 30.0, 30.1], 0.5, 64),  # saturating curve
    ([16, 64, 256, 1024], [20.0, 29.7, 30.0, 30.1], 0.1, 256),  # tighter tolerance, later knee
    ([16, 64, 256], [30.0, 29.0, 28.0], 0.5, 16),  # more data only hurts: the smallest
    ([16, 64, 256], [10.0, 20.0, 30.0], 0.5, 256),  # still climbing: the largest
    ([1024, 16, 64], [30.0, 20.0, 29.8], 0.5, 64),  # order of the input does not matter
    ([16, 64], [math.nan, 12.0], 0.5, 64),  # NaN ignored
    ([16, 64], [math.nan, math.nan], 0.5, None),
    ([16, 64, 256], [40.0, math.inf, math.inf], 0.5, 64),  # bit-exact counts as the best
    ([16, 64], [30.0, 30.0], 0.0, 16),
])
def test_knee_on_synthetic_curves(sizes, snr, tol, knee):
    assert qe.knee_size(sizes, snr, tol_db=tol) == knee


@pytest.mark.parametrize("kw", [{"sizes": [1, 2], "snr_db": [1.0]}, {"sizes": [1], "snr_db": [1.0], "tol_db": -1},
                                {"sizes": [1], "snr_db": [1.0], "tol_db": math.nan}])
def test_knee_rejects_bad_arguments(kw):
    with pytest.raises(InputDataError):
        qe.knee_size(**kw)


def test_parse_sizes():
    assert qe.parse_sizes("64, 16,16,1024") == (16, 64, 1024)
    for bad in ("", "16,abc", "0,16", "-4", "16,,64", "1.5"):
        with pytest.raises(InputDataError, match="positive integers") as err:
            qe.parse_sizes(bad)
        assert "Hint: e.g. --sizes" in str(err.value)


# --- result -----------------------------------------------------------------------------------------------------
def _result(**kw):
    base = dict(model="m", config="int8", calib_size=16, calib_sha256="ab" * 32,
                backend={"name": "ort-emulator", "version": "1.0", "hailo": False, "config": "int8"},
                eval_inputs=("Chris", "random[0]"), metrics={"snr_db": 30.0, "cosine": 0.99, "cosine_mean": 0.995,
                                                             "max_abs_err": 0.1}, gates={"snr_db": 35.0})
    base.update(kw)
    return qe.QuantEval(**base)


def test_quant_eval_table_names_the_backend_and_inputs():
    r = _result()
    t = r.table()
    assert "ort-emulator[int8]@1.0" in t and "approximation of Hailo numerics" in t and "hailo=False" in t
    assert "1 held-out samples, 1 random" in t and r.failed == ["snr_db"] and r.agreement is None
    dfc = _result(backend={"name": "dfc", "version": "3.33", "hailo": True}, gates={})
    assert "Hailo Dataflow Compiler emulator" in dfc.table() and "approximation" not in dfc.table()
    with pytest.raises(AttributeError):
        r.config = "int16"  # frozen


def test_quant_eval_to_dict_is_strict_json():
    d = _result(metrics={"snr_db": math.inf, "cosine": 1.0, "cosine_mean": 1.0, "max_abs_err": 0.0}).to_dict()
    back = json.loads(json.dumps(d, allow_nan=False))
    assert back["metrics"]["snr_db"] == "inf" and back["backend"]["name"] == "ort-emulator"
    assert back["failed"] == [] and back["eval_inputs"] == ["Chris", "random[0]"]


# --- evaluation inputs and a real evaluation ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def onet():
    from hailo_qa.manifest import load_manifest

    spec = load_manifest().get("mtcnn_onet")
    if not spec.available or not spec.samples:
        pytest.skip(f"mtcnn_onet or its samples are not present: {spec.unavailable}")
    return spec


def test_eval_feeds_never_use_calibration_samples(onet):
    from hailo_qa.quant.calib import calib_set_for_model

    calib = calib_set_for_model(onet, size=2)
    used = qe.calib_paths(calib)
    feeds = qe.eval_feeds(onet, n_eval=4, seed=0, exclude=used)
    names = [n for n, _ in feeds]
    assert len(used) == 2 and not {p.stem for p in used} & set(names)
    held = [p.stem for p in onet.samples if p.resolve() not in used]
    assert names[:len(held)] == held  # every held-out sample first
    many = qe.eval_feeds(onet, n_eval=6, seed=0, exclude=used)
    assert [n for n, _ in many][len(held):] == [f"held-out-aug[{k}]" for k in range(6 - len(held))]
    lo, hi = onet.input("input_3").range
    x = many[-1][1]["input_3"]
    assert x.shape == (1, 48, 48, 3) and lo <= x.min() and x.max() <= hi
    again = qe.eval_feeds(onet, n_eval=6, seed=0, exclude=used)
    assert np.array_equal(again[-1][1]["input_3"], x)
    calib_pixels = [s for s in calib.iter_samples(as_onnx_input=True)]
    assert not any(np.array_equal(c.transpose(0, 2, 3, 1), x) for c in calib_pixels)  # new augmentation, not calib
    bare = dataclasses.replace(onet, samples=())  # no samples at all: seeded random in-range feeds
    r0, r1 = qe.eval_feeds(bare, n_eval=2, seed=0), qe.eval_feeds(bare, n_eval=2, seed=1)
    assert [n for n, _ in r0] == ["random[0]", "random[1]"]
    assert not np.array_equal(r0[0][1]["input_3"], r1[0][1]["input_3"])
    with pytest.raises(InputDataError):
        qe.eval_feeds(onet, n_eval=0)


def test_evaluate_quantization_on_mtcnn_onet(onet, tmp_path):
    r8 = qe.evaluate_quantization(onet, config="int8", calib_size=4, backend="ort", work_dir=tmp_path)
    r16 = qe.evaluate_quantization(onet, config="int16", calib_size=4, backend="ort", work_dir=tmp_path)
    assert (r8.backend_name, r8.hailo, r8.calib_size, len(r8.eval_inputs)) == ("ort-emulator", False, 4, 4)
    assert len(r8.calib_sha256) == 64 and r8.gates == {"snr_db": 35.0, "cosine": 0.999}
    assert 5.0 < r8.snr_db < 60 and 0.9 < r8.cosine_min <= r8.cosine_mean <= 1.0 and r8.max_abs_err > 0
    assert r16.cosine_min > r8.cosine_min  # finer steps; the random full-range feeds are clipped by both
    more = qe.evaluate_quantization(onet, config="int8", calib_size=16, backend="ort", work_dir=tmp_path)
    assert more.snr_db > r8.snr_db + 5  # 4 faces leave most of the input range uncalibrated (clipping)
    with pytest.raises(InputDataError, match="not a positive integer"):
        qe.evaluate_quantization(onet, config="int8", calib_size=0, backend="ort", work_dir=tmp_path)
    with pytest.raises(InputDataError, match="unknown"):
        qe.evaluate_quantization(onet, config="int8", calib_size=4, backend="tpu", work_dir=tmp_path)


def test_a_short_calibration_set_says_so_in_the_result(onet, tmp_path):
    """Augmentation off and fewer real samples than requested: the result holds the real ones and says it is short
    (the registered photos are the only real samples; the manifest's augment = true is switched off here)."""
    spec = dataclasses.replace(onet, calibration=dataclasses.replace(onet.calibration, augment=False))
    real = len(onet.samples)
    r = qe.evaluate_quantization(spec, config="int8", calib_size=real + 11, backend="ort", work_dir=tmp_path, n_eval=2)
    assert (r.calib_size, r.calib_real, r.calib_augmented, r.calib_requested) == (real, real, 0, real + 11)
    assert f"({real} real, 0 augmented; {real + 11} requested, 11 short: fewer real samples than requested" in r.table()
    d = r.to_dict()
    assert (d["calib_size"], d["calib_real"], d["calib_augmented"], d["calib_requested"]) == (real, real, 0, real + 11)


def _yunet_outputs(hits, hw=(64, 64)):
    """Synthetic YuNet outputs: ``hits`` = [(stride, anchor index, score)] with a 2-stride box at that anchor."""
    outs = {}
    for s in (8, 16, 32):
        n = (hw[0] // s) * (hw[1] // s)
        outs.update({f"cls_{s}": np.zeros((1, n, 1), np.float32), f"obj_{s}": np.zeros((1, n, 1), np.float32),
                     f"bbox_{s}": np.zeros((1, n, 4), np.float32), f"kps_{s}": np.zeros((1, n, 10), np.float32)})
    for s, k, score in hits:
        outs[f"cls_{s}"][0, k, 0] = outs[f"obj_{s}"][0, k, 0] = score
        outs[f"bbox_{s}"][0, k, 2:] = np.log(2.0)
    return outs


def test_yunet_faces_decode_and_agree():
    """YuNet outputs decode to faces (score >= 0.6, NMS): the same outputs agree fully, a face moved to another
    anchor or below the score threshold does not; other outputs are an InputDataError (the result keeps SNR)."""
    from hailo_qa.evaluate import metrics

    ref = qe.yunet_faces(_yunet_outputs([(8, 9, 0.9), (16, 0, 0.8)]), (64, 64))
    assert len(ref["boxes"]) == 2 and ref["scores"].tolist() == pytest.approx([0.9, 0.8])
    np.testing.assert_allclose(ref["boxes"][0], [0, 0, 16, 16])  # centre (1, 1) x stride 8, 2 x 8 px wide
    moved = qe.yunet_faces(_yunet_outputs([(8, 27, 0.9), (16, 0, 0.8)]), (64, 64))
    weak = qe.yunet_faces(_yunet_outputs([(8, 9, 0.5), (16, 0, 0.8)]), (64, 64))
    assert metrics.detection_agreement(ref, ref, min_score=0.6).agreement == 1.0
    assert metrics.detection_agreement(ref, moved, min_score=0.6).agreement == 0.5
    assert metrics.detection_agreement(ref, weak, min_score=0.6).agreement == 0.5
    with pytest.raises(InputDataError, match="missing"):
        qe.yunet_faces({"logits": np.zeros((1, 10), np.float32)}, (64, 64))
