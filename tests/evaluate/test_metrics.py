"""hailo_qa.evaluate.metrics: properties (Hypothesis, extra.numpy idiom) plus hand-computed examples and edge cases."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as nps

from hailo_qa.errors import InputDataError, QAError
from hailo_qa.evaluate import metrics as M
from tests.strategies import (
    boxes,
    detections,
    finite_floats,
    float_tensors,
    logits,
    nonzero_float_tensors,
    prob_rows,
    quant_params,
    tensor_pairs,
)


# ---------------------------------------------------------------------------------------------------------------
# element-wise errors
# ---------------------------------------------------------------------------------------------------------------
class TestSnr:
    @given(float_tensors())
    def test_identical_is_inf(self, x):
        assert M.snr_db(x, x.copy()) == math.inf

    def test_known_value(self):
        # signal power 4, noise power 0.04 -> 20 dB
        assert M.snr_db([2.0, 0.0], [1.8, 0.0]) == pytest.approx(20.0)

    def test_all_zero_ref(self):
        assert M.snr_db(np.zeros(3), np.zeros(3)) == math.inf
        assert M.snr_db(np.zeros(3), [0.0, 1.0, 0.0]) == -math.inf

    def test_nan_and_empty(self):
        assert math.isnan(M.snr_db([1.0, np.nan], [1.0, np.nan]))
        assert math.isnan(M.snr_db(np.zeros(0), np.zeros(0)))
        assert math.isnan(M.snr_db([np.inf, 1.0], [1.0, 1.0]))
        assert M.snr_db([np.inf, 1.0], [np.inf, 1.0]) == math.inf

    def test_float64_no_overflow(self):
        a = np.array([1e200, -1e200])
        assert M.snr_db(a, a * (1 + 1e-3)) == pytest.approx(60.0, abs=1e-6)

    @given(nonzero_float_tensors(dtype=np.float64), st.floats(1e-3, 1e3))
    def test_scale_invariant(self, x, k):
        y = x + 0.01 * np.roll(x, 1)
        assume(not np.array_equal(x, y))
        assert M.snr_db(x * k, y * k) == pytest.approx(M.snr_db(x, y), abs=1e-6)

    def test_shape_mismatch(self):
        with pytest.raises(InputDataError, match="different shapes"):
            M.snr_db(np.zeros(3), np.zeros(4))


class TestAbsErrors:
    @given(tensor_pairs())
    def test_symmetric_and_bounded(self, pair):
        a, b = pair
        mx, mean = M.max_abs_error(a, b), M.max_abs_error(b, a)
        assert mx == mean
        assert 0.0 <= M.mean_abs_error(a, b) <= M.max_abs_error(a, b) * (1 + 1e-12)
        assert M.mean_abs_error(a, b) == M.mean_abs_error(b, a)

    @given(float_tensors())
    def test_zero_on_identical(self, x):
        assert M.max_abs_error(x, x) == 0.0
        assert M.mean_abs_error(x, x) == 0.0

    def test_values_and_edges(self):
        assert M.max_abs_error([1, 2, 3], [1, 5, 2]) == 3.0
        assert M.mean_abs_error([1, 2, 3], [1, 5, 2]) == pytest.approx(4 / 3)
        assert M.max_abs_error(np.zeros(0), np.zeros(0)) == 0.0
        assert math.isnan(M.max_abs_error([1.0, np.nan], [1.0, 1.0]))
        assert M.max_abs_error([np.inf], [np.inf]) == 0.0
        # integers are computed in float64: no uint8 wrap-around
        assert M.max_abs_error(np.array([0], np.uint8), np.array([255], np.uint8)) == 255.0


class TestCosine:
    @given(nonzero_float_tensors())
    def test_self_is_one(self, x):
        assert M.cosine_similarity(x, x, axis=None) == 1.0

    @given(tensor_pairs())
    def test_symmetric_and_bounded(self, pair):
        a, b = pair
        c1 = M.cosine_similarity(a, b)
        c2 = M.cosine_similarity(b, a)
        np.testing.assert_allclose(c1, c2, rtol=0, atol=1e-12)
        assert np.all((np.asarray(c1) >= -1.0) & (np.asarray(c1) <= 1.0))

    @given(nonzero_float_tensors(dtype=np.float64, min_value=-1e3, max_value=1e3))
    def test_negation_is_minus_one(self, x):
        assert M.cosine_similarity(x, -x, axis=None) == pytest.approx(-1.0, abs=1e-12)

    def test_per_sample_and_zero_vectors(self):
        a = np.array([[1.0, 0.0], [0.0, 0.0], [0.0, 0.0], [3.0, 4.0]])
        b = np.array([[0.0, 1.0], [0.0, 0.0], [1.0, 1.0], [6.0, 8.0]])
        np.testing.assert_allclose(M.cosine_similarity(a, b), [0.0, 1.0, 0.0, 1.0], atol=1e-15)
        np.testing.assert_allclose(M.cosine_similarity(a.T, b.T, axis=0), [0.0, 1.0, 0.0, 1.0], atol=1e-15)
        assert M.cosine_similarity(np.zeros(0), np.zeros(0)) == 1.0
        assert math.isnan(M.cosine_similarity([1.0, np.nan], [1.0, 1.0]))

    def test_huge_values_do_not_overflow(self):
        a = np.array([1e300, 1e300])
        assert M.cosine_similarity(a, a * 2) == pytest.approx(1.0)


class TestQuantization:
    @given(st.data(), quant_params(dtype=np.uint8))
    def test_roundtrip_error_at_most_half_lsb(self, data, qp):
        scale, zp, dt = qp
        info = np.iinfo(dt)
        lo, hi = (info.min - zp) * scale, (info.max - zp) * scale
        x = data.draw(nps.arrays(np.float64, nps.array_shapes(max_side=8),
                                 elements=st.floats(lo, hi, allow_nan=False, allow_subnormal=False)))
        q = M.quantize(x, scale, zp, dtype=dt)
        assert q.dtype == dt
        err = M.lsb_error(x, M.dequantize(q, scale, zp), scale)
        assert err <= 0.5 + 1e-9

    @pytest.mark.parametrize("dtype", [np.int8, np.uint16, np.int16])
    @given(data=st.data())
    def test_roundtrip_other_dtypes(self, dtype, data):
        scale, zp, dt = data.draw(quant_params(dtype=dtype))
        info = np.iinfo(dt)
        x = np.linspace((info.min - zp) * scale, (info.max - zp) * scale, 97)
        assert M.lsb_error(x, M.dequantize(M.quantize(x, scale, zp, dtype=dt), scale, zp), scale) <= 0.5 + 1e-9

    def test_clipping_and_known_values(self):
        q = M.quantize([-1.0, 0.0, 0.26, 100.0], 0.1, 10, dtype=np.uint8)
        assert q.tolist() == [0, 10, 13, 255]
        np.testing.assert_allclose(M.dequantize(q, 0.1, 10), [-1.0, 0.0, 0.3, 24.5])

    def test_lsb_error_reductions_and_per_channel(self):
        ref = np.zeros((1, 2, 2))
        test = np.array([[[0.1, 0.2], [0.5, 1.0]]])
        scale = np.array([0.1, 0.5]).reshape(1, 2, 1)
        np.testing.assert_allclose(M.lsb_error(ref, test, scale, reduce="none"), [[[1, 2], [1, 2]]])
        assert M.lsb_error(ref, test, scale) == pytest.approx(2.0)
        assert M.lsb_error(ref, test, scale, reduce="mean") == pytest.approx(1.5)

    @pytest.mark.parametrize("scale", [0.0, -1.0, np.nan, [1.0, 0.0]])
    def test_bad_scale(self, scale):
        with pytest.raises(InputDataError, match="scale"):
            M.lsb_error(np.zeros(2), np.zeros(2), scale)

    def test_bad_reduce_and_broadcast(self):
        with pytest.raises(InputDataError, match="reduce"):
            M.lsb_error(np.zeros(2), np.zeros(2), 1.0, reduce="median")
        with pytest.raises(InputDataError, match="broadcast"):
            M.lsb_error(np.zeros((2, 3)), np.zeros((2, 3)), np.ones(2))

    def test_quantize_rejects_nan_and_float_dtype(self):
        with pytest.raises(InputDataError, match="NaN"):
            M.quantize([np.nan], 1.0)
        with pytest.raises(InputDataError, match="integer"):
            M.quantize([1.0], 1.0, dtype=np.float32)


# ---------------------------------------------------------------------------------------------------------------
# classification
# ---------------------------------------------------------------------------------------------------------------
class TestClassification:
    @given(logits())
    def test_softmax_rows_sum_to_one(self, z):
        p = M.softmax(z)
        assert p.dtype == np.float64
        np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-12)
        assert np.all(p >= 0)
        # order-preserving (ties within float64 rounding may pick either index, so compare values)
        np.testing.assert_array_equal(p[np.arange(len(z)), z.argmax(axis=1)], p.max(axis=1))

    def test_softmax_large_logits_stable(self):
        p = M.softmax([1000.0, 1000.0])
        np.testing.assert_allclose(p, [0.5, 0.5])

    @given(logits())
    def test_top1_self_agreement(self, z):
        assert M.top1_agreement(z, z) == 1.0
        assert M.accuracy(z, z.argmax(axis=1)) == 1.0

    @given(st.data())
    def test_top1_symmetric_bounded(self, data):
        a = data.draw(logits())
        b = data.draw(logits(n=a.shape[0], classes=a.shape[1]))
        v = M.top1_agreement(a, b)
        assert 0.0 <= v <= 1.0 and v == M.top1_agreement(b, a)

    def test_values(self):
        ref = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7], [0.5, 0.4]])
        test = np.array([[0.2, 0.8], [0.4, 0.6], [0.3, 0.7], [np.nan, 0.0]])
        assert M.top1_agreement(ref, test) == 0.5
        assert M.accuracy(ref, [1, 0, 0, 0]) == 0.75
        assert M.accuracy(test, [1, 1, 1, 0]) == 0.75  # the NaN row is wrong
        assert math.isnan(M.accuracy(np.zeros((0, 3)), np.zeros(0, np.int64)))
        assert math.isnan(M.top1_agreement(np.zeros((0, 3)), np.zeros((0, 3))))
        assert M.top1_agreement([0.0, 1.0], [0.2, 0.9]) == 1.0  # one sample as [C]

    def test_bad_labels(self):
        with pytest.raises(InputDataError, match="classes"):
            M.accuracy(np.zeros((2, 3)), [0, 3])
        with pytest.raises(InputDataError, match="one integer label per row"):
            M.accuracy(np.zeros((2, 3)), [0, 1, 2])
        with pytest.raises(InputDataError, match="not integers"):
            M.accuracy(np.zeros((2, 3)), [0.5, 1.0])
        with pytest.raises(InputDataError, match=r"\[N, C\]"):
            M.accuracy(np.zeros((2, 3, 4)), [0, 1])

    @given(prob_rows())
    def test_ece_in_unit_interval(self, pl):
        p, y = pl
        assert 0.0 <= M.expected_calibration_error(p, y) <= 1.0

    def test_ece_known_values(self):
        # confident and right: |1 - 1| -> 0; confident and always wrong -> conf
        p = np.array([[1.0, 0.0], [0.0, 1.0]])
        assert M.expected_calibration_error(p, [0, 1]) == 0.0
        assert M.expected_calibration_error(p, [1, 0]) == 1.0
        # two bins: conf 0.9 right (|1-0.9|=0.1), conf 0.6 wrong (|0-0.6|=0.6) -> (0.1+0.6)/2
        p = np.array([[0.9, 0.1], [0.6, 0.4]])
        assert M.expected_calibration_error(p, [0, 1], bins=10) == pytest.approx(0.35)
        # one bin: mean conf 0.75, acc 0.5
        assert M.expected_calibration_error(p, [0, 1], bins=1) == pytest.approx(0.25)
        assert math.isnan(M.expected_calibration_error(np.zeros((0, 2)), np.zeros(0, int)))

    def test_ece_rejects_logits_and_bad_bins(self):
        with pytest.raises(InputDataError, match="softmax"):
            M.expected_calibration_error([[3.0, -1.0]], [0])
        with pytest.raises(InputDataError, match="bins"):
            M.expected_calibration_error([[0.5, 0.5]], [0], bins=0)


# ---------------------------------------------------------------------------------------------------------------
# conformal prediction
# ---------------------------------------------------------------------------------------------------------------
def _synthetic_classifier(rng: np.random.Generator, n: int, c: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Exchangeable (i.i.d.) samples of a noisy, imperfect classifier."""
    y = rng.integers(0, c, n)
    z = rng.normal(0, 1.0, (n, c))
    z[np.arange(n), y] += 1.2
    return M.softmax(z), y


