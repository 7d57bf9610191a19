"""Model scripts: golden texts, ONNX → HAR layer mapping, the parser, and generate → parse → generate."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hailo_qa.errors import InputFileError, ManifestError
from hailo_qa.manifest import InputSpec, ModelSpec, Preprocess, QuantizationSpec
from hailo_qa.quant.model_script import (
    AllsCommand,
    alls_from_spec,
    layer_map_from_hn,
    parse_alls,
    render_alls,
    resolve_layers,
    write_alls,
)

GOLDEN = Path(__file__).parent / "data" / "alls"

# HN dict shape per HAILO_TOOLCHAIN.md §1.9
HN = {"name": "mfn", "net_params": {"output_layers_order": ["mfn/fc1"]},
      "layers": {
          "mfn/input_layer1": {"type": "input_layer", "original_names": ["input"]},
          "mfn/conv1": {"type": "conv", "original_names": ["/conv1/Conv", "/conv1/BatchNormalization", "/act1/Clip"]},
          "mfn/dw2": {"type": "dw", "original_names": ["/dw2/Conv"]},
          "mfn/conv3": {"type": "conv", "original_names": ["/conv3/Conv"]},
          "mfn/fc1": {"type": "fc", "original_names": ["/fc/MatMul", "/bn/BatchNormalization"]},
          "mfn/output_layer1": {"type": "output_layer", "original_names": []}}}


def spec(*, normalization="host", method="minmax", int16_layers=(), level=2, compression=0,
         mean=(127.5, 127.5, 127.5), std=(127.5, 127.5, 127.5)) -> ModelSpec:
    return ModelSpec(
        name="mfn", file=None, task="embedding",
        inputs=(InputSpec("input", (1, 3, 112, 112), range=(-1.0, 1.0),
                          preprocess=Preprocess("RGB", mean, std)),),
        quantization=QuantizationSpec(configs=("int8", "int16_selective", "int16"), int16_layers=int16_layers,
                                      calibration_method=method, optimization_level=level,
                                      compression_level=compression, normalization=normalization))


CASES = {
    "host_int8": lambda: alls_from_spec(spec(), "int8", calib_size=64),
    "host_int16": lambda: alls_from_spec(spec(), "int16", calib_size=1024, batch_size=16),
    "on_chip_int8": lambda: alls_from_spec(spec(normalization="on_chip"), "int8", calib_size=64),
    "on_chip_int16_selective_onnx_names": lambda: alls_from_spec(
        spec(normalization="on_chip", int16_layers=("/fc/MatMul", "/conv1/Conv", "dw2")), "int16_selective",
        calib_size=256, layer_map=layer_map_from_hn(HN)),
    "percentile_level0_a8_w4": lambda: alls_from_spec(
        spec(method="percentile", level=0), "int8", calib_size=4, layer_map=layer_map_from_hn(HN),
        layer_precision={"/conv3/Conv": "a8_w4", "mfn/output_layer1": "a16_w16"}),
    "yunet_like_0_255": lambda: alls_from_spec(
        spec(normalization="on_chip", mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0)), "int16", calib_size=16),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden_text(case):
    text = CASES[case]()
    golden = GOLDEN / f"{case}.alls"
    assert golden.is_file(), f"golden {golden} is missing; review this text and commit it:\n{text}"
    assert text == golden.read_text(encoding="utf-8")


def test_golden_contents_follow_model_zoo_syntax():
    on_chip = (GOLDEN / "on_chip_int16_selective_onnx_names.alls").read_text()
    assert on_chip.splitlines()[0] == "normalization1 = normalization([127.5, 127.5, 127.5], [127.5, 127.5, 127.5])"
    assert "quantization_param([mfn/fc1, mfn/conv1, dw2], precision_mode=a16_w16)" in on_chip
    assert "quantization_param({*}, precision_mode=a16_w16)" in (GOLDEN / "host_int16.alls").read_text()
    assert "normalization" not in (GOLDEN / "host_int8.alls").read_text()


def test_int8_has_no_precision_lines_and_levels_come_from_the_manifest():
    text = alls_from_spec(spec(level=3, compression=1), "int8", calib_size=32)
    assert "quantization_param" not in text
    assert "model_optimization_flavor(optimization_level=3, compression_level=1)" in text
    assert "model_optimization_config(calibration, batch_size=8, calibset_size=32)" in text
    assert "batch_size=2, calibset_size=2" in alls_from_spec(spec(), "int8", calib_size=2)


def test_layer_map_from_hn():
    m = layer_map_from_hn(HN)
    assert m["/conv1/BatchNormalization"] == ("mfn/conv1",)
    assert m["mfn/fc1"] == ("mfn/fc1",)
    two = {"layers": {"n/conv1": {"original_names": ["Conv_0"]}, "n/conv2": {"original_names": ["Conv_0"]}}}
    assert layer_map_from_hn(two)["Conv_0"] == ("n/conv1", "n/conv2")
    with pytest.raises(InputFileError, match="no 'layers'"):
        layer_map_from_hn({"name": "x"})


def test_unknown_layer_suggests_near_matches():
    with pytest.raises(ManifestError) as exc:
        resolve_layers(["/conv1/Cov"], layer_map_from_hn(HN), model="mfn")
    msg = str(exc.value)
    assert "maps to no HAR layer" in msg and "did you mean" in msg and "'/conv1/Conv'" in msg


def test_names_pass_through_without_a_map_and_globs_always():
    assert resolve_layers(["conv3", "conv3", "{conv*}"], None) == ("conv3", "{conv*}")
    assert resolve_layers(["{dw*}"], layer_map_from_hn(HN)) == ("{dw*}",)
    with pytest.raises(ManifestError, match="cannot be written"):
        resolve_layers(["a b(c)"], None)


@pytest.mark.parametrize("kwargs,match", [
    (dict(config="int4"), "unknown"),
    (dict(config="int8", calib_size=0), "not a positive integer"),
    (dict(config="int8", batch_size=0), "batch_size"),
    (dict(config="int16_selective"), "names no layers"),
    (dict(config="int8", layer_precision={"mfn/conv1": "a4_w4"}), "precision mode"),
], ids=["config", "calib_size", "batch_size", "no-layers", "mode"])
def test_bad_arguments(kwargs, match):
    kwargs.setdefault("calib_size", 64)
    config = kwargs.pop("config")
    with pytest.raises(ManifestError, match=match):
        alls_from_spec(spec(), config, **kwargs)


def test_on_chip_needs_a_preprocess():
    s = spec(normalization="on_chip")
    s = dataclasses.replace(s, inputs=(dataclasses.replace(s.inputs[0], preprocess=None),))
    with pytest.raises(ManifestError, match="no preprocess"):
        alls_from_spec(s, "int8", calib_size=8)


# ---- parser -------------------------------------------------------------------------------------------------------
def test_parse_model_zoo_lines():
    text = ("# comment\n\nnormalization1 = normalization([123.675, 116.28, 103.53], [58.395, 57.12, 57.375])\n"
            "quantization_param([conv1, conv2], precision_mode=a16_w16)\n"
            "pre_quantization_optimization(activation_clipping, layers=[conv9], mode=percentile, "
            "clipping_values=[0.01, 99.7])\n"
            'nms_postprocess("../cfg/x.json", meta_arch=yolov8, engine=cpu)\n')
    cmds = parse_alls(text)
    assert [c.op for c in cmds] == ["normalization", "quantization_param", "pre_quantization_optimization",
                                    "nms_postprocess"]
    assert cmds[0].lhs == "normalization1" and cmds[0].args[1] == "[58.395, 57.12, 57.375]"
    assert cmds[1].args == ("[conv1, conv2]",) and cmds[1].kwarg("precision_mode") == "a16_w16"
    assert cmds[2].kwarg("clipping_values") == "[0.01, 99.7]"
    assert cmds[3].args == ('"../cfg/x.json"',)


@pytest.mark.parametrize("line,match", [
    ("quantization_param(conv1", "cannot parse"),
    ("quantization_param([conv1, precision_mode=a16_w16)", "unclosed"),
    ("f(a=1, b)", "positional argument"),
    ("f(a,, b)", "empty argument"),
    ("not a command", "cannot parse"),
])
def test_parse_errors_name_the_line(line, match):
    with pytest.raises(InputFileError, match=match) as exc:
        parse_alls("model_optimization_flavor(optimization_level=2)\n" + line, source="x.alls")
    assert "x.alls:2" in str(exc.value)


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden_generate_parse_generate_is_a_fixed_point(case):
    text = CASES[case]()
    assert render_alls(parse_alls(text)) == text


_layer = st.from_regex(r"\A[a-z][a-z0-9_]{0,6}(/[a-z][a-z0-9_]{0,6})?\Z")


@given(normalization=st.sampled_from(["host", "on_chip"]), method=st.sampled_from(["minmax", "percentile"]),
       config=st.sampled_from(["int8", "int16_selective", "int16"]), level=st.integers(0, 4),
       compression=st.integers(0, 5), calib_size=st.integers(1, 4096), batch=st.none() | st.integers(1, 64),
       layers=st.lists(_layer, min_size=1, max_size=5),
       mean=st.tuples(*[st.floats(0, 255, allow_nan=False)] * 3),
       std=st.tuples(*[st.floats(0.5, 255, allow_nan=False)] * 3),
       extra=st.dictionaries(_layer, st.sampled_from(["a8_w8", "a8_w4", "a16_w16"]), max_size=3))
def test_generate_parse_generate_is_a_fixed_point(normalization, method, config, level, compression, calib_size,
                                                   batch, layers, mean, std, extra):
    s = spec(normalization=normalization, method=method, int16_layers=tuple(layers), level=level,
             compression=compression, mean=mean, std=std)
    text = alls_from_spec(s, config, calib_size=calib_size, batch_size=batch, layer_precision=extra)
    cmds = parse_alls(text)
    assert render_alls(cmds) == text
    assert parse_alls(render_alls(cmds)) == cmds
    norm = [c for c in cmds if c.op == "normalization"]
    assert len(norm) == (normalization == "on_chip")
    if norm:  # the numbers survive the round trip exactly
        assert [float(v) for v in norm[0].args[0].strip("[]").split(",")] == [float(m) for m in mean]
    cfg = next(c for c in cmds if c.op == "model_optimization_config")
    assert cfg.kwarg("calibset_size") == str(calib_size)


def test_render_and_atomic_write(tmp_path):
    cmds = (AllsCommand("model_optimization_flavor", kwargs=(("optimization_level", "2"),)),)
    p = write_alls(render_alls(cmds), tmp_path / "sub" / "m.alls")
    assert p.read_text() == "model_optimization_flavor(optimization_level=2)\n"
    assert [q.name for q in p.parent.iterdir()] == ["m.alls"]  # no temp file left behind


def test_map_alls_layers_rewrites_only_layer_lines():
    from hailo_qa.quant.model_script import map_alls_layers

    text = ("# a user's script\nnormalization1 = normalization([0.0], [1.0])\n"
            "quantization_param([/fc/MatMul, /conv1/Conv], precision_mode=a16_w16)\n"
            "quantization_param(/conv3/Conv, precision_mode=a8_w8_a16)\n"
            "quantization_param({dw*}, precision_mode=a16_w16)\n")
    got = map_alls_layers(text, layer_map_from_hn(HN), model="mfn")
    assert got == ("# a user's script\nnormalization1 = normalization([0.0], [1.0])\n"
                   "quantization_param([mfn/fc1, mfn/conv1], precision_mode=a16_w16)\n"
                   "quantization_param(mfn/conv3, precision_mode=a8_w8_a16)\n"
                   "quantization_param({dw*}, precision_mode=a16_w16)\n")
    with pytest.raises(ManifestError, match="did you mean"):
        map_alls_layers("quantization_param(/fc/MatMull, precision_mode=a16_w16)\n", layer_map_from_hn(HN))
