"""The manifest: real entries load into typed records; every mistake names the file, the model and the key."""
from __future__ import annotations

import textwrap

import pytest

from hailo_qa import config
from hailo_qa.errors import ManifestError
from hailo_qa.manifest import load_manifest

MODEL = "../shared/models/mtcnn_onet.onnx"


def _write(tmp_path, body: str, model_file: bool = True):
    if model_file:
        (tmp_path / "m.onnx").write_bytes(b"x")
    p = tmp_path / "models.toml"
    p.write_text(textwrap.dedent(body))
    return p


BASE = """
[models.a]
file = "m.onnx"
task = "classification"
[[models.a.inputs]]
name = "x"
shape = [1, 3, 8, 8]
range = [0.0, 1.0]
"""


def test_repo_manifest_loads_with_the_real_models():
    m = load_manifest()
    names = m.names()
    for n in ("deimv2_atto", "yunet", "mtcnn_onet", "mobilefacenet"):
        assert n in names
    deim = m.get("deimv2_atto")
    assert deim.file.is_file() and deim.task == "detection"
    assert [i.name for i in deim.device_inputs] == ["images"]
    assert deim.host_inputs[0].constant().tolist() == [[320, 320]]
    assert len(deim.digest()) == 64


def test_minimal_entry_and_defaults(tmp_path):
    m = load_manifest(_write(tmp_path, BASE))
    a = m.get("a")
    assert a.split.mode == "auto" and a.split.atol == 0.0 and a.quantization.configs == ("int8",)
    assert a.inputs[0].shape == (1, 3, 8, 8) and a.inputs[0].layout == "NCHW"


@pytest.mark.parametrize("extra,words", [
    ("colour = 1\n", ["unknown key 'models.a.colour'", "models.toml"]),
    ("[models.a.split]\nmode = \"explicit\"\n", ["explicit but names no cut"]),
    ("[models.a.split]\natol = 0.01\n", ["no written justification"]),
    ("[models.a.split]\nmod = \"auto\"\n", ["unknown key 'models.a.split.mod'", "did you mean 'mode'"]),
    ("[models.a.thresholds.emulator.int8]\nmin_snr = 30\n", ["unknown threshold key", "min_snr_db"]),
    ("[models.a.thresholds.emulatr]\nmin_snr_db = 30\n", ["unknown threshold section"]),
    ("[models.a.quantization]\nconfigs = [\"int4\"]\n", ["unknown precision config"]),
    ("[models.a.calibration]\nmax_samples = \"lots\"\n", ["wrong type", "an integer"]),
])
def test_mistakes_are_named(tmp_path, extra, words):
    body = BASE.replace('task = "classification"\n', 'task = "classification"\n' + extra) \
        if not extra.startswith("[") else BASE + extra
    with pytest.raises(ManifestError) as e:
        load_manifest(_write(tmp_path, body))
    text = str(e.value)
    for w in words:
        assert w in text, (w, text)
    assert "Note:" in text


def test_wrong_types_and_shapes(tmp_path):
    with pytest.raises(ManifestError, match="shape"):
        load_manifest(_write(tmp_path, BASE.replace("[1, 3, 8, 8]", "[1, -3, 8, 8]")))
    with pytest.raises(ManifestError, match="range"):
        load_manifest(_write(tmp_path, BASE.replace("[0.0, 1.0]", "[1.0, 0.0]")))
    with pytest.raises(ManifestError, match="wrong type"):
        load_manifest(_write(tmp_path, BASE.replace('task = "classification"', "task = 3")))
    with pytest.raises(ManifestError, match="expected one of"):
        load_manifest(_write(tmp_path, BASE.replace('task = "classification"', 'task = "segmentation"')))


def test_missing_repo_file_is_an_error_but_missing_shared_file_is_a_skip_reason(tmp_path, monkeypatch):
    with pytest.raises(ManifestError, match="missing file"):
        load_manifest(_write(tmp_path, BASE, model_file=False))
    monkeypatch.setattr(config, "SHARED_DIR", tmp_path / "no-shared")
    m = load_manifest(_write(tmp_path, BASE.replace('"m.onnx"', '"shared:models/x.onnx"'), model_file=False))
    a = m.get("a")
    assert not a.available and "HAILO_QA_SHARED" in a.unavailable


def test_invalid_toml_and_missing_manifest(tmp_path):
    with pytest.raises(ManifestError, match="not valid TOML"):
        load_manifest(_write(tmp_path, "[models.a\n"))
    with pytest.raises(ManifestError, match="does not exist"):
        load_manifest(tmp_path / "absent.toml")


def test_unknown_model_name_suggests(tmp_path):
    m = load_manifest(_write(tmp_path, BASE))
    with pytest.raises(ManifestError, match="did you mean 'a'"):
        m.get("aa")


def test_host_input_needs_a_value_that_fits(tmp_path):
    body = BASE + '[[models.a.inputs]]\nname = "sz"\nshape = [1, 2]\ndtype = "int64"\nrole = "host"\n'
    with pytest.raises(ManifestError, match="without a 'value'"):
        load_manifest(_write(tmp_path, body))
    with pytest.raises(ManifestError, match="does not fit"):
        load_manifest(_write(tmp_path, body + "value = [1, 2, 3]\n"))


def test_network_group_of_a_multi_group_hef(tmp_path):
    m = load_manifest(_write(tmp_path, BASE.replace('task = "classification"',
                                                    'task = "classification"\nnetwork_group = "net_b"')))
    assert m.get("a").network_group == "net_b"
    assert load_manifest(_write(tmp_path, BASE)).get("a").network_group == ""


