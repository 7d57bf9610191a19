import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from onnx import TensorProto as T
from onnx import helper as h

from hailo_qa.runners.hostops import HOST_OPS, fsq_round
from hailo_qa.runners.onnxrt import OnnxrtRunner


@pytest.fixture(scope="module")
def ort_round():
    g = h.make_graph([h.make_node("Round", ["x"], ["y"])], "r", [h.make_tensor_value_info("x", T.FLOAT, [64])],
                     [h.make_tensor_value_info("y", T.FLOAT, [64])])
    with OnnxrtRunner(h.make_model(g, opset_imports=[h.make_opsetid("", 17)], ir_version=8)) as r:
        yield r


@given(hnp.arrays(np.float32, 64, elements=st.one_of(
    st.floats(-100, 100, width=32), st.sampled_from([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 3.5]))))
def test_fsq_round_is_bit_identical_to_onnx_round(ort_round, x):
    got = fsq_round(x)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, ort_round.infer({"x": x})["y"])


def test_half_to_even_and_registry():
    assert fsq_round(np.array([0.5, 1.5, 2.5, -0.5], np.float32)).tolist() == [0.0, 2.0, 2.0, -0.0]
    assert HOST_OPS["fsq_round"] is fsq_round


def test_fsq_quantize_levels_must_match_the_width():
    from hailo_qa.errors import InputDataError
    from hailo_qa.runners.hostops import fsq_quantize

    x = np.array([[1.4, -2.0, 0.5, 2.5, -0.5, 1.5, 0.49, -1.51]], np.float32)
    got = fsq_quantize(x, [5] * 8)
    assert got.dtype == np.float32
    assert got.tolist() == (np.round(x) / np.float32(2.0)).tolist()  # half to even: 0.5 → 0, 2.5 → 2, 1.5 → 2
    with pytest.raises(InputDataError, match="5 levels for a tensor"):
        fsq_quantize(x, [5] * 5)


def test_host_step_runner_renames_and_transforms_the_stage1_output():
    from hailo_qa.runners.hostops import HostStepRunner, fsq_quantize

    x = h.make_tensor_value_info("x", T.FLOAT, [1, 4])
    y = h.make_tensor_value_info("b", T.FLOAT, [1, 4])
    g = h.make_graph([h.make_node("Mul", ["x", "two"], ["b"])], "g", [x], [y],
                     [h.make_tensor("two", T.FLOAT, [], [2.0])])
    s1 = OnnxrtRunner(h.make_model(g, opset_imports=[h.make_opsetid("", 17)], ir_version=8))
    with HostStepRunner(s1, "b", "q", lambda a: fsq_quantize(a, [3] * 4), step="fsq[3]") as r:
        assert list(r.output_metadata()) == ["q"]
        out = r.infer({"x": np.array([[0.3, -0.3, 0.6, 0.2]], np.float32)})
        assert out["q"].tolist() == [[1.0, -1.0, 1.0, 0.0]]
        assert r.backend.details["host_step"] == "fsq[3]"
