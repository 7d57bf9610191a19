"""Unit tests of the split: automatic and explicit cuts, bad cuts, the proof's ability to fail, and the cache."""
from __future__ import annotations

import json

import numpy as np
import onnx
import pytest

from hailo_qa.errors import GraphError
from hailo_qa.graph.split import load_stages, split_for_model, stages_from_onnx, write_stages
from hailo_qa.graph.verify import verify_split
from hailo_qa.manifest import load_manifest
from tests.graph import models


def test_auto_split_moves_rejected_tail_to_host(tmp_path):
    m = models.conv_topk()
    r = stages_from_onnx(m)
    assert r.mode == "auto"
    assert r.report["stage1"]["ops"] == {"Conv": 1, "Relu": 1}
    assert set(r.report["stage2"]["ops"]) == {"ReduceMax", "Flatten", "TopK"}
    assert [b.name for b in r.boundary] == ["r"]
    assert r.boundary[0].shape == (1, 4, 8, 8)  # dynamic batch pinned to 1
    assert "ReduceMax" in r.boundary[0].reason and "keepdims" in r.boundary[0].reason
    written = write_stages(r, tmp_path)
    assert verify_split(m, written, n=3, rng=np.random.default_rng(0))


def test_batch_is_pinned_as_asked():
    r = stages_from_onnx(models.conv_topk(), batch=4)
    assert r.boundary[0].shape == (4, 4, 8, 8)


def test_explicit_cut_and_end_nodes_agree():
    m = models.conv_topk()
    by_tensor = stages_from_onnx(m, cut=["c"])
    by_node = stages_from_onnx(m, end_nodes=["conv"])
    assert [b.name for b in by_tensor.boundary] == [b.name for b in by_node.boundary] == ["c"]
    assert by_tensor.report["stage1"]["ops"] == {"Conv": 1}
    assert verify_split(m, by_tensor, n=2)


def test_unknown_cut_suggests_closest_names():
    with pytest.raises(GraphError) as e:
        stages_from_onnx(models.conv_topk(), cut=["relu_out", "rr"])
    assert "does not exist" in str(e.value) and "Hint:" in str(e.value)
    with pytest.raises(GraphError, match="did you mean 'relu'"):
        stages_from_onnx(models.conv_topk(), end_nodes=["reluu"])


def test_cut_that_does_not_separate_is_refused():
    with pytest.raises(GraphError) as e:
        stages_from_onnx(models.two_branch(), cut=["b"])
    msg = str(e.value)
    assert "does not separate" in msg and "Note:" in msg and "Hint:" in msg


def test_explicit_stage1_with_rejected_op_needs_allow():
    with pytest.raises(GraphError, match="rejected|reject"):
        stages_from_onnx(models.conv_topk(), cut=["m"])
    r = stages_from_onnx(models.conv_topk(), cut=["m"], allow_rejected=True)
    assert r.report["stage1_rejected_allowed"] == ["reducemax"]


def test_model_without_image_input_is_refused():
    with pytest.raises(GraphError, match="no image-like input") as e:
        stages_from_onnx(models.tokens_only())
    assert "ids int64" in str(e.value)


def test_model_with_nothing_for_the_device_is_refused():
    with pytest.raises(GraphError, match="device-compatible") as e:
        stages_from_onnx(models.all_unsupported())
    assert "GridSample" in str(e.value)


def test_proof_can_fail(tmp_path):
    """A Stage 2 that is not the true tail is caught, with per-output statistics."""
    m = models.conv_topk()
    r = write_stages(stages_from_onnx(m), tmp_path)
    s2 = onnx.load(str(r.stage2_path))
    for n in s2.graph.node:  # sabotage: ReduceMax → ReduceMin
        if n.op_type == "ReduceMax":
            n.op_type = "ReduceMin"
    onnx.save(s2, str(r.stage2_path))
    result = verify_split(m, load_stages(tmp_path), n=1)
    assert not result and result.verdict == "mismatch"
    err = result.error()
    text = str(err)
    assert text.startswith("MISMATCH: the split is not equivalent to the model on 'random[0]': output 'vals' at index")
    assert "model " in err.what and "Stage 2(Stage 1(x))" in err.what
    assert "a real difference" in err.note and "float64" in err.note and err.hint


def test_written_report_is_complete(tmp_path):
    r = write_stages(stages_from_onnx(models.conv_topk()), tmp_path)
    rep = json.loads((tmp_path / "split_report.json").read_text())
    assert rep["boundary"][0]["name"] == "r" and rep["stage1"]["nodes"] == 2 and rep["stage2"]["nodes"] == 3
    assert "TopK" in rep["host_ops"]
    md = (tmp_path / "split_report.md").read_text()
    assert "| `r` | [1, 4, 8, 8]" in md
    back = load_stages(tmp_path)
    assert back.boundary == r.boundary and back.stage2_inputs == r.stage2_inputs


def test_split_for_model_caches_on_disk(tmp_path):
    spec = load_manifest().get("mtcnn_onet")
    a = split_for_model(spec, tmp_path)
    cached = [p for p in (tmp_path / "splits").iterdir() if not p.name.startswith(".")]  # not the build lock
    assert len(cached) == 1 and a.stage1_path.parent == cached[0]
    b = split_for_model(spec, tmp_path)
    assert b.stage1_path == a.stage1_path and [x.name for x in b.boundary] == [x.name for x in a.boundary]


def test_deimv2_stage1_is_free_of_host_ops():
    """The seed case: DEIMv2-Atto's Stage 1 holds none of the parser's rejects (full proof in test_stage_split)."""
    spec = load_manifest().get("deimv2_atto")
    r = stages_from_onnx(spec.file, shapes={i.name: i.shape for i in spec.inputs}, image_inputs=["images"])
    s1_ops = set(r.report["stage1"]["ops"])
    assert not s1_ops & {"GridSample", "TopK", "GatherElements", "Mod", "Tile"}
    assert {"GridSample", "TopK", "GatherElements", "Tile"} <= set(r.report["stage2"]["ops"])
    assert "orig_target_sizes" in r.stage2_inputs and r.stage1_inputs == ("images",)
