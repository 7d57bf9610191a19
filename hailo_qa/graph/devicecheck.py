"""A second opinion on a device stage, independent of the rule table that built the split.

The split puts a node on the device when :mod:`hailo_qa.graph.rules` accepts it; checking Stage 1 with the same rules
again proves nothing. :func:`independent_device_check` asks the authority instead — the DFC parser, where installed —
and otherwise a separate list of ops Hailo-8 cannot run (``hailo8_unsupported.toml``, each entry with its evidence)
plus the DFC's static-shape requirement.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import onnx

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

UNSUPPORTED_PATH = Path(__file__).with_name("hailo8_unsupported.toml")


@dataclass(frozen=True)
class DeviceCheck:
    """``ok`` or the ``problems`` found; ``authority`` says who judged (``dfc@<version>`` or the op list)."""

    ok: bool
    problems: tuple[str, ...]
    authority: str

    def __bool__(self) -> bool:
        return self.ok


@lru_cache(maxsize=4)
def unsupported_ops(path: str | None = None) -> dict[str, str]:
    """Op type → evidence, from ``hailo8_unsupported.toml``."""
    with open(path or UNSUPPORTED_PATH, "rb") as f:
        return dict(tomllib.load(f)["ops"])


def independent_device_check(stage1: str | Path | onnx.ModelProto, *, use_dfc: bool | None = None,
                             hw_arch: str = "hailo8", ops_path: str | None = None) -> DeviceCheck:
    """Judge a device stage without the split's rule table.

    Args:
        stage1: the Stage-1 ONNX (a path is needed for the DFC).
        use_dfc: ask the DFC parser. Defaults to "when installed and ``stage1`` is a file".
        hw_arch: DFC target. Defaults to ``hailo8``.
        ops_path: an alternative unsupported-op list. Defaults to the packaged one.
    """
    from hailo_qa import toolchain

    if use_dfc is None:
        use_dfc = toolchain.dfc().found and not isinstance(stage1, onnx.ModelProto)
    if use_dfc:
        from hailo_qa.runners.dfc import dfc_parse_verdict

        v = dfc_parse_verdict(str(stage1), net_name=Path(str(stage1)).stem.replace("-", "_"), hw_arch=hw_arch)
        return DeviceCheck(v.ok, tuple(f"{e}" for e in v.errors) or ((v.message,) if not v.ok else ()), v.backend)
    m = stage1 if isinstance(stage1, onnx.ModelProto) else onnx.load(str(stage1))
    m = onnx.shape_inference.infer_shapes(m)
    bad = unsupported_ops(ops_path)
    problems = [f"{n.name or n.op_type} ({n.op_type}): {bad[n.op_type]}" for n in m.graph.node if n.op_type in bad]
    for vi in [*m.graph.input, *m.graph.output, *m.graph.value_info]:
        dims = vi.type.tensor_type.shape.dim
        if any(not (d.HasField("dim_value") and d.dim_value > 0) for d in dims) or not vi.type.tensor_type.HasField(
                "shape"):
            problems.append(f"{vi.name}: not a static shape (the DFC needs static shapes)")
    return DeviceCheck(not problems, tuple(problems), f"hailo-qa unsupported-op list ({UNSUPPORTED_PATH.name})")
