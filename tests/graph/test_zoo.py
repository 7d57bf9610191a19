"""Model Zoo cut points (hailo_qa.graph.zoo): families are data with their Zoo source, the split offers the Zoo's
end nodes beside the largest device stage, and the rule table is checked against a corpus of real cut points."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
import onnx.numpy_helper
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
DETR = FIXTURES / "unseen" / "detr_like.onnx"
CORPUS = tomllib.loads((Path(__file__).parent / "cut_corpus.toml").read_text())["cut"]
CASES = [pytest.param(c, id=c["family"], marks=[pytest.mark.xfail(strict=True, reason=c["gap"])] if c.get("gap") else [])
         for c in CORPUS]


def load_families_by_name():
    return {f.name: f for f in load_families()}


def test_every_family_names_its_model_zoo_source():
    fams = load_families()
    assert {"yolov8", "yolox", "yolov5", "scrfd", "nanodet", "detr"} <= {f.name for f in fams}
    for f in fams:
        assert f.zoo and all(z.startswith("hailo_model_zoo/cfg/") for z in f.zoo), f.name
        assert all(p.startswith("hailo_model_zoo/") for p in f.proven_by), f.name
    assert [f.name for f in fams if f.device_proven] == ["detr"]  # evidence is per family, never global


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
    """The corpus check: no node the Zoo runs on the device is rejected by our (conservative) rule table, except the
    op types the corpus row names in ``zoo_evidence``, which the family's Model Zoo evidence accepts (and the report
    lists node by node)."""
    r = stages_from_onnx(FIXTURES / case["model"], end_nodes=case["end_nodes"], allow_rejected=True)
    rejected = set(r.report["stage1_rejected_allowed"])
    ops = {n.op_type for n in r.stage1.graph.node if n.name in rejected}
    assert sorted(ops) == sorted(case.get("zoo_evidence", []))
    if rejected:
        zoo = stages_from_onnx(FIXTURES / case["model"]).report["zoo"]
        assert {a["node"] for a in zoo["accepted_on_zoo_evidence"]} == rejected


FAMILIES_WITHOUT_A_MODEL: set[str] = set()
"""Families of zoo_cuts.toml no corpus model exercises yet."""


def test_detr_transformer_is_accepted_on_the_zoo_evidence_and_the_report_says_so():
    """DETR: our rules reject the transformer's layout ops and LayerNorm arithmetic; the Model Zoo compiles DETR for
    Hailo-8, so for this family (only) those nodes go on the device, and the report says it is the Zoo vouching."""
    r = stages_from_onnx(DETR)
    z = r.report["zoo"]
    assert r.mode == "zoo" and z["offered"] and r.report["stage2"]["nodes"] == 0
    acc = z["accepted_on_zoo_evidence"]
    assert {a["op"] for a in acc} == {"Reshape", "Transpose", "ReduceMean", "Div"} and len(acc) == 32
    assert all(a["rules_said"] for a in acc) and z["proven_by"] == list(load_families_by_name()["detr"].proven_by)
    md = render_report(r.report)
    assert "32 node(s) accepted on the Model Zoo's evidence, NOT by our rule table" in md
    assert "detr_resnet_v1_50.alls" in md and "HAILO8_object_detection.rst" in md
    largest = r.report["candidates"][0]  # the rule table alone still ends the device stage at the backbone
    assert largest["stage1_nodes"] == 13 and largest["boundary"][0]["producer"] == "/input_proj/Conv"


def test_zoo_evidence_covers_only_the_ops_it_names():
    """An op the family's evidence does not name (an Unsqueeze/Squeeze pair before the box Sigmoid) is still
    rejected: the Zoo cut is reported, not used, and the report says which node."""
    m = load_onnx(DETR)
    k, sig = next((k, n) for k, n in enumerate(m.graph.node) if n.name == "/Sigmoid")
    m.graph.initializer.append(onnx.numpy_helper.from_array(np.array([0], dtype=np.int64), "extra_axes"))
    m.graph.node.insert(k, onnx.helper.make_node("Squeeze", ["extra_u", "extra_axes"], ["extra_s"], name="extra_squeeze"))
    m.graph.node.insert(k, onnx.helper.make_node("Unsqueeze", [sig.input[0], "extra_axes"], ["extra_u"],
                                                 name="extra_unsqueeze"))
    sig.input[0] = "extra_s"
    r = stages_from_onnx(m)
    z = r.report["zoo"]
    assert z["family"] == "detr" and z["offered"] is False and "extra_unsqueeze" in z["why_not"]
    assert r.mode == "auto" and r.report["stage1"]["nodes"] == 13


def test_the_same_ops_outside_the_family_are_still_rejected():
    """The same graph with outputs DETR does not have is no recognised family: our rules alone decide, and they keep
    the transformer on the host."""
    m = load_onnx(DETR)
    ren = {"pred_logits": "logits", "pred_boxes": "boxes"}
    for n in m.graph.node:
        n.output[:] = [ren.get(o, o) for o in n.output]
    for o in m.graph.output:
        o.name = ren.get(o.name, o.name)
    r = stages_from_onnx(m)
    assert r.mode == "auto" and "zoo" not in r.report and r.report["stage1"]["nodes"] == 13
    assert {"Reshape", "Transpose", "ReduceMean", "Div"} <= set(r.report["host_ops"])


def test_zoo_evidence_applies_only_before_the_end_nodes():
    """With an end node inside the encoder, only the nodes before it are accepted on the evidence (none of the
    decoder's); with the backbone's last conv as end node, none at all."""
    from hailo_qa.graph.lint import classify
    from hailo_qa.graph.prepare import prepare
    from hailo_qa.graph.rules import load_rules
    from hailo_qa.graph.split import _zoo_vouched
    from hailo_qa.graph.zoo import ZooCut

    g = GraphIndex(prepare(load_onnx(DETR)).model)
    verdicts, _ = classify(g, ["samples"], load_rules())
    vmap = {v.node: v for v in verdicts}
    fam = load_families_by_name()["detr"]
    assert _zoo_vouched(g, ZooCut(fam, ("/input_proj/Conv",)), vmap) == {}
    enc = _zoo_vouched(g, ZooCut(fam, ("/transformer/encoder.0/norm1/Div",)), vmap)
    assert enc and all(n.startswith(("/transformer/encoder.0/", "/transformer/Reshape", "/transformer/Transpose"))
                       for n in enc)
    assert all(v.ok and v.rule == "zoo:detr" and v.details["rules_said"] for v in enc.values())
    everything = _zoo_vouched(g, ZooCut(fam, ("/class_embed/Add", "/Sigmoid")), vmap)
    assert set(enc) < set(everything)


REGISTERED = tomllib.loads((Path(__file__).parent / "registered_splits.toml").read_text())


@pytest.mark.parametrize("name", sorted(REGISTERED))
def test_registered_models_keep_their_split(name):
    """Family-scoped Zoo evidence moves no registered model's split (DEIMv2-Atto, a DETR-like model, included): the
    boundaries main computed before it existed, recorded in registered_splits.toml."""
    from hailo_qa.manifest import load_manifest

    spec = next(s for s in load_manifest(FIXTURES / "models.toml").models if s.name == name)
    if not spec.file.exists():
        pytest.skip(f"{name}: {spec.file} is not here (a ../shared model that is not copied)")
    r = stages_from_onnx(spec.file, cut=spec.split.cut, end_nodes=spec.split.end_nodes, batch=spec.split.batch,
                         shapes={i.name: list(i.shape) for i in spec.inputs}, reshape=spec.split.reshape,
                         image_inputs=[i.name for i in spec.device_inputs], simplify=spec.split.simplify)
    want = REGISTERED[name]
    assert [b.name for b in r.boundary] == want["boundary"]
    assert (r.mode, r.report["stage1"]["nodes"], r.report["stage2"]["nodes"]) == (
        want["mode"], want["stage1_nodes"], want["stage2_nodes"])
    assert "zoo" not in r.report


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
