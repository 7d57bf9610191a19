"""Calibration sets: sources, seeded sampling, augmentation, streaming, statistics and validation."""
from __future__ import annotations

import types
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from hailo_qa.errors import InputDataError, InputFileError, ManifestError
from hailo_qa.manifest import (
    CalibrationSpec,
    InputSpec,
    ModelSpec,
    Preprocess,
    QuantizationSpec,
    load_manifest,
)
from hailo_qa.quant import calib as calib_mod
from hailo_qa.quant.calib import (
    CalibSet,
    calib_set_for_model,
    calib_set_from_arrays,
    calib_set_from_files,
    validate_calib,
)

C, H, W = 3, 8, 10
MEAN = (127.5, 127.5, 127.5)
STD = (127.5, 127.5, 127.5)


def inp(*, rng=(-1.0, 1.0), layout="NCHW", pre=True) -> InputSpec:
    shape = (1, C, H, W) if layout == "NCHW" else (1, H, W, C)
    return InputSpec("x", shape, layout=layout, range=rng,
                     preprocess=Preprocess(color="RGB", mean=MEAN, std=STD) if pre else None)


def model(tmp_path: Path, source: str, *, normalization="host", max_samples=None, seed=0, augment=False,
          **kw) -> ModelSpec:
    return ModelSpec(name="toy", file=None, task="generic", inputs=(inp(**kw),),
                     calibration=CalibrationSpec(source=source, max_samples=max_samples, seed=seed, augment=augment),
                     quantization=QuantizationSpec(normalization=normalization), manifest_path=tmp_path / "m.toml")


def write_npy(d: Path, n: int, *, shape=(1, C, H, W), seed=0, lo=-1.0, hi=1.0, dtype=np.float32,
              order=None) -> list[np.ndarray]:
    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    arrays = [rng.uniform(lo, hi, size=shape).astype(dtype) for _ in range(n)]
    for i in (order or range(n)):
        np.save(d / f"s{i:03d}.npy", arrays[i])
    return arrays


def write_png(d: Path, n: int, *, size=(24, 20), seed=0) -> list[np.ndarray]:
    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        a = rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
        Image.fromarray(a).save(d / f"img{i}.png")
        out.append(a)
    return out


# ---- sources ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape,to_chw", [
    ((1, C, H, W), lambda a: a[0]),
    ((C, H, W), lambda a: a),
    ((H, W, C), lambda a: a.transpose(2, 0, 1)),
    ((1, H, W, C), lambda a: a[0].transpose(2, 0, 1)),
], ids=["1CHW", "CHW", "HWC", "1HWC"])
def test_npy_dir_layouts_are_read_as_nchw(tmp_path, shape, to_chw):
    arrays = write_npy(tmp_path / "d", 3, shape=shape)
    cs = calib_set_for_model(model(tmp_path, str(tmp_path / "d")), size=3)
    got = list(cs.iter_samples())
    assert cs.shape == (1, C, H, W) and cs.count == 3 and cs.real == 3 and cs.augmented == 0
    for g, a in zip(got, arrays):
        assert g.shape == (1, C, H, W) and g.dtype == np.float32 and g.flags.c_contiguous
        np.testing.assert_array_equal(g[0], to_chw(a))


def test_relative_source_resolves_against_the_manifest(tmp_path):
    write_npy(tmp_path / "calib", 2)
    assert calib_set_for_model(model(tmp_path, "calib"), size=2).count == 2


def test_npz_stacked_and_single_arrays(tmp_path):
    rng = np.random.default_rng(1)
    stack = rng.uniform(-1, 1, size=(4, C, H, W)).astype(np.float32)
    one = rng.uniform(-1, 1, size=(C, H, W)).astype(np.float32)
    np.savez(tmp_path / "c.npz", a=stack, b=one)
    cs = calib_set_for_model(model(tmp_path, str(tmp_path / "c.npz")), size=5)
    got = np.concatenate(list(cs.iter_samples()))
    np.testing.assert_array_equal(got, np.concatenate([stack, one[None]]))


def test_glob_source(tmp_path):
    write_npy(tmp_path / "d", 4)
    (tmp_path / "d" / "notes.txt").write_text("ignored")
    cs = calib_set_for_model(model(tmp_path, str(tmp_path / "d" / "s00[01].npy")), size=2)
    assert [i.label for i in cs.items] == ["s000.npy", "s001.npy"]


