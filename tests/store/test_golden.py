"""Golden store: create / match / mismatch / refuse / update / regen, atomic writes, corrupt files, concurrency."""
from __future__ import annotations

import json
import multiprocessing as mp
import os
from pathlib import Path

import numpy as np
import pytest

from hailo_qa.errors import InputDataError, InputFileError, RegressionError
from hailo_qa.manifest import ModelSpec
from hailo_qa.runners.base import BackendInfo
from hailo_qa.store import golden as G

BACKEND = BackendInfo("onnxruntime", "1.0-test", "float")


def make_model(tmp_path: Path, content: bytes = b"model-bytes", name: str = "m") -> ModelSpec:
    f = tmp_path / f"{name}.onnx"
    f.write_bytes(content)
    return ModelSpec(name=name, file=f, task="generic", inputs=(), raw={"file": f.name, "task": "generic"})


def outputs(shift: float = 0.0) -> dict[str, np.ndarray]:
    return {"logits": np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4) + np.float32(shift),
            "labels": np.arange(3, dtype=np.int64)}


def check(tmp_path, model, outs, **kw):
    kw.setdefault("backend", BACKEND)
    return G.check_golden(outs, root=tmp_path / "golden", model=model, target="float", name="s0", **kw)


def test_missing_golden_is_created_and_reported(tmp_path):
    model = make_model(tmp_path)
    out = check(tmp_path, model, outputs())
    assert out.status == "created" and not out.passed
    assert "golden created: " in out.message and "re-run to compare" in out.message
    assert out.paths.npz == tmp_path / "golden" / "m" / "float" / "s0.npz"
    meta = json.loads(out.paths.meta.read_text())
    prov = meta["provenance"]
    assert meta["npz_sha256"] == G.sha256_file(out.paths.npz)
    assert prov["model_sha256"] == G.sha256_file(model.file)
    assert prov["manifest_digest"] == model.digest()
    assert prov["backend"]["name"] == "onnxruntime" and "onnxruntime" in prov["toolchain"]
    assert prov["created"].endswith("+00:00")
    assert meta["outputs"]["logits"] == {"shape": [3, 4], "dtype": "float32"}


def test_identical_outputs_match(tmp_path):
    model = make_model(tmp_path)
    check(tmp_path, model, outputs())
    out = check(tmp_path, model, outputs())
    assert out.status == "match" and out.passed and out.written == ()


def test_mismatch_writes_obtained_and_reports_statistics(tmp_path):
    model = make_model(tmp_path)
    first = check(tmp_path, model, outputs())
    before = first.paths.npz.read_bytes()
    out = check(tmp_path, model, outputs(0.25))
    assert out.status == "mismatch" and not out.passed
    assert out.paths.obtained.is_file()
    with np.load(out.paths.obtained) as z:
        np.testing.assert_array_equal(z["logits"], outputs(0.25)["logits"])
    assert "logits" in out.message and "max abs" in out.message and "0.25" in out.message
    assert "--hqa-update-golden" in out.message
    assert first.paths.npz.read_bytes() == before  # the golden itself is untouched
    # within tolerance passes, and the stale .obtained goes away
    ok = check(tmp_path, model, outputs(0.25), atol=0.3)
    assert ok.passed and not out.paths.obtained.exists()


def test_structure_difference_is_named(tmp_path):
    model = make_model(tmp_path)
    check(tmp_path, model, outputs())
    out = check(tmp_path, model, {"logits": np.zeros((4, 3), np.float32), "labels": np.arange(3)})
    assert out.status == "mismatch" and "shape (4, 3) != golden (3, 4)" in out.message
    out = check(tmp_path, model, {"logits": outputs()["logits"]})
    assert "missing ['labels']" in out.message


