"""``hailo-qa calib``: summary, JSON, validation errors as exit 2."""
from __future__ import annotations

import json

import numpy as np
import pytest

from hailo_qa.cli import main

MANIFEST = """
schema = 1
[models.toy]
file = "toy.onnx"
[[models.toy.inputs]]
name = "x"
shape = [1, 3, 6, 5]
range = [-1.0, 1.0]
preprocess = {{ mean = [127.5, 127.5, 127.5], std = [127.5, 127.5, 127.5] }}
[models.toy.calibration]
source = "calib"
seed = 4
sizes = [{size}]
augment = true
[models.toy.quantization]
normalization = "{norm}"
"""


@pytest.fixture
def manifest(tmp_path):
    def make(*, norm="host", lo=-1.0, hi=1.0, n=3, size=5):
        (tmp_path / "toy.onnx").write_bytes(b"")  # the manifest only checks that the file exists
        d = tmp_path / "calib"
        d.mkdir(exist_ok=True)
        rng = np.random.default_rng(0)
        for i in range(n):
            np.save(d / f"{i}.npy", rng.uniform(lo, hi, (1, 3, 6, 5)).astype(np.float32))
        p = tmp_path / "models.toml"
        p.write_text(MANIFEST.format(norm=norm, size=size))
        return p
    return make


def test_prints_the_summary(manifest, capsys):
    assert main(["calib", "toy", "--manifest", str(manifest())]) == 0
    out = capsys.readouterr().out
    assert "calibration set for toy input 'x'" in out
    assert "5 (3 real, 2 augmented)" in out and "seed         4" in out


def test_json_size_and_seed(manifest, capsys):
    m = manifest()
    assert main(["calib", "toy", "--manifest", str(m), "--size", "2", "--seed", "9", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert (d["count"], d["real"], d["augmented"], d["seed"]) == (2, 2, 0, 9)
    assert d["shape"] == [1, 3, 6, 5] and len(d["channel_mean"]) == 3 and len(d["sha256"]) == 64
    assert main(["calib", "toy", "--manifest", str(m), "--size", "2", "--seed", "9", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["sha256"] == d["sha256"]


def test_source_override(manifest, tmp_path, capsys):
    m = manifest()
    other = tmp_path / "other"
    other.mkdir()
    np.save(other / "a.npy", np.zeros((3, 6, 5), np.float32))
    assert main(["calib", "toy", "--manifest", str(m), "--source", str(other), "--size", "1", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["source"] == str(other) and d["channel_max"] == [0.0, 0.0, 0.0]


def test_validation_error_exits_2(manifest, capsys):
    m = manifest(norm="on_chip")  # normalized data while the model script normalizes on chip
    assert main(["calib", "toy", "--manifest", str(m)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: toy | calib | calibration data looks already normalized")
    assert "Note:" in err and "Hint:" in err and "Traceback" not in err


def test_unknown_model_exits_2(manifest, capsys):
    assert main(["calib", "tyo", "--manifest", str(manifest())]) == 2
    assert "did you mean 'toy'" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["--size", "0"], ["--seed", "-1"], ["--size", "x"]])
def test_bad_options(manifest, argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["calib", "toy", "--manifest", str(manifest()), *argv])
    assert exc.value.code == 2 and "Could not parse value" in capsys.readouterr().err
