"""``hailo-qa emulate``: one run, the metric table, the backend named; errors exit 2 with Note/Hint."""
from __future__ import annotations

import json

import pytest

from hailo_qa.cli import main
from hailo_qa.manifest import load_manifest


@pytest.fixture(scope="module", autouse=True)
def _onet():
    spec = load_manifest().get("mtcnn_onet")
    if not spec.available:
        pytest.skip(f"mtcnn_onet is not present: {spec.unavailable}")


def test_table_names_the_ort_backend_as_an_approximation(tmp_path, capsys):
    assert main(["emulate", "mtcnn_onet", "--calib-size", "16", "--backend", "ort", "--work-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("mtcnn_onet [int8, calib 16] on ort-emulator[int8]@")
    assert "approximation of Hailo numerics" in out and "hailo=False" in out
    for metric in ("snr_db", "cosine ", "cosine_mean", "max_abs_err"):
        assert f"  {metric}" in out
    assert "evaluated on 4 inputs" in out and "Chris" not in out.split("evaluated on")[0]


def test_json(tmp_path, capsys):
    assert main(["emulate", "mtcnn_onet", "--calib-size", "16", "--backend", "ort", "--config", "int16", "--json",
                 "--work-dir", str(tmp_path)]) == 0
    d = json.loads(capsys.readouterr().out)
    assert (d["model"], d["config"], d["calib_size"], d["backend"]["name"], d["backend"]["hailo"]) == (
        "mtcnn_onet", "int16", 16, "ort-emulator", False)
    per_output = {k for k in d["metrics"] if "/" in k}  # several Stage-1 outputs: each kept on its own too
    assert per_output and all(k.split("/")[0] in ("snr_db", "cosine") for k in per_output)
    assert set(d["metrics"]) - per_output == {"snr_db", "cosine", "cosine_mean", "max_abs_err"}
    assert len(d["eval_inputs"]) == 4
    assert "approximation" in d["backend_note"] and len(d["calib_sha256"]) == 64


def test_failed_gate_exits_1(tmp_path, capsys):
    """One calibration sample is far too few for mtcnn_onet's INT8 gates (min SNR 35 dB at 16 samples)."""
    rc = main(["emulate", "mtcnn_onet", "--calib-size", "1", "--backend", "ort", "--work-dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 1 and "FAIL" in out


def test_unknown_model_exits_2_with_note_and_hint(tmp_path, capsys):
    assert main(["emulate", "mtcnn_oent", "--backend", "ort", "--work-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "error: model 'mtcnn_oent' is not in the manifest" in err and "Note:" in err and "mtcnn_onet" in err


def test_dfc_without_the_dfc_exits_2(tmp_path, capsys):
    from hailo_qa import toolchain

    if toolchain.dfc().found:
        pytest.skip("the real DFC is installed here")
    assert main(["emulate", "mtcnn_onet", "--calib-size", "4", "--backend", "dfc", "--work-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "hailo_sdk_client is not importable" in err and "Hint:" in err


def test_int16_selective_without_layers_uses_the_noise_suggestion(tmp_path, capsys):
    """The suggestion is measured against int8 at the same calibration: on O-Net at calib 4 it does not help
    (26.13 vs 26.13 dB, measured), so emulate says so and exits 1 (the manifest records no such outcome)."""
    rc = main(["emulate", "mtcnn_onet", "--calib-size", "4", "--backend", "ort", "--config", "int16_selective",
               "--json", "--work-dir", str(tmp_path)])
    d = json.loads(capsys.readouterr().out)
    assert d["config"] == "int16_selective" and d["int16_layers"]
    v = d["vs_int8"]
    assert v["metric"] == "snr_db" and rc == (0 if v["helped"] else 1)
    assert d["int16_verdict"].startswith("int16_selective helped" if v["helped"] else "int16_selective did not help")


@pytest.mark.parametrize("argv", [["--calib-size", "0"], ["--backend", "tpu"], ["--config", "int4"]])
def test_bad_arguments_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main(["emulate", "mtcnn_onet", *argv])
    assert e.value.code == 2 and "emulate" in capsys.readouterr().err


def test_suggest_int16_adds_the_measured_suggestion(tmp_path, capsys, monkeypatch):
    """``--suggest-int16 K`` on the DFC (contract fake, tiny model): candidates in HAR names, each measured."""
    from tests.fakes.hailo_sdk_client import _support
    from tests.quant.test_emulator import _spec

    _support.install(monkeypatch)
    _spec(tmp_path)
    args = ["emulate", "tiny", "--manifest", str(tmp_path / "m.toml"), "--calib-size", "4", "--backend", "dfc",
            "--n-eval", "2", "--work-dir", str(tmp_path / "w"), "--suggest-int16", "2"]
    assert main(args + ["--json"]) == 0
    d = json.loads(capsys.readouterr().out)["int16_suggestion"]
    assert (d["noise_source"], d["names"], d["backend"]["name"]) == ("dfc", "har", "dfc")
    assert len(d["candidates"]) == 2 and all(c.startswith("tiny/") for c in d["candidates"])
    assert [r["what"] for r in d["rows"]] == ["int8", "alone", "alone", "together"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "INT16 candidates from the dfc noise analysis (HAR layer names)" in out and "suggestion: none" in out


def test_resize_study_on_other_photos(tmp_path, capsys):
    """--resize-study with --calib-source / --eval-samples: four cells, two marked mismatch, JSON on stdout only;
    the calibration photos are never evaluation photos."""
    from hailo_qa.config import SHARED_DIR

    faces = SHARED_DIR / "faces"
    if len(list(faces.glob("*.*g"))) < 4:
        pytest.skip(f"the shared photos are not present under {faces}")
    rc = main(["emulate", "mtcnn_onet", "--resize-study", "--calib-size", "2", "--backend", "ort", "--n-eval", "2",
               "--calib-source", str(faces / "*.png"), "--eval-samples", str(faces / "*.jpeg"), "--json",
               "--work-dir", str(tmp_path)])
    d = json.loads(capsys.readouterr().out)
    assert rc == (1 if d["cells"][0]["failed"] else 0)  # the manifest's gates on the matched (declared) cell
    cells = [(c["calibrated"], c["evaluated"], c["mismatch"]) for c in d["cells"]]
    assert cells[0] == ("stretch", "stretch", False) and sum(m for *_, m in cells) == 2
    assert all(c["calib_real"] == 2 and c["eval_inputs"] == ["Chris", "Paul", "Paul2"] for c in d["cells"])
    assert set(d["mismatch_cost"]) == {"stretch", "letterbox"}


def test_eval_samples_matching_nothing_is_an_input_error(tmp_path, capsys):
    assert main(["emulate", "mtcnn_onet", "--resize-study", "--eval-samples", str(tmp_path / "*.jpg"),
                 "--backend", "ort", "--work-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "--eval-samples" in err and "matches no file" in err and "Hint:" in err