@pytest.mark.parametrize("what", ["model", "stage"])
def test_provenance_mismatch_is_refused(tmp_path, what):
    model = make_model(tmp_path)
    check(tmp_path, model, outputs(), provenance={"stage_sha256": "a" * 64})
    if what == "model":
        model = make_model(tmp_path, b"other model")
        prov = {"stage_sha256": "a" * 64}
        key = "model_sha256"
    else:
        prov = {"stage_sha256": "b" * 64}
        key = "stage_sha256"
    with pytest.raises(RegressionError) as ei:
        check(tmp_path, model, outputs(), provenance=prov)
    msg = str(ei.value)
    assert "refusing to compare" in msg and key in msg and "--hqa-update-golden" in msg
    assert "golden " in msg and "vs now" in msg
    # update mode accepts the new provenance, then it matches
    up = check(tmp_path, model, outputs(), provenance=prov, mode="update")
    assert up.status == "updated" and "provenance changed" in up.message
    assert check(tmp_path, model, outputs(), provenance=prov).status == "match"


def test_stage_path_and_model_script_are_hashed(tmp_path):
    model = make_model(tmp_path)
    stage = tmp_path / "stage1.onnx"
    stage.write_bytes(b"stage")
    out = check(tmp_path, model, outputs(), provenance={"stage_path": stage, "model_script": "quantization_param",
                                                        "calib_size": 64, "calib_sha256": "c" * 64})
    prov = json.loads(out.paths.meta.read_text())["provenance"]
    assert prov["stage_sha256"] == G.sha256_file(stage)
    assert len(prov["model_script_sha256"]) == 64 and prov["calib_size"] == 64
    with pytest.raises(RegressionError, match="calib_size"):
        check(tmp_path, model, outputs(), provenance={"stage_path": stage, "model_script": "quantization_param",
                                                      "calib_size": 128, "calib_sha256": "c" * 64})


def test_update_mode_rewrites_only_what_changed(tmp_path):
    model = make_model(tmp_path)
    check(tmp_path, model, outputs())
    assert check(tmp_path, model, outputs(), mode="update").status == "match"
    up = check(tmp_path, model, outputs(1.0), mode="update")
    assert up.status == "updated" and not up.passed and str(up.paths.npz) in up.message
    assert check(tmp_path, model, outputs(1.0)).status == "match"


def test_regen_mode_rewrites_and_passes(tmp_path):
    model = make_model(tmp_path)
    check(tmp_path, model, outputs())
    out = check(tmp_path, model, outputs(2.0), mode="regen")
    assert out.status == "regenerated" and out.passed
    assert check(tmp_path, model, outputs(2.0)).status == "match"


def _dir_files(d: Path) -> set[str]:
    return {p.name for p in d.iterdir()}


def test_crash_in_savez_leaves_old_golden_intact(tmp_path, monkeypatch):
    model = make_model(tmp_path)
    out = check(tmp_path, model, outputs())
    before = (out.paths.npz.read_bytes(), out.paths.meta.read_bytes())
    listing = _dir_files(out.paths.npz.parent)

    def boom(*a, **k):
        raise OSError("disk full (simulated)")
    monkeypatch.setattr(np, "savez", boom)
    with pytest.raises(OSError, match="simulated"):
        check(tmp_path, model, outputs(1.0), mode="regen")
    assert (out.paths.npz.read_bytes(), out.paths.meta.read_bytes()) == before
    assert _dir_files(out.paths.npz.parent) == listing  # no temp files left behind
    monkeypatch.undo()
    assert check(tmp_path, model, outputs()).status == "match"


def test_crash_in_first_replace_leaves_old_golden_intact(tmp_path, monkeypatch):
    model = make_model(tmp_path)
    out = check(tmp_path, model, outputs())
    before = (out.paths.npz.read_bytes(), out.paths.meta.read_bytes())
    listing = _dir_files(out.paths.npz.parent)

    def boom(src, dst):
        raise OSError("power cut (simulated)")
    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(InputFileError, match="simulated"):  # the first replace is the commit point: nothing changed
        check(tmp_path, model, outputs(1.0), mode="regen")
    monkeypatch.undo()
    assert (out.paths.npz.read_bytes(), out.paths.meta.read_bytes()) == before
    assert _dir_files(out.paths.npz.parent) == listing
    assert check(tmp_path, model, outputs()).status == "match"