def test_image_folder_goes_through_preprocessing(tmp_path):
    imgs = write_png(tmp_path / "img", 2)
    cs = calib_set_for_model(model(tmp_path, str(tmp_path / "img")), size=2)
    x = next(cs.iter_samples())
    ref = (np.asarray(Image.fromarray(imgs[0]).resize((W, H), Image.BILINEAR), np.float32) - 127.5) / 127.5
    np.testing.assert_allclose(x[0], ref.transpose(2, 0, 1), atol=1e-6)


def test_on_chip_images_stay_raw_and_can_be_normalized_for_onnx(tmp_path):
    write_png(tmp_path / "img", 2)
    cs = calib_set_for_model(model(tmp_path, str(tmp_path / "img"), normalization="on_chip"), size=2)
    raw = next(cs.iter_samples())
    onnx = next(cs.iter_samples(as_onnx_input=True))
    assert raw.max() > 2.0 and raw.min() >= 0.0  # 0-255 pixels for the normalization layer
    np.testing.assert_allclose(onnx, (raw - 127.5) / 127.5, atol=1e-6)
    assert cs.expected_range == (0.0, 255.0)


def test_nhwc_input_layout(tmp_path):
    write_npy(tmp_path / "d", 2, shape=(1, H, W, C))
    spec = model(tmp_path, str(tmp_path / "d"), layout="NHWC")
    cs = calib_set_for_model(spec, size=2)
    assert cs.shape == (1, C, H, W)
    assert cs.as_nhwc().shape == (H, W, C)


def test_manifest_samples_of_a_real_model():
    spec = load_manifest().get("mobilefacenet")
    if not spec.samples:
        pytest.skip("mobilefacenet has no aligned face samples here (fixtures/faces/aligned)")
    cs = calib_set_for_model(spec, size=16, seed=3)
    s = cs.summary()
    assert (s.real, s.augmented, s.count) == (len(spec.samples), 16 - len(spec.samples), 16)
    assert min(s.channel_min) >= -1.0 and max(s.channel_max) <= 1.0
    assert s.shape == (1, 3, 112, 112)


# ---- sampling -----------------------------------------------------------------------------------------------------
def test_same_seed_same_subset_and_filesystem_order_does_not_matter(tmp_path):
    write_npy(tmp_path / "a", 20, order=list(range(20)))
    write_npy(tmp_path / "b", 20, order=list(reversed(range(20))))  # same content, created in reverse order
    a = calib_set_for_model(model(tmp_path, str(tmp_path / "a")), size=7, seed=5)
    b = calib_set_for_model(model(tmp_path, str(tmp_path / "b")), size=7, seed=5)
    assert [i.label for i in a.items] == [i.label for i in b.items]
    assert a.sha256 == b.sha256
    c = calib_set_for_model(model(tmp_path, str(tmp_path / "a")), size=7, seed=6)
    assert [i.label for i in c.items] != [i.label for i in a.items]
    assert c.sha256 != a.sha256


def test_smaller_sets_are_subsets_of_larger_ones(tmp_path):
    write_npy(tmp_path / "d", 30)
    spec = model(tmp_path, str(tmp_path / "d"))
    small = {i.label for i in calib_set_for_model(spec, size=5, seed=2).items}
    big = {i.label for i in calib_set_for_model(spec, size=15, seed=2).items}
    assert len(small) == 5 and small < big


def test_max_samples_caps_the_real_samples(tmp_path):
    write_npy(tmp_path / "d", 10)
    cs = calib_set_for_model(model(tmp_path, str(tmp_path / "d"), max_samples=4), size=6)
    assert (cs.real, cs.augmented, cs.requested, cs.shortfall) == (4, 0, 6, 2)
    cs = calib_set_for_model(model(tmp_path, str(tmp_path / "d"), max_samples=4, augment=True), size=6)
    assert (cs.real, cs.augmented) == (4, 2)


def test_no_hidden_cap_on_real_samples(tmp_path):
    """Without max_samples every real sample requested is used (the old default capped at 64 and augmented)."""
    write_npy(tmp_path / "d", 100, shape=(C, H, W))
    cs = calib_set_for_model(model(tmp_path, str(tmp_path / "d")), size=100)
    assert (cs.real, cs.augmented, cs.shortfall) == (100, 0, 0)


