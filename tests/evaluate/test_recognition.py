"""Recognition metrics on synthetic embeddings with known answers; the labelled-pairs reader; gates that fail."""
from __future__ import annotations

import numpy as np
import pytest

from hailo_qa.errors import InputDataError, InputFileError
from hailo_qa.evaluate import recognition as R

GATES = {"match_threshold": 0.30, "min_tar": 0.95, "max_far": 0.05, "far_target": 0.01, "min_tar_at_far": 0.9,
         "min_rank1": 0.95, "min_margin": -0.1, "min_pre_norm": 5.0, "max_session_spread": 0.01,
         "max_session_match_spread": 0, "min_pre_norm_distance_drop": 1.0, "max_smallest_passing_px": 40}


def _people(n_people=6, per=4, dim=64, noise=0.25, scale=10.0, seed=0):
    """Clusters: one direction per person, photos = direction + noise, norm ~ scale."""
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((n_people, dim))
    emb, ids = [], []
    for p in range(n_people):
        for _ in range(per):
            v = centers[p] / np.linalg.norm(centers[p]) + noise * rng.standard_normal(dim) / np.sqrt(dim)
            emb.append(scale * v)
            ids.append(f"p{p}")
    return np.array(emb), ids


def _split(emb, ids):
    gal = [ids.index(i) for i in sorted(set(ids), key=ids.index)]
    probes = [k for k in range(len(ids)) if k not in gal]
    return emb[gal], [ids[k] for k in gal], emb[probes], [ids[k] for k in probes]


def test_well_separated_people_pass_every_gate():
    g, gid, p, pid = _split(*_people())
    s = R.recognition_stats(g, gid, p, pid, float_probes=p)
    assert s.n_genuine == 18 and s.n_impostor == 18 * 5
    assert s.tar == 1.0 and s.far == 0.0 and s.rank1 == 1.0 and s.margin > 0.5
    assert s.pre_norm_ratio_mean == pytest.approx(1.0) and 9 < s.pre_norm_mean < 11
    assert R.check_gates(GATES, s) == []


def test_hand_computed_tar_far_rank1_and_margin():
    g = np.array([[1.0, 0.0], [0.0, 1.0]])
    # probes of "a": cos 0.8 and 0.2 to a; of "b": cos 0.6 to b, 0.8 to a (a rank-1 error)
    p = np.array([[0.8, 0.6], [0.2, np.sqrt(1 - 0.04)], [0.8, 0.6]]) * 7.0
    s = R.recognition_stats(g, ["a", "b"], p, ["a", "a", "b"], threshold=0.5)
    assert s.min_same == pytest.approx(0.2) and s.max_diff == pytest.approx(0.98, abs=1e-2)
    assert s.tar == pytest.approx(2 / 3) and s.far == 1.0  # impostor cosines 0.6, 0.98, 0.8
    assert s.rank1 == pytest.approx(1 / 3) and s.margin == pytest.approx(0.2 - 0.9798, abs=1e-3)
    assert s.pre_norm_min == pytest.approx(7.0)


def test_tar_at_far_lets_through_at_most_the_target_share_of_impostors():
    imp = np.linspace(0, 1, 101)  # 101 impostor scores
    gen = np.array([0.95, 0.985, 0.995, 1.0])
    tar, t = R.tar_at_far(gen, imp, 0.02)
    assert t == pytest.approx(0.98) and (imp > t).mean() <= 0.02
    assert tar == pytest.approx(0.75)
    with pytest.raises(InputDataError, match="out of range"):
        R.tar_at_far(gen, imp, 1.0)


@pytest.mark.parametrize("kind", ["constant", "random"])
def test_a_degenerate_embedder_fails_the_gates(kind):
    emb, ids = _people()
    rng = np.random.default_rng(1)
    bad = np.tile(rng.standard_normal(emb.shape[1]), (len(ids), 1)) if kind == "constant" else \
        rng.standard_normal(emb.shape)
    g, gid, p, pid = _split(bad, ids)
    s = R.recognition_stats(g, gid, p, pid)
    fails = R.check_gates(GATES, s)
    text = "\n".join(fails)
    assert "rank-1" in text and "TAR@FAR" in text
    # a constant embedding accepts everyone (FAR 1; its margin is 0, so the margin gate alone cannot see it);
    # a random one accepts almost no one and its margin is far below zero
    assert ("FAR@0.30" in text) if kind == "constant" else ("TAR@0.30" in text and "margin" in text)
    # distance: a degenerate model's quality score does not fall as faces shrink
    norms = np.linalg.norm(bad[:4], axis=1)
    curve = R.distance_curve({px: (norms, np.full(4, s.mean_same)) for px in (112, 56, 20)}, 4)
    assert any("pre-norm drop" in f for f in R.check_gates(GATES, curve=curve))


