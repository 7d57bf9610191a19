"""The face-recognition user's workflow end to end (issue 11): register an embedder and its variants, run
``pytest -m emulator`` (the build host) and ``pytest -m hailo8`` (the Pi — here the HailoRT contract fake, through
``tests/fakes/device_plugin.py``) into one shared history, then read ``hailo-qa report``.

Each pytest run is a subprocess, as a user would start it, against a manifest written into a temporary folder. The
fake device's numbers are the contract fake's: every row says ``hailort@4.23.0+fake``, never a device's.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hailo_qa.config import REPO_ROOT, SHARED_DIR
from hailo_qa.store import history as H

ARCFACE_HEF = SHARED_DIR / "hef" / "arcface_mobilefacenet_hailo8_fmt1.hef"
"""A real Hailo-8 HEF: the suite reads its header (arch, SDK version) before running it; the fake serves the
network registered for its path."""
MOBILEFACENET = SHARED_DIR / "models" / "mobilefacenet_128d.onnx"
VERIFICATION = SHARED_DIR / "faces" / "verification" / "face-recognition-pivot.csv"


def _need(*paths: Path) -> None:
    for p in paths:
        if not p.is_file():
            pytest.skip(f"{p} is absent (team material in ../shared; set HAILO_QA_SHARED to the folder holding it)")


def _hef(tmp: Path, name: str) -> Path:
    """A HEF file per variant (a copy of the shared one: the fake keys its networks by path)."""
    import shutil

    return Path(shutil.copyfile(ARCFACE_HEF, tmp / name))


def _pytest(tmp: Path, *args: str, fake: dict | None = None, manifest: Path | None = None
            ) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "HAILORT_LOGGER_PATH": "NONE", "HAILO_QA_HOST": "pytest-e2e"}
    env.pop("HAILO_QA_FAKE_DEVICE", None)
    plugin = []
    if fake is not None:
        spec = tmp / "fake_device.json"
        spec.write_text(json.dumps(fake))
        env["HAILO_QA_FAKE_DEVICE"] = str(spec)
        plugin = ["-p", "tests.fakes.device_plugin"]
    n = len(list(tmp.glob("pytest-*.log")))
    r = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:randomly", *plugin, "-rA",
                        f"--junitxml={tmp / f'junit-{n}.xml'}", f"--hqa-manifest={manifest or tmp / 'models.toml'}",
                        f"--hqa-history={tmp / 'history.sqlite'}", f"--hqa-work-dir={tmp / 'work'}",
                        f"--hqa-golden-dir={tmp / 'golden'}", *args],
                       cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=1800)
    (tmp / f"pytest-{n}.log").write_text(r.stdout + r.stderr)  # the whole output, for a failure's reader
    r.junit = tmp / f"junit-{n}.xml"
    return r


def _outcomes(r: subprocess.CompletedProcess) -> dict[str, str]:
    """test id → PASSED / FAILED / SKIPPED / ERROR, from the run's JUnit XML."""
    import xml.etree.ElementTree as ET

    res = {}
    for case in ET.parse(r.junit).getroot().iter("testcase"):
        kinds = {c.tag for c in case}
        res[case.get("name")] = ("FAILED" if "failure" in kinds else "ERROR" if "error" in kinds else
                                 "SKIPPED" if "skipped" in kinds else "PASSED")
    return res


HEF_ONLY = """
[models.emb_hef]
hef = "{first}"
task = "embedding"
[[models.emb_hef.inputs]]
name = "emb/input_layer1"
shape = [1, 112, 112, 3]
layout = "NHWC"
range = [0.0, 255.0]
[[models.emb_hef.variants]]
target = "hailo8"
precision = "int8"
calib_size = 1023
calib_source = "calib/pi_captures"
hef = "int8.hef"
[[models.emb_hef.variants]]
target = "hailo8"
precision = "int16_selective"
int16_layers = ["fc1", "conv33", "dw16"]
calib_size = 2048
calib_source = "calib/pi_captures"
hef = "int16s.hef"
# the seed's deployment requirement (end to end P95 < 100 ms), not a measurement of this stand-in network
[models.emb_hef.thresholds.hailo8]
max_p95_ms = 100.0
"""


