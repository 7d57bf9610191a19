"""The cache of proven prepared graphs (issue #13): a hit is the same preparation, lint report and split without the
simplifier or the proof; any change to the model bytes, options or code misses; a corrupt entry is rebuilt."""
from __future__ import annotations

import json
import threading

import onnx
import pytest

from hailo_qa.cli import main
from hailo_qa.errors import InputFileError
from hailo_qa.graph import prepare as prep_mod
from hailo_qa.graph import prepcache
from hailo_qa.graph.lint import lint_onnx
from hailo_qa.graph.prepare import prepare
from hailo_qa.graph.split import stages_from_onnx
from tests.graph import models


def _entries(d):
    return sorted(d.glob("*.prep"))


def _no_preparation(monkeypatch):
    """Fail the test if the simplifier or the proof runs."""
    def boom(*a, **kw):
        raise AssertionError("the simplifier or the proof ran on a cache hit")

    monkeypatch.setattr(prep_mod, "_fast", boom)
    monkeypatch.setattr(prep_mod, "_slim", boom)
    monkeypatch.setattr(prep_mod, "prove_preparation", boom)


def _bytes(p):
    return p.model.SerializeToString()


def test_a_hit_is_the_same_preparation_lint_and_split_without_simplifier_or_proof(tmp_path, monkeypatch):
    m = models.conv_topk()
    fresh = prepare(m)
    lint_fresh = lint_onnx(m, use_dfc=False).to_dict()
    split_fresh = stages_from_onnx(m)
    cold = prepare(m, cache_dir=tmp_path)  # a miss: prepared, proven, stored
    assert cold == fresh and len(_entries(tmp_path)) == 1
    _no_preparation(monkeypatch)
    warm = prepare(m, cache_dir=tmp_path)
    assert warm == fresh and _bytes(warm) == _bytes(fresh) and warm.proof["verdict"] == "bit-exact"
    assert lint_onnx(m, use_dfc=False, cache_dir=tmp_path).to_dict() == lint_fresh
    split_warm = stages_from_onnx(m, cache_dir=tmp_path)
    assert split_warm.boundary == split_fresh.boundary and split_warm.report == split_fresh.report
    assert split_warm.stage1 == split_fresh.stage1 and split_warm.stage2 == split_fresh.stage2


def test_the_registered_detector_hits_with_the_same_graph(tmp_path, monkeypatch):
    """DEIMv2-Atto (867 nodes, 4 folding rounds): the cached graph is the fresh one byte for byte."""
    from hailo_qa.manifest import load_manifest

    spec = load_manifest().get("deimv2_atto")
    m = onnx.load(str(spec.file))
    fresh = prepare(m, cache_dir=tmp_path)
    _no_preparation(monkeypatch)
    warm = prepare(m, cache_dir=tmp_path)
    assert warm == fresh and _bytes(warm) == _bytes(fresh) and warm.nodes_after < warm.nodes_before


def test_changed_model_bytes_options_or_code_miss(tmp_path, monkeypatch):
    m = models.conv_topk()
    prepare(m, cache_dir=tmp_path)
    other = models.conv_topk()
    other.graph.initializer[0].raw_data = bytes(reversed(other.graph.initializer[0].raw_data))  # one weight differs
    calls = []
    real = prep_mod._fast
    monkeypatch.setattr(prep_mod, "_fast", lambda *a: calls.append(1) or real(*a))
    prepare(other, cache_dir=tmp_path)
    prepare(m, batch=2, cache_dir=tmp_path)
    prepare(m, shapes={"images": [3, 3, 8, 8]}, cache_dir=tmp_path)
    prepare(m, shapes={"images": [1, 3, 8, 8]}, cache_dir=tmp_path)  # the batch=1 default's static shapes: a hit
    p = prepare(m, simplify=False, cache_dir=tmp_path)
    assert p.simplifier == "none"
    assert len(calls) == 3 and len(_entries(tmp_path)) == 5  # --no-simplify runs no folder, but is its own entry
    monkeypatch.setattr(prepcache, "code_fingerprint", lambda: "another version of the preparation code")
    prepare(m, cache_dir=tmp_path)
    assert len(calls) == 4 and len(_entries(tmp_path)) == 6


def test_no_cache_without_a_proof_or_for_a_graph_with_nothing_to_fold(tmp_path):
    prepare(models.conv_topk(), prove=False, cache_dir=tmp_path)
    prepare(models.two_branch(), cache_dir=tmp_path)  # Conv/Relu/Sigmoid/Add: only pinned, nothing to prove
    assert _entries(tmp_path) == []


