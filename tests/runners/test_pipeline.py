"""HostPipeline: Stage 1 from any runner into Stage 2 on the host, layout converted at the boundary only."""
from __future__ import annotations

import numpy as np
import pytest

from hailo_qa.errors import InputDataError
from hailo_qa.graph.split import stages_from_onnx, write_stages
from hailo_qa.runners.base import BackendInfo, BaseRunner, TensorMeta, nchw_to_nhwc
from hailo_qa.runners.onnxrt import OnnxrtRunner
from hailo_qa.runners.pipeline import HostPipeline
from tests.graph import models


class NhwcStage1(BaseRunner):
    """Test double of a device runner: wraps ORT on Stage 1 and emits NHWC, as HailoRT does."""

    def __init__(self, path, *, bad_shape=False):
        super().__init__("nhwc-stage1")
        self.inner = OnnxrtRunner(path)
        self.bad_shape = bad_shape
        self.backend = BackendInfo("test-double", "0", "hailo8", details={"device": "none"})

    def _activate(self):
        self.inner.__enter__()

    def _deactivate(self):
        self.inner.__exit__(None, None, None)

    def input_metadata(self):
        return self.inner.input_metadata()

    def output_metadata(self):
        out = {}
        for n, m in self.inner.output_metadata().items():
            s = m.shape
            out[n] = TensorMeta(n, (s[0], s[2], s[3], s[1]), m.dtype, "NHWC")
        return out

    def _infer(self, feeds):
        y = {k: nchw_to_nhwc(v) for k, v in self.inner.infer(feeds).items()}
        return {k: v[:, :-1] for k, v in y.items()} if self.bad_shape else y


@pytest.fixture(scope="module")
def split(tmp_path_factory):
    return write_stages(stages_from_onnx(models.conv_topk()), tmp_path_factory.mktemp("split"))


@pytest.fixture
def x():
    return {"images": np.random.default_rng(0).uniform(size=(1, 3, 8, 8)).astype(np.float32)}


def test_nhwc_stage1_output_is_converted_back(split, x):
    with OnnxrtRunner(models.conv_topk()) as full, HostPipeline(NhwcStage1(split.stage1_path), split.stage2_path) as p:
        ref = full.infer(x)
        got = p.infer(x)
        assert p.last_boundary["r"].shape == (1, 4, 8, 8)
        assert set(p.last_timings) == {"convert_s", "stage1_s", "stage2_s", "total_s"}
        assert p.backend.name == "test-double" and "host_stage" in p.backend.details
    for k in ref:
        np.testing.assert_array_equal(ref[k], got[k])


def test_wrong_boundary_shape_is_a_clear_error(split, x):
    with HostPipeline(NhwcStage1(split.stage1_path, bad_shape=True), split.stage2_path) as p:
        with pytest.raises(InputDataError, match="Stage 2 expects"):
            p.infer(x)


def test_missing_image_input_and_released_on_error(split):
    s1 = NhwcStage1(split.stage1_path)
    with pytest.raises(InputDataError, match="image input"):
        with HostPipeline(s1, split.stage2_path) as p:
            p.infer({"other": np.zeros(1, np.float32)})
    assert not s1.is_active


def test_runner_checks_feeds(split):
    with OnnxrtRunner(split.stage1_path) as r:
        with pytest.raises(InputDataError, match="dtype"):
            r.infer({"images": np.zeros((1, 3, 8, 8), np.float64)})
        with pytest.raises(InputDataError, match="shape"):
            r.infer({"images": np.zeros((1, 8, 8, 3), np.float32)})
        with pytest.raises(InputDataError, match="did you mean 'images'"):
            r.infer({"image": np.zeros((1, 3, 8, 8), np.float32)})
