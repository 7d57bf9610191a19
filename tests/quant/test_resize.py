"""Letterbox vs stretch (issue #10 item 3): the mismatch is detected in calibration data, reported in a result,
and measured by the resize study (parametrized over the resize mode the manifest declares)."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hailo_qa.errors import InputDataError
from hailo_qa.inputs import preprocess_image
from hailo_qa.manifest import InputSpec, Preprocess, load_manifest
from hailo_qa.quant import evaluation as qe
from hailo_qa.quant.calib import calib_set_for_model, calib_set_from_files, letterbox_bands, resize_mismatch
from hailo_qa.quant.resize import MODES, declared_resize, resize_study, with_resize

PRE = dict(color="RGB", mean=(127.5,) * 3, std=(127.5,) * 3)


def spec_of(mode: str) -> InputSpec:
    return InputSpec("x", (1, 3, 32, 32), range=(-1.0, 1.0), preprocess=Preprocess(**PRE, resize=mode))


def photos(n: int, seed: int = 0) -> list[np.ndarray]:
    """Wide and tall photo-like images (smooth gradients + noise), never square."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        h, w = (48, 80) if k % 2 else (90, 50)
        yy, xx = np.mgrid[0:h, 0:w]
        base = np.stack([xx * 255 / w, yy * 255 / h, (xx + yy) * 127 / (h + w)], axis=-1)
        out.append(np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8))
    return out


def write_tensors(d: Path, mode: str, n: int = 6) -> list[Path]:
    """.npy samples preprocessed outside hailo-qa (a user's own export) with ``mode``."""
    d.mkdir(parents=True, exist_ok=True)
    files = []
    for k, img in enumerate(photos(n)):
        files.append(d / f"s{k}.npy")
        np.save(files[-1], preprocess_image(img, spec_of(mode)))
    return files


# ---- detection in the calibration data ----------------------------------------------------------------------------
def test_letterboxed_tensors_for_a_stretched_input_are_refused(tmp_path):
    boxed = write_tensors(tmp_path / "boxed", "letterbox")
    with pytest.raises(InputDataError, match="6 of 6 calibration samples look letterboxed") as err:
        calib_set_from_files(boxed, spec_of("stretch"), size=6)
    assert 'Hint: if the deployment letterboxes, declare preprocess = { ..., resize = "letterbox" }' in str(err.value)
    assert calib_set_from_files(boxed, spec_of("letterbox"), size=6).real == 6  # declared as exported: fine
    stretched = write_tensors(tmp_path / "stretched", "stretch")
    assert calib_set_from_files(stretched, spec_of("stretch"), size=6).real == 6


def test_a_minority_of_banded_samples_is_not_a_mismatch(tmp_path):
    """A few letterboxed frames among stretched ones (a camera with a black border, say) are not called a mismatch:
    at least half must carry bands."""
    files = write_tensors(tmp_path / "s", "stretch", n=6)
    np.save(files[0], preprocess_image(photos(1)[0], spec_of("letterbox")))
    np.save(files[1], preprocess_image(photos(2)[1], spec_of("letterbox")))
    assert calib_set_from_files(files, spec_of("stretch"), size=6).real == 6
    np.save(files[2], preprocess_image(photos(3)[2], spec_of("letterbox")))
    with pytest.raises(InputDataError, match="3 of 6"):
        calib_set_from_files(files, spec_of("stretch"), size=6)


def test_letterbox_bands_on_each_axis():
    pad = (114 - np.asarray(PRE["mean"])) / np.asarray(PRE["std"])
    wide, tall = photos(2)[1], photos(1)[0]
    assert letterbox_bands(preprocess_image(wide, spec_of("letterbox")), pad)  # rows above and below
    assert letterbox_bands(preprocess_image(tall, spec_of("letterbox")), pad)  # columns left and right
    assert not letterbox_bands(preprocess_image(wide, spec_of("stretch")), pad)
    assert not letterbox_bands(preprocess_image(wide, spec_of("letterbox")), pad + 0.1)


def test_summary_says_how_images_were_resized(tmp_path):
    d = tmp_path / "img"
    d.mkdir()
    for k, img in enumerate(photos(3)):
        Image.fromarray(img).save(d / f"p{k}.png")
    cs = calib_set_from_files(sorted(d.iterdir()), spec_of("letterbox"), size=3)
    assert cs.resize == "letterbox" and cs.summary().resize == "letterbox"
    assert "(images resized: letterbox)" in str(cs.summary())
    assert calib_set_from_files(write_tensors(tmp_path / "t", "stretch"), spec_of("stretch"), size=2).resize is None