def test_no_cap_beyond_the_dfc_recommended_1024(tmp_path):
    """5000 real samples (one stacked .npy, memory-mapped) give a set of 5000 real: no cap at 64, 1024 or 4096;
    ``max_samples`` caps exactly where it says."""
    d = tmp_path / "d"
    d.mkdir()
    np.save(d / "stack.npy", np.random.default_rng(0).uniform(-1, 1, (5000, C, H, W)).astype(np.float32))
    cs = calib_set_for_model(model(tmp_path, str(d)), size=5000)
    assert (cs.real, cs.augmented, cs.requested, cs.shortfall, cs.real_available) == (5000, 0, 5000, 0, 5000)
    assert sum(1 for _ in cs.iter_samples()) == 5000
    capped = calib_set_for_model(model(tmp_path, str(d), max_samples=3000), size=5000)
    assert (capped.real, capped.augmented, capped.shortfall) == (3000, 0, 2000)


@pytest.mark.parametrize("save", [np.savez, np.savez_compressed], ids=["stored", "deflated"])
def test_stacked_npz_rows_stream_without_loading_the_member(tmp_path, save):
    """A stacked .npz member is read a row at a time (memory map when stored, forward decompression when deflated):
    the streaming peak stays far below the member's size, and every row equals the loaded array's."""
    import tracemalloc

    d = tmp_path / "d"
    d.mkdir()
    x = np.random.default_rng(0).uniform(-1, 1, (300, 3, 32, 32)).astype(np.float32)  # 3.5 MB
    save(d / "set.npz", x=x, y=np.arange(300))
    spec = ModelSpec(name="toy", file=None, task="generic",
                     inputs=(InputSpec("x", (1, 3, 32, 32), range=(-1.0, 1.0)),),
                     calibration=CalibrationSpec(source=str(d)), manifest_path=tmp_path / "m.toml")
    cs = calib_set_for_model(spec, size=300, validate=False)
    tracemalloc.start()
    try:
        same = [bool(np.array_equal(s[0], x[k])) for k, s in enumerate(cs.iter_samples())]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert cs.real == 300 and len(same) == 300 and all(same)
    assert peak < x.nbytes / 5, f"streaming peak {peak} B for a {x.nbytes} B member"
    np.testing.assert_array_equal(cs.sample(123)[0], x[123])  # random access
    np.testing.assert_array_equal(cs.sample(7)[0], x[7])


def test_fewer_real_samples_than_requested_is_reported_not_invented(tmp_path):
    write_npy(tmp_path / "d", 3)
    cs = calib_set_for_model(model(tmp_path, str(tmp_path / "d")), size=16)
    assert (cs.count, cs.real, cs.augmented, cs.requested, cs.shortfall) == (3, 3, 0, 16, 13)
    s = cs.summary()
    assert (s.requested, s.real_available, s.shortfall) == (16, 3, 13) and s.to_dict()["shortfall"] == 13
    text = str(s)
    assert "3 (3 real, 0 augmented)" in text and "requested    16; real found 3; 13 short" in text


# ---- augmentation -------------------------------------------------------------------------------------------------
def test_augmentation_fills_up_deterministically_within_range(tmp_path):
    arrays = write_npy(tmp_path / "d", 2, lo=-0.5, hi=0.7)
    spec = model(tmp_path, str(tmp_path / "d"), augment=True)
    cs = calib_set_for_model(spec, size=40, seed=1)
    assert (cs.real, cs.augmented, cs.count) == (2, 38, 40)
    samples = list(cs.iter_samples())
    assert len(samples) == 40
    lo, hi = min(float(a.min()) for a in arrays), max(float(a.max()) for a in arrays)
    for s in samples[2:]:
        assert s.shape == (1, C, H, W) and np.isfinite(s).all()
        assert lo - 1e-6 <= s.min() and s.max() <= hi + 1e-6
    # augmented samples differ from their sources and from each other
    assert not any(np.array_equal(samples[k], samples[k % 2]) for k in range(2, 40))
    assert len({s.tobytes() for s in samples}) == 40
    again = calib_set_for_model(spec, size=40, seed=1)
    assert again.sha256 == cs.sha256
    np.testing.assert_array_equal(again.sample(17), samples[17])
    assert calib_set_for_model(spec, size=40, seed=2).sha256 != cs.sha256