class TestConformal:
    def test_threshold_is_finite_sample_quantile(self):
        # true-class probs 0.9, 0.8, ..., 0.0 -> scores 0.1 .. 1.0; n = 10, alpha = 0.2 -> k = ceil(11*0.8) = 9
        pt = np.linspace(0.9, 0.0, 10)
        p = np.stack([pt, 1 - pt], axis=1)
        y = np.zeros(10, np.int64)
        assert M.conformal_threshold(p, y, 0.2) == pytest.approx(0.9)
        # k = ceil(11 * 0.95) = 11 > 10 -> no finite threshold: full sets
        assert M.conformal_threshold(p, y, 0.05) == math.inf
        assert M.prediction_sets(p, math.inf).all()

    @pytest.mark.parametrize("alpha", [0.05, 0.1, 0.2])
    def test_coverage_at_least_one_minus_alpha(self, alpha):
        # Marginal guarantee: E[coverage] >= 1 - alpha over calibration draws. 200 repetitions, fixed seed; the mean
        # of 200 coverages has standard error ~ 0.003, so a slack of 0.01 is > 3 sigma.
        rng = np.random.default_rng(1234)
        cover, sizes = [], []
        for _ in range(200):
            pc, yc = _synthetic_classifier(rng, 200)
            pt, yt = _synthetic_classifier(rng, 200)
            q = M.conformal_threshold(pc, yc, alpha)
            cover.append(M.conformal_coverage(pt, yt, q))
            sizes.append(M.mean_set_size(pt, q))
        assert np.mean(cover) >= 1 - alpha - 0.01
        # and it is not trivially achieved with full sets (the upper bound 1 - alpha + 1/(n+1) holds too)
        assert np.mean(cover) <= 1 - alpha + 1 / 201 + 0.01
        assert np.mean(sizes) < 5

    @given(prob_rows(), st.floats(0.05, 0.5))
    def test_calibration_set_itself_is_covered(self, pl, alpha):
        p, y = pl
        q = M.conformal_threshold(p, y, alpha)
        assert M.conformal_coverage(p, y, q) >= 1 - alpha - 1e-12

    @given(prob_rows(), st.floats(0.0, 1.0))
    def test_sets_monotone_in_qhat(self, pl, q):
        p, _ = pl
        small, big = M.prediction_sets(p, q), M.prediction_sets(p, min(1.0, q + 0.1))
        assert (big | ~small).all()  # small ⊆ big

    @pytest.mark.parametrize("alpha", [0.0, 1.0, -0.1, 2.0])
    def test_bad_alpha(self, alpha):
        with pytest.raises(InputDataError, match="alpha"):
            M.conformal_threshold([[0.5, 0.5]], [0], alpha)

    def test_empty_calibration(self):
        with pytest.raises(InputDataError, match="empty"):
            M.conformal_threshold(np.zeros((0, 3)), np.zeros(0, np.int64), 0.1)
        with pytest.raises(InputDataError, match="NaN"):
            M.prediction_sets([[0.5, 0.5]], math.nan)


