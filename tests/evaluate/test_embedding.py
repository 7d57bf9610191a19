"""hailo_qa.evaluate.embedding: pure NumPy embedding metrics (examples with hand-computed values + Hypothesis properties)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as nps

from hailo_qa.errors import InputDataError
from hailo_qa.evaluate import embedding as E

IDS = ["a", "a", "b", "c"]


def embeddings(n_min: int = 2, n_max: int = 8, d_max: int = 16):
    """Finite float32 [N, D] embeddings with non-degenerate rows."""
    return st.integers(n_min, n_max).flatmap(lambda n: st.integers(2, d_max).flatmap(lambda d: nps.arrays(
        np.float32, (n, d), elements=st.floats(-100, 100, width=32, allow_subnormal=False)))).filter(
        lambda a: (np.linalg.norm(a.astype(np.float64), axis=1) > 1e-3).all())


def _unit(angle_deg: float) -> list[float]:
    t = np.deg2rad(angle_deg)
    return [np.cos(t), np.sin(t)]


# four 2-D embeddings at known angles: a0 0°, a1 30°, b 90°, c 180° (raw norms 2, 1, 3, 1)
RAW = np.array([np.multiply(2, _unit(0)), _unit(30), np.multiply(3, _unit(90)), _unit(180)])


# -- examples ---------------------------------------------------------------------------------------------------------
def test_identity_separation_hand_computed():
    s = E.identity_separation(RAW, IDS)
    assert (s.n_same, s.n_diff) == (1, 5)
    assert s.min_same == pytest.approx(np.cos(np.deg2rad(30)))
    assert s.max_diff == pytest.approx(np.cos(np.deg2rad(60)))  # a1–b
    # diff pairs: a0-b 0, a0-c -1, a1-b 0.5, a1-c -cos30, b-c 0
    assert s.mean_diff == pytest.approx((0 - 1 + 0.5 - np.cos(np.deg2rad(30)) + 0) / 5)
    assert s.margin_min == pytest.approx(s.min_same - s.max_diff)
    assert s.margin_mean == pytest.approx(s.mean_same - s.mean_diff)


def test_match_rate_hand_computed():
    m = E.match_rate(RAW, IDS, threshold=0.30)
    # same pair (0.866) accepted; diff a1-b (0.5) wrongly accepted; the other 4 diff pairs rejected
    assert m.rate == pytest.approx(5 / 6) and m.true_accept_rate == 1.0 and m.false_accept_rate == pytest.approx(0.2)
    assert E.match_rate(RAW, IDS, threshold=0.6).rate == 1.0
    strict = E.match_rate(RAW, IDS, threshold=0.9)  # the same pair (0.866) is now rejected
    assert strict.rate == pytest.approx(5 / 6) and strict.true_accept_rate == 0.0 and strict.false_accept_rate == 0


def test_fidelity_and_pre_norm_against_a_rotated_copy():
    test = RAW.copy()
    test[2] = 1.5 * np.array(_unit(80))  # rotate b by 10°, halve its norm
    f = E.fidelity(RAW, test)
    assert f.min == pytest.approx(np.cos(np.deg2rad(10)))
    assert f.per_image[0] == pytest.approx(1.0) and f.mean == pytest.approx((3 + np.cos(np.deg2rad(10))) / 4)
    p = E.pre_norm_stats(RAW, test)
    assert p.ref == pytest.approx((2, 1, 3, 1)) and p.ratio == pytest.approx((1, 1, 0.5, 1))
    assert (p.min_ratio, p.max_ratio) == pytest.approx((0.5, 1.0))


def test_nn_agreement_counts_identity_changes():
    assert E.nn_agreement(RAW, RAW, IDS).rate == 1.0
    test = RAW.copy()
    test[1] = _unit(85)  # a1 now nearest to b (and b nearest to a1)
    nn = E.nn_agreement(RAW, test, IDS)
    assert nn.ref_nn[1] == 0 and nn.test_nn[1] == 2
    # ref: a0→a1, a1→a0, b→a1 (60°), c→b (90° beats a1's 150°); test: a0→a1 (85°), a1→b (5°), b→a1, c→b
    assert (nn.ref_nn, nn.test_nn) == ((1, 0, 1, 2), (1, 2, 1, 2))
    assert nn.rate == pytest.approx(0.75)  # only a1's neighbour changed identity (a → b)
    assert E.nn_agreement(RAW, test).rate == pytest.approx(0.75)  # without identities: indices compared


def test_run_stability_reports_counts_and_magnitudes():
    base = np.arange(12, dtype=np.float32).reshape(3, 4)
    assert E.run_stability([base, base.copy(), base.copy()]).identical
    other = base.copy()
    other[1, 2] += 0.5
    other[2, 0] -= 2.0
    r = E.run_stability([base, base.copy(), other, other])
    assert (r.runs, r.differing_runs, r.differing_elements, r.max_abs_diff) == (4, 2, 4, 2.0)
    assert not r.identical and "2 of 3 repeat runs differ" in r.describe() and "max |diff| = 2" in r.describe()
    nan = base.copy()
    nan[0, 0] = np.nan
    assert E.run_stability([nan, nan.copy()]).identical
    assert E.run_stability([base.astype(np.uint8), base.astype(np.uint8) + 1]).differing_elements == 12


def test_distance_sweep_orders_scales_and_reports_falloff():
    ref = RAW
    shrunk = {1.0: RAW, 0.5: RAW * 0.5 + np.array([0.1, 0.0]), 0.25: RAW * 0.25 + np.array([0.5, 0.0])}
    pts = E.distance_sweep(ref, shrunk)
    assert [p.scale for p in pts] == [1.0, 0.5, 0.25]
    assert pts[0].pre_norm_ratio == pytest.approx(1.0) and pts[0].min_cosine == pytest.approx(1.0)
    assert pts[0].mean_pre_norm > pts[1].mean_pre_norm > pts[2].mean_pre_norm
    assert pts[0].mean_cosine > pts[1].mean_cosine > pts[2].mean_cosine


def test_report_figures_and_gates():
    rep = E.evaluate(RAW, RAW, IDS, target="float")
    figs = rep.figures()
    assert figs["cosine_min"] == pytest.approx(1.0) and figs["match_rate"] == pytest.approx(5 / 6)
    assert all(np.isfinite(v) for v in figs.values())
    assert rep.check({"min_cosine": 0.999, "min_margin": 0.3, "match_threshold": 0.30}) == []
    fails = rep.check({"min_cosine": 0.999, "min_match_rate": 0.9, "max_pre_norm_ratio": 0.5,
                       "match_threshold": 0.5})
    assert len(fails) == 3
    assert any("match rate @ 0.3 = 0.8333 < min_match_rate 0.9000" in f for f in fails)
    assert any("pre-norm ratio max = 1.0000 > max_pre_norm_ratio" in f for f in fails)
    assert any("manifest says match_threshold 0.5" in f for f in fails)
    with pytest.raises(InputDataError, match="unknown embedding threshold keys"):
        rep.check({"min_cosin": 0.9})
    assert "margin_min" in rep.table()


@pytest.mark.parametrize("bad,match", [
    (np.array([[1.0, np.nan], [0.0, 1.0]]), "NaN or Inf in 1 of 2 rows"),
    (np.zeros((0, 4)), "expected \\[N, D\\]"),
])
def test_bad_embeddings_are_clear_errors(bad, match):
    with pytest.raises(InputDataError, match=match):
        E.fidelity(bad, bad)


def test_mismatched_inputs_are_clear_errors():
    with pytest.raises(InputDataError, match="differ in shape"):
        E.fidelity(RAW, RAW[:3])
    with pytest.raises(InputDataError, match="3 identities for 4 embeddings"):
        E.match_rate(RAW, IDS[:3])
    with pytest.raises(InputDataError, match="both same- and different-identity pairs"):
        E.identity_separation(RAW, ["a", "b", "c", "d"])
    with pytest.raises(InputDataError, match="at least 2 runs"):
        E.run_stability([RAW])
    with pytest.raises(InputDataError, match="dimensions differ"):
        E.cosine_matrix(RAW, np.ones((2, 3)))


def test_zero_embedding_has_no_direction():
    z = np.array([[0.0, 0.0], [1.0, 0.0]])
    assert E.cosine_matrix(z)[0, 1] == 0.0
    assert E.l2_normalize(z)[0].tolist() == [0.0, 0.0]


# -- properties --------------------------------------------------------------------------------------------------------
@given(embeddings())
def test_cosine_matrix_is_symmetric_bounded_with_unit_diagonal(x):
    s = E.cosine_matrix(x)
    assert np.allclose(s, s.T) and (np.abs(s) <= 1.0).all()
    np.testing.assert_allclose(np.diag(s), 1.0, atol=1e-9)


@given(embeddings(), st.floats(0.01, 100))
def test_scaling_changes_pre_norm_but_no_cosine_figure(x, k):
    scaled = x.astype(np.float64) * k
    np.testing.assert_allclose(E.pre_norm(scaled), E.pre_norm(x) * k, rtol=1e-9)
    np.testing.assert_allclose(E.fidelity(x, scaled).per_image, 1.0, atol=1e-9)
    assert E.pre_norm_stats(x, scaled).mean_ratio == pytest.approx(k, rel=1e-9)
    assert E.nn_agreement(x, scaled).rate == 1.0


@given(embeddings(n_min=3), st.data())
def test_identity_figures_do_not_depend_on_image_order(x, data):
    n = x.shape[0]
    ids = data.draw(st.lists(st.sampled_from("abc"), min_size=n, max_size=n))
    assume(len(set(ids)) >= 2 and len(set(ids)) < n)
    perm = np.asarray(data.draw(st.permutations(range(n))))
    a, b = E.identity_separation(x, ids), E.identity_separation(x[perm], [ids[i] for i in perm])
    assert (a.min_same, a.max_diff, a.n_same) == pytest.approx((b.min_same, b.max_diff, b.n_same), abs=1e-12)
    assert a.margin_mean == pytest.approx(b.margin_mean, abs=1e-9)
    m = E.match_rate(x, ids)
    assert 0.0 <= m.rate <= 1.0 and m.rate == pytest.approx(E.match_rate(x[perm], [ids[i] for i in perm]).rate)
    # a threshold inside the margin separates everyone
    if a.margin_min > 1e-9:
        assert E.match_rate(x, ids, threshold=(a.min_same + a.max_diff) / 2).rate == 1.0


@given(embeddings(), st.integers(2, 6), st.data())
def test_stability_counts_every_injected_difference(x, runs, data):
    flips = data.draw(st.sets(st.integers(0, x.size - 1), max_size=x.size))
    noisy = x.copy().reshape(-1)
    noisy[list(flips)] += 1.0
    noisy = noisy.reshape(x.shape)
    changed = int((noisy != x).sum())  # += 1 can vanish for |x| ≥ 2^24 in float32
    r = E.run_stability([x] * (runs - 1) + [noisy])
    assert r.differing_elements == changed and r.identical == (changed == 0)
    assert r.differing_runs == (1 if changed else 0)