def test_augmented_images_stay_in_pixel_range(tmp_path):
    write_png(tmp_path / "img", 1)
    cs = calib_set_for_model(model(tmp_path, str(tmp_path / "img"), normalization="on_chip", augment=True), size=12)
    s = cs.summary()
    assert (s.real, s.augmented) == (1, 11)
    assert min(s.channel_min) >= 0.0 and max(s.channel_max) <= 255.0
    validate_calib(cs, include_augmented=True)


def test_augmentation_is_opt_in_and_can_be_refused(tmp_path):
    write_npy(tmp_path / "d", 2)
    assert calib_set_for_model(model(tmp_path, str(tmp_path / "d")), size=3).augmented == 0
    spec = model(tmp_path, str(tmp_path / "d"), augment=True)
    assert calib_set_for_model(spec, size=3).augmented == 1
    assert calib_set_for_model(spec, size=3, augment=False).augmented == 0


# ---- streaming ----------------------------------------------------------------------------------------------------
def test_iter_samples_streams_one_sample_at_a_time(tmp_path, monkeypatch):
    write_npy(tmp_path / "d", 6)
    cs = calib_set_for_model(model(tmp_path, str(tmp_path / "d")), size=6)
    loads = []
    real = calib_mod._load_real
    monkeypatch.setattr(calib_mod, "_load_real", lambda it, c, *a: loads.append(it.label) or real(it, c, *a))
    it = cs.iter_samples()
    assert isinstance(it, types.GeneratorType) and loads == []
    next(it)
    assert loads == ["s000.npy"]


def test_batches_and_nhwc_views(tmp_path):
    write_npy(tmp_path / "d", 3)
    cs = calib_set_for_model(model(tmp_path, str(tmp_path / "d"), augment=True), size=7)
    batches = list(cs.iter_batches(3))
    assert [b.shape[0] for b in batches] == [3, 3, 1]
    full = np.concatenate(batches)
    np.testing.assert_array_equal(full, np.concatenate(list(cs.iter_samples())))
    view = cs.as_nhwc()
    assert len(view) == 7 and view.shape == (H, W, C)
    nhwc = view.to_array()
    np.testing.assert_array_equal(nhwc, full.transpose(0, 2, 3, 1))
    np.testing.assert_array_equal(np.concatenate(list(view)), nhwc)
    np.testing.assert_array_equal(np.concatenate(list(view.iter_batches(4))), nhwc)
    assert next(view.iter_hwc()).shape == (H, W, C)
    with pytest.raises(InputDataError):
        next(cs.iter_batches(0))


def test_calibset_is_frozen(tmp_path):
    write_npy(tmp_path / "d", 1)
    cs = calib_set_for_model(model(tmp_path, str(tmp_path / "d")), size=1)
    with pytest.raises(AttributeError):
        cs.seed = 3  # type: ignore[misc]
    assert isinstance(cs, CalibSet)


# ---- statistics ---------------------------------------------------------------------------------------------------
@settings(max_examples=20)
@given(n=st.integers(1, 6), seed=st.integers(0, 2**16), scale=st.floats(0.01, 100))
def test_summary_matches_numpy(n, seed, scale):
    x = (np.random.default_rng(seed).standard_normal((n, C, H, W)) * scale).astype(np.float32)
    cs = calib_set_from_arrays(x if n > 1 else x[0], inp(rng=None, pre=False), validate=False)
    s = cs.summary()
    per_ch = x.transpose(1, 0, 2, 3).reshape(C, -1).astype(np.float64)
    np.testing.assert_allclose(s.channel_mean, per_ch.mean(1), rtol=1e-9, atol=1e-9 * scale)
    np.testing.assert_allclose(s.channel_std, per_ch.std(1), rtol=1e-7, atol=1e-9 * scale)
    np.testing.assert_array_equal(s.channel_min, per_ch.min(1))
    np.testing.assert_array_equal(s.channel_max, per_ch.max(1))
    assert s.count == n and len(s.sha256) == 64 and s.to_dict()["count"] == n


