"""Calibration sets: real data (``.npy`` folders, image folders/globs, ``.npz``, the manifest's ``samples``),
seeded sampling, opt-in seeded augmentation, validation, and streaming.

Honesty. A set never silently invents samples: it records the size *requested*, the *real* samples found and the
*augmented* ones separately (:class:`CalibSummary`, ``hailo-qa calib``). Augmentation happens only when the manifest
opts in (``[calibration] augment = true``) or the caller asks; otherwise a source with fewer real samples than
requested gives a smaller set that says so (``shortfall``). ``max_samples`` caps the real samples only when set.
The Dataflow Compiler's level-drop preflight (fewer than 1024 samples → optimization level ≤ 1) counts real
samples only (:attr:`CalibSet.real`).

A :class:`CalibSet` never holds its samples in memory. It holds a short list of *real* items (a file, an ``.npz``
key, an index into a stacked array) and a count of *augmented* samples, each of which is rebuilt on demand from
``(seed, index)``. ``iter_samples()`` streams one ``(1, C, H, W)`` float32 sample at a time, so memory stays flat
whether the set has 1k or 8k samples (see ``benchmarks/test_bench_calib.py``).

Value domain. With ``quantization.normalization = "host"`` (the default) samples are what the ONNX model consumes:
images go through the input's full ``preprocess`` (resize, channel order, ``(x - mean) / std``). With
``"on_chip"`` the generated model script adds a ``normalization`` layer, so the DFC must get raw 0–255 pixels:
images are resized and reordered only. ``iter_samples(as_onnx_input=True)`` applies the mean/std on the host so an
on-chip set can also feed the float ONNX model.

Sampling. Real items are listed in a canonical order (sorted paths, then ``.npz`` keys, then indices), so the
result never depends on filesystem order. A seeded permutation of that list is cut to
``min(size, calibration.max_samples)`` (no cap unless set): the same seed gives the same subset, and with one seed the subset for a
smaller size is contained in the subset for a larger one. The chosen items keep the canonical order.

Augmentation (opt-in, documented, seeded). When ``size`` exceeds the real items and augmentation is on, the remaining
samples are augmented copies
of the real ones, round-robin over the real items. Augmented sample ``j`` draws, from
``numpy.random.default_rng([seed, 0xCA1B, j])``: a crop keeping a random 75–100 % of each side at a random offset,
a horizontal flip with probability 0.5, and a brightness factor in [0.8, 1.2]. Images are augmented as 0–255
pixels before the resize/preprocessing (brightness clipped to 0–255). Tensor sources are cropped and resized back
(bilinear, OpenCV) in H×W×C, flipped, and brightness scales the distance to the sample's minimum, clipped to the
sample's own [min, max] so no augmented value leaves the real data's range. ``summary()`` reports real vs augmented.
"""
from __future__ import annotations

import contextlib
import dataclasses
import glob as _glob
import hashlib
import os
import zipfile
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from hailo_qa.errors import InputDataError, InputFileError, ManifestError, did_you_mean
from hailo_qa.inputs import IMAGE_SUFFIXES, preprocess_image, read_image_rgb
from hailo_qa.manifest import InputSpec, ModelSpec, Preprocess, resolve_path

TENSOR_SUFFIXES = (".npy", ".npz")
AUG_CROP = (0.75, 1.0)
"""Fraction of each side an augmentation crop keeps."""
AUG_BRIGHTNESS = (0.8, 1.2)
"""Brightness factor range of an augmentation."""
AUG_FLIP_P = 0.5
"""Probability of a horizontal flip."""
_AUG_SALT = 0xCA1B
_CACHE_BYTES = 64 * 1024 * 1024  # decoded sources kept while streaming augmented samples (bounded: memory stays flat)


# --------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Item:
    """One real sample: where it is and how to read it (never the data itself, except for in-memory arrays).

    Kept small (slots, the path as a string): a set of 8192 files holds 8192 of these, and their size is all that
    grows with the set (``benchmarks/test_bench_calib.py``)."""

    kind: str  # "npy" | "npz" | "image" | "array"
    label: str  # for messages: "a.npy", "b.npz[x][3]"
    path: str | None = None
    key: str = ""
    index: int | None = None  # index along the first axis of a stacked (N, ...) array
    layout: str = "CHW"  # how a tensor sample is stored: "CHW" or "HWC"
    array: np.ndarray | None = field(default=None, compare=False, repr=False)

    def sort_key(self) -> tuple:
        return (self.path or "", self.key, -1 if self.index is None else self.index, self.label)


@dataclass(frozen=True)
class CalibSummary:
    """Statistics of a calibration set, computed in one streaming pass (per-channel Welford/Chan merge)."""

    model: str
    input_name: str
    count: int
    real: int
    augmented: int
    shape: tuple[int, ...]
    source: str
    seed: int
    normalization: str
    channel_min: tuple[float, ...]
    channel_max: tuple[float, ...]
    channel_mean: tuple[float, ...]
    channel_std: tuple[float, ...]
    sha256: str
    requested: int = 0
    real_available: int = 0
    resize: str | None = None

    @property
    def shortfall(self) -> int:
        """Samples requested but neither found nor (with augmentation off) invented."""
        return max(0, self.requested - self.count)

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "shortfall": self.shortfall}

    def __str__(self) -> str:
        domain = ("raw 0-255 data; the model script normalizes" if self.normalization == "on_chip"
                  else "data arrives normalized")

        def fmt(v: Sequence[float]) -> str:
            return "[" + ", ".join(f"{x:.4g}" for x in v) + "]"

        return "\n".join([
            f"calibration set for {self.model} input '{self.input_name}'",
            f"  samples      {self.count} ({self.real} real, {self.augmented} augmented)",
            f"  requested    {self.requested}; real found {self.real_available}"
            + (f"; {self.shortfall} short: fewer real samples than requested and augmentation is off"
               if self.shortfall else ""),
            f"  shape        {tuple(self.shape)} float32 NCHW per sample",
            f"  source       {self.source}"
            + (f" (images resized: {self.resize})" if self.resize else ""),
            f"  seed         {self.seed}",
            f"  normalize    {self.normalization} ({domain})",
            f"  min/ch       {fmt(self.channel_min)}",
            f"  max/ch       {fmt(self.channel_max)}",
            f"  mean/ch      {fmt(self.channel_mean)}",
            f"  std/ch       {fmt(self.channel_std)}",
            f"  sha256       {self.sha256}",
        ])


