"""hailo_qa.evaluate.faces: YuNet decoding (checked against OpenCV's FaceDetectorYN), alignment, cached aligned crops."""
from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from hailo_qa import config
from hailo_qa.errors import InputDataError, InputFileError
from hailo_qa.evaluate import faces

FACES_DIR = config.SHARED_DIR / "faces"
STEMS = ("Bryan", "Chris", "Luciano", "Paul", "Paul2")


@pytest.fixture(scope="module")
def photos():
    if not FACES_DIR.is_dir():
        pytest.skip(f"shared face photos are not present at {FACES_DIR} (set HAILO_QA_SHARED)")
    return {p.stem: p for p in faces.face_images(FACES_DIR)}


@pytest.fixture(scope="module")
def detector():
    with faces.YuNetDetector() as det:
        yield det


@pytest.fixture(scope="module")
def aligned(photos, detector):
    return {stem: faces.detect_and_align(p, detector) for stem, p in photos.items()}


# -- detection ---------------------------------------------------------------------------------------------------------
def test_shared_photos_are_the_expected_set(photos):
    assert tuple(sorted(photos)) == STEMS


@pytest.mark.parametrize("stem", STEMS)
def test_decode_matches_opencv_face_detector_yn(photos, detector, stem):
    """Our ORT + NumPy decode + NMS gives OpenCV's FaceDetectorYN result on the same letterboxed canvas."""
    bgr = faces.read_image_bgr(photos[stem])
    canvas, scale = faces.letterbox(bgr)
    ref = cv2.FaceDetectorYN.create(str(faces.YUNET_MODEL), "", (640, 640), 0.6, 0.3, 5000)
    _, cv_faces = ref.detect(canvas)
    ours = detector.detect(bgr)
    assert cv_faces is not None and len(ours) == len(cv_faces) >= 1
    best = cv_faces[np.argmax(cv_faces[:, 14])]
    x, y, w, h = best[:4] / scale
    np.testing.assert_allclose(ours[0].box, [x, y, x + w, y + h], atol=0.05)
    np.testing.assert_allclose(ours[0].landmarks, best[4:14].reshape(5, 2) / scale, atol=0.05)
    assert ours[0].score == pytest.approx(float(best[14]), abs=1e-4)


def test_detection_is_inside_the_image_and_landmarks_inside_the_box(photos, detector):
    for p in photos.values():
        bgr = faces.read_image_bgr(p)
        f = faces.select_face(detector.detect(bgr))
        x1, y1, x2, y2 = f.box
        assert 0 <= x1 < x2 <= bgr.shape[1] and 0 <= y1 < y2 <= bgr.shape[0]
        assert f.score > 0.9
        lm = f.landmarks
        assert ((lm[:, 0] > x1) & (lm[:, 0] < x2) & (lm[:, 1] > y1) & (lm[:, 1] < y2)).all()
        assert lm[0, 0] < lm[1, 0] and lm[3, 0] < lm[4, 0]  # eyes and mouth corners left to right
        assert lm[:2, 1].max() < lm[2, 1] < lm[3:, 1].min()  # eyes above nose above mouth


def test_blank_image_has_no_face(detector):
    assert detector.detect(np.zeros((200, 300, 3), np.uint8)) == []
    with pytest.raises(faces.NoFaceError, match="no face found") as ei:
        faces.select_face([], name="blank")
    assert "Hint:" in str(ei.value)


def test_detect_and_align_no_face_is_a_clear_error(tmp_path, detector):
    p = tmp_path / "wall.png"
    Image.fromarray(np.full((120, 160, 3), 127, np.uint8)).save(p)
    with pytest.raises(faces.NoFaceError, match="wall.png"):
        faces.detect_and_align(p, detector)


def test_unreadable_and_missing_images(tmp_path, detector):
    bad = tmp_path / "broken.jpeg"
    bad.write_bytes(b"\xff\xd8 not really a jpeg")
    with pytest.raises(InputFileError, match="could not be read as an image"):
        faces.detect_and_align(bad, detector)
    with pytest.raises(InputFileError, match="does not exist"):
        faces.read_image_bgr(tmp_path / "nope.png")


def test_select_face_prefers_the_largest_then_the_most_confident():
    lm = np.zeros((5, 2))
    small_sure = faces.FaceDetection((0, 0, 10, 10), lm, 0.99)
    big = faces.FaceDetection((0, 0, 50, 50), lm, 0.7)
    big_sure = faces.FaceDetection((10, 10, 60, 60), lm, 0.9)
    assert faces.select_face([small_sure, big]) is big
    assert faces.select_face([big, small_sure, big_sure]) is big_sure