@pytest.mark.parametrize("damage", ["truncated", "bit flip", "garbage", "empty", "another key's entry", "a folder"])
def test_a_corrupt_entry_is_rebuilt_never_trusted(tmp_path, damage):
    m = models.conv_topk()
    fresh = prepare(m, cache_dir=tmp_path)
    (entry,) = _entries(tmp_path)
    good = entry.read_bytes()
    if damage == "truncated":
        entry.write_bytes(good[:-100])
    elif damage == "bit flip":  # inside the model: a changed weight would be trusted without the checksum
        entry.write_bytes(good[:-50] + bytes([good[-50] ^ 1]) + good[-49:])
    elif damage == "garbage":
        entry.write_bytes(b"\x00" * len(good))
    elif damage == "empty":
        entry.write_bytes(b"")
    elif damage == "another key's entry":
        prepare(m, batch=2, cache_dir=tmp_path)
        other = next(e for e in _entries(tmp_path) if e != entry)
        entry.write_bytes(other.read_bytes())
    else:
        entry.unlink()
        entry.mkdir()
    if damage != "a folder":
        assert prepcache.load(tmp_path, entry.stem) is None
        again = prepare(m, cache_dir=tmp_path)
        assert again == fresh and entry.read_bytes() == good  # rebuilt and stored again
    else:  # a folder where the entry belongs cannot be replaced: one error naming it, not a traceback
        with pytest.raises(InputFileError, match="it is a folder"):
            prepare(m, cache_dir=tmp_path)


def test_an_unwritable_cache_serves_its_hits_and_fails_a_miss_before_the_work(tmp_path, monkeypatch):
    m = models.conv_topk()
    fresh = prepare(m, cache_dir=tmp_path)
    # root writes anywhere, so the read-only folder is what fsutil sees: os.access says no
    monkeypatch.setattr("hailo_qa.fsutil.os.access", lambda *a, **kw: False)
    _no_preparation(monkeypatch)
    assert prepare(m, cache_dir=tmp_path) == fresh  # a hit needs no write
    with pytest.raises(InputFileError, match="the preparation cache .* is not writable by this user"):
        prepare(m, batch=2, cache_dir=tmp_path)  # a miss: the error comes before the simplifier (which would fail)
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    with pytest.raises(InputFileError, match="is a file, not a folder"):
        prepare(m, cache_dir=blocked / "prepared")


def test_concurrent_writers_never_leave_a_torn_entry(tmp_path):
    """xdist workers storing the same key at once: a reader sees no entry or a whole one, and no temp file stays."""
    m = models.conv_topk()
    p = prepare(m)
    key, meta = "k" * 64, prep_mod._to_entry(p)
    seen, stop = [], threading.Event()

    def write():
        for _ in range(20):
            prepcache.store(tmp_path, key, meta, p.model)

    def read():
        while not stop.is_set():
            if prepcache.entry_path(tmp_path, key).exists():
                seen.append(prepcache.load(tmp_path, key))

    reader = threading.Thread(target=read)
    reader.start()
    writers = [threading.Thread(target=write) for _ in range(4)]
    for t in writers:
        t.start()
    for t in writers:
        t.join()
    stop.set()
    reader.join()
    assert seen and all(s is not None and s[0] == json.loads(json.dumps(meta)) for s in seen)
    assert [f.name for f in tmp_path.iterdir()] == [f"{key}.prep"]


def test_the_commands_use_the_state_folders_cache_and_no_cache_opts_out(tmp_path, capsys, monkeypatch):
    state = tmp_path / "state"
    monkeypatch.setattr("hailo_qa.config.STATE_DIR", state)
    p = models.save(models.conv_topk(), tmp_path / "m.onnx")
    assert main(["lint", p, "--json"]) == 0
    first = capsys.readouterr().out
    assert len(_entries(state / "work" / "prepared")) == 1
    _no_preparation(monkeypatch)
    assert main(["lint", p, "--json"]) == 0
    assert capsys.readouterr().out == first  # the same report, from the cache
    assert main(["split", p, "--out", str(tmp_path / "o"), "--no-int8-error"]) == 0
    assert "bit-exact" in capsys.readouterr().out
    assert main(["lint", p, "--no-cache"]) != 0  # --no-cache prepares afresh: the simplifier runs
    assert "the simplifier or the proof ran" in capsys.readouterr().err
    state.rename(tmp_path / "moved")
    state.write_text("")  # the state folder is a file: lint names it, as every command using the state folder does
    assert main(["lint", p]) == 2
    err = capsys.readouterr().err
    assert f"error: the work folder under HAILO_QA_STATE_DIR '{state / 'work'}' is not a folder" in err
    assert "--no-cache" in err


def test_the_fingerprint_covers_every_module_the_preparation_imports():
    """A change to the folder must miss the cache: every hailo_qa module that prepare.py or the folder modules
    import is fingerprinted, except error messages and file helpers (they cannot change a prepared graph). The
    folder modules were missing once: a changed fold.py would have served graphs from the old one."""
    import ast
    from pathlib import Path

    import hailo_qa

    root = Path(hailo_qa.__file__).parent

    def imports(rel: str) -> set[str]:
        out = set()
        for n in ast.walk(ast.parse((root / rel).read_text())):
            if isinstance(n, ast.ImportFrom) and n.module and n.module.startswith("hailo_qa"):
                pkg = n.module[len("hailo_qa"):].strip(".").replace(".", "/")
                names = [f"{pkg}/{a.name}.py" for a in n.names]
                out.update(f for f in names if (root / f).exists()) if any((root / f).exists() for f in names) \
                    else out.add(f"{pkg}.py")
        return out

    found = set().union(*(imports(f) for f in ("graph/prepare.py", "graph/fold.py", "graph/noops.py")))
    assert found - {"errors.py", "fsutil.py"} <= set(prepcache.CODE_FILES)
    assert {"graph/fold.py", "graph/noops.py"} <= found  # the walk sees the folder, so the check can fail
