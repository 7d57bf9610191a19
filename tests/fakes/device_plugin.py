"""A pytest plugin that puts the HailoRT contract fake in place of a Pi for a whole ``pytest -m hailo8`` run (tests
only: end-to-end tests start pytest in a subprocess with ``-p tests.fakes.device_plugin``).

It does nothing unless ``HAILO_QA_FAKE_DEVICE`` names a JSON file describing the HEFs the fake device serves::

    {"nets": [{"hef": "/abs/variant.hef", "name": "face",
               "input": ["face/input_layer1", [112, 112, 3]],
               "output": ["face/fc1", [128], 0.05, 128.0],            # name, shape, qp_scale, qp_zp
               "compute": {"kind": "onnx", "model": "/abs/embedder.onnx", "mean": 127.5, "std": 127.5},
               "drift": 0.0}]}

``compute.kind``: ``onnx`` (a float ONNX model run on what the device receives, NHWC 0-255 → NCHW normalized; its
output × ``gain``, tiled ``repeat`` times to fill a wider output stream),
``constant`` (a degenerate embedder), or absent (the fake's synthetic formula). ``drift`` > 0 shifts every session
(release + reconfigure) after the first one this HEF saw by ``drift × session`` of the output's RMS, along a fixed
direction — a device whose answer changes between sessions. Every number this produces comes from the contract
fake: ``hailort@4.23.0+fake`` in every result and history row, never a device's.
"""
from __future__ import annotations

import json
import os
import sys

import numpy as np
import pytest

ENV = "HAILO_QA_FAKE_DEVICE"


def _onnx_compute(c: dict):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(c["model"], opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    mean, std = float(c.get("mean", 0.0)), float(c.get("std", 1.0))
    gain, repeat = float(c.get("gain", 1.0)), int(c.get("repeat", 1))

    def compute(x: np.ndarray) -> np.ndarray:
        x = (x.astype(np.float32)[None] - mean) / std
        y = sess.run(None, {name: np.ascontiguousarray(x.transpose(0, 3, 1, 2))})[0].reshape(-1)
        return np.tile(y * gain, repeat)

    return compute


def _net(entry: dict, fake):
    (in_name, in_shape), out = entry["input"], entry["output"]
    out_name, out_shape = out[0], tuple(out[1])
    c = entry.get("compute") or {}
    kind = c.get("kind")
    if kind == "onnx":
        inner = _onnx_compute(c)
    elif kind == "constant":
        const = np.random.default_rng(7).standard_normal(int(np.prod(out_shape)))

        def inner(x):
            return const
    elif kind is None:
        return fake.FakeNet([fake.FakeStream(in_name, tuple(in_shape))],
                            [fake.FakeStream(out_name, out_shape, *out[2:4])], name=entry.get("name", "fake_net"))
    else:
        raise ValueError(f"{ENV}: unknown compute kind {kind!r}")
    drift = float(entry.get("drift", 0.0))
    first: list[int] = []

    def compute(inputs):
        v = np.asarray(inner(next(iter(inputs.values()))), np.float64).reshape(-1)
        if drift:
            configures = fake.STATE.configures
            first[:] = first or [configures]
            session = configures - first[0]
            direction = np.random.default_rng(99).standard_normal(v.shape)
            v = v + drift * session * direction * np.linalg.norm(v) / np.sqrt(v.size)
        return {out_name: v}

    return fake.FakeNet([fake.FakeStream(in_name, tuple(in_shape))], [fake.FakeStream(out_name, out_shape, *out[2:4])],
                        name=entry.get("name", "fake_net"), compute=compute)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config) -> None:
    path = os.environ.get(ENV)
    if not path:
        return
    from tests.fakes import FAKES_DIR

    sys._hailo_qa_fake_hailort_allowed = True
    for name in [m for m in sys.modules if m == "hailo_platform" or m.startswith("hailo_platform.")]:
        del sys.modules[name]  # a real binding imported before us must not answer
    sys.path.insert(0, str(FAKES_DIR))
    try:  # import the fake HailoRT only: the DFC fake beside it must not become the emulator of this run
        import hailo_platform.pyhailort.pyhailort  # noqa: F401
        from hailo_platform import _fake
    finally:
        sys.path.remove(str(FAKES_DIR))

    state = _fake.reset()
    with open(path, encoding="utf-8") as fh:
        spec = json.load(fh)
    for entry in spec["nets"]:
        state.hefs[str(entry["hef"])] = _net(entry, _fake)