# ---------------------------------------------------------------------------------------------------------------
# detection
# ---------------------------------------------------------------------------------------------------------------
class TestBoxIou:
    @given(boxes(), boxes())
    def test_symmetric_and_bounded(self, a, b):
        ab, ba = M.box_iou(a, b), M.box_iou(b, a)
        assert ab.shape == (len(a), len(b))
        np.testing.assert_array_equal(ab, ba.T)
        assert np.all((ab >= 0) & (ab <= 1))

    @given(boxes(allow_degenerate=False))
    def test_self_iou_is_one(self, a):
        np.testing.assert_allclose(np.diag(M.box_iou(a, a)), 1.0, rtol=1e-12)

    def test_known_values(self):
        a = np.array([[0, 0, 10, 10]])
        b = np.array([[5, 0, 15, 10], [20, 20, 30, 30], [0, 0, 10, 10], [3, 3, 3, 8]])
        np.testing.assert_allclose(M.box_iou(a, b), [[50 / 150, 0.0, 1.0, 0.0]])
        assert M.box_iou(np.zeros((0, 4)), b).shape == (0, 4)

    def test_bad_shape(self):
        with pytest.raises(InputDataError, match=r"\[K, 4\]"):
            M.box_iou(np.zeros((3, 5)), np.zeros((1, 4)))


