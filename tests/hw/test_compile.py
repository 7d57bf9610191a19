"""The compile pipeline against the ``hailo_sdk_client`` contract fake: isolation, resume, checks, level policy."""
from __future__ import annotations

import json
import struct
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from hailo_qa.errors import ManifestError
from hailo_qa.hw import compile as hc
from hailo_qa.manifest import load_manifest
from hailo_qa.runners.dfc import OptimizationLevelWarning
from tests.fakes.hailo_sdk_client import _support

ALLS = "model_optimization_config(calibration, calibset_size=8)\n"
CODES = {1: "hailo8p", 2: "hailo8r", 3: "hailo8l"}


def read_arch(path: Path):
    """Test HEF reader: header v1, then ProtoHEFHef.header(1).hw_arch(1) (HAILO_TOOLCHAIN.md §6)."""
    raw = path.read_bytes()
    magic, version, proto_size = struct.unpack(">III", raw[:12])
    assert magic == 0x01484546 and version == 1
    proto = raw[28:28 + proto_size]
    assert proto[0] == 0x0A and proto[2] == 0x08
    return SimpleNamespace(hw_arch=CODES[proto[3]])


@pytest.fixture
def fake(monkeypatch):
    return _support.install(monkeypatch)


@pytest.fixture
def onnx_path(tmp_path):
    return _support.tiny_onnx(tmp_path / "tiny.onnx")


def variant(onnx_path, name="tiny_a", **kw):
    return hc.Variant(name, onnx_path, ("images",), (), {"images": (1, 3, 8, 8)}, **kw)


CALIB = np.random.default_rng(0).random((8, 8, 8, 3), dtype=np.float32)


def run(variants, out, **kw):
    kw.setdefault("hef_reader", read_arch)
    kw.setdefault("gpu", False)
    kw.setdefault("calib", CALIB)
    return hc.compile_variants(variants, out_dir=out, alls=ALLS, **kw)


def test_one_variant_failing_does_not_stop_the_others(fake, tmp_path, onnx_path):
    fake.parse_failures["tiny_b"] = ZeroDivisionError("float division by zero")
    s = run([variant(onnx_path, "tiny_b"), variant(onnx_path, "tiny_a")], tmp_path / "out")
    assert not s
    b, a = s.results
    assert (b.ok, b.failed_step, b.error_class) == (False, "parse", "ToolchainError")
    assert "ZeroDivisionError: float division by zero" in b.error
    assert a.ok and Path(a.artifacts["hef"]).is_file()
    for key in ("har", "quantized_har", "alls"):
        assert Path(a.artifacts[key]).is_file()
    assert Path(a.artifacts["alls"]).read_text() == ALLS
    assert a.optimization["used"] == 0 and a.optimization["predicted"] == 0
    assert a.checks["hef_arch"] == "hailo8p"
    assert "Reducing optimization level to 0" in (tmp_path / "out/tiny_a/logs/optimize.log").read_text()
    saved = json.loads((tmp_path / "out/compile_summary.json").read_text())
    assert [(v["variant"], v["ok"], v["failed_step"]) for v in saved["variants"]] == [
        ("tiny_b", False, "parse"), ("tiny_a", True, None)]
    assert "tiny_b" in s.table() and "FAILED" in s.table()


def test_resume_from_the_quantized_har_skips_parse_and_optimize(fake, tmp_path, onnx_path):
    from hailo_sdk_client.runner.client_runner import HailoToolsException

    fake.compile_failures["tiny_a"] = HailoToolsException("Couldn't launch Hailo tool securely")
    first = run([variant(onnx_path)], tmp_path / "out").results[0]
    assert (first.failed_step, first.error_class) == ("compile", "EnvironmentProblem")
    assert "loopback" in first.error and Path(first.artifacts["quantized_har"]).is_file()
    fake.compile_failures.clear()
    fake.calls.clear()
    again = run([variant(onnx_path)], tmp_path / "out").results[0]
    assert again.ok
    assert [c[0] for c in fake.calls] == ["ClientRunner", "compile"]
    assert [(st.step, st.status) for st in again.steps] == [
        ("parse", "skipped"), ("optimize", "skipped"), ("compile", "ok"), ("check", "ok")]


