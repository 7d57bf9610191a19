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