@dataclass(frozen=True)
class CalibSet:
    """A streamed calibration set for one model input.

    Attributes:
        model: the model's name (for messages).
        input_name: the ONNX input this set calibrates.
        shape: one sample, NCHW with batch 1, e.g. ``(1, 3, 112, 112)``.
        items: the real items, in canonical order.
        augmented: how many augmented samples follow the real ones.
        seed: the sampling/augmentation seed.
        normalization: ``host`` (samples are normalized) or ``on_chip`` (raw 0–255 samples).
        source: a description of where the data came from.
        input_spec: the input as NCHW, with the preprocessing images go through for this set.
        onnx_mean, onnx_std: per-channel mean/std that turn an ``on_chip`` sample into the ONNX input.
        expected_range: the value range the data must lie in (None: not checked).
    """

    model: str
    input_name: str
    shape: tuple[int, int, int, int]
    items: tuple[_Item, ...]
    augmented: int
    seed: int
    normalization: str
    source: str
    input_spec: InputSpec = field(repr=False)
    onnx_mean: tuple[float, ...] = (0.0, 0.0, 0.0)
    onnx_std: tuple[float, ...] = (1.0, 1.0, 1.0)
    expected_range: tuple[float, float] | None = None
    declared_range: tuple[float, float] | None = None
    requested: int = 0
    real_available: int = 0

    # ---- size ------------------------------------------------------------------------------------------------
    @property
    def count(self) -> int:
        """Number of samples (real + augmented)."""
        return len(self.items) + self.augmented

    @property
    def real(self) -> int:
        """Real samples in the set (what the DFC's ≥1024-samples check must count)."""
        return len(self.items)

    @property
    def shortfall(self) -> int:
        """Samples requested but not in the set (fewer real samples than requested, augmentation off)."""
        return max(0, self.requested - self.count)

    def __len__(self) -> int:
        return self.count

    @property
    def resize(self) -> str | None:
        """How image files were resized into this set (``stretch`` / ``letterbox``); None without image files."""
        if not any(it.kind == "image" for it in self.items):
            return None
        pre = self.input_spec.preprocess
        return pre.resize if pre is not None else "stretch"

    # ---- streaming -------------------------------------------------------------------------------------------
    def iter_samples(self, *, as_onnx_input: bool = False) -> Iterator[np.ndarray]:
        """Stream every sample as a fresh ``(1, C, H, W)`` float32 array: real items first, then augmented ones.

        Args:
            as_onnx_input: for an ``on_chip`` set, apply ``(x - mean) / std`` so the sample fits the float ONNX
                model. No effect on a ``host`` set. Defaults to False (the data the DFC calibrates on).
        """
        post = None
        if as_onnx_input and self.normalization == "on_chip":
            m = np.asarray(self.onnx_mean, np.float32).reshape(1, -1, 1, 1)
            s = np.asarray(self.onnx_std, np.float32).reshape(1, -1, 1, 1)
            post = (m, s)
        with _Stream() as stream:
            for i in range(self.count):
                x = self._sample(i, stream)
                yield x if post is None else ((x - post[0]) / post[1]).astype(np.float32)

    def __iter__(self) -> Iterator[np.ndarray]:
        return self.iter_samples()

    def iter_batches(self, n: int, *, as_onnx_input: bool = False) -> Iterator[np.ndarray]:
        """Stream ``(b, C, H, W)`` float32 batches with ``b <= n`` (the last batch may be short).

        Args:
            n: batch size, >= 1.
            as_onnx_input: see :meth:`iter_samples`. Defaults to False.
        """
        if n < 1:
            raise InputDataError(f"batch size {n} is not positive", note="expected n >= 1", context=self.model)
        buf: list[np.ndarray] = []
        for x in self.iter_samples(as_onnx_input=as_onnx_input):
            buf.append(x)
            if len(buf) == n:
                yield np.concatenate(buf)
                buf = []
        if buf:
            yield np.concatenate(buf)

    def as_nhwc(self) -> "NhwcView":
        """A streaming NHWC view for the Dataflow Compiler (per-sample ``(H, W, C)`` float32)."""
        return NhwcView(self)

    def sample(self, i: int) -> np.ndarray:
        """Sample ``i`` (``(1, C, H, W)`` float32), rebuilt deterministically."""
        if not 0 <= i < self.count:
            raise IndexError(i)
        with _Stream() as stream:
            return self._sample(i, stream)

    def _sample(self, i: int, stream: "_Stream") -> np.ndarray:
        if i < len(self.items):
            return _load_real(self.items[i], self, stream)
        j = i - len(self.items)
        return _augment(self, j, stream)

    # ---- content ---------------------------------------------------------------------------------------------
    @cached_property
    def _stats(self) -> CalibSummary:
        c = self.shape[1]
        n = np.zeros(c)
        mean = np.zeros(c)
        m2 = np.zeros(c)
        lo = np.full(c, np.inf)
        hi = np.full(c, -np.inf)
        h = hashlib.sha256()
        h.update(repr(("float32", self.shape)).encode())
        for x in self.iter_samples():
            h.update(np.ascontiguousarray(x, dtype="<f4").tobytes())
            v = x.reshape(c, -1)
            nb = v.shape[1]
            mb = v.mean(axis=1, dtype=np.float64)
            m2b = v.var(axis=1, dtype=np.float64) * nb
            delta = mb - mean
            tot = n + nb
            mean = mean + delta * nb / tot
            m2 = m2 + m2b + delta ** 2 * n * nb / tot
            n = tot
            lo = np.minimum(lo, v.min(axis=1))
            hi = np.maximum(hi, v.max(axis=1))
        std = np.sqrt(m2 / np.maximum(n, 1))
        return CalibSummary(
            model=self.model, input_name=self.input_name, count=self.count, real=self.real,
            augmented=self.augmented, shape=tuple(self.shape), source=self.source, seed=self.seed,
            normalization=self.normalization, channel_min=tuple(map(float, lo)), channel_max=tuple(map(float, hi)),
            channel_mean=tuple(map(float, mean)), channel_std=tuple(map(float, std)), sha256=h.hexdigest(),
            requested=self.requested or self.count, real_available=self.real_available or self.real,
            resize=self.resize)

    @property
    def sha256(self) -> str:
        """sha256 of the content (shape header + every sample's float32 bytes), computed streaming, cached."""
        return self._stats.sha256

    def summary(self) -> CalibSummary:
        """Count, shape, per-channel min/max/mean/std and real vs augmented counts (one streaming pass, cached)."""
        return self._stats


