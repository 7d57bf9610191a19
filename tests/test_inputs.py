"""Model inputs from samples (hailo_qa.inputs): 1-channel (grayscale) inputs, any batch, NHWC/NCHW as declared, and
stretch vs letterbox resizing as the manifest says."""
from __future__ import annotations

import numpy as np
import pytest

from hailo_qa.errors import ManifestError
from hailo_qa.inputs import preprocess_image, resize_image
from hailo_qa.manifest import InputSpec, Preprocess, load_manifest

RGB = np.zeros((40, 80, 3), np.uint8)
RGB[:, :40] = (255, 0, 0)  # left half red, right half black


@pytest.mark.parametrize("layout,shape", [("NCHW", (2, 1, 16, 16)), ("NHWC", (3, 16, 16, 1))])
def test_grayscale_any_batch_and_layout(layout, shape):
    spec = InputSpec("x", shape, layout=layout, preprocess=Preprocess(mean=(0.0,), std=(255.0,)))
    x = preprocess_image(RGB, spec)
    assert x.shape == shape and x.dtype == np.float32
    chw = x if layout == "NCHW" else x.transpose(0, 3, 1, 2)
    np.testing.assert_array_equal(chw[0], chw[-1])  # one image repeated over the batch
    assert chw[0, 0, 8, 2] == pytest.approx(76 / 255, abs=1 / 255)  # red → luma 0.299·255
    assert chw[0, 0, 8, 14] == 0.0


def test_letterbox_keeps_the_aspect_ratio_and_pads():
    out = resize_image(RGB, (32, 32), mode="letterbox", pad=114)
    assert out.shape == (32, 32, 3)
    assert (out[:8] == 114).all() and (out[-8:] == 114).all()  # 80×40 scaled to 32×16, centred
    assert tuple(out[16, 4]) == (255, 0, 0) and tuple(out[16, 28]) == (0, 0, 0)
    st = resize_image(RGB, (32, 32), mode="stretch")
    assert tuple(st[0, 4]) == (255, 0, 0)  # stretched: no padding rows


def test_manifest_resize_mode_reaches_preprocessing(tmp_path):
    (tmp_path / "m.onnx").write_bytes(b"x")
    (tmp_path / "models.toml").write_text(
        '[models.g]\nfile = "m.onnx"\n[[models.g.inputs]]\nname = "x"\nshape = [1, 1, 32, 32]\n'
        'preprocess = { mean = [0.0], std = [1.0], resize = "letterbox", pad = 0 }\n')
    spec = load_manifest(tmp_path / "models.toml").get("g").inputs[0]
    assert spec.preprocess.resize == "letterbox" and spec.preprocess.mean == (0.0,)
    x = preprocess_image(RGB, spec)
    assert x.shape == (1, 1, 32, 32) and (x[0, 0, :8] == 0).all() and x[0, 0, 16, 4] > 0
    (tmp_path / "models.toml").write_text(
        '[models.g]\nfile = "m.onnx"\n[[models.g.inputs]]\nname = "x"\nshape = [1, 1, 32, 32]\n'
        'preprocess = { resize = "crop" }\n')
    with pytest.raises(ManifestError, match="resize"):
        load_manifest(tmp_path / "models.toml")