def test_every_latency_row_carries_its_variant_and_the_report_shows_it(tmp_path):
    """Gap of issue 11 item 5: latency in the variant table. Two compiled variants of one embedder on the (fake)
    device: each latency row names its variant, precision, calibration size and source and the fake backend, and
    the report's variant comparison shows the latency beside that variant's recognition figures."""
    _need(ARCFACE_HEF)
    tmp = tmp_path.resolve()
    hefs = {n: _hef(tmp, n) for n in ("int8.hef", "int16s.hef")}
    (tmp / "models.toml").write_text(HEF_ONLY.format(first="int8.hef"))
    nets = [{"hef": str(p), "name": "emb", "input": ["emb/input_layer1", [112, 112, 3]],
             "output": ["emb/fc1", [512], 0.0167, 144.0]} for p in hefs.values()]
    r = _pytest(tmp, "-m", "hailo8", "tests/test_hailo8_latency.py::test_latency_gates", fake={"nets": nets})
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert _outcomes(r) == {"test_latency_gates[emb_hef[int8-calib1023@hailo8]]": "PASSED",
                                   "test_latency_gates[emb_hef[int16_selective-calib2048@hailo8]]": "PASSED"}
    with H.History(tmp / "history.sqlite") as h:
        rows = [x for x in h.rows() if x.metric in ("p95_ms", "core_p95_ms")]
        assert len(rows) == 4
        by = {(x.variant, x.metric): x for x in rows}
        a = by[("int8-calib1023@hailo8", "p95_ms")]
        b = by[("int16_selective-calib2048@hailo8", "core_p95_ms")]
        assert (a.target, a.config, a.calib_size, a.extra["calib_source"]) == ("hailo8", "int8", 1023,
                                                                                "calib/pi_captures")
        assert (b.config, b.calib_size, b.extra["int16_layers"]) == ("int16_selective", 2048, ["fc1", "conv33",
                                                                                               "dw16"])
        assert a.extra["variant"] == "int8, calib 1023 from calib/pi_captures, on hailo8 (int8.hef)"
        assert all(x.backend == "hailort" and x.backend_version.endswith("+fake") and x.host == "pytest-e2e"
                   for x in rows)  # the contract fake says so in every row
        # recognition figures of one variant (as tests/test_face_recognition.py records them) meet its latency
        h.record(H.make_row(run_id="pi", model="emb_hef", metric="recognition.mean_same", value=0.7,
                            target="hailo8", config="int8", calib_size=1023, variant="int8-calib1023@hailo8",
                            stage="self-enrolled", git="x", toolchain={}))
        from hailo_qa.manifest import load_manifest
        from hailo_qa.store import report as R

        data = R.build_report(h, manifest=load_manifest(tmp / "models.toml"))
    (row,) = data.variants["emb_hef"]
    assert row.variant == "int8-calib1023@hailo8" and row.figures["latency_p95_ms"] == a.value
    header, body = R.variant_tables(data)["emb_hef"]
    assert body[0][header.index("latency p95 ms")] == R._fmt(a.value)


# -- "Done when": the float embedder plus three variants, one emulator run, one (fake) device run, one report --------
SCENARIO = """
[models.mfn]
file = "{onnx}"
task = "embedding"
samples = ["{faces}/*.png"]
[[models.mfn.inputs]]
name = "input"
shape = [1, 3, 112, 112]
layout = "NCHW"
range = [-1.0, 1.0]
preprocess = {{ color = "RGB", mean = [127.5, 127.5, 127.5], std = [127.5, 127.5, 127.5] }}
[models.mfn.calibration]
sizes = [16]
augment = true
[[models.mfn.variants]]
precision = "int8"
calib_size = 16
[[models.mfn.variants]]
precision = "int16"
calib_size = 16
[[models.mfn.variants]]
target = "hailo8"
precision = "int8"
calib_size = 16
hef = "int8.hef"
[[models.mfn.variants]]
target = "hailo8"
name = "degenerate@hailo8"
precision = "int8"
hef = "degenerate.hef"
[[models.mfn.variants]]
target = "hailo8"
name = "drifting@hailo8"
precision = "int8"
hef = "drifting.hef"
# the seed's deployment requirement (end to end P95 < 100 ms), not a measurement of the fake
[models.mfn.thresholds.hailo8]
max_p95_ms = 100.0
"""


