"""``hailo-qa compile``: exit codes and messages, with and without the DFC (contract fake)."""
from __future__ import annotations

import json
import sys
from types import SimpleNamespace

import numpy as np
import pytest

from hailo_qa.cli import main
from hailo_qa.hw import compile as hc
from tests.fakes.hailo_sdk_client import _support


def _manifest(tmp_path):
    onnx_path = _support.tiny_onnx(tmp_path / "tiny.onnx")
    m = tmp_path / "models.toml"
    body = "schema = 1\n"
    for v in ("atto", "femto"):
        body += (f'[models.deimv2_{v}]\nfile = "{onnx_path}"\n[[models.deimv2_{v}.inputs]]\nname = "images"\n'
                 f"shape = [1, 3, 8, 8]\n")
    m.write_text(body)
    return m


def test_without_the_dfc_compile_says_what_to_install_and_exits_2(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "hailo_sdk_client", None)
    assert main(["compile", "--no-split", "deimv2", "--manifest", str(_manifest(tmp_path))]) == 2
    err = capsys.readouterr().err
    assert "hailo_sdk_client) is not installed" in err and "Hint: install Hailo's Dataflow Compiler" in err


@pytest.fixture
def fake_env(monkeypatch):
    fake = _support.install(monkeypatch)
    calib = np.random.default_rng(0).random((8, 8, 8, 3), dtype=np.float32)
    monkeypatch.setattr(hc, "calib_for_model", lambda spec, size: calib)
    real_check = hc.check_hef
    monkeypatch.setattr(hc, "check_hef", lambda path, **kw: real_check(
        path, **{**kw, "hef_reader": lambda p: SimpleNamespace(hw_arch="hailo8p")}))
    from hailo_qa.runners import dfc

    monkeypatch.setattr(dfc, "gpu_available", lambda: (False, "test: no GPU"))
    return fake


def test_compile_a_family_isolates_failures_and_exits_1(fake_env, tmp_path, capsys):
    fake_env.parse_failures["deimv2_femto"] = ZeroDivisionError("float division by zero")
    out = tmp_path / "out"
    rc = main(["compile", "--no-split", "deimv2", "--manifest", str(_manifest(tmp_path)), "--out", str(out)])
    text = capsys.readouterr().out
    assert rc == 1
    assert "deimv2_femto failed at parse" in text and "ZeroDivisionError" in text
    assert (out / "deimv2_atto" / "deimv2_atto.hef").is_file()
    summary = json.loads((out / "compile_summary.json").read_text())
    assert [(v["variant"], v["ok"]) for v in summary["variants"]] == [("deimv2_atto", True), ("deimv2_femto", False)]


def test_compile_one_variant_then_resume_from_har(fake_env, tmp_path, capsys):
    m = _manifest(tmp_path)
    out = tmp_path / "out"
    assert main(["compile", "--no-split", "deimv2", "--variant", "atto", "--manifest", str(m), "--out", str(out)]) == 0
    assert not (out / "deimv2_femto").exists()
    q = out / "deimv2_atto" / "deimv2_atto_quantized.har"
    fake_env.calls.clear()
    assert main(["compile", "--no-split", "deimv2_atto", "--manifest", str(m), "--out", str(tmp_path / "o2"),
                 "--from-har", str(q)]) == 0
    assert [c[0] for c in fake_env.calls] == ["ClientRunner", "compile"]
    assert main(["compile", "--no-split", "deimv2", "--manifest", str(m), "--from-har", str(q)]) == 2
    assert "several variants" in capsys.readouterr().err


def test_unknown_variant_is_a_clear_error(fake_env, tmp_path, capsys):
    assert main(["compile", "--no-split", "deimv2", "--variant", "nano", "--manifest", str(_manifest(tmp_path))]) == 2
    err = capsys.readouterr().err
    assert "deimv2_nano not in the manifest" in err and "deimv2_atto" in err


def test_family_members_and_declared_variants_each_compile_and_every_run_keeps_its_summary(fake_env, tmp_path,
                                                                                          capsys):
    for member in ("atto", "femto"):
        _support.tiny_onnx(tmp_path / f"tiny_{member}.onnx")
    m = tmp_path / "models.toml"
    m.write_text('[models.deimv2]\n[models.deimv2.family]\nmembers = ["atto", "femto"]\npattern = "tiny_{member}.onnx"\n'
                 f'[[models.deimv2.inputs]]\nname = "images"\nshape = [1, 3, 8, 8]\n'
                 f'[[models.deimv2.variants]]\nprecision = "int8"\ncalib_size = 8\n'
                 f'[[models.deimv2.variants]]\nprecision = "int16"\ncalib_size = 4\n')
    fake_env.parse_failures["deimv2_femto_int16_calib4"] = ZeroDivisionError("float division by zero")
    out = tmp_path / "out"
    args = ["compile", "--no-split", "deimv2", "--manifest", str(m), "--out", str(out)]
    assert main(args) == 1
    text = capsys.readouterr().out
    assert "deimv2_femto_int16_calib4 failed at parse" in text
    summary = json.loads((out / "compile_summary.json").read_text())
    assert [(v["variant"], v["ok"]) for v in summary["variants"]] == [
        ("deimv2_atto_int8_calib8", True), ("deimv2_atto_int16_calib4", True), ("deimv2_femto_int8_calib8", True),
        ("deimv2_femto_int16_calib4", False)]
    assert (out / "deimv2_atto_int16_calib4" / "deimv2_atto_int16_calib4.hef").is_file()
    del fake_env.parse_failures["deimv2_femto_int16_calib4"]
    assert main(args) == 0
    runs = sorted((out / "runs").glob("compile_summary-*.json"))
    assert len(runs) == 2 and [json.loads(p.read_text())["ok"] for p in runs] == [False, True]
    assert json.loads((out / "compile_summary.json").read_text())["ok"]