# -- variants of one model (issue 11 item 1) and families (issue 10 item 8) ----------------------------------------
VARIANTS = BASE + """
[[models.a.variants]]
precision = "int16_selective"
int16_layers = ["fc1", "conv33", "dw16"]
calib_size = 2048
calib_source = "pi-captures"
[[models.a.variants]]
target = "hailo8"
precision = "int8"
hef = "a_int8.hef"
[[models.a.variants]]
precision = "int8"
calib_size = 1023
"""


def test_variants_carry_their_labels_and_the_int8_baseline_comes_first(tmp_path):
    (tmp_path / "a_int8.hef").write_bytes(b"h")
    a = load_manifest(_write(tmp_path, VARIANTS)).get("a")
    assert [v.id for v in a.variants] == ["int8@hailo8", "int16_selective-calib2048@emulator",
                                         "int8-calib1023@emulator"]
    sel = a.variant("int16_selective-calib2048@emulator")
    assert sel.int16_layers == ("fc1", "conv33", "dw16") and sel.calib_source == "pi-captures"
    assert "fc1, conv33, dw16" in sel.label() and "calib 2048 from pi-captures" in sel.label()
    assert a.variant("int8@hailo8").hef == tmp_path / "a_int8.hef"
    with pytest.raises(ManifestError, match="(?s)no variant .int8-calib1024@emulator.*int8-calib1023"):
        a.variant("int8-calib1024@emulator")


def test_without_declared_variants_the_sweep_is_configs_times_sizes_plus_the_hef(tmp_path):
    body = BASE + '[models.a.quantization]\nconfigs = ["int16", "int8"]\n[models.a.calibration]\nsizes = [16, 64]\n'
    a = load_manifest(_write(tmp_path, body)).get("a")
    assert [v.id for v in a.variants] == ["int8-calib16@emulator", "int16-calib16@emulator", "int16-calib64@emulator",
                                         "int8-calib64@emulator"]
    hef_only = load_manifest(_write(tmp_path, '[models.h]\nhef = "shared:hef/nothing_here.hef"\ntask = "embedding"\n'))
    (v,) = hef_only.get("h").variants
    assert v.id == "hef@hailo8" and not v.available and "nothing_here.hef" in v.unavailable


@pytest.mark.parametrize("extra,words", [
    ('[[models.a.variants]]\ntarget = "hailo8"\n', ["variants[0].hef is missing", "compiled HEF"]),
    ('[[models.a.variants]]\nprecision = "int4"\n', ["variants[0].precision is 'int4'"]),
    ('[[models.a.variants]]\nprecision = "int8"\nint16_layers = ["x"]\n', ["int16_layers is set for precision"]),
    ('[[models.a.variants]]\ncalib_size = 0\n', ["calib_size is 0"]),
    ('[[models.a.variants]]\ncalib_sise = 8\n', ["unknown key 'models.a.variants[0].calib_sise'", "calib_size"]),
    ('[[models.a.variants]]\nprecision = "int8"\n[[models.a.variants]]\nprecision = "int8"\n',
     ["repeat the id 'int8-calib64@emulator'", "distinct name"]),
])
def test_variant_mistakes_name_the_key(tmp_path, extra, words):
    with pytest.raises(ManifestError) as e:
        load_manifest(_write(tmp_path, BASE + extra))
    for w in words:
        assert w in str(e.value)


FAMILY = """
[models.deim]
task = "detection"
[models.deim.family]
members = ["atto", "femto"]
pattern = "deim_{member}.onnx"
[models.deim.family.pico]
file = "deim_pico_v2.onnx"
[[models.deim.family.pico.inputs]]
name = "x"
shape = [1, 3, 640, 640]
[[models.deim.inputs]]
name = "x"
shape = [1, 3, 320, 320]
"""


def test_a_family_expands_into_one_model_per_member(tmp_path):
    for f in ("deim_atto.onnx", "deim_femto.onnx", "deim_pico_v2.onnx"):
        (tmp_path / f).write_bytes(b"x")
    m = load_manifest(_write(tmp_path, FAMILY, model_file=False))
    assert m.names() == ["deim_atto", "deim_femto", "deim_pico"]
    femto, pico = m.get("deim_femto"), m.get("deim_pico")
    assert femto.file.name == "deim_femto.onnx" and femto.family == "deim" and femto.family_member == "femto"
    assert femto.inputs[0].shape == (1, 3, 320, 320) and pico.inputs[0].shape == (1, 3, 640, 640)


def test_family_mistakes_are_manifest_errors(tmp_path):
    (tmp_path / "deim_atto.onnx").write_bytes(b"x")
    with pytest.raises(ManifestError, match="deim_femto.onnx"):  # a member's missing repo file names it
        load_manifest(_write(tmp_path, FAMILY, model_file=False))
    with pytest.raises(ManifestError, match="no \\{member\\} placeholder"):
        load_manifest(_write(tmp_path, FAMILY.replace("deim_{member}", "deim"), model_file=False))
    clash = FAMILY + '[models.deim_atto]\nfile = "deim_atto.onnx"\n[[models.deim_atto.inputs]]\nname="x"\nshape=[1]\n'
    for f in ("deim_femto.onnx", "deim_pico_v2.onnx"):
        (tmp_path / f).write_bytes(b"x")
    with pytest.raises(ManifestError, match="'deim_atto' is registered twice"):
        load_manifest(_write(tmp_path, clash, model_file=False))