@dataclass(frozen=True)
class NhwcView:
    """NHWC streaming view of a :class:`CalibSet` (what ``ClientRunner.optimize`` calibrates on).

    Iterating yields ``(1, H, W, C)`` float32 arrays (batch 1, like :meth:`CalibSet.iter_samples`, so
    ``np.concatenate(list(view))`` is ``(N, H, W, C)``); :meth:`iter_hwc` yields ``(H, W, C)`` (the element spec
    of a ``tf.data`` generator); :meth:`iter_batches` yields ``(b, H, W, C)``; :meth:`to_array` materialises
    ``(N, H, W, C)`` for the ``np_array`` calibration form (memory: N × H × W × C × 4 bytes).
    """

    calib: CalibSet

    @property
    def shape(self) -> tuple[int, int, int]:
        """One sample, without batch: ``(H, W, C)`` (the DFC's per-sample shape)."""
        _, c, h, w = self.calib.shape
        return (h, w, c)

    @property
    def count(self) -> int:
        return self.calib.count

    def __len__(self) -> int:
        return self.calib.count

    def __iter__(self) -> Iterator[np.ndarray]:
        for x in self.calib.iter_samples():
            yield np.ascontiguousarray(x.transpose(0, 2, 3, 1))

    def iter_hwc(self) -> Iterator[np.ndarray]:
        for x in self.calib.iter_samples():
            yield np.ascontiguousarray(x[0].transpose(1, 2, 0))

    def iter_batches(self, n: int) -> Iterator[np.ndarray]:
        for b in self.calib.iter_batches(n):
            yield np.ascontiguousarray(b.transpose(0, 2, 3, 1))

    def to_array(self) -> np.ndarray:
        out = np.empty((self.count, *self.shape), np.float32)
        for i, x in enumerate(self.iter_hwc()):
            out[i] = x
        return out


# --------------------------------------------------------------------------------------------------------------
# building
def calib_set_for_model(spec: ModelSpec, *, size: int, seed: int | None = None, source: str | Path | None = None,
                        input_name: str | None = None, augment: bool | None = None,
                        validate: bool = True) -> CalibSet:
    """The calibration set of ``spec``'s device input, as its manifest ``[calibration]`` table describes.

    Args:
        spec: the model.
        size: number of samples requested (real first; seeded augmentation only when ``augment``).
        seed: sampling/augmentation seed. Defaults to ``calibration.seed``.
        source: override ``calibration.source`` (a ``.npy`` folder, image folder, glob, ``.npz``, ``samples``, or
            ``random``: seeded uniform data in the input's declared ``range``, like the DFC's
            ``--use-random-calib-set``; relative paths resolve against the current directory). Defaults to the
            manifest's.
        input_name: which device input. Defaults to the first device input.
        augment: fill a shortfall with seeded augmentation. Defaults to the manifest's ``calibration.augment``
            (off unless opted in); without it the set holds the real samples only and reports the shortfall.
        validate: run :func:`validate_calib` on the real samples (NaN/Inf, range vs normalization).
            Defaults to True.

    Raises:
        InputDataError: empty source, wrong/mixed shapes, wrong dtype, NaN/Inf, values out of range.
        InputFileError: a missing or unreadable source.
    """
    ctx = f"{spec.name} | calib"
    dev = spec.device_inputs
    if not dev:
        raise ManifestError(f"model '{spec.name}' has no device input to calibrate",
                            note="expected at least one input with role = \"device\"", context=ctx)
    if input_name is None:
        inp = dev[0]
    else:
        names = [i.name for i in dev]
        if input_name not in names:
            raise InputDataError(f"'{input_name}' is not a device input of {spec.name}", note=f"device inputs: {names}",
                                 hint=did_you_mean(input_name, names) or "", context=ctx)
        inp = spec.input(input_name)
    cal = spec.calibration
    base = spec.manifest_path.parent if spec.manifest_path else Path.cwd()
    if source is not None:
        src, base = str(source), Path.cwd()
    else:
        src = cal.source
    if src == "random":  # the DFC's --use-random-calib-set: uniform in the input's declared range
        lo, hi = inp.range or (0.0, 1.0)
        sd = cal.seed if seed is None else seed
        n = min(size, cal.max_samples) if cal.max_samples else size
        arrays = np.random.default_rng([sd, 0x5EED]).uniform(lo, hi, (n, *inp.shape[1:])).astype(np.float32)
        cs = calib_set_from_arrays(arrays, inp, size=size, seed=sd, normalization=spec.quantization.normalization,
                                   model=spec.name, augment=augment, validate=validate)
        return dataclasses.replace(cs, source=f"random (uniform in [{lo:g}, {hi:g}], seed {sd})")
    if src == "samples":
        files = list(spec.samples)
        if not files:
            raise InputDataError("the calibration source is the manifest's samples, but there are none",
                                 note="expected samples = [...] in the manifest (or present shared files), or a "
                                      "[calibration] source", hint="set [models.<name>.calibration] source = "
                                      "\"<npy folder | image folder | glob | file.npz>\", or pass --source",
                                 context=ctx)
        desc = "manifest samples"
    else:
        files = _resolve_source(src, base, ctx)
        desc = src
    return calib_set_from_files(files, inp, size=size, seed=cal.seed if seed is None else seed,
                                max_samples=cal.max_samples, normalization=spec.quantization.normalization,
                                model=spec.name, source=desc,
                                augment=cal.augment if augment is None else augment, validate=validate)