class TestDetectionAgreement:
    @given(detections())
    def test_self_agreement(self, d):
        r = M.detection_agreement(d, d)
        assert r.agreement == 1.0 and r.missed == 0 and r.extra == 0
        assert r.n_ref == int((d["scores"] >= 0.5).sum())

    @given(detections(), detections())
    def test_counts_consistent(self, a, b):
        r = M.detection_agreement(a, b)
        assert 0.0 <= r.agreement <= 1.0 and 0.0 <= r.precision <= 1.0
        assert r.matched + r.missed == r.n_ref and r.matched + r.extra == r.n_test
        s = M.detection_agreement(b, a)
        assert (s.n_ref, s.n_test) == (r.n_test, r.n_ref)

    def test_greedy_labels_scores(self):
        ref = {"boxes": [[0, 0, 10, 10], [20, 20, 30, 30], [50, 50, 60, 60]], "labels": [1, 2, 3],
               "scores": [0.9, 0.8, 0.3]}  # the third is below min_score
        test = {"boxes": [[1, 1, 10, 10], [20, 20, 30, 30], [0, 0, 10, 10]], "labels": [1, 5, 1],
                "scores": [0.9, 0.9, 0.7]}
        r = M.detection_agreement(ref, test)
        assert (r.n_ref, r.n_test, r.matched, r.missed, r.extra) == (2, 3, 1, 1, 2)
        assert r.agreement == 0.5 and float(r) == 0.5
        assert r.mean_iou == 1.0  # the exact box wins the greedy match over the 0.81-IoU one
        assert r.precision == pytest.approx(1 / 3)
        assert M.detection_agreement(ref, test, iou=0.95, min_score=0.0).matched == 1

    def test_batch_dim_and_empty(self):
        d = {"boxes": np.zeros((1, 0, 4)), "labels": np.zeros((1, 0)), "scores": np.zeros((1, 0))}
        one = {"boxes": [[0, 0, 1, 1]], "labels": [0], "scores": [1.0]}
        assert M.detection_agreement(d, d).agreement == 1.0
        assert M.detection_agreement(d, one).agreement == 0.0
        assert M.detection_agreement(one, d).agreement == 0.0
        assert math.isnan(M.detection_agreement(one, d).mean_iou)

    def test_bad_dets(self):
        with pytest.raises(InputDataError, match="lacks"):
            M.detection_agreement({"boxes": np.zeros((0, 4))}, {})
        with pytest.raises(InputDataError, match="expected boxes"):
            M.detection_agreement({"boxes": np.zeros((2, 4)), "labels": [0], "scores": [1, 1]},
                                  {"boxes": np.zeros((0, 4)), "labels": [], "scores": []})


