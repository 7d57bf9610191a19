"""Where the DFC is installed, its parser's verdict and recommended end nodes take precedence (contract fake)."""
from __future__ import annotations

import pytest

from hailo_qa.graph.lint import lint_onnx
from hailo_qa.graph.split import stages_from_onnx
from tests.fakes.hailo_sdk_client import _support
from tests.graph import models


@pytest.fixture
def fake_dfc(monkeypatch):
    return _support.install(monkeypatch)


@pytest.fixture
def model_path(tmp_path):
    return models.save(models.conv_topk(), tmp_path / "conv_topk.onnx")


def _recommend(fake, end):
    from hailo_sdk_client.model_translator.exceptions import ParsingWithRecommendationException

    from tests.fakes.hailo_sdk_client.runner.client_runner import recommendation_text

    fake.parse_failures["conv_topk"] = ParsingWithRecommendationException(
        recommendation_text(nodes=("topk",), end=end))


def test_lint_reports_the_dfc_verdict(fake_dfc, model_path):
    _recommend(fake_dfc, ("conv",))
    r = lint_onnx(model_path)  # use_dfc defaults to "when installed": the fake is
    assert r.dfc is not None and not r.dfc.ok and list(r.dfc.recommended_end_nodes) == ["conv"]
    assert r.to_dict()["dfc"]["recommended_end_nodes"] == ["conv"]
    assert "DFC parser verdict (takes precedence)" in r.render()
    assert any(c[0] == "translate" and c[1] == "conv_topk" for c in fake_dfc.calls)


def test_split_follows_the_dfc_end_nodes(fake_dfc, model_path):
    _recommend(fake_dfc, ("conv",))
    r = stages_from_onnx(model_path, use_dfc=True)
    assert r.mode == "dfc" and [b.name for b in r.boundary] == ["c"]  # rules alone would cut after Relu
    assert "DFC" in r.report["dfc"]
    assert [b.name for b in stages_from_onnx(model_path).boundary] == ["r"]


def test_dfc_accepting_the_graph_leaves_the_rules_split(fake_dfc, model_path):
    r = lint_onnx(model_path)
    assert r.dfc is not None and r.dfc.ok
    assert [b.name for b in stages_from_onnx(model_path, use_dfc=True).boundary] == ["r"]