def calib_set_from_files(files: Sequence[Path | str], inp: InputSpec, *, size: int, seed: int = 0,
                         max_samples: int | None = None, normalization: str = "host", model: str = "",
                         source: str = "", augment: bool = False, validate: bool = True) -> CalibSet:
    """A calibration set from ``.npy`` / ``.npz`` / image files (see the module docstring for every rule).

    Args:
        files: the source files (any order).
        inp: the model input being calibrated.
        size: number of samples.
        seed: sampling/augmentation seed. Defaults to 0.
        max_samples: cap on the real samples drawn. Defaults to no cap.
        normalization: ``host`` or ``on_chip``. Defaults to ``host``.
        model: the model's name, for messages. Defaults to none.
        source: a description of the source. Defaults to the file count.
        augment: fill a shortfall with seeded augmentation. Defaults to False (the set reports the shortfall).
        validate: run :func:`validate_calib`. Defaults to True.
    """
    ctx = f"{model} | calib" if model else "calib"
    nchw = _nchw_spec(inp, normalization, ctx)
    items = _scan(files, nchw, ctx)
    return _build(items, inp, nchw, size=size, seed=seed, max_samples=max_samples, normalization=normalization,
                  model=model, source=source or f"{len(files)} files", augment=augment, validate=validate, ctx=ctx)


def calib_set_from_arrays(arrays: np.ndarray | Sequence[np.ndarray], inp: InputSpec, *, size: int | None = None,
                          seed: int = 0, normalization: str = "host", model: str = "", augment: bool = False,
                          validate: bool = True) -> CalibSet:
    """A calibration set from in-memory samples (tests, notebooks): a stacked ``(N, C, H, W)`` / ``(N, H, W, C)``
    array or a sequence of per-sample arrays. The arrays are held by reference, not copied.

    Args:
        arrays: the samples.
        inp: the model input being calibrated.
        size: number of samples. Defaults to the number of arrays.
        seed, normalization, model, augment, validate: as in :func:`calib_set_from_files`.
    """
    ctx = f"{model} | calib" if model else "calib"
    nchw = _nchw_spec(inp, normalization, ctx)
    _, c, h, w = nchw.shape
    seq = [arrays[i] for i in range(arrays.shape[0])] if isinstance(arrays, np.ndarray) and arrays.ndim == 4 \
        and arrays.shape[0] != 1 else (list(arrays) if not isinstance(arrays, np.ndarray) else [arrays])
    items, bad_shape, bad_dtype = [], [], []
    for i, a in enumerate(seq):
        a = np.asarray(a)
        label = f"array[{i}]"
        layout = _layout_of(a.shape, c, h, w)
        if layout is None or layout == "ambiguous":
            bad_shape.append((label, a.shape, layout))
            continue
        if a.dtype != np.float32:
            bad_dtype.append((label, a.dtype))
        items.append(_Item("array", label, layout=layout, array=a))
    _raise_shape_dtype(bad_shape, bad_dtype, len(seq), nchw, ctx)
    return _build(items, inp, nchw, size=len(items) if size is None else size, seed=seed, max_samples=None,
                  normalization=normalization, model=model, source=f"{len(items)} in-memory arrays",
                  augment=augment, validate=validate, ctx=ctx)


def _nchw_spec(inp: InputSpec, normalization: str, ctx: str) -> InputSpec:
    if normalization not in ("host", "on_chip"):
        raise ManifestError(f"normalization {normalization!r} is unknown", note="expected 'host' or 'on_chip'",
                            context=ctx)
    if len(inp.shape) != 4 or inp.layout not in ("NCHW", "NHWC"):
        raise InputDataError(f"input '{inp.name}' has shape {inp.shape} / layout {inp.layout}",
                             note="calibration sets are built for 4-D image-like inputs (NCHW or NHWC)",
                             hint="declare shape = [1, C, H, W] with layout = \"NCHW\" (or NHWC)", context=ctx)
    if inp.layout == "NHWC":
        n, h, w, c = inp.shape
    else:
        n, c, h, w = inp.shape
    pre = inp.preprocess
    if normalization == "on_chip":
        if pre is None:
            raise ManifestError(f"input '{inp.name}' has normalization = \"on_chip\" but no preprocess mean/std",
                                note="the on-chip normalization layer takes its mean/std from the input's preprocess",
                                hint="add preprocess = { color = ..., mean = [...], std = [...] } (0-255 units)",
                                context=ctx)
        n = len(pre.mean)  # resize + channel order only: the chip applies mean/std
        pre = Preprocess(color=pre.color, mean=(0.0,) * n, std=(1.0,) * n, resize=pre.resize, pad=pre.pad)
    return dataclasses.replace(inp, shape=(1, c, h, w), layout="NCHW", dtype="float32", preprocess=pre)


def _usable(path: str) -> bool:
    return os.path.splitext(path)[1].lower() in TENSOR_SUFFIXES + IMAGE_SUFFIXES


