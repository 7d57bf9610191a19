"""Model inputs from the manifest: real samples (images through the declared preprocessing), constants for host
inputs, and random feeds inside each input's declared range."""
from __future__ import annotations

import warnings
import zipfile
from pathlib import Path

import numpy as np

from hailo_qa.errors import InputDataError, InputFileError
from hailo_qa.manifest import InputSpec, ModelSpec

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
NPZ_SAMPLES = 4
"""Rows taken from an ``.npz`` sample file (its ``x`` array)."""


def _fit(arr: np.ndarray, spec: InputSpec, path: Path) -> np.ndarray:
    if arr.size != int(np.prod(spec.shape)):
        raise InputDataError(f"sample '{path}' has a row of shape {arr.shape}", note=f"expected {spec.shape}",
                             hint="store one sample per row of 'x'")
    return arr.reshape(spec.shape).astype(spec.np_dtype)


def read_image_rgb(path: str | Path) -> np.ndarray:
    """An image file as an (H, W, 3) uint8 RGB array."""
    from PIL import Image, UnidentifiedImageError

    p = Path(path)
    if not p.is_file():
        raise InputFileError(f"image '{p}' does not exist", note="expected an image file",
                             hint="check the path in the manifest's samples or the calibration source")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)  # > MAX_IMAGE_PIXELS: refuse, do not warn
            with Image.open(p) as im:
                return np.asarray(im.convert("RGB"))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise InputFileError(f"image '{p}' is too large to decode ({err})",
                             note=f"expected an image of at most {Image.MAX_IMAGE_PIXELS:,} pixels (a camera frame "
                                  "or a dataset image); this one looks like a decompression bomb",
                             hint="resize the image, or remove it from the samples / calibration source") from err
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as err:
        raise InputFileError(f"'{p}' could not be read as an image ({err})",
                             note=f"expected one of {', '.join(IMAGE_SUFFIXES)}",
                             hint="the file is corrupt or not an image") from err


def channels_of(spec: InputSpec) -> int:
    """Channels of a 4-D image input (NCHW or NHWC)."""
    return spec.shape[3] if spec.layout == "NHWC" else spec.shape[1]


def resize_image(rgb: np.ndarray, hw: tuple[int, int], *, mode: str = "stretch", pad: float = 114.0) -> np.ndarray:
    """(H, W, C) uint8 → (h, w, C): ``stretch`` resizes to h×w (bilinear); ``letterbox`` scales to fit keeping the
    aspect ratio and centres the result on a ``pad`` background."""
    from PIL import Image

    h, w = hw
    if rgb.shape[:2] == (h, w):
        return rgb
    if rgb.ndim == 3 and rgb.shape[2] == 1:  # PIL takes grayscale as (H, W)
        return resize_image(rgb[..., 0], hw, mode=mode, pad=pad)[..., None]
    if mode == "stretch":
        return np.asarray(Image.fromarray(rgb).resize((w, h), Image.BILINEAR))
    scale = min(h / rgb.shape[0], w / rgb.shape[1])
    nh, nw = max(1, round(rgb.shape[0] * scale)), max(1, round(rgb.shape[1] * scale))
    small = np.asarray(Image.fromarray(rgb).resize((nw, nh), Image.BILINEAR))
    out = np.full((h, w, *rgb.shape[2:]), pad, np.uint8)
    top, left = (h - nh) // 2, (w - nw) // 2
    out[top:top + nh, left:left + nw] = small
    return out


