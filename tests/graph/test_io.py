"""Every way an ONNX file can be broken ends in an InputFileError with a Note and a Hint."""
from __future__ import annotations

import onnx
import pytest

from hailo_qa.errors import InputFileError
from hailo_qa.graph.io import load_onnx
from hailo_qa.graph.lint import lint_onnx
from hailo_qa.graph.split import stages_from_onnx
from tests.graph import models


@pytest.fixture
def good(tmp_path):
    return models.save(models.conv_topk(), tmp_path / "good.onnx")


def _assert_clear(err: InputFileError, *words: str) -> None:
    text = str(err)
    assert "Note:" in text and "Hint:" in text, text
    for w in words:
        assert w in text, (w, text)


def test_missing_file(tmp_path):
    with pytest.raises(InputFileError) as e:
        load_onnx(tmp_path / "nope.onnx")
    _assert_clear(e.value, "does not exist")


def test_empty_file(tmp_path):
    p = tmp_path / "empty.onnx"
    p.write_bytes(b"")
    with pytest.raises(InputFileError) as e:
        load_onnx(p)
    _assert_clear(e.value, "empty")


@pytest.mark.parametrize("keep", [0.1, 0.5, 0.9])
def test_truncated_file(good, tmp_path, keep):
    from pathlib import Path

    data = Path(good).read_bytes()
    p = tmp_path / "trunc.onnx"
    p.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(InputFileError) as e:
        load_onnx(p)
    _assert_clear(e.value)


def test_not_onnx(tmp_path):
    p = tmp_path / "photo.onnx"
    p.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8)
    with pytest.raises(InputFileError) as e:
        load_onnx(p)
    _assert_clear(e.value)


def test_directory(tmp_path):
    with pytest.raises(InputFileError, match="directory"):
        load_onnx(tmp_path)


def test_unsupported_opset(tmp_path):
    m = models.conv_topk()
    m.opset_import[0].version = 99
    p = tmp_path / "future.onnx"
    onnx.save(m, str(p))
    with pytest.raises(InputFileError) as e:
        load_onnx(p)
    _assert_clear(e.value, "opset 99", "convert_version")


def test_lint_and_split_surface_the_same_errors(tmp_path):
    p = tmp_path / "bad.onnx"
    p.write_bytes(b"garbage" * 10)
    with pytest.raises(InputFileError):
        lint_onnx(p, use_dfc=False)
    with pytest.raises(InputFileError):
        stages_from_onnx(p)