def test_crash_between_npz_and_meta_leaves_a_pair_the_next_read_completes(tmp_path, monkeypatch):
    """The pair changes together: a crash after the commit point (between the npz and the meta rename) is finished
    by the next read — the new pair, complete, and no temp or journal left."""
    model = make_model(tmp_path)
    out = check(tmp_path, model, outputs())
    real = os.replace
    calls = []

    def second_fails(src, dst):
        calls.append(dst)
        if len(calls) == 2:  # 1: the journal (commit point), 2: the npz
            raise OSError("killed (simulated)")
        real(src, dst)
    monkeypatch.setattr(os, "replace", second_fails)
    with pytest.raises(InputFileError, match="simulated"):
        check(tmp_path, model, outputs(1.0), mode="regen")
    monkeypatch.undo()
    assert any(n.endswith(".group-journal") for n in _dir_files(out.paths.npz.parent))  # committed, unfinished
    assert check(tmp_path, model, outputs(1.0)).status == "match"  # the new pair, complete
    assert _dir_files(out.paths.npz.parent) == {out.paths.npz.name, out.paths.meta.name}


def test_a_half_pair_written_by_hand_is_still_detected(tmp_path):
    model = make_model(tmp_path)
    out = check(tmp_path, model, outputs())
    out.paths.npz.write_bytes(check(tmp_path / "other", model, outputs(1.0)).paths.npz.read_bytes())
    with pytest.raises(G.GoldenError, match="does not match its meta") as ei:
        check(tmp_path, model, outputs(1.0))
    assert "--hqa-update-golden" in str(ei.value)
    assert check(tmp_path, model, outputs(1.0), mode="update").status == "updated"  # update mode repairs it
    assert check(tmp_path, model, outputs(1.0)).status == "match"


@pytest.mark.parametrize("damage", ["no_meta", "no_npz", "bad_json", "bad_npz"])
def test_corrupt_or_partial_golden_is_a_clear_error(tmp_path, damage):
    model = make_model(tmp_path)
    p = check(tmp_path, model, outputs()).paths
    if damage == "no_meta":
        p.meta.unlink()
    elif damage == "no_npz":
        p.npz.unlink()
    elif damage == "bad_json":
        p.meta.write_text("{not json")
    else:  # garbage npz with a matching sha so the npz parser itself is exercised
        p.npz.write_bytes(b"PK\x03\x04garbage")
        meta = json.loads(p.meta.read_text())
        meta["npz_sha256"] = G.sha256_file(p.npz)
        p.meta.write_text(json.dumps(meta))
    with pytest.raises(G.GoldenError) as ei:
        check(tmp_path, model, outputs())
    assert "Hint:" in str(ei.value) and "m | golden float/s0" in str(ei.value)


@pytest.mark.parametrize("model_name,target,name", [("m", "float", "../x"), ("m", "a/b", "s"), ("m", "t", ".hidden"),
                                                    ("", "t", "s")])
def test_unsafe_names_are_rejected(tmp_path, model_name, target, name):
    with pytest.raises(G.GoldenError, match="cannot be used in a file name"):
        G.golden_paths(tmp_path, model_name, target, name)


@pytest.mark.parametrize("bad", [{}, [np.zeros(3)], {"x": np.array([object()])}])
def test_bad_outputs_are_rejected(tmp_path, bad):
    with pytest.raises(InputDataError):
        check(tmp_path, make_model(tmp_path), bad)