@settings(max_examples=10)
@given(seed=st.integers(0, 2**32 - 1), size=st.integers(1, 12))
def test_same_seed_same_content(seed, size):
    x = np.random.default_rng(0).uniform(-1, 1, (3, C, H, W)).astype(np.float32)
    a = calib_set_from_arrays(x, inp(), size=size, seed=seed, augment=True)
    b = calib_set_from_arrays(x[::-1].copy()[::-1], inp(), size=size, seed=seed, augment=True)
    assert a.sha256 == b.sha256 and a.count == size


def test_sha256_depends_on_content(tmp_path):
    x = np.zeros((2, C, H, W), np.float32)
    y = x.copy()
    y[1, 0, 0, 0] = 1e-3
    assert calib_set_from_arrays(x, inp()).sha256 != calib_set_from_arrays(y, inp()).sha256


def test_summary_text_says_real_and_augmented(tmp_path):
    write_npy(tmp_path / "d", 2)
    text = str(calib_set_for_model(model(tmp_path, str(tmp_path / "d"), augment=True), size=5).summary())
    assert "5 (2 real, 3 augmented)" in text and "(1, 3, 8, 10)" in text


# ---- validation ---------------------------------------------------------------------------------------------------
def test_empty_source_is_an_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputDataError, match="holds no .npy/.npz/image file"):
        calib_set_for_model(model(tmp_path, str(tmp_path / "empty")), size=4)
    spec = model(tmp_path, "samples")
    with pytest.raises(InputDataError, match="samples, but there are none"):
        calib_set_for_model(spec, size=4)


def test_missing_source_is_an_error(tmp_path):
    with pytest.raises(InputFileError, match="does not exist"):
        calib_set_for_model(model(tmp_path, "nowhere"), size=4)


def test_wrong_shape_names_the_files(tmp_path):
    write_npy(tmp_path / "d", 2)
    np.save(tmp_path / "d" / "odd.npy", np.zeros((1, C, H + 1, W), np.float32))
    with pytest.raises(InputDataError) as exc:
        calib_set_for_model(model(tmp_path, str(tmp_path / "d")), size=2)
    msg = str(exc.value)
    assert "1 of 3" in msg and "odd.npy (1, 3, 9, 10)" in msg and "Note: expected" in msg and "Hint:" in msg


def test_mixed_shapes_are_listed(tmp_path):
    d = tmp_path / "d"
    write_npy(d, 1)
    np.save(d / "a.npy", np.zeros((1, C, 4, 4), np.float32))
    np.save(d / "b.npy", np.zeros((2, 2), np.float32))
    with pytest.raises(InputDataError, match=r"2 of 3 .*shapes: 1× \(1, 3, 4, 4\); 1× \(2, 2\)"):
        calib_set_for_model(model(tmp_path, str(d)), size=2)


def test_ambiguous_shape_is_refused(tmp_path):
    spec = InputSpec("x", (1, 3, 3, 3), range=(-1, 1))
    np.save(tmp_path / "a.npy", np.zeros((3, 3, 3), np.float32))
    with pytest.raises(InputDataError, match="ambiguous"):
        calib_set_from_files([tmp_path / "a.npy"], spec, size=1)


def test_wrong_dtype(tmp_path):
    write_npy(tmp_path / "d", 2, dtype=np.float64)
    with pytest.raises(InputDataError, match=r"2 calibration sample\(s\) have the wrong dtype: s000.npy \(float64\)"):
        calib_set_for_model(model(tmp_path, str(tmp_path / "d")), size=2)


def test_corrupt_npy(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "bad.npy").write_bytes(b"not numpy")
    with pytest.raises(InputFileError, match="not a readable .npy"):
        calib_set_for_model(model(tmp_path, str(tmp_path / "d")), size=1)


def test_nan_and_inf_name_the_sample_and_count(tmp_path):
    write_npy(tmp_path / "d", 3)
    bad = np.zeros((1, C, H, W), np.float32)
    bad[0, 0, :2, :2] = np.nan
    bad[0, 1, 0, 0] = np.inf
    np.save(tmp_path / "d" / "s001.npy", bad)
    with pytest.raises(InputDataError, match=r"1 of 3 calibration samples hold NaN/Inf: s001.npy \(4 NaN, 1 Inf\)"):
        calib_set_for_model(model(tmp_path, str(tmp_path / "d")), size=3)


