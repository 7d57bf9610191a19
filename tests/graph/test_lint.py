from __future__ import annotations

import pytest

from hailo_qa.errors import GraphError
from hailo_qa.graph.lint import lint_onnx
from hailo_qa.manifest import load_manifest
from tests.graph import models


def test_findings_name_node_reason_and_workaround():
    r = lint_onnx(models.conv_topk(), use_dfc=False)
    rejected = {v.node: v for v in r.rejected}
    assert set(rejected) == {"reducemax", "topk"}  # Flatten is fine itself; it goes to the host behind ReduceMax
    assert "keepdims" in rejected["reducemax"].reason and "Squeeze" in rejected["reducemax"].workaround
    assert "ArgMax" in rejected["topk"].workaround
    d = r.to_dict()
    assert d["rejected"] == 2 and d["rejected_by_op"]["TopK"] == 1
    assert d["preparation"]["pinned"]["images"] == {"from": ["N", 3, 8, 8], "to": [1, 3, 8, 8]}
    assert d["dfc"] is None and "not consulted" in d["dfc_note"] and "rule table" in d["dfc_note"]


def test_lint_reports_shape_subgraphs_and_dynamic_dims_on_real_model():
    spec = load_manifest().get("deimv2_atto")
    r = lint_onnx(spec.file, use_dfc=False)
    d = r.to_dict()
    assert d["preparation"]["shape_computation_nodes"] > 0
    assert set(d["preparation"]["dynamic_inputs"]) == {"images", "orig_target_sizes"}
    for op in ("GridSample", "TopK", "GatherElements", "Tile"):
        assert op in d["rejected_by_op"], op
    assert d["host_inputs"] == ["orig_target_sizes"]
    text = r.render(limit=5)
    assert "GridSample" in text and "more (use --json" in text


def test_fully_supported_model_has_no_findings():
    spec = load_manifest().get("mtcnn_onet")
    assert lint_onnx(spec.file, use_dfc=False).rejected == ()


def test_not_image_like():
    with pytest.raises(GraphError, match="image-like"):
        lint_onnx(models.tokens_only(), use_dfc=False)
    with pytest.raises(GraphError, match="not an input"):
        lint_onnx(models.conv_topk(), image_inputs=["image"], use_dfc=False)