# ---------------------------------------------------------------------------------------------------------------
# percentiles
# ---------------------------------------------------------------------------------------------------------------
class TestPercentiles:
    def test_values_and_keys(self):
        p = M.percentiles(np.arange(1, 101, dtype=np.float32), qs=(50, 99.9, 100))
        assert list(p) == ["p50", "p99.9", "p100"]
        assert p["p50"] == pytest.approx(50.5) and p["p100"] == 100.0
        assert M.percentiles([3.0]) == {"p50": 3.0, "p90": 3.0, "p95": 3.0, "p99": 3.0}

    @given(nps.arrays(np.float64, st.integers(1, 50), elements=finite_floats(width=64)))
    def test_monotone_and_bounded(self, x):
        v = list(M.percentiles(x, qs=(0, 25, 50, 90, 100)).values())
        assert v == sorted(v)
        assert v[0] == x.min() and v[-1] == x.max()

    def test_edges(self):
        assert all(math.isnan(v) for v in M.percentiles([]).values())
        assert all(math.isnan(v) for v in M.percentiles([1.0, np.nan]).values())
        assert M.percentiles(iter([1.0, 2.0]), qs=(50,)) == {"p50": 1.5}
        with pytest.raises(InputDataError, match=r"\[0, 100\]"):
            M.percentiles([1.0], qs=(101,))