def _resolve_source(src: str, base: Path, ctx: str) -> list[Path | str]:
    p = resolve_path(src, base)
    if any(ch in src for ch in "*?["):
        hits = _glob.glob(str(p), recursive=True)
        files = [h for h in hits if _usable(h) and os.path.isfile(h)]
        if not files:
            raise InputDataError(f"calibration source '{src}' matches no .npy/.npz/image file",
                                 note=f"the glob {p} matched {len(hits)} paths, none usable",
                                 hint="check the pattern; supported: " + ", ".join(TENSOR_SUFFIXES + IMAGE_SUFFIXES),
                                 context=ctx)
        return files
    if p.is_dir():
        with os.scandir(p) as it:  # path strings, not Path objects: a folder may hold thousands of samples
            entries = [e.path for e in it if e.is_file()]
        files = [q for q in entries if _usable(q)]
        if not files:
            raise InputDataError(f"calibration source '{src}' ({p}) holds no .npy/.npz/image file",
                                 note=f"the folder has {len(entries)} files; supported: "
                                      + ", ".join(TENSOR_SUFFIXES + IMAGE_SUFFIXES),
                                 hint="point the source at a folder of samples", context=ctx)
        return files
    if p.is_file():
        if p.suffix.lower() not in TENSOR_SUFFIXES + IMAGE_SUFFIXES:
            raise InputFileError(f"calibration source '{src}' is a {p.suffix or 'suffix-less'} file",
                                 note="expected a .npy folder, an image folder or glob, or an .npz file",
                                 context=ctx)
        return [p]
    raise InputFileError(f"calibration source '{src}' does not exist", note=f"looked for {p}",
                         hint="relative manifest paths resolve against the manifest's folder; 'shared:x' resolves "
                              "under HAILO_QA_SHARED", context=ctx)


def _layout_of(shape: tuple[int, ...], c: int, h: int, w: int) -> str | None:
    """How a sample array is laid out: "CHW", "HWC", "ambiguous" or None (does not fit)."""
    s = tuple(shape[1:]) if len(shape) == 4 and shape[0] == 1 else tuple(shape)
    if len(s) != 3:
        return None
    chw, hwc = s == (c, h, w), s == (h, w, c)
    if chw and hwc:
        return "ambiguous"
    return "CHW" if chw else ("HWC" if hwc else None)


def _stacked_layout(shape: tuple[int, ...], c: int, h: int, w: int) -> str | None:
    """Layout of a stacked (N, ...) array, N > 1."""
    return _layout_of(shape[1:], c, h, w) if len(shape) == 4 else None


def _scan(files: Sequence[Path | str], nchw: InputSpec, ctx: str) -> list[_Item]:
    """List the real items of ``files`` from headers only (no sample data is read for .npy)."""
    _, c, h, w = nchw.shape
    items: list[_Item] = []
    bad_shape: list[tuple[str, tuple, str | None]] = []
    bad_dtype: list[tuple[str, np.dtype]] = []
    for name in sorted({str(Path(x)) for x in files}):
        suf = os.path.splitext(name)[1].lower()
        if suf in IMAGE_SUFFIXES:
            if c not in (1, 3):
                raise InputDataError(f"image '{os.path.basename(name)}' cannot calibrate input '{nchw.name}' with {c} channels",
                                     note="image sources give 3 channels (RGB) or 1 (grayscale)",
                                     hint="use .npy samples", context=ctx)
            items.append(_Item("image", os.path.basename(name), path=name))
            continue
        f = Path(name)
        if suf == ".npy":
            arrays = [("", _npy_header(f, ctx))]
        elif suf == ".npz":
            arrays = _npz_headers(f, ctx)
            if any(k == "x" for k, _ in arrays):  # a labelled set (x = samples, y = labels...): the samples only
                arrays = [a for a in arrays if a[0] == "x"]
        else:
            raise InputFileError(f"'{f}' is neither a .npy/.npz nor an image", note="expected "
                                 + ", ".join(TENSOR_SUFFIXES + IMAGE_SUFFIXES), context=ctx)
        kind = suf[1:]
        for key, (shape, dtype) in arrays:
            label = f.name + (f"[{key}]" if key else "")
            stacked = len(shape) == 4 and shape[0] > 1
            layout = _stacked_layout(shape, c, h, w) if stacked else _layout_of(shape, c, h, w)
            if layout is None or layout == "ambiguous":
                bad_shape.append((label, shape, layout))
                continue
            if dtype != np.float32:
                bad_dtype.append((label, dtype))
                continue
            if stacked:
                items.extend(_Item(kind, f"{label}[{k}]", path=name, key=key, index=k, layout=layout)
                             for k in range(shape[0]))
            else:
                items.append(_Item(kind, label, path=name, key=key, layout=layout))
    _raise_shape_dtype(bad_shape, bad_dtype, len(files), nchw, ctx)
    return items


def _raise_shape_dtype(bad_shape, bad_dtype, n_files: int, nchw: InputSpec, ctx: str) -> None:
    _, c, h, w = nchw.shape
    if bad_shape:
        amb = [b for b in bad_shape if b[2] == "ambiguous"]
        shapes: dict[tuple, int] = {}
        for _, s, _ in bad_shape:
            shapes[tuple(s)] = shapes.get(tuple(s), 0) + 1
        listing = ", ".join(f"{lbl} {tuple(s)}" for lbl, s, _ in bad_shape[:4]) + (
            f" (+{len(bad_shape) - 4} more)" if len(bad_shape) > 4 else "")
        kinds = "; ".join(f"{cnt}× {s}" for s, cnt in shapes.items())
        what = (f"{len(bad_shape)} calibration sample(s) are ambiguous: {listing}" if len(amb) == len(bad_shape)
                else f"{len(bad_shape)} of {n_files} calibration source(s) have a shape that does not fit input "
                     f"'{nchw.name}' (C,H,W = {c},{h},{w}): {listing} [shapes: {kinds}]")
        raise InputDataError(what, note=f"expected one sample per array as (1, {c}, {h}, {w}), ({c}, {h}, {w}) or "
                             f"({h}, {w}, {c}) (unambiguous), or a stack (N, {c}, {h}, {w}); every file the same",
                             hint="re-export the samples at the input's size (the manifest's input shape), or "
                                  "remove the odd files from the source", context=ctx)
    if bad_dtype:
        listing = ", ".join(f"{lbl} ({dt})" for lbl, dt in bad_dtype[:4]) + (
            f" (+{len(bad_dtype) - 4} more)" if len(bad_dtype) > 4 else "")
        raise InputDataError(f"{len(bad_dtype)} calibration sample(s) have the wrong dtype: {listing}",
                             note="expected float32", hint="save them with np.save(path, x.astype(np.float32))",
                             context=ctx)