def test_decode_rejects_missing_or_misshapen_outputs():
    outs = {f"{k}_{s}": np.zeros((1, (640 // s) ** 2, w), np.float32)
            for s in faces.YUNET_STRIDES for k, w in (("cls", 1), ("obj", 1), ("bbox", 4), ("kps", 10))}
    boxes, scores, kps = faces.decode_yunet(outs)
    assert boxes.shape == (0, 4) and scores.shape == (0,) and kps.shape == (0, 5, 2)
    with pytest.raises(InputDataError, match="'kps_16' is missing"):
        faces.decode_yunet({k: v for k, v in outs.items() if k != "kps_16"})
    bad = dict(outs, bbox_32=np.zeros((1, 10, 4), np.float32))
    with pytest.raises(InputDataError, match="'bbox_32' has shape"):
        faces.decode_yunet(bad)


def test_decode_places_one_anchor_exactly():
    """A single confident anchor at stride 16, row 3, column 5 decodes per the documented formulas."""
    outs = {f"{k}_{s}": np.zeros((1, (640 // s) ** 2, w), np.float32)
            for s in faces.YUNET_STRIDES for k, w in (("cls", 1), ("obj", 1), ("bbox", 4), ("kps", 10))}
    idx = 3 * 40 + 5
    outs["cls_16"][0, idx, 0], outs["obj_16"][0, idx, 0] = 0.81, 1.5  # obj clipped to 1 → score 0.9
    outs["bbox_16"][0, idx] = [0.5, 0.25, math.log(2.0), 0.0]
    outs["kps_16"][0, idx] = np.arange(10) / 10
    boxes, scores, kps = faces.decode_yunet(outs)
    cx, cy, w, h = (5 + 0.5) * 16, (3 + 0.25) * 16, 32, 16
    np.testing.assert_allclose(boxes, [[cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]], rtol=1e-6)
    np.testing.assert_allclose(scores, [0.9], rtol=1e-6)
    exp = np.stack([(np.arange(0, 10, 2) / 10 + 5) * 16, (np.arange(1, 10, 2) / 10 + 3) * 16], axis=1)
    np.testing.assert_allclose(kps[0], exp, rtol=1e-6)


def test_nms_keeps_the_best_of_overlapping_boxes():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], np.float32)
    keep = faces.nms(boxes, np.array([0.8, 0.9, 0.7], np.float32))
    assert keep.tolist() == [1, 2]
    assert faces.nms(np.zeros((0, 4)), np.zeros(0)).shape == (0,)


@given(h=st.integers(1, 900), w=st.integers(1, 900))
def test_letterbox_keeps_aspect_and_fits(h, w):
    canvas, scale = faces.letterbox(np.full((h, w, 3), 200, np.uint8))
    assert canvas.shape == (640, 640, 3) and canvas.dtype == np.uint8
    assert scale == pytest.approx(640 / max(h, w))
    nh, nw = min(640, round(h * scale)), min(640, round(w * scale))
    assert (canvas[:nh, :nw] == 200).all() and canvas[nh:].sum() == 0 and canvas[:, nw:].sum() == 0


@pytest.mark.parametrize("bad", [np.zeros((10, 10), np.uint8), np.zeros((10, 10, 3), np.float32),
                                 np.zeros((0, 10, 3), np.uint8), "image.png"])
def test_images_must_be_hwc_uint8(bad):
    with pytest.raises(InputDataError, match="expected an \\(H, W, 3\\) uint8 array"):
        faces.letterbox(bad)


# -- alignment ---------------------------------------------------------------------------------------------------------
@given(angle=st.floats(-np.pi, np.pi), scale=st.floats(0.05, 20), tx=st.floats(-500, 500), ty=st.floats(-500, 500))
def test_umeyama_recovers_an_exact_similarity_transform(angle, scale, tx, ty):
    src = faces.ARCFACE_TEMPLATE * 2.0 + 10.0
    m = np.array([[scale * np.cos(angle), -scale * np.sin(angle), tx],
                  [scale * np.sin(angle), scale * np.cos(angle), ty]])
    dst = faces.apply_transform(m, src)
    np.testing.assert_allclose(faces.umeyama(src, dst), m, atol=1e-6 * max(1.0, scale, abs(tx), abs(ty)))


def test_umeyama_agrees_with_opencv_least_squares(aligned):
    """On real landmarks our least-squares fit equals OpenCV's estimateAffinePartial2D refined fit (all inliers)."""
    for a in aligned.values():
        cv_m, inl = cv2.estimateAffinePartial2D(a.detection.landmarks.astype(np.float32),
                                                faces.ARCFACE_TEMPLATE.astype(np.float32), method=cv2.LMEDS,
                                                refineIters=50)
        ours = faces.umeyama(a.detection.landmarks, faces.ARCFACE_TEMPLATE)
        # LMEDS may drop a point; compare residuals instead of matrices: ours is the least-squares optimum.
        res = lambda mm: np.sum((faces.apply_transform(mm, a.detection.landmarks) - faces.ARCFACE_TEMPLATE) ** 2)
        assert res(ours) <= res(cv_m) + 1e-6


@pytest.mark.parametrize("src,dst,match", [
    (np.zeros((5, 2)), faces.ARCFACE_TEMPLATE, "coincide"),
    (np.ones((1, 2)), np.ones((1, 2)), "N ≥ 2"),
    (np.ones((5, 2)), np.ones((4, 2)), "N ≥ 2"),
    (np.full((5, 2), np.nan), faces.ARCFACE_TEMPLATE, "NaN"),
])
def test_umeyama_rejects_degenerate_input(src, dst, match):
    with pytest.raises(InputDataError, match=match):
        faces.umeyama(src, dst)


def test_landmarks_land_near_the_template(aligned):
    errors = {s: a.template_error for s, a in aligned.items()}
    # measured: 1.3 (Luciano) .. 5.4 (Paul) px; a mis-ordered or mirrored landmark set gives > 20 px
    assert max(errors.values()) < 8.0, errors
    assert np.mean(list(errors.values())) < 5.0, errors
    for a in aligned.values():
        assert a.image.shape == (112, 112, 3) and a.image.dtype == np.uint8
        np.testing.assert_allclose(a.aligned_landmarks, faces.apply_transform(a.transform, a.detection.landmarks))


def test_pipeline_reproduces_the_cached_crops(aligned):
    """Re-running detection + alignment gives the committed fixtures (rebuild: scripts/build_aligned_faces.py)."""
    meta = json.loads((faces.ALIGNED_DIR / "faces.json").read_text())
    assert sorted(meta["faces"]) == sorted(aligned)
    for stem, a in aligned.items():
        cached = np.asarray(Image.open(faces.ALIGNED_DIR / f"{stem}.png").convert("RGB"))
        diff = np.abs(cached.astype(int) - a.image.astype(int))
        assert diff.max() <= 2 and diff.mean() <= 0.1, f"{stem}: max {diff.max()}, mean {diff.mean():.3f}"
        np.testing.assert_allclose(a.detection.box, meta["faces"][stem]["detection"]["box"], atol=0.05)
        np.testing.assert_allclose(a.detection.landmarks, meta["faces"][stem]["detection"]["landmarks"], atol=0.05)


def test_cached_crops_separate_identities_by_pixels_alone():
    """Sanity of the fixture set: five distinct crops (a duplicated file would pass everything else)."""
    crops = [np.asarray(Image.open(faces.ALIGNED_DIR / f"{s}.png")).astype(int) for s in STEMS]
    for i in range(len(crops)):
        for j in range(i + 1, len(crops)):
            assert np.abs(crops[i] - crops[j]).mean() > 10


# -- distance emulation and fixture building --------------------------------------------------------------------------
@given(scale=st.floats(0.05, 1.0))
def test_simulate_distance_keeps_shape_and_loses_detail(scale):
    rng = np.random.default_rng(0)
    crop = rng.integers(0, 256, (112, 112, 3), dtype=np.uint8)
    out = faces.simulate_distance(crop, scale)
    assert out.shape == crop.shape and out.dtype == np.uint8
    if scale == 1.0:
        assert (out == crop).all()
    elif scale < 0.9:
        assert out.astype(float).std() < crop.astype(float).std()  # high frequencies are gone


@pytest.mark.parametrize("scale", [0.0, -0.5, 1.5])
def test_simulate_distance_rejects_bad_scale(scale):
    with pytest.raises(InputDataError, match="out of range"):
        faces.simulate_distance(np.zeros((112, 112, 3), np.uint8), scale)


def test_build_aligned_faces_writes_crops_and_metadata(tmp_path, photos, detector):
    out = faces.build_aligned_faces([photos["Paul"], photos["Bryan"]], tmp_path / "aligned", detector=detector)
    assert sorted(out) == ["Bryan", "Paul"]
    meta = json.loads((tmp_path / "aligned" / "faces.json").read_text())
    assert meta["faces"]["Paul"]["source"] == "Paul.jpeg"
    cached = np.asarray(Image.open(faces.ALIGNED_DIR / "Paul.png").convert("RGB")).astype(int)
    assert np.abs(np.asarray(Image.open(out["Paul"])).astype(int) - cached).max() <= 2
    assert not list((tmp_path / "aligned").glob("*.tmp"))


def test_build_aligned_faces_failure_leaves_existing_files_untouched(tmp_path, photos, detector):
    outdir = tmp_path / "aligned"
    faces.build_aligned_faces([photos["Bryan"]], outdir, detector=detector)
    before = {p.name: p.read_bytes() for p in outdir.iterdir()}
    blank = tmp_path / "blank.png"
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(blank)
    with pytest.raises(faces.NoFaceError):
        faces.build_aligned_faces([photos["Paul"], blank], outdir, detector=detector)
    assert {p.name: p.read_bytes() for p in outdir.iterdir()} == before


def test_build_script_cli(tmp_path, photos, capsys):
    import importlib.util

    spec = importlib.util.spec_from_file_location("build_aligned_faces",
                                                  config.REPO_ROOT / "scripts" / "build_aligned_faces.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    src = tmp_path / "src"
    src.mkdir()
    (src / "Luciano.png").write_bytes(photos["Luciano"].read_bytes())
    assert mod.main(["--src", str(src), "--out", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "Luciano.png").is_file()
    assert mod.main(["--src", str(tmp_path / "empty"), "--out", str(tmp_path / "out2")]) == 2
    assert "no face photos" in capsys.readouterr().err