def _recognition_gates() -> str:
    """mobilefacenet's measured recognition gates from fixtures/models.toml, as TOML tables for ``mfn``."""
    import tomllib

    with open(REPO_ROOT / "fixtures" / "models.toml", "rb") as fh:
        rec = tomllib.load(fh)["models"]["mobilefacenet"]["thresholds"]["recognition"]
    out = []
    for section, table in [("", {k: v for k, v in rec.items() if not isinstance(v, dict)})] + [
            (f".{k}", v) for k, v in rec.items() if isinstance(v, dict)]:
        out.append(f"[models.mfn.thresholds.recognition{section}]")
        out += [f"{k} = {v}" for k, v in table.items()]
    return "\n".join(out) + "\n"


@pytest.mark.slow
def test_the_face_recognition_user_gets_one_table_saying_which_variant_is_viable(tmp_path):
    """Issue 11, "Done when": registering the float embedder plus three variants (INT8 and INT16 on the emulator, an
    INT8 HEF on the device) gives, after one ``pytest -m emulator`` run and one ``pytest -m hailo8`` run sharing a
    history, one report table that says which variant is viable and why, with TAR/FAR, pre-norm and distance
    curves; a degenerate embedder (a HEF answering a constant) fails, and injected session drift fails."""
    _need(ARCFACE_HEF, MOBILEFACENET, VERIFICATION)
    tmp = tmp_path.resolve()
    hefs = {n: _hef(tmp, f"{n}.hef") for n in ("int8", "degenerate", "drifting")}  # the compiled variants
    (tmp / "models.toml").write_text(SCENARIO.format(onnx=MOBILEFACENET, faces=REPO_ROOT / "fixtures" / "faces" /
                                                     "aligned") + _recognition_gates())
    # the build host
    r = _pytest(tmp, "-m", "emulator", "tests/test_face_recognition.py")
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    emu = _outcomes(r)
    assert {k for k, v in emu.items() if v == "PASSED"} == {
        f"{t}[mfn[{v}@emulator]]" for t in ("test_recognition", "test_recognition_distance",
                                             "test_recognition_stability") for v in ("int8-calib16", "int16-calib16")}
    # the Pi (the HailoRT contract fake): the float model with 8-bit outputs, a constant, a drifting device. The HEFs
    # take the host-normalized input (the manifest's preprocess), as a HEF compiled with host normalization does.
    out = ["face/fc1", [128], 0.06, 128.0]
    nets = [{"hef": str(hefs[n]), "name": "face", "input": ["face/input_layer1", [112, 112, 3]],
             "output": out, "compute": {"kind": kind, "model": str(MOBILEFACENET)},
             "drift": drift} for n, kind, drift in (("int8", "onnx", 0.0), ("degenerate", "constant", 0.0),
                                                     ("drifting", "onnx", 0.5))]
    r = _pytest(tmp, "-m", "hailo8", "tests/test_face_recognition.py", "tests/test_hailo8_latency.py::test_latency_gates",
                fake={"nets": nets})
    dev = _outcomes(r)
    assert r.returncode == 1, r.stdout[-4000:] + r.stderr[-2000:]
    failed = {k for k, v in dev.items() if v == "FAILED"}
    assert {"test_recognition[mfn[degenerate@hailo8]]", "test_recognition_distance[mfn[degenerate@hailo8]]",
            "test_recognition_stability[mfn[drifting@hailo8]]"} <= failed, dev
    assert not {k for k in failed if "[mfn[int8-calib16@hailo8]]" in k}, dev
    assert dev["test_recognition[mfn[int8-calib16@hailo8]]"] == "PASSED"
    assert dev["test_recognition_stability[mfn[int8-calib16@hailo8]]"] == "PASSED"
    assert "session best-similarity spread" in r.stdout and "rank-1" in r.stdout
    # one report from the shared history
    from hailo_qa.cli import main

    assert main(["report", "--history", str(tmp / "history.sqlite"), "--out", str(tmp / "report"), "--manifest",
                 str(tmp / "models.toml"), "--quiet"]) == 0
    md = (tmp / "report" / "report.md").read_text()
    table = md.split("### mfn", 1)[1].split("\n\n", 2)[1].splitlines()
    header = [c.strip() for c in table[0].strip("|").split("|")]
    rows = {c[0]: dict(zip(header, c)) for c in ([x.strip() for x in line.strip("|").split("|")]
                                                  for line in table[2:])}
    assert list(rows) == ["int8-calib16@emulator", "int16-calib16@emulator", "int8-calib16@hailo8",
                          "degenerate@hailo8", "drifting@hailo8"]  # INT8 baseline first
    for v in ("int8-calib16@emulator", "int16-calib16@emulator", "int8-calib16@hailo8"):
        assert rows[v]["verdict"] == "viable", rows[v]
        assert all(rows[v][c] not in ("—", "") for c in ("TAR", "FAR", "pre-norm", "smallest face px")), rows[v]
    assert rows["int8-calib16@hailo8"]["backend"] == "hailort@4.23.0+fake"  # never presented as a device's
    assert "pytest-e2e: hailort@4.23.0+fake (hailo8 0000:01:00.0 (Hailo-8 FAKE))" in md  # the summary's machine
    assert rows["int8-calib16@hailo8"]["latency p95 ms"] != "—" and rows["int8-calib16@emulator"]["latency p95 ms"] == "—"
    bad = rows["degenerate@hailo8"]["verdict"]
    assert bad.startswith("NOT viable") and "pre-norm does not fall with distance" in bad, bad
    drift = rows["drifting@hailo8"]["verdict"]
    assert drift.startswith("NOT viable") and "sessions disagree" in drift, drift
    plot = tmp / "report" / "plots" / "mfn__variants_vs_face_size.png"
    assert plot.read_bytes().startswith(b"\x89PNG") and plot.name in md


