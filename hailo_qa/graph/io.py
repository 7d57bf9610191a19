"""Loading ONNX models with errors a user can act on, and hashing them for provenance."""
from __future__ import annotations

import hashlib
from pathlib import Path

import onnx

from hailo_qa.errors import InputFileError

MIN_OPSET = 7
"""Oldest default-domain opset we accept (ONNX Runtime's own floor)."""


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sha256_model(model: onnx.ModelProto) -> str:
    return hashlib.sha256(model.SerializeToString(deterministic=True)).hexdigest()


def max_supported_opset() -> int:
    """The newest default-domain opset this onnx install knows."""
    return onnx.defs.onnx_opset_version()


def load_onnx(path: str | Path, *, check: bool = True) -> onnx.ModelProto:
    """Load an ONNX file, turning every way it can be broken into an :class:`InputFileError`.

    Args:
        path: the ``.onnx`` file.
        check: run ``onnx.checker`` and the opset checks. Defaults to True.

    Raises:
        InputFileError: missing, empty, truncated/corrupt, not ONNX, or an opset this install cannot run.
    """
    p = Path(path)
    if not p.exists():
        raise InputFileError(f"ONNX model '{p}' does not exist",
                             note="expected a path to an .onnx file",
                             hint="check the path (relative paths in the manifest are relative to the manifest file; "
                                  "'shared:' paths resolve under HAILO_QA_SHARED)")
    if p.is_dir():
        raise InputFileError(f"'{p}' is a directory, not an ONNX file", note="expected a path to an .onnx file",
                             hint="point at the model file itself")
    size = p.stat().st_size
    if size == 0:
        raise InputFileError(f"ONNX model '{p}' is empty (0 bytes)", note="expected a serialized onnx.ModelProto",
                             hint="re-export the model; the file was probably truncated while copying")
    try:
        model = onnx.load(str(p), load_external_data=True)
    except Exception as err:  # protobuf DecodeError, external-data errors, ...
        raise InputFileError(f"'{p}' could not be parsed as ONNX ({err.__class__.__name__}: {err})",
                             note=f"expected a serialized onnx.ModelProto; the file has {size} bytes",
                             hint="the file is truncated or corrupt, or not an ONNX model: re-export or re-copy it "
                                  "and compare its sha256 with the source") from err
    if not model.graph.node:
        raise InputFileError(f"'{p}' parsed but holds no graph nodes",
                             note="expected a serialized onnx.ModelProto with a graph",
                             hint="the file is probably not an ONNX model (or is truncated to its header)")
    if check:
        check_opset(model, source=str(p))
        try:
            onnx.checker.check_model(model)
        except onnx.checker.ValidationError as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else repr(err)
            raise InputFileError(f"'{p}' fails onnx.checker: {first}",
                                 note="expected a valid ONNX graph",
                                 hint="re-export with a current exporter, or run onnxslim on it") from err
    return model


def check_opset(model: onnx.ModelProto, *, source: str = "model") -> int:
    """Return the default-domain opset, raising if this install cannot run it."""
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    if opset is None:
        raise InputFileError(f"{source} declares no default-domain opset",
                             note="expected an opset_import entry for domain ''", hint="re-export the model")
    top = max_supported_opset()
    if opset < MIN_OPSET or opset > top:
        raise InputFileError(f"{source} uses opset {opset}, which this install cannot run",
                             note=f"expected an opset between {MIN_OPSET} and {top} (onnx {onnx.__version__})",
                             hint="re-export with a supported opset, or convert it with "
                                  "onnx.version_converter.convert_version(model, 17)")
    return opset
