"""The preparation's fast path and its folder (issue #13): a graph with nothing to fold skips onnxslim, ONNX Runtime
and the proof — which is only sound when the folder would indeed have changed nothing; held against the folder here."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper as nh

from hailo_qa.config import REPO_ROOT, SHARED_DIR
from hailo_qa.graph import prepare as prep_mod
from hailo_qa.graph.prepare import (NOTHING_TO_FOLD, _fast, _foldable, _nothing_to_fold, _slim, prepare,
                                    shape_computation_nodes, static_shapes)
from tests.graph import models

REAL = sorted({p.name: p for p in [*(SHARED_DIR / "models").glob("*.onnx"), *(REPO_ROOT / "fixtures/models").glob(
    "*.onnx"), *(REPO_ROOT / "fixtures/unseen").glob("*.onnx")]}.values())


def _plain(extra_nodes=(), extra_inits=(), out="y") -> onnx.ModelProto:
    """x → Conv → Relu → Mul(Constant 2) → y, plus ``extra_nodes`` reading ``y``."""
    w = nh.from_array(np.random.default_rng(0).normal(size=(4, 3, 3, 3)).astype(np.float32), "w")
    nodes = [h.make_node("Constant", [], ["k"], value=nh.from_array(np.full((1, 4, 1, 1), 2, np.float32))),
             h.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             h.make_node("Relu", ["c"], ["r"], name="relu"), h.make_node("Mul", ["r", "k"], ["y"], name="mul"),
             *extra_nodes]
    return models._model(nodes, [h.make_tensor_value_info("x", T.FLOAT, ["N", 3, 8, 8])],
                         [h.make_tensor_value_info(out, T.FLOAT, ["N", "C", "H", "W"])], [w, *extra_inits])


def _ops(m: onnx.ModelProto) -> list[str]:
    return [n.op_type for n in m.graph.node]


def _static(m):
    return static_shapes(m, overrides={i.name: [d.dim_value if d.dim_value > 0 else (1 if k == 0 else 64)
                                                for k, d in enumerate(i.type.tensor_type.shape.dim)]
                                       for i in m.graph.input if i.name not in {t.name for t in m.graph.initializer}})


def _agrees_with_the_folder(m: onnx.ModelProto) -> None:
    """The fast path's graph is the folder's, node for node (ops, inputs, outputs), when the fast path is taken."""
    fast = _nothing_to_fold(m, shape_computation_nodes(m))
    assert fast is not None
    slow = _fast(m, _static(m), {})
    assert [(n.op_type, list(n.input), list(n.output)) for n in fast.graph.node] == \
           [(n.op_type, list(n.input), list(n.output)) for n in slow.graph.node]


def test_a_plain_graph_takes_the_fast_path_and_matches_the_folder():
    m = _plain()
    _agrees_with_the_folder(m)
    p = prepare(m)
    assert p.simplifier == NOTHING_TO_FOLD and p.proof is None and "Constant" not in _ops(p.model)
    assert p.pinned["x"] == (("N", 3, 8, 8), (1, 3, 8, 8)) and p.nodes_after == 3


@pytest.mark.parametrize("case", ["identity", "mul_by_one", "all_constant", "shape", "transpose", "dead_output"])
def test_anything_the_folder_would_change_leaves_the_fast_path(case):
    one = nh.from_array(np.ones((1,), np.float32), "one")
    m = {"identity": lambda: _plain([h.make_node("Identity", ["y"], ["z"])], out="z"),
         "mul_by_one": lambda: _plain([h.make_node("Mul", ["y", "one"], ["z"])], [one], out="z"),
         "all_constant": lambda: _plain([h.make_node("Neg", ["one"], ["n"]), h.make_node("Add", ["y", "n"], ["z"])],
                                        [one], out="z"),
         "shape": lambda: _plain([h.make_node("Shape", ["y"], ["s"]), h.make_node("Reshape", ["y", "s"], ["z"])],
                                 out="z"),
         "transpose": lambda: _plain([h.make_node("Transpose", ["y"], ["z"], perm=[0, 2, 3, 1])], out="z"),
         "dead_output": lambda: _plain([h.make_node("Relu", ["y"], ["dead"])])}[case]()
    assert _nothing_to_fold(m, shape_computation_nodes(m)) is None
    p = prepare(m)
    assert p.simplifier.startswith("hailo-qa's folder") and p.proof["verdict"] == "bit-exact"
    gone = {"identity": "Identity", "all_constant": "Neg", "shape": "Shape"}.get(case)
    if gone:  # the folder did remove what the fast path would have kept
        assert gone not in _ops(p.model)
    if case in ("mul_by_one", "dead_output"):
        assert _ops(p.model) == ["Conv", "Relu", "Mul"]


@pytest.mark.parametrize("path", REAL, ids=[p.stem for p in REAL])
def test_registered_and_unseen_models_fast_path_is_sound(path):
    """On every real model: where the fast path is taken it agrees with the folder; where it is not, the folder
    leaves nothing foldable behind."""
    m = onnx.load(str(path))
    if _nothing_to_fold(m, shape_computation_nodes(m)) is not None:
        _agrees_with_the_folder(m)
    else:
        assert not _foldable(_fast(m, _static(m), {}))


@pytest.mark.parametrize("folder", [_fast, _slim], ids=["ours", "onnxslim"])
def test_fold_rounds_stop_at_the_first_round_that_changes_nothing(monkeypatch, folder):
    """A shape chain folds in one round; a second round confirms nothing changes, and the loop ends there."""
    rounds = []
    real = prep_mod.onnx.shape_inference.infer_shapes

    def counting(m, **kw):
        rounds.append(len(m.graph.node))
        return real(m, **kw)

    m = _plain([h.make_node("Shape", ["y"], ["s"]), h.make_node("Reshape", ["y", "s"], ["z"])], out="z")
    monkeypatch.setattr(prep_mod.onnx.shape_inference, "infer_shapes", counting)
    out = folder(m, _static(m), {})
    assert _ops(out) == ["Conv", "Relu", "Mul"] and not _foldable(out)
    assert rounds == [6, 3, 3]  # the pinned graph, round 1 (folded), round 2 (unchanged: stop)


@pytest.mark.slow
@pytest.mark.parametrize("path", REAL, ids=[p.stem for p in REAL])
def test_the_folder_keeps_every_node_onnxslim_slim_kept(path):
    """Skipping onnxslim's subexpression merging and weight tying (and its symbolic shape inference) changes no
    node of a registered or unseen model: the same ops with the same outputs as ``onnxslim.slim`` with fusions off
    (the preparation before issue #13); only merged duplicate constants stay separate."""
    import onnxslim
    from onnxslim.core.pattern.registry import DEFAULT_FUSION_PATTERNS

    m = onnx.load(str(path))
    static = _static(m)
    ref = onnxslim.slim(m, input_shapes=[f"{k}:{','.join(map(str, v))}" for k, v in static.items()],
                        skip_fusion_patterns=[k for k in DEFAULT_FUSION_PATTERNS if k.startswith("Fusion")])
    ours = _slim(m, static, {})
    assert sorted((n.op_type, tuple(n.output)) for n in ours.graph.node) == \
           sorted((n.op_type, tuple(n.output)) for n in ref.graph.node)


def test_the_folder_keeps_onnx_runtime_warnings_off_the_console(capfd):
    """The folder's ORT sessions log through the default logger: DEIMv2's fold printed two dozen optimizer warnings
    ("UnsqueezeElimination cannot remove node ...") into every lint, split and validate."""
    deim = SHARED_DIR / "models" / "deimv2_hgnetv2_atto_coco.onnx"
    if not deim.exists():
        pytest.skip(f"{deim} is not present (../shared absent)")
    import onnxruntime

    onnxruntime.set_default_logger_severity(2)  # ORT's default (warnings), as a fresh process has it
    m = onnx.load(deim)
    _fast(m, static_shapes(m), {})
    assert "W:onnxruntime" not in capfd.readouterr().err
    onnxruntime.set_default_logger_severity(2)
    _slim(m, static_shapes(m), {})
    assert "W:onnxruntime" not in capfd.readouterr().err