def test_double_normalization_on_chip(tmp_path):
    write_npy(tmp_path / "d", 3, lo=-1, hi=1)  # already normalized
    with pytest.raises(InputDataError, match="looks already normalized") as exc:
        calib_set_for_model(model(tmp_path, str(tmp_path / "d"), normalization="on_chip"), size=3)
    assert "normalized twice" in str(exc.value) and "s00" in str(exc.value)
    write_npy(tmp_path / "u", 3, lo=0, hi=1)  # [0, 1] is normalized too
    with pytest.raises(InputDataError, match="looks already normalized"):
        calib_set_for_model(model(tmp_path, str(tmp_path / "u"), normalization="on_chip"), size=3)


def test_on_chip_accepts_raw_pixels(tmp_path):
    write_npy(tmp_path / "d", 3, lo=0, hi=255)
    assert calib_set_for_model(model(tmp_path, str(tmp_path / "d"), normalization="on_chip"), size=3).count == 3


def test_raw_pixels_with_host_normalization(tmp_path):
    write_npy(tmp_path / "d", 3, lo=0, hi=255)
    with pytest.raises(InputDataError, match="looks like raw 0-255 pixels") as exc:
        calib_set_for_model(model(tmp_path, str(tmp_path / "d")), size=3)
    assert "[-1, 1]" in str(exc.value) and "on_chip" in str(exc.value)


def test_normalized_data_for_a_0_255_input(tmp_path):
    write_npy(tmp_path / "d", 3, lo=0, hi=1)
    with pytest.raises(InputDataError, match="looks normalized"):
        calib_set_for_model(model(tmp_path, str(tmp_path / "d"), rng=(0.0, 255.0)), size=3)


def test_out_of_declared_range(tmp_path):
    write_npy(tmp_path / "d", 3, lo=-0.2, hi=1.5)  # declared [0, 1]
    with pytest.raises(InputDataError, match="outside the expected range"):
        calib_set_for_model(model(tmp_path, str(tmp_path / "d"), rng=(0.0, 1.0)), size=3)


def test_on_chip_without_preprocess_is_a_manifest_error(tmp_path):
    write_npy(tmp_path / "d", 1, lo=0, hi=255)
    with pytest.raises(ManifestError, match="no preprocess"):
        calib_set_for_model(model(tmp_path, str(tmp_path / "d"), normalization="on_chip", pre=False), size=1)


@pytest.mark.parametrize("size", [0, -3, True])
def test_bad_size(tmp_path, size):
    write_npy(tmp_path / "d", 1)
    with pytest.raises(InputDataError, match="not a positive integer"):
        calib_set_for_model(model(tmp_path, str(tmp_path / "d")), size=size)


def test_unknown_input_name(tmp_path):
    write_npy(tmp_path / "d", 1)
    with pytest.raises(InputDataError, match="did you mean 'x'"):
        calib_set_for_model(model(tmp_path, str(tmp_path / "d")), size=1, input_name="xx")


def test_augmentation_uses_every_real_sample_round_robin(tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    rng = np.random.default_rng(0)
    np.save(d / "a.npy", rng.uniform(-0.9, -0.5, (1, C, H, W)).astype(np.float32))
    np.save(d / "b.npy", rng.uniform(0.5, 0.9, (1, C, H, W)).astype(np.float32))
    cs = calib_set_for_model(model(tmp_path, str(d), augment=True), size=10)
    signs = [int(np.sign(s.mean())) for s in cs.iter_samples()]
    assert signs == [-1, 1] * 5  # augmented j comes from real item j % 2


def test_grayscale_images_calibrate_a_one_channel_input(tmp_path):
    from hailo_qa.quant.calib import calib_set_from_files

    write_png(tmp_path / "img", 3)
    spec = InputSpec("g", (1, 1, 16, 16), range=(0.0, 1.0),
                     preprocess=Preprocess(mean=(0.0,), std=(255.0,), resize="letterbox"))
    cs = calib_set_from_files(sorted((tmp_path / "img").iterdir()), spec, size=3)
    x = next(cs.iter_samples())
    assert cs.shape == (1, 1, 16, 16) and x.shape == (1, 1, 16, 16) and 0.0 <= x.min() and x.max() <= 1.0
