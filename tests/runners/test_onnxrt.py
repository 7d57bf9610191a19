"""The ONNX Runtime session options every hailo-qa session is made with: intra-op threads (serial: ORT's default;
pytest-xdist workers: cores ÷ workers; ``HAILO_QA_ORT_THREADS`` overrides)."""
from __future__ import annotations

import re

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from hailo_qa import config
from hailo_qa.errors import InputDataError
from hailo_qa.runners import onnxrt
from hailo_qa.runners.onnxrt import THREADS_ENV, default_threads, session_from_onnx, set_default_threads


@pytest.fixture
def clean_threads(monkeypatch):
    monkeypatch.delenv(THREADS_ENV, raising=False)
    monkeypatch.setattr(onnxrt, "_default_threads", None)


def _relu() -> onnx.ModelProto:
    g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "r",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def _threads(**kw) -> int:
    sess = session_from_onnx(_relu(), **kw)
    assert sess.run(None, {"x": np.array([[-1, 2, -3, 4]], np.float32)})[0].tolist() == [[0, 2, 0, 4]]
    return sess.get_session_options().intra_op_num_threads


def test_serial_default_is_onnxruntime_s_own(clean_threads):
    assert default_threads() is None
    assert _threads() == 0  # 0: ONNX Runtime picks (one per core)


def test_worker_share_then_variable_then_explicit_argument(clean_threads, monkeypatch):
    set_default_threads(1)  # what the pytest plugin does in an xdist worker
    assert default_threads() == 1 and _threads() == 1
    monkeypatch.setenv(THREADS_ENV, "3")
    assert default_threads() == 3 and _threads() == 3
    assert _threads(threads=2) == 2


def test_unoptimized_sessions_keep_onnxruntime_s_threads(clean_threads, monkeypatch):
    """Their last bits depend on the thread count (calibration ranges): a worker must calibrate as a serial run."""
    set_default_threads(1)
    monkeypatch.setenv(THREADS_ENV, "3")
    assert _threads(optimize=False) == 0
    assert _threads(optimize=False, threads=2) == 2  # an explicit count is still honoured


@pytest.mark.parametrize("bad", ["0", "-2", "two", "1.5"])
def test_a_bad_thread_variable_is_an_error_naming_it(clean_threads, monkeypatch, bad):
    monkeypatch.setenv(THREADS_ENV, bad)
    with pytest.raises(InputDataError, match=THREADS_ENV) as err:
        default_threads()
    assert err.value.hint


def test_a_bad_default_is_refused(clean_threads):
    with pytest.raises(InputDataError):
        set_default_threads(0)


def test_every_session_hailo_qa_creates_takes_the_shared_options():
    """Each ``InferenceSession(...)`` and ``collect_activations(...)`` in the package is given options from
    :func:`hailo_qa.runners.onnxrt.session_options` (so the thread setting reaches it)."""
    offenders = []
    for path in sorted((config.REPO_ROOT / "hailo_qa").rglob("*.py")):
        text = path.read_text()
        for m in re.finditer(r"(InferenceSession|collect_activations)\(", text):
            if path.name == "onnxrt.py" and m.group(1) == "InferenceSession":
                continue  # session_from_onnx itself: options from session_options() two lines above
            window = text[max(0, m.start() - 600):m.start() + 300]
            if "session_options(" not in window:
                offenders.append(f"{path.relative_to(config.REPO_ROOT)}:{text.count(chr(10), 0, m.start()) + 1}")
    assert offenders == []


def _every_tensor(path) -> onnx.ModelProto:
    m = onnx.load(str(path))
    names = [o for n in m.graph.node for o in n.output if o]
    del m.graph.output[:]
    m.graph.output.extend(onnx.ValueInfoProto(name=t) for t in names)
    return m


@pytest.mark.hqa_select(needs=("file",))
def test_optimized_sessions_give_the_same_bits_at_any_thread_count(hqa_model, hqa_split):
    """Why pytest-xdist workers may run optimized sessions with fewer threads: on every registered Stage 1 every
    intermediate tensor, and Stage 2's outputs, are bit-identical at 1 and 2 intra-op threads. (Unoptimized they are
    not on this machine — DEIMv2, FSQ, O-Net — which is why unoptimized sessions keep ONNX Runtime's count.)"""
    rng = np.random.default_rng(0)

    def run(model, threads, optimize=True):
        sess = session_from_onnx(model, threads=threads, optimize=optimize, prepack=True)
        shapes = {i.name: ([d if isinstance(d, int) else 1 for d in i.shape], i.type) for i in sess.get_inputs()}
        feeds = {n: rng.integers(1, 640, s) if "int64" in t else rng.random(s).astype(np.float32)
                 for n, (s, t) in shapes.items()}
        return sess.run(None, feeds)

    stage1 = _every_tensor(hqa_split.stage1_path)
    for model in (stage1, str(hqa_split.stage2_path)):
        state = rng.bit_generator.state
        one = run(model, 1)
        rng.bit_generator.state = state
        two = run(model, 2)
        assert all(np.array_equal(a, b, equal_nan=True) for a, b in zip(one, two))
