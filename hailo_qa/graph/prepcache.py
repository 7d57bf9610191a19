"""A content-addressed cache of *proven* prepared graphs, so a repeated ``lint`` or ``split`` of an unchanged model
redoes neither the simplifier's rounds nor the preparation proof (issue #13: DEIMv2-Atto's lint and split).

An entry is stored only after :func:`~hailo_qa.graph.prepare.prepare` has accepted it (its proof passed, or was
skipped because the original does not run on random inputs: the verdict a fresh run repeats, stored with it). The
key covers everything that decides the prepared graph: the sha256 of the model's bytes, ``simplify`` and the static
input shapes (what batch, shape overrides and reshape act through), the installed onnx / onnxslim / onnxruntime /
protobuf / numpy versions, and a fingerprint of hailo-qa's preparation code (:data:`CODE_FILES`). One file per
entry, written atomically (a unique temp file, then ``os.replace``: concurrent xdist workers never see half a file).
An entry holds a checksum of its contents and its own key; anything that does not read back as exactly that (a
truncated, altered or foreign file) is ignored and rebuilt, never trusted. Entries are never pruned: one per model
and shape (DEIMv2-Atto's is 2.2 MB); delete the folder to reclaim the space.
"""
from __future__ import annotations

import functools
import hashlib
import json
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import onnx

MAGIC = b"hailo-qa prepared graph 1\n"

CODE_FILES = ("graph/prepare.py", "graph/fold.py", "graph/noops.py", "graph/prepcache.py", "graph/index.py",
              "graph/verify.py", "runners/onnxrt.py", "runners/base.py", "evaluate/compare.py")
"""hailo-qa's preparation code (pinning, folding, the proof and its comparison): any change to one of these files
changes every key."""


@functools.lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """sha256 over the preparation code's sources and the versions of the libraries it runs."""
    from importlib import metadata

    import hailo_qa

    root = Path(hailo_qa.__file__).parent
    h = hashlib.sha256()
    for rel in CODE_FILES:
        h.update(rel.encode() + b"\0" + (root / rel).read_bytes() + b"\0")
    for dist in ("onnx", "onnxslim", "onnxruntime", "protobuf", "numpy"):
        try:  # the metadata, not an import: a lint that folds nothing must not import ONNX Runtime for its key
            v = metadata.version(dist)
        except metadata.PackageNotFoundError:
            v = "absent"
        h.update(f"{dist}={v}\0".encode())
    h.update(f"onnx-imported={onnx.__version__}".encode())
    return h.hexdigest()


def cache_key(model: onnx.ModelProto, options: Mapping[str, Any]) -> str:
    """The entry's key: the model's bytes, the preparation ``options`` and :func:`code_fingerprint`."""
    model_sha = hashlib.sha256(model.SerializeToString(deterministic=True)).hexdigest()
    src = json.dumps({"model_sha256": model_sha, "options": options, "code": code_fingerprint()}, sort_keys=True)
    return hashlib.sha256(src.encode()).hexdigest()


def entry_path(cache_dir: str | Path, key: str) -> Path:
    return Path(cache_dir) / f"{key}.prep"


def _pack(key: str, meta: Mapping[str, Any], model_bytes: bytes) -> bytes:
    head = json.dumps({"key": key, **meta}).encode()  # key order kept: reports print the proof as it was
    body = struct.pack(">Q", len(head)) + head + model_bytes
    return MAGIC + hashlib.sha256(body).hexdigest().encode() + b"\n" + body


def _unpack(data: bytes, key: str) -> tuple[dict[str, Any], onnx.ModelProto] | None:
    """The entry's metadata and model, or None when it is not exactly an entry for ``key``."""
    if not data.startswith(MAGIC):
        return None
    digest, body = data[len(MAGIC):len(MAGIC) + 64], data[len(MAGIC) + 65:]
    if data[len(MAGIC) + 64:len(MAGIC) + 65] != b"\n" or hashlib.sha256(body).hexdigest().encode() != digest:
        return None
    if len(body) < 8:
        return None
    (n,) = struct.unpack(">Q", body[:8])
    try:
        meta = json.loads(body[8:8 + n])
        model = onnx.ModelProto.FromString(body[8 + n:])
    except Exception:  # noqa: BLE001 - checksum matched but the content is not ours: ignore it
        return None
    if not isinstance(meta, dict) or meta.pop("key", None) != key or not model.graph.node:
        return None
    return meta, model


def load(cache_dir: str | Path, key: str) -> tuple[dict[str, Any], onnx.ModelProto] | None:
    """The entry for ``key``, or None (absent, unreadable, corrupt or another key's: the caller rebuilds it)."""
    try:
        data = entry_path(cache_dir, key).read_bytes()
    except OSError:
        return None
    return _unpack(data, key)


def store(cache_dir: str | Path, key: str, meta: Mapping[str, Any], model: onnx.ModelProto) -> Path:
    """Write the entry atomically (replacing a corrupt one)."""
    from hailo_qa.fsutil import atomic_write

    return atomic_write(entry_path(cache_dir, key), _pack(key, meta, model.SerializeToString()))