@pytest.mark.slow
def test_the_hef_only_arcface_entry_runs_every_test_that_needs_no_float_reference_on_the_fake(tmp_path):
    """Issue 11 item 1: a HEF without its ONNX still runs every test that needs no float reference (recognition
    enrolled against itself, distance, sessions, latency, determinism, its golden) — here on the contract fake
    serving the registered ArcFace HEF with a stand-in network (MobileFaceNet float, 128-d, scaled into the HEF's
    output range and tiled to its 512 outputs); the comparisons that need an ONNX skip saying so. Without a device
    the same tests skip with HailoRT's reason (tests/hw/test_device.py, the real binding)."""
    from hailo_qa.hw.hef import read_hef
    from hailo_qa.manifest import load_manifest

    _need(ARCFACE_HEF, MOBILEFACENET, VERIFICATION)
    tmp = tmp_path.resolve()
    spec = load_manifest(REPO_ROOT / "fixtures" / "models.toml").get("arcface_mobilefacenet_hef")
    group = read_hef(spec.hef).network_groups[0]  # the HEF's own streams: names, shapes, output quantization
    (inp,), (out,) = group.inputs, group.outputs
    net = {"hef": str(spec.hef), "name": group.name, "input": [inp.name, list(inp.shape)],
           "output": [out.name, [512], out.qp_scale, out.qp_zp],
           "compute": {"kind": "onnx", "model": str(MOBILEFACENET), "mean": 127.5, "std": 127.5, "gain": 0.25,
                       "repeat": 4}}
    r = _pytest(tmp, "-m", "hailo8", "--hqa-models=arcface_mobilefacenet_hef", "--hqa-regen-all",
                "tests/test_face_recognition.py", "tests/test_hailo8_latency.py", fake={"nets": [net]},
                manifest=REPO_ROOT / "fixtures" / "models.toml")
    res = {k.split("[", 1)[0]: v for k, v in _outcomes(r).items()}
    assert all("[arcface_mobilefacenet_hef[hef@hailo8]]" in k for k in _outcomes(r)), r.stdout[-3000:]
    for t in ("test_recognition", "test_recognition_distance", "test_recognition_stability",
              "test_arch_matches_device", "test_hef_only_outputs_vs_golden", "test_determinism"):
        assert res.get(t) == "PASSED", (t, r.stdout[-4000:])
    assert res.get("test_outputs_vs_emulator_and_float_in_quantization_steps") == "SKIPPED", res
    # latency is measured (the stand-in network is no Hailo-8: its timing may miss the provisional gate, never skip)
    assert res.get("test_latency_gates") == "PASSED" or "hailo8.max_core_p95_ms" in r.stdout, r.stdout[-3000:]
    assert "arcface_mobilefacenet_hef: HEF-only model (no ONNX), no emulator or float Stage 1 to compare with" in r.stdout
    with H.History(tmp / "history.sqlite") as h:
        rows = h.rows(model="arcface_mobilefacenet_hef")
    # latency was measured on the fake (its gate is provisional, its timing the fake's): the rows name the variant
    assert {x.variant for x in rows if x.metric in ("p95_ms", "core_p95_ms")} == {"hef@hailo8"}
    stages = {x.stage for x in rows if x.metric == "recognition.tar"}
    assert stages == {"self-enrolled"}  # no float reference: enrolled against itself
    assert all(x.backend_version.endswith("+fake") for x in rows)