def _writer(root: str, i: int, n: int) -> None:
    model = ModelSpec(name="m", file=None, task="generic", inputs=(), raw={})
    for k in range(n):
        G.check_golden({"y": np.full((64, 64), i * 1000 + k, np.float32)}, root=root, model=model,
                       target="float", name=f"w{i}", backend=BACKEND, mode="regen")
        G.check_golden({"y": np.full((64, 64), k, np.float32)}, root=root, model=model,
                       target="float", name="shared", backend=BACKEND, mode="regen")


def test_concurrent_writers_do_not_collide(tmp_path):
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), i, 15)) for i in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    d = tmp_path / "m" / "float"
    for i in range(4):
        g = G.read_golden(G.golden_paths(tmp_path, "m", "float", f"w{i}"))
        assert float(g.outputs["y"][0, 0]) == i * 1000 + 14
    # all writers end with the same content, so the shared pair must end consistent (never torn)
    shared = G.read_golden(G.golden_paths(tmp_path, "m", "float", "shared"))
    assert float(shared.outputs["y"][0, 0]) == 14
    assert not [n for n in _dir_files(d) if n.endswith(".tmp")]


def _endless_updates(root: str, ready) -> None:
    """Rewrite one golden pair forever (value k in round k), as a killed ``--hqa-update-golden`` run would."""
    model = ModelSpec(name="m", file=None, task="generic", inputs=(), raw={})
    paths = G.golden_paths(root, "m", "float", "pair")
    g = G.read_golden(paths)
    k = int(g.provenance["round"]) + 1 if g else 1
    while True:
        G.check_golden({"y": np.full((128, 128), k, np.float32)}, root=root, model=model, target="float",
                       name="pair", backend=BACKEND, mode="regen", provenance={"round": k})
        ready.set()  # one update finished: the kill lands in a later one
        k += 1


def _kill_golden_updates(tmp_path: Path, rounds: int, seed: int) -> dict[str, int]:
    """Kill -9 a golden writer at random moments ``rounds`` times; after each kill the pair must read as one complete
    version (old or new: npz sha256 == the meta's, the meta's round == the array's value, never going back), and
    after that read no temp file or journal may remain."""
    import random
    import signal
    import time

    from hailo_qa import toolchain

    toolchain.versions()  # probe the toolchain once here, not in every forked writer
    rng = random.Random(seed)
    ctx = mp.get_context("fork")
    paths = G.golden_paths(tmp_path, "m", "float", "pair")
    last, pending, torn_before_read = 0, 0, 0
    for _ in range(rounds):
        ready = ctx.Event()
        p = ctx.Process(target=_endless_updates, args=(str(tmp_path), ready))
        p.start()
        assert ready.wait(60)
        time.sleep(rng.uniform(0.0, 0.15))
        os.kill(p.pid, signal.SIGKILL)
        p.join(30)
        assert p.exitcode == -signal.SIGKILL
        names = _dir_files(paths.npz.parent) if paths.npz.parent.is_dir() else set()
        leftovers = [n for n in names if n.endswith((".tmp", ".group-journal"))]
        pending += bool(leftovers)
        g = G.read_golden(paths)  # finishes (or rolls back) the interrupted update
        value = float(g.outputs["y"][0, 0])
        assert (g.outputs["y"] == value).all() and g.provenance["round"] == value, "npz and meta from different runs"
        assert value >= last, f"went back from round {last} to {value}"
        last = int(value)
        assert _dir_files(paths.npz.parent) == {paths.npz.name, paths.meta.name}, "stale temp or journal left"
    return {"last_round": last, "kills_with_pending_files": pending, "torn": torn_before_read}


def test_golden_pair_survives_kill_9_at_random_moments(tmp_path):
    seen = _kill_golden_updates(tmp_path, rounds=10, seed=1)
    assert seen["last_round"] > 0


@pytest.mark.slow
def test_golden_pair_survives_kill_9_many_times(tmp_path):
    seen = _kill_golden_updates(tmp_path, rounds=100, seed=2)
    # the kills must land inside transactions (temps or a committed journal on disk), or nothing was tested
    assert seen["kills_with_pending_files"] >= 10, seen
