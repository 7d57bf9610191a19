"""Model Zoo cut points (hailo_qa.graph.zoo): families are data with their Zoo source, the split offers the Zoo's
end nodes beside the largest device stage, and the rule table is checked against a corpus of real cut points."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from hailo_qa.config import REPO_ROOT
from hailo_qa.graph.index import GraphIndex
from hailo_qa.graph.io import load_onnx
from hailo_qa.graph.split import render_report, stages_from_onnx
from hailo_qa.graph.verify import verify_split
from hailo_qa.graph.zoo import find_zoo_cut, load_families
from tests.graph import models

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

FIXTURES = REPO_ROOT / "fixtures"
CORPUS = tomllib.loads((Path(__file__).parent / "cut_corpus.toml").read_text())["cut"]
CASES = [pytest.param(c, id=c["family"], marks=[pytest.mark.xfail(strict=True, reason=c["gap"])] if c.get("gap") else [])
         for c in CORPUS]


def test_every_family_names_its_model_zoo_source():
    fams = load_families()
    assert {"yolov8", "yolox", "yolov5", "scrfd", "nanodet", "detr"} <= {f.name for f in fams}
    for f in fams:
        assert f.zoo and all(z.startswith("hailo_model_zoo/cfg/") for z in f.zoo), f.name


@pytest.mark.parametrize("case", CASES)
def test_split_offers_the_model_zoo_cut(case):
    path = FIXTURES / case["model"]
    r = stages_from_onnx(path)
    assert r.mode == "zoo" and r.report["zoo"]["family"] == case["family"] and r.report["zoo"]["offered"]
    assert sorted({b.producer for b in r.boundary}) == sorted(case["end_nodes"])
    labels = [c["label"] for c in r.report["candidates"]]
    assert labels == ["largest device stage", f"Model Zoo cut ({case['family']})"]
    largest, zoo = r.report["candidates"]
    assert zoo["chosen"] and not largest["chosen"]
    same = sorted(b["name"] for b in zoo["boundary"]) == sorted(b["name"] for b in largest["boundary"])
    assert same is case.get("same_as_largest", False)
    assert "## Cuts side by side" in render_report(r.report)
    assert verify_split(path, r, n=1).verdict == "bit-exact"


@pytest.mark.parametrize("case", CASES)
def test_rules_accept_everything_before_a_real_cut(case):
    """The corpus check: no node the Zoo runs on the device is rejected by our (conservative) rule table."""
    r = stages_from_onnx(FIXTURES / case["model"], end_nodes=case["end_nodes"])  # raises if a node is rejected
    assert r.report["stage1_rejected_allowed"] == []


FAMILIES_WITHOUT_A_MODEL = {"nanodet"}
"""Families of zoo_cuts.toml no corpus model exercises yet (old NanoDet's per-stride outputs)."""


def test_a_zoo_cut_the_rules_hide_is_recognised_and_explained():
    """DETR (a corpus gap): the family is recognised, the Zoo cut is not used, and the report says which rule."""
    r = stages_from_onnx(FIXTURES / "unseen" / "detr_like.onnx")
    z = r.report["zoo"]
    assert z["family"] == "detr" and z["offered"] is False and "rules reject" in z["why_not"]
    assert r.mode == "auto" and r.report["stage1"]["nodes"] > 0


def test_every_family_has_a_model_in_the_corpus():
    assert {f.name for f in load_families()} - {c["family"] for c in CORPUS} == FAMILIES_WITHOUT_A_MODEL


def test_yolov8_cut_is_the_head_convs_not_the_concats():
    r = stages_from_onnx(FIXTURES / "unseen" / "yolov8_like.onnx")
    assert all(b.producer_op == "Conv" and b.producer.endswith(".2/Conv") for b in r.boundary)
    largest = r.report["candidates"][0]
    assert all(b["producer"].startswith("/model.22/Concat") for b in largest["boundary"])


def test_focus_stem_stays_on_the_device():
    r = stages_from_onnx(FIXTURES / "unseen" / "yolox_like.onnx")
    assert r.report["stage1"]["ops"].get("Slice") == 4 and "Slice" not in r.report["stage2"]["ops"]


def test_unrecognised_models_keep_the_largest_stage_and_patterns_can_be_off():
    r = stages_from_onnx(models.conv_topk())
    assert r.mode == "auto" and "zoo" not in r.report
    r = stages_from_onnx(FIXTURES / "unseen" / "yolov8_like.onnx", cut_patterns=False)
    assert r.mode == "auto" and "candidates" not in r.report


def test_a_zoo_cut_the_rules_reject_is_reported_not_used(tmp_path):
    """When the rules reject a node before the Zoo's end nodes, the largest stage is kept and the report says why."""
    rules = (REPO_ROOT / "hailo_qa" / "graph" / "hailo8_rules.toml").read_text()
    strict = rules.replace('[ops.Sigmoid]\nstatus = "supported"', '[ops.Sigmoid]\nstatus = "unsupported"')
    assert strict != rules
    (tmp_path / "rules.toml").write_text(strict)
    r = stages_from_onnx(FIXTURES / "unseen" / "yolox_like.onnx", rules_path=str(tmp_path / "rules.toml"))
    assert r.mode == "auto" and r.report["zoo"]["offered"] is False and "reject" in r.report["zoo"]["why_not"]


def test_yolox_with_old_exporter_names_is_recognised_by_structure():
    """Same model, names renumbered (torch < 1.13): the names pattern misses it, the structure finds the same cut."""
    new = stages_from_onnx(FIXTURES / "unseen" / "yolox_like.onnx")
    old = stages_from_onnx(FIXTURES / "unseen" / "yolox_oldnames_like.onnx")
    assert (new.report["zoo"]["family"], old.report["zoo"]["family"]) == ("yolox", "yolox_any_names")
    assert [b.shape for b in new.boundary] == [b.shape for b in old.boundary]
    assert [b.producer_op for b in new.boundary] == [b.producer_op for b in old.boundary]


@pytest.mark.parametrize("name", ["face_detection_yunet_2023mar.onnx", "mtcnn_onet.onnx",
                                  "deimv2_hgnetv2_atto_coco.onnx"])
def test_other_detectors_are_not_taken_for_a_zoo_family(name):
    """No false recognition: YuNet, MTCNN and DEIMv2 keep the largest device stage."""
    assert find_zoo_cut(GraphIndex(load_onnx(FIXTURES / "models" / name))) is None


def test_families_are_recognised_by_names_and_outputs():
    g = GraphIndex(load_onnx(FIXTURES / "unseen" / "yolox_like.onnx"))
    z = find_zoo_cut(g)
    assert z.family.name == "yolox" and len(z.end_nodes) == 9
    assert find_zoo_cut(GraphIndex(models.conv_topk())) is None
    assert np.all([e.startswith("/head/") for e in z.end_nodes])