def preprocess_image(rgb: np.ndarray, spec: InputSpec) -> np.ndarray:
    """(H, W, 3) uint8 RGB → the input's full batch in its layout and dtype, per its ``preprocess``.

    Resizes to the input's H×W (``preprocess.resize``: stretch or letterbox), converts to grayscale for a
    1-channel input (ITU-R 601 luma), reorders channels, applies (x - mean) / std (0–255 units) and repeats the
    image over the input's batch (a sample file holds one image).
    """
    from PIL import Image

    pre = spec.preprocess
    if channels_of(spec) == 1:
        rgb = np.asarray(Image.fromarray(rgb).convert("L"))[..., None]
    img = resize_image(rgb if rgb.ndim == 3 else rgb[..., None], spec.hw,
                       mode=pre.resize if pre is not None else "stretch",
                       pad=pre.pad if pre is not None else 114.0)
    if img.ndim == 2:
        img = img[..., None]
    x = img.astype(np.float32)
    if pre is not None:
        if pre.color == "BGR" and x.shape[-1] == 3:
            x = x[..., ::-1]
        x = (x - np.asarray(pre.mean, np.float32)) / np.asarray(pre.std, np.float32)
    x = np.repeat(x[None], max(1, int(spec.shape[0])), axis=0)  # NHWC, the input's batch
    if spec.layout == "NCHW":
        x = x.transpose(0, 3, 1, 2)
    return np.ascontiguousarray(x.astype(spec.np_dtype))


def host_feeds(model: ModelSpec) -> dict[str, np.ndarray]:
    """Constant feeds of the model's host-only inputs."""
    return {i.name: i.constant() for i in model.host_inputs}


def sample_feeds(model: ModelSpec, *, npz_rows: int = NPZ_SAMPLES) -> list[tuple[str, dict[str, np.ndarray]]]:
    """Real inputs: one (sample-name, feeds) per registered sample. Image samples go through preprocessing;
    ``.npy`` samples are used as they are (after a shape check); an ``.npz`` sample gives its first ``npz_rows``
    rows (default :data:`NPZ_SAMPLES`)."""
    out = []
    dev = model.device_inputs
    for path in model.samples:
        feeds = host_feeds(model)
        if path.suffix.lower() == ".npz":  # a labelled set: the first rows of its "x" array
            xs = _load_array(path, model.name, key="x")[:npz_rows]
            spec = dev[0]
            for k, x in enumerate(xs):
                out.append((f"{path.stem}[{k}]", {**feeds, spec.name: _fit(np.asarray(x), spec, path)}))
            continue
        if path.suffix.lower() == ".npy":
            arr = _load_array(path, model.name)
            spec = dev[0]
            if arr.shape != spec.shape:
                raise InputDataError(f"sample '{path}' has shape {arr.shape}", note=f"expected {spec.shape}",
                                     context=model.name)
            feeds[spec.name] = arr.astype(spec.np_dtype)
        else:
            rgb = read_image_rgb(path)
            for spec in dev:
                feeds[spec.name] = preprocess_image(rgb, spec)
        out.append((path.stem, feeds))
    return out


def _load_array(path: Path, model: str, key: str | None = None) -> np.ndarray:
    """An ``.npy`` sample, or the ``key`` array of an ``.npz`` sample; unreadable files are InputFileError."""
    kind = "npz" if key else "npy"
    try:
        if key is None:
            return np.load(path, allow_pickle=False)
        with np.load(path, allow_pickle=False) as z:
            if key not in z.files:
                raise InputDataError(f"sample '{path}' has no '{key}' array (it holds {sorted(z.files) or 'none'})",
                                     note=f"expected np.savez(path, {key}=rows) with one sample per row",
                                     hint=f"re-save it with the rows under '{key}'", context=model)
            return z[key]
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise InputFileError(f"sample '{path}' is not a readable .{kind} file ({err})",
                             note=f"expected an array saved by np.{'savez' if key else 'save'}",
                             hint="re-save the file; it may be truncated or of another format", context=model) from err


def random_feeds(model: ModelSpec, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Uniform random feeds inside each device input's declared range; constants for host inputs."""
    feeds = host_feeds(model)
    for spec in model.device_inputs:
        lo, hi = spec.range or (0.0, 1.0)
        feeds[spec.name] = rng.uniform(lo, hi, size=spec.shape).astype(spec.np_dtype)
    return feeds