def test_from_har_resumes_an_explicit_file(fake, tmp_path, onnx_path):
    q = run([variant(onnx_path)], tmp_path / "first").results[0].artifacts["quantized_har"]
    fake.calls.clear()
    r = run([variant(onnx_path)], tmp_path / "second", from_har=q, calib=None).results[0]
    assert r.ok and ("translate" not in [c[0] for c in fake.calls])
    with pytest.raises(Exception, match="several variants"):
        run([variant(onnx_path), variant(onnx_path, "tiny_b")], tmp_path / "x", from_har=q)


def test_hef_for_the_wrong_arch_fails_the_check(fake, tmp_path, onnx_path):
    fake.hef_arch = "hailo8"
    r = run([variant(onnx_path, hw_arch="hailo8l")], tmp_path / "out").results[0]
    assert (r.ok, r.failed_step) == (False, "check")
    assert "targets hailo8p" in r.error and "hailo8l" in r.error


def test_hef_over_the_size_budget_fails_the_check(fake, tmp_path, onnx_path):
    fake.hef_padding = 1_500_000
    r = run([variant(onnx_path, max_hef_mb=1.0)], tmp_path / "out").results[0]
    assert (r.ok, r.failed_step) == (False, "check") and "at most 1 MB" in r.error
    ok = run([variant(onnx_path, max_hef_mb=2.0)], tmp_path / "out2").results[0]
    assert ok.ok and 1.5 <= ok.checks["size_mb"] < 2.0


def test_lower_optimization_level_fails_before_optimizing(fake, tmp_path, onnx_path):
    v = variant(onnx_path, min_optimization_level=2, on_lower_level="fail")
    r = run([v], tmp_path / "out").results[0]
    assert (r.failed_step, r.error_class) == ("optimize", "OptimizationLevelError")
    assert "no available GPU" in r.error
    assert "optimize" not in [c[0] for c in fake.calls]


def test_lower_optimization_level_warns_and_goes_on(fake, tmp_path, onnx_path):
    fake.gpu = True
    v = variant(onnx_path, min_optimization_level=2, on_lower_level="warn")
    with pytest.warns(OptimizationLevelWarning) as rec:
        r = run([v], tmp_path / "out", gpu=True).results[0]  # predicted 1 (8 samples), log says 1
    assert r.ok and r.optimization["used"] == 1 and r.optimization["used_source"] == "log"
    assert len(rec) == 2 and "will optimize at level 1" in str(rec[0].message)


def test_compile_model_from_a_manifest(fake, tmp_path, onnx_path):
    m = tmp_path / "models.toml"
    m.write_text(f"""schema = 1
[models.tiny_a]
file = "{onnx_path}"
hw_arch = "hailo8"
[[models.tiny_a.inputs]]
name = "images"
shape = [1, 3, 8, 8]
[models.tiny_a.thresholds.hailo8]
max_hef_mb = 5
[models.tiny_b]
file = "{onnx_path}"
[[models.tiny_b.inputs]]
name = "images"
shape = [1, 3, 8, 8]
""")
    man = load_manifest(m)
    v = hc.variant_for_model(man.get("tiny_a"), work_dir=tmp_path, use_split=False)
    assert (v.max_hef_mb, v.start_nodes, dict(v.input_shapes)) == (5.0, ("images",), {"images": (1, 3, 8, 8)})
    s = hc.compile_model(man.get("tiny_a"), out_dir=tmp_path / "out", alls=ALLS, calib=CALIB, gpu=False,
                         hef_reader=read_arch, use_split=False)
    assert s and s.results[0].checks["max_hef_mb"] == 5.0
    assert hc.select_variants(man.names(), "tiny") == ["tiny_a", "tiny_b"]
    assert hc.select_variants(man.names(), "tiny", ["b"]) == ["tiny_b"]
    assert hc.select_variants(man.names(), "tiny_a") == ["tiny_a"]
    with pytest.raises(ManifestError, match="tiny_c"):
        hc.select_variants(man.names(), "tiny", ["c"])


def test_fallback_model_script_carries_the_level_and_calib_size(tmp_path, onnx_path):
    spec = SimpleNamespace(quantization=SimpleNamespace(optimization_level=3, compression_level=0))
    text = hc.fallback_alls(spec, calib_size=256)
    assert "optimization_level=3" in text and "calibset_size=256" in text