# ---- the study on a real model --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def onet():
    spec = load_manifest().get("mtcnn_onet")
    if not spec.available or len(spec.samples) < 3:
        pytest.skip(f"mtcnn_onet or its photos are not present: {spec.unavailable}")
    return spec


def test_with_resize_and_its_errors(onet):
    lb = with_resize(onet, "letterbox")
    assert declared_resize(lb) == "letterbox" and declared_resize(onet) == "stretch"
    assert lb.input("input_3").preprocess.pad == onet.input("input_3").preprocess.pad
    with pytest.raises(InputDataError, match="unknown"):
        with_resize(onet, "crop")
    bare = dataclasses.replace(onet, inputs=tuple(dataclasses.replace(i, preprocess=None) for i in onet.inputs))
    with pytest.raises(InputDataError, match="no image input"):
        with_resize(bare, "letterbox")


def test_a_mismatched_calibration_is_reported_in_the_result(onet, tmp_path):
    calib = calib_set_for_model(with_resize(onet, "letterbox"), size=3)
    assert resize_mismatch(calib, onet.input("input_3")).startswith("preprocessing mismatch: calibrated on images "
                                                                     "resized by letterbox, evaluated on stretch")
    assert resize_mismatch(calib, with_resize(onet, "letterbox").input("input_3")) is None
    r = qe.evaluate_quantization(onet, config="int8", calib_size=3, backend="ort", work_dir=tmp_path, n_eval=2,
                                 calib=calib)
    assert any(n.startswith("preprocessing mismatch") for n in r.notes) and "preprocessing mismatch" in r.table()
    assert r.calib_sha256 == calib.sha256


@pytest.mark.parametrize("declared", MODES)
def test_resize_study_reads_the_mode_from_the_manifest(declared, onet, tmp_path):
    """A manifest declaring ``resize = <declared>``: the study puts the matched case first, marks the two
    mismatched cells, and keeps per-output SNR and cosine in every cell."""
    i = onet.input("input_3")
    p = i.preprocess
    (tmp_path / "models.toml").write_text(
        f'schema = 1\n[models.onet]\nfile = "{onet.file}"\ntask = "face_detection"\n'
        f'samples = [{", ".join(json.dumps(str(s)) for s in onet.samples)}]\n'
        f'[[models.onet.inputs]]\nname = "{i.name}"\nshape = {list(i.shape)}\nlayout = "{i.layout}"\n'
        f'range = {list(i.range)}\npreprocess = {{ color = "{p.color}", mean = {list(p.mean)}, std = {list(p.std)}, '
        f'resize = "{declared}" }}\n')
    spec = load_manifest(tmp_path / "models.toml").get("onet")
    study = resize_study(spec, calib_size=3, backend="ort", work_dir=tmp_path / "w", n_eval=2)
    other = MODES[1 - MODES.index(declared)]
    assert study.declared == declared and list(study.cells)[:2] == [(declared, declared), (other, declared)]
    assert set(study.cells) == {(c, e) for c in MODES for e in MODES}
    for (c, e), r in study.cells.items():
        assert any(n.startswith("preprocessing mismatch") for n in r.notes) == (c != e)
        assert r.calib_real == 3 and r.eval_inputs == study.cell(e, e).eval_inputs
        assert {"snr_db", "cosine"} <= set(r.metrics) and any(k.startswith("snr_db/") for k in r.metrics)
    # the same calibration set gives the same quantized model: its SNR differs only with the evaluation data
    assert study.cell(declared, declared).calib_sha256 == study.cell(declared, other).calib_sha256
    assert study.cell(declared, declared).calib_sha256 != study.cell(other, declared).calib_sha256
    cost = study.mismatch_cost()
    assert cost["snr_db"] == pytest.approx(study.cell(declared, declared).snr_db - study.cell(other, declared).snr_db)
    text = study.table()
    assert f"resize = {declared}" in text and text.count("**mismatch**") == 2
    d = study.to_dict()
    assert [(c["calibrated"], c["evaluated"], c["mismatch"]) for c in d["cells"]][0] == (declared, declared, False)