def test_errors_are_qa_errors_with_hint():
    with pytest.raises(QAError) as ei:
        M.cosine_similarity(np.zeros(2), np.zeros(3))
    assert "Note:" in str(ei.value) and "Hint:" in str(ei.value)
    with pytest.raises(InputDataError, match="numeric"):
        M.max_abs_error(["a"], ["b"])


# ---------------------------------------------------------------------------------------------------------------
# the metrics on a real (trained) model: the FSQ behaviour classifier fixture, float, in onnxruntime
# ---------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fsq():
    import onnx
    import onnxruntime as ort

    from hailo_qa.config import REPO_ROOT

    model = REPO_ROOT / "fixtures" / "models" / "fsq_behaviour_classifier.onnx"
    graph = onnx.load(str(model)).graph
    sess = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    with np.load(REPO_ROOT / "fixtures" / "data" / "fsq_imu_eval.npz") as z:
        ev = dict(z)
    with np.load(REPO_ROOT / "fixtures" / "data" / "fsq_imu_calib.npz") as z:
        ca = dict(z)

    def run(x):
        return np.concatenate([sess.run(["logits"], {"imu": x[i:i + 1]})[0] for i in range(len(x))])

    return graph, (run(ev["x"]), ev["y"]), (run(ca["x"]), ca["y"])


class TestOnFsqFixture:
    """The classification metrics on the committed FSQ fixture; also guards the fixture's contract (names, cut)."""

    def test_graph_contract(self, fsq):
        graph, _, _ = fsq
        ops = [n.op_type for n in graph.node]
        assert "BatchNormalization" not in ops
        rnd = [n for n in graph.node if n.op_type == "Round"]
        assert len(rnd) == 1 and rnd[0].name == "fsq/round" and list(rnd[0].input) == ["fsq/bounded"]
        assert [i.name for i in graph.input] == ["imu"] and [o.name for o in graph.output] == ["logits"]
        assert [d.dim_value for d in graph.input[0].type.tensor_type.shape.dim] == [1, 9, 2, 100]

    def test_accuracy_calibration_conformal(self, fsq):
        _, (le, ye), (lc, yc) = fsq
        assert le.shape == (len(ye), 10) and ye.dtype == np.int64
        acc = M.accuracy(le, ye)
        assert 0.85 <= acc <= 0.99  # trained, not trivial (measured 0.953)
        assert M.top1_agreement(le, le + 1e-3) == 1.0  # argmax invariant to a shift
        pe, pc = M.softmax(le), M.softmax(lc)
        assert M.expected_calibration_error(pe, ye) < 0.06  # measured 0.028 (raw softmax, N = 320)
        q = M.conformal_threshold(pc, yc, 0.1)
        cov = M.conformal_coverage(pe, ye, q)
        assert cov >= 0.85  # 1 - alpha with slack for N = 320 (measured 0.928)
        assert 0.9 <= M.mean_set_size(pe, q) < 2.0  # measured 0.97: some sets are empty (accuracy > 1 - alpha)