def _npy_header(f: Path, ctx: str) -> tuple[tuple[int, ...], np.dtype]:
    try:
        a = np.load(f, mmap_mode="r")  # reads the header and maps the data lazily; nothing is copied
        return tuple(a.shape), a.dtype
    except (OSError, ValueError, EOFError) as err:
        raise InputFileError(f"'{f}' is not a readable .npy file ({err})", note="expected an array saved by np.save",
                             hint="re-save the file; it may be truncated or of another format", context=ctx) from err


def _npz_headers(f: Path, ctx: str) -> list[tuple[str, tuple[tuple[int, ...], np.dtype]]]:
    out = []
    try:
        with zipfile.ZipFile(f) as zf:
            for name in sorted(zf.namelist()):
                if not name.endswith(".npy"):
                    continue
                with zf.open(name) as fh:
                    out.append((name[:-4], _member_header(fh)))
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        raise InputFileError(f"'{f}' is not a readable .npz file ({err})", note="expected np.savez output",
                             hint="re-save the file", context=ctx) from err
    if not out:
        raise InputDataError(f"'{f.name}' holds no arrays", note="expected np.savez(path, x=...)", context=ctx)
    return out


def _member_header(fh) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of one .npz member from its .npy header (the data is not read)."""
    fmt = np.lib.format
    version = fmt.read_magic(fh)
    reader = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
    shape, _, dtype = reader(fh)
    return tuple(shape), np.dtype(dtype)


def _build(items: list[_Item], inp: InputSpec, nchw: InputSpec, *, size: int, seed: int, max_samples: int | None,
           normalization: str, model: str, source: str, augment: bool, validate: bool, ctx: str) -> CalibSet:
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise InputDataError(f"calibration size {size!r} is not a positive integer", note="expected e.g. 64",
                             context=ctx)
    if not items:
        raise InputDataError(f"calibration source '{source}' is empty", note="expected at least one sample",
                             hint="add .npy samples or images to the source", context=ctx)
    items = sorted(items, key=_Item.sort_key)
    take = min(size, len(items), max_samples if max_samples else len(items))
    perm = np.random.default_rng(seed).permutation(len(items))
    chosen = tuple(items[k] for k in sorted(perm[:take].tolist()))
    extra = size - take if augment else 0  # never invented unless asked for
    pre = inp.preprocess or Preprocess()
    if normalization == "on_chip":
        expected: tuple[float, float] | None = (0.0, 255.0)
    elif inp.range is not None:
        expected = tuple(map(float, inp.range))
    elif inp.preprocess is not None:
        m, s = np.asarray(pre.mean), np.asarray(pre.std)
        ends = np.concatenate([(0 - m) / s, (255 - m) / s])
        expected = (float(ends.min()), float(ends.max()))
    else:
        expected = None
    cs = CalibSet(model=model or "model", input_name=inp.name, shape=tuple(nchw.shape), items=chosen,
                  augmented=extra, seed=seed, normalization=normalization, source=source, input_spec=nchw,
                  onnx_mean=tuple(pre.mean), onnx_std=tuple(pre.std), expected_range=expected,
                  declared_range=inp.range, requested=size, real_available=len(items))
    if validate:
        validate_calib(cs)
    return cs


# --------------------------------------------------------------------------------------------------------------
# loading and augmentation
class _Stream:
    """What one pass over a set keeps between samples, bounded: decoded augmentation sources (at most
    ``_CACHE_BYTES``) and open rows readers of stacked ``.npz`` members (one per member). Closed after the pass."""

    def __init__(self) -> None:
        self.aug: OrderedDict = OrderedDict()
        self.members: dict[tuple[str, str], _NpzRows] = {}

    def rows(self, it: _Item) -> "_NpzRows":
        k = (it.path, it.key)
        if k not in self.members:
            self.members[k] = _NpzRows(it.path, it.key)
        return self.members[k]

    def __enter__(self) -> "_Stream":
        return self

    def __exit__(self, *exc: object) -> None:
        for r in self.members.values():
            r.close()
        self.members.clear()
        self.aug.clear()


class _NpzRows:
    """Row ``k`` of a stacked ``(N, ...)`` array inside an ``.npz`` without loading the other rows: a memory map
    of the member when it is stored (``np.savez``), a forward-reading decompressor when it is deflated
    (``np.savez_compressed``; rows in order cost one pass over the member in all)."""

    def __init__(self, path: str, key: str) -> None:
        import struct

        self._zf = zipfile.ZipFile(path)
        info = self._zf.getinfo(key + ".npy")
        self._fh = self._zf.open(info)
        fmt = np.lib.format
        version = fmt.read_magic(self._fh)
        reader = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
        self.shape, fortran, self.dtype = reader(self._fh)
        self._start = self._fh.tell()
        self._row = int(np.prod(self.shape[1:], dtype=np.int64)) * self.dtype.itemsize
        self._mmap = None
        if fortran:  # rows are not contiguous: read the member once (rare; np.save writes C order)
            self._mmap = np.load(self._zf.open(info))
        elif info.compress_type == zipfile.ZIP_STORED:
            with open(path, "rb") as f:  # the member's data starts after its local header
                f.seek(info.header_offset)
                n, m = struct.unpack("<HH", f.read(30)[26:30])
            self._mmap = np.memmap(path, self.dtype, "r", offset=info.header_offset + 30 + n + m + self._start,
                                   shape=tuple(self.shape))
        if self._mmap is not None:
            self.close(keep_map=True)

    def row(self, k: int) -> np.ndarray:
        if self._mmap is not None:
            return np.asarray(self._mmap[k])
        self._fh.seek(self._start + k * self._row)  # forward: decompressed and skipped, never held
        return np.frombuffer(self._fh.read(self._row), self.dtype).reshape(self.shape[1:])

    def close(self, keep_map: bool = False) -> None:
        self._fh.close()
        self._zf.close()
        if not keep_map:
            self._mmap = None


def _read_tensor(it: _Item, stream: _Stream | None = None) -> np.ndarray:
    if it.kind == "array":
        a = it.array
    elif it.kind == "npy":
        a = np.load(it.path, mmap_mode="r")
    elif it.index is not None:  # one row of a stacked member: never the whole member
        with (_Stream() if stream is None else contextlib.nullcontext(stream)) as st:
            a = np.array(st.rows(it).row(it.index))
    else:
        with np.load(it.path) as z:
            a = z[it.key]
    if it.index is not None and it.kind != "npz":
        a = a[it.index]
    a = np.asarray(a, dtype=np.float32)
    if a.ndim == 4:
        a = a[0]
    return a if it.layout == "CHW" else a.transpose(2, 0, 1)


def _load_real(it: _Item, cs: CalibSet, stream: _Stream | None = None) -> np.ndarray:
    if it.kind == "image":
        return preprocess_image(read_image_rgb(it.path), cs.input_spec)
    return np.array(_read_tensor(it, stream)[None], dtype=np.float32, order="C")  # a copy: never a view of a memmap


def _aug_params(cs: CalibSet, j: int) -> tuple[int, float, float, float, bool, float]:
    rng = np.random.default_rng([cs.seed, _AUG_SALT, j])
    frac = rng.uniform(*AUG_CROP)
    oy, ox = rng.uniform(0.0, 1.0, size=2)
    flip = bool(rng.random() < AUG_FLIP_P)
    bright = float(rng.uniform(*AUG_BRIGHTNESS))
    return j % len(cs.items), float(frac), float(oy), float(ox), flip, bright


def _crop(x: np.ndarray, frac: float, oy: float, ox: float) -> np.ndarray:
    """Crop an (H, W, ...) array to ``frac`` of each side at relative offset (oy, ox)."""
    h, w = x.shape[:2]
    ch, cw = max(1, round(h * frac)), max(1, round(w * frac))
    y0, x0 = int(round((h - ch) * oy)), int(round((w - cw) * ox))
    return x[y0:y0 + ch, x0:x0 + cw]


def _augment(cs: CalibSet, j: int, stream: _Stream) -> np.ndarray:
    src, frac, oy, ox, flip, bright = _aug_params(cs, j)
    it = cs.items[src]
    cache = stream.aug
    if src in cache:
        cache.move_to_end(src)
        base = cache[src]
    else:
        if it.kind == "image":
            base = read_image_rgb(it.path)
        else:
            base = np.ascontiguousarray(_read_tensor(it, stream).transpose(1, 2, 0))
        cache[src] = base
        while len(cache) > 1 and sum(a.nbytes for a in cache.values()) > _CACHE_BYTES:
            cache.popitem(last=False)
    x = _crop(base, frac, oy, ox)
    if flip:
        x = x[:, ::-1]
    if it.kind == "image":
        x = np.clip(x.astype(np.float32) * bright, 0, 255).astype(np.uint8)
        return preprocess_image(np.ascontiguousarray(x), cs.input_spec)
    import cv2

    _, c, h, w = cs.shape
    y = cv2.resize(np.ascontiguousarray(x), (w, h), interpolation=cv2.INTER_LINEAR)
    if y.ndim == 2:
        y = y[..., None]
    lo, hi = float(base.min()), float(base.max())
    y = np.clip(lo + (y - lo) * bright, lo, hi)
    return np.ascontiguousarray(y.transpose(2, 0, 1)[None], dtype=np.float32)


# --------------------------------------------------------------------------------------------------------------
# resize mode (letterbox vs stretch)
def resize_mismatch(calib: CalibSet, inp: InputSpec) -> str | None:
    """A sentence when ``calib``'s image files were resized differently from how ``inp`` is fed (its
    ``preprocess.resize``), else None (also for a set without image files: tensors carry no resize mode)."""
    if calib.resize is None:
        return None
    want = inp.preprocess.resize if inp.preprocess is not None else "stretch"
    if calib.resize == want:
        return None
    return (f"preprocessing mismatch: calibrated on images resized by {calib.resize}, evaluated on {want} "
            f"(input '{inp.name}')")


def _pad_value(calib: CalibSet) -> np.ndarray | None:
    """Per-channel value of a letterbox pad in ``calib``'s domain, when its tensor samples should have none (an
    image input resized by stretching); else None."""
    spec, pre = calib.input_spec, calib.input_spec.preprocess
    c = calib.shape[1]
    if spec.kind != "image" or pre is None or pre.resize != "stretch" or len(pre.mean) != c or len(pre.std) != c:
        return None
    if all(it.kind == "image" for it in calib.items):
        return None
    return (pre.pad - np.asarray(pre.mean, np.float64)) / np.asarray(pre.std, np.float64)


def letterbox_bands(x: np.ndarray, pad: np.ndarray) -> bool:
    """True when a ``(1, C, H, W)`` sample has letterbox bands: its first and last rows, or its first and last
    columns, equal ``pad`` (per channel) everywhere. A stretched photo practically never does."""
    v = np.asarray(x, np.float64)[0]
    p = np.asarray(pad, np.float64).reshape(-1, 1)
    tol = 1e-3 * max(1.0, float(np.abs(p).max()))

    def flat(edge: np.ndarray) -> bool:  # edge: (C, L)
        return bool(np.all(np.abs(edge - p) <= tol))

    return (flat(v[:, 0, :]) and flat(v[:, -1, :])) or (flat(v[:, :, 0]) and flat(v[:, :, -1]))


# --------------------------------------------------------------------------------------------------------------
# validation
def validate_calib(calib: CalibSet, *, include_augmented: bool = False) -> None:
    """Check the data before any quantization runs: NaN/Inf, the value range against the declared
    normalization and input range, and letterboxed tensor samples for an input resized by stretching.

    Augmented samples are derived from the real ones and cannot add NaN/Inf or leave the real range (crops,
    flips, brightness clipped to 0–255 for images and to the sample's own range for tensors), so by default only
    the real samples are read.

    Args:
        calib: the set.
        include_augmented: also stream the augmented samples. Defaults to False.

    Raises:
        InputDataError: NaN/Inf (which samples, how many values); data already normalized while the model script
            normalizes on chip (double normalization); raw 0–255 data where normalized data is declared; values
            outside the declared range; at least half of the tensor samples of a stretched image input carrying
            letterbox bands (:func:`letterbox_bands`; the opposite case cannot be told: a square photo has no bands).
    """
    ctx = f"{calib.model} | calib"
    n = calib.count if include_augmented else calib.real
    pad = _pad_value(calib)  # tensor samples of a stretched image input are checked for letterbox bands
    n_tensor, n_banded, banded = 0, 0, []
    # one streaming pass; what is kept does not grow with the set (running extremes, the first few bad labels)
    lo, hi = calib.expected_range if calib.expected_range is not None else (-np.inf, np.inf)
    tol = 0.02 * (hi - lo) if calib.expected_range is not None else 0.0
    n_nonfinite, nonfinite = 0, []  # (label, NaN count, Inf count) of the first 5
    n_bad, bad = 0, []  # labels of the first 3 samples out of the expected range
    dmin, lab_min, dmax, lab_max = np.inf, "", -np.inf, ""
    with _Stream() as stream:
        for i in range(n):
            x = calib._sample(i, stream)
            label = calib.items[i].label if i < calib.real else f"augmented[{i - calib.real}]"
            finite = np.isfinite(x)
            if not finite.all():
                n_nonfinite += 1
                if len(nonfinite) < 5:
                    nan = int(np.isnan(x).sum())
                    nonfinite.append((label, nan, int((~finite).sum()) - nan))
                continue
            if pad is not None and i < calib.real and calib.items[i].kind != "image":
                n_tensor += 1
                if letterbox_bands(x, pad):
                    n_banded += 1
                    if len(banded) < 3:
                        banded.append(label)
            xmin, xmax = float(x.min()), float(x.max())
            if xmin < dmin:
                dmin, lab_min = xmin, label
            if xmax > dmax:
                dmax, lab_max = xmax, label
            if xmin < lo - tol or xmax > hi + tol:
                n_bad += 1
                if len(bad) < 3:
                    bad.append(label)
    if n_nonfinite:
        listing = ", ".join(f"{lbl} ({nn} NaN, {ni} Inf)" for lbl, nn, ni in nonfinite) + (
            f" (+{n_nonfinite - 5} more)" if n_nonfinite > 5 else "")
        raise InputDataError(f"{n_nonfinite} of {n} calibration samples hold NaN/Inf: {listing}",
                             note="expected finite values only", hint="fix or remove those samples", context=ctx)
    if n_banded and 2 * n_banded >= n_tensor:
        raise InputDataError(
            f"{n_banded} of {n_tensor} calibration samples look letterboxed (rows or columns of the pad value "
            f"{calib.input_spec.preprocess.pad:g} along two opposite edges, e.g. {', '.join(banded)}), but input "
            f"'{calib.input_name}' is resized by stretching",
            note="calibration data must be preprocessed the way the deployed model is fed: calibrating on letterboxed "
                 "images and deploying stretched ones (or the reverse) calibrates the ranges on other statistics "
                 "(see README, 'letterbox vs stretch')",
            hint="if the deployment letterboxes, declare preprocess = { ..., resize = \"letterbox\" }; otherwise "
                 "re-export the samples stretched to the input's size", context=ctx)
    if not lab_min or calib.expected_range is None:
        return
    span = hi - lo
    got = f"values lie in [{dmin:.4g}, {dmax:.4g}] (min in {lab_min}, max in {lab_max})"
    looks_normalized = dmax <= 1.0 + 1e-6 and dmin >= -1.0 - 1e-6
    if calib.normalization == "on_chip" and looks_normalized:
        raise InputDataError(f"calibration data looks already normalized: {got}",
                             note="quantization.normalization = \"on_chip\": the model script's normalization layer "
                                  "expects raw 0-255 data, so normalized data would be normalized twice",
                             hint="feed raw 0-255 pixels (an image folder, or un-normalized .npy), or set "
                                  "quantization.normalization = \"host\"", context=ctx)
    if span >= 100 and looks_normalized:
        raise InputDataError(f"calibration data looks normalized: {got}",
                             note=f"input '{calib.input_name}' expects data in [{lo:g}, {hi:g}]",
                             hint="feed 0-255 data as the model expects (undo the /255 or (x-mean)/std)",
                             context=ctx)
    if calib.normalization == "host" and span <= 4 and dmax > 2.0 and dmax > hi + max(tol, 1.0):
        raise InputDataError(f"calibration data looks like raw 0-255 pixels: {got}",
                             note=f"normalization is on the host (\"host\"), so the data must arrive normalized in "
                                  f"[{lo:g}, {hi:g}]",
                             hint="normalize the samples ((x - mean) / std, as the input's preprocess says), or set "
                                  "quantization.normalization = \"on_chip\" so the model script normalizes",
                             context=ctx)
    if n_bad:
        why = ("raw pixels for on-chip normalization" if calib.normalization == "on_chip"
               else "the input range declared in the manifest")
        raise InputDataError(f"calibration data is outside the expected range: {got}; {n_bad} sample(s) "
                             f"out of range, e.g. {', '.join(bad)}",
                             note=f"expected values in [{lo:g}, {hi:g}] ({why})",
                             hint="check the preprocessing of the samples against the manifest's range/preprocess",
                             context=ctx)