def test_pre_norm_gates_absolute_and_ratio():
    g, gid, p, pid = _split(*_people(scale=3.0))
    s = R.recognition_stats(g, gid, p, pid, float_probes=p * 2)
    fails = R.check_gates({**GATES, "min_pre_norm_ratio": 0.9}, s)
    assert any("pre-norm min" in f and "< min_pre_norm 5" in f for f in fails)
    assert any("pre-norm ratio to float = 0.5 < min_pre_norm_ratio 0.9" in f for f in fails)


def test_distance_curve_smallest_passing_face_and_drop():
    pts = {112: ([20, 20], [0.8, 0.7]), 56: ([18, 18], [0.6, 0.4]), 28: ([14, 12], [0.35, 0.1]),
           20: ([], [])}
    curve = R.distance_curve({k: (np.array(a), np.array(b)) for k, (a, b) in pts.items()}, 2)
    assert [p.face_px for p in curve] == [112, 56, 28, 20]
    assert [p.match_rate for p in curve] == [1.0, 1.0, 0.5, 0.0] and curve[-1].n == 0
    assert R.smallest_passing_face(curve) == 28
    assert R.pre_norm_distance_drop(curve) == pytest.approx(20 - 13)
    assert R.check_gates({"max_smallest_passing_px": 20}, curve=curve) == [
        "smallest passing face = 28 px > max_smallest_passing_px 20"]
    assert R.smallest_passing_face(curve[-1:]) is None


def test_session_stats_catch_drift():
    rng = np.random.default_rng(0)
    ref = rng.standard_normal((5, 16))
    same = [ref + 0.1 * rng.standard_normal(ref.shape)] * 3
    s = R.session_stats(same, ref)
    assert s.similarity_spread == 0 and s.match_spread == 0 and s.max_abs_diff == 0
    assert R.check_gates(GATES, sessions=s) == []
    drifting = [same[0], same[0] + 2.0 * rng.standard_normal(ref.shape), same[0] + 4 * rng.standard_normal(ref.shape)]
    d = R.session_stats(drifting, ref)
    fails = R.check_gates(GATES, sessions=d)
    assert any("session best-similarity spread" in f for f in fails), d.describe()
    with pytest.raises(InputDataError, match="at least 2 sessions"):
        R.session_stats(same[:1], ref)


def _write_set(tmp_path, rows):
    for name in {r[0] for r in rows} | {r[1] for r in rows}:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / R.PAIRS_CSV).write_text("file_x,file_y,decision,Facenet_cosine\n"
                                        + "".join(f"{a},{b},{d},0.1\n" for a, b, d in rows))


def test_identities_are_the_components_of_same_person_pairs(tmp_path):
    _write_set(tmp_path, [("img1.jpg", "img2.jpg", "Yes"), ("img2.jpg", "img10.jpg", "Yes"),
                          ("img3.jpg", "img4.jpg", "Yes"), ("img1.jpg", "img3.jpg", "No"), ("img5.jpg", "img4.jpg", "No")])
    vs = R.load_verification_set(tmp_path)
    names = [p.name for p in vs.photos]
    assert names == ["img1.jpg", "img2.jpg", "img3.jpg", "img4.jpg", "img5.jpg", "img10.jpg"]
    ids = dict(zip(names, vs.identities))
    assert ids["img1.jpg"] == ids["img2.jpg"] == ids["img10.jpg"] != ids["img3.jpg"] == ids["img4.jpg"]
    gallery, probes = vs.gallery_probes()
    assert [names[i] for i in gallery] == ["img1.jpg", "img3.jpg", "img5.jpg"]
    assert [names[i] for i in probes] == ["img2.jpg", "img4.jpg", "img10.jpg"]
    assert len(vs.pairs) == 5 and vs.reference["Facenet_cosine"] == (0.1,) * 5


def test_bad_sets_are_clear_errors(tmp_path):
    with pytest.raises(InputFileError, match="no labelled pairs"):
        R.load_verification_set(tmp_path)
    _write_set(tmp_path, [("a.jpg", "b.jpg", "Yes"), ("a.jpg", "b.jpg", "No")])
    with pytest.raises(InputDataError, match="labelled 'No' but other 'Yes' pairs join them"):
        R.load_verification_set(tmp_path)
    (tmp_path / "b.jpg").unlink()
    with pytest.raises(InputFileError, match="photos listed .* are missing, e.g. b.jpg"):
        R.load_verification_set(tmp_path)


def test_gallery_mistakes_are_clear_errors():
    g = np.eye(3)
    with pytest.raises(InputDataError, match="one reference per identity"):
        R.recognition_stats(g, ["a", "a", "b"], g, ["a", "a", "b"])
    with pytest.raises(InputDataError, match=r"probes of \['z'\] have no reference"):
        R.recognition_stats(g, ["a", "b", "c"], g[:1], ["z"])


def test_pair_stats():
    emb = np.array([[1.0, 0], [0.9, 0.1], [0, 1.0], [0.2, 1.0]])
    ps = R.pair_stats(emb, [(0, 1, True), (2, 3, True), (0, 2, False), (1, 3, False)])
    assert ps.tar == 1.0 and ps.far == 0.5 and ps.accuracy == 0.75
