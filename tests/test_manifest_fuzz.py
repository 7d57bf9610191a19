"""Fuzzing the manifest loader with Hypothesis: whatever the TOML, :func:`load_manifest` returns a manifest or raises
a :class:`~hailo_qa.errors.ManifestError` (the suite's what / Note / Hint) — never another exception.

Inputs: the project's manifest with one value anywhere replaced by another TOML value (wrong types, nan, inf,
negative and huge numbers, empty lists and tables), a key removed or an unknown key added; the manifest's text with
bytes cut, duplicated or overwritten; and arbitrary text. The ``slow`` test runs 10 000 examples; the quick one 300.
"""
from __future__ import annotations

import json
import math
import tomllib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hailo_qa import config
from hailo_qa.errors import ManifestError
from hailo_qa.manifest import load_manifest

BASE_TEXT = config.MANIFEST.read_text(encoding="utf-8")
BASE = tomllib.loads(BASE_TEXT)


def to_toml(value, top: bool = True) -> str:
    """A minimal TOML writer (inline tables) for the fuzzed documents."""
    if isinstance(value, dict):
        items = [f"{json.dumps(str(k))} = {to_toml(v, False)}" for k, v in value.items()]
        return "\n".join(items) + "\n" if top else "{ " + ", ".join(items) + " }"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(to_toml(v, False) for v in value) + "]"
    raise TypeError(type(value))


SCALARS = st.one_of(st.integers(-2**63, 2**63 - 1), st.sampled_from([0, -1, 1, 10**8, 2**31]),
                    st.floats(allow_nan=True, allow_infinity=True), st.booleans(),
                    st.text(max_size=20), st.sampled_from(["", "int4", "shared:nope.onnx", "*.npy", "NCHW", "x"]))
VALUES = st.recursive(SCALARS, lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids,
                                                                                          max_size=3), max_leaves=8)


def _paths(doc, prefix=()):
    yield prefix
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _paths(v, (*prefix, i))


ALL_PATHS = [p for p in _paths(BASE) if p]


@st.composite
def mutated_documents(draw) -> str:
    doc = json.loads(json.dumps(BASE))  # deep copy
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(ALL_PATHS))
        parent = doc
        try:
            for k in path[:-1]:
                parent = parent[k]
            action = draw(st.sampled_from(["replace", "replace", "delete", "add"]))
            if action == "replace":
                parent[path[-1]] = draw(VALUES)
            elif action == "delete":
                del parent[path[-1]]
            elif isinstance(parent, dict):
                parent[draw(st.text(min_size=1, max_size=8))] = draw(VALUES)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed or retyped this path
    return to_toml(doc)


@st.composite
def mutated_text(draw) -> str:
    t = BASE_TEXT
    i = draw(st.integers(0, len(t)))
    j = draw(st.integers(i, min(len(t), i + 200)))
    action = draw(st.sampled_from(["cut", "dup", "overwrite"]))
    if action == "cut":
        return t[:i] + t[j:]
    if action == "dup":
        return t[:j] + t[i:j] + t[j:]
    return t[:i] + draw(st.text(max_size=10)) + t[j:]


DOCUMENTS = st.one_of(mutated_documents(), mutated_text(), st.text(max_size=300))


def _load(text: str, folder: Path) -> None:
    path = folder / "models.toml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        load_manifest(path)
    except ManifestError as err:
        assert str(err).strip()


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    # beside the project's fixtures so the manifest's relative paths (models/, data/) resolve as in the real one
    d = tmp_path_factory.mktemp("manifest_fuzz")
    for sub in ("models", "data", "faces", "unseen"):
        src = config.MANIFEST.parent / sub
        if src.exists():
            (d / sub).symlink_to(src, target_is_directory=True)
    return d


def test_the_base_manifest_loads_through_the_writer(folder):
    path = folder / "models.toml"
    path.write_text(to_toml(BASE))
    assert load_manifest(path).names() == load_manifest(config.MANIFEST).names()


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(DOCUMENTS)
def test_manifest_loader_raises_only_manifest_errors(folder, text):
    _load(text, folder)


@pytest.mark.slow
@settings(max_examples=10_000, deadline=None, suppress_health_check=list(HealthCheck))
@given(DOCUMENTS)
def test_manifest_loader_fuzz_10000(folder, text):
    _load(text, folder)