def test_checks_use_the_hef_helpers_reader_by_default(fake, tmp_path, onnx_path):
    r = run([variant(onnx_path)], tmp_path / "out", hef_reader=None).results[0]
    assert r.ok and r.checks["hef_arch"] == "hailo8p"
    fake.hef_arch = "hailo8"
    bad = run([variant(onnx_path, "tiny_b", hw_arch="hailo8l")], tmp_path / "out2", hef_reader=None).results[0]
    assert bad.failed_step == "check" and "targets hailo8p" in bad.error


def test_16bit_onnx_names_are_mapped_to_hn_names_after_parsing(fake, tmp_path, onnx_path):
    """quantization_param takes HN layer names (HAILO_TOOLCHAIN.md §8): the script is mapped through the parsed HN
    before it is loaded; a name that maps to nothing fails the model_script step with near matches."""
    alls = ALLS + "quantization_param([/relu/Relu, tiny_a/avgpool1], precision_mode=a16_w16)\n"
    (r,) = hc.compile_variants([variant(onnx_path)], out_dir=tmp_path / "out", alls=alls, calib=CALIB, gpu=False,
                               hef_reader=read_arch).results
    assert r.ok, r.error
    assert Path(r.artifacts["alls"]).read_text() == ALLS + (
        "quantization_param([tiny_a/conv1, tiny_a/avgpool1], precision_mode=a16_w16)\n")
    bad = ALLS + "quantization_param(/conv/Cnv, precision_mode=a8_w8_a16)\n"
    (r2,) = hc.compile_variants([variant(onnx_path, "tiny_b")], out_dir=tmp_path / "out2", alls=bad, calib=CALIB,
                                gpu=False, hef_reader=read_arch).results
    assert (r2.ok, r2.failed_step) == (False, "model_script")
    assert "did you mean" in r2.error and "'/conv/Conv'" in r2.error


def test_an_unknown_level_is_recorded_as_unknown_not_the_requested_one(fake, tmp_path, onnx_path):
    fake.level_log = ()
    (r,) = run([variant(onnx_path, requested_level=2)], tmp_path / "out").results
    assert r.ok and r.optimization["used"] == "unknown" and r.optimization["requested"] == 2
    assert "not in the DFC's logs" in r.optimization["used_source"]


def test_level_drop_preflight_counts_real_samples_only(fake, tmp_path, onnx_path):
    """1100 samples of which 100 are real: the DFC's "fewer than 1024 samples" drop is predicted (level 1), the
    augmented 1000 do not count; 1100 real samples keep level 2."""
    rng = np.random.default_rng(0)
    mixed = rng.random((1100, 8, 8, 3), dtype=np.float32).view(hc.CalibArray)
    mixed.real_samples = 100
    fake.gpu = True
    with pytest.warns(OptimizationLevelWarning, match="less data than the recommended amount"):
        (r,) = run([variant(onnx_path, requested_level=2, min_optimization_level=2)], tmp_path / "a", calib=mixed,
                   gpu=True).results
    o = r.optimization
    assert (o["predicted"], o["calib_size"], o["calib_real"], o["calib_augmented"]) == (1, 100, 100, 1000)
    assert "(got 100)" in o["reason"]
    real = np.asarray(mixed).copy()  # a plain array: every sample real
    (r2,) = run([variant(onnx_path, "tiny_b", requested_level=2, min_optimization_level=2)], tmp_path / "b",
                calib=real, gpu=True).results
    assert (r2.optimization["predicted"], r2.optimization["calib_real"], r2.optimization["reason"]) == (2, 1100, "")


def test_calib_for_model_carries_the_real_count(tmp_path):
    """The manifest path: 3 real .npy samples, augmentation opted in, 40 requested -> 40 samples, 3 counted real."""
    d = tmp_path / "calib"
    d.mkdir()
    for i in range(3):
        np.save(d / f"s{i}.npy", np.random.default_rng(i).uniform(0, 1, (1, 3, 8, 8)).astype(np.float32))
    m = tmp_path / "models.toml"
    m.write_text(f"""schema = 1
[models.tiny]
file = "{_support.tiny_onnx(tmp_path / 'tiny.onnx')}"
[[models.tiny.inputs]]
name = "images"
shape = [1, 3, 8, 8]
range = [0.0, 1.0]
[models.tiny.calibration]
source = "calib"
augment = true
""")
    arr = hc.calib_for_model(load_manifest(m).get("tiny"), size=40)
    assert arr.shape == (40, 8, 8, 3) and arr.real_samples == 3 and hc._calib_count(arr) == 3
