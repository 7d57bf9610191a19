"""Hailo-8 support rules: loaded from ``hailo8_rules.toml`` (data) and evaluated per node.

The table is a conservative approximation of the Dataflow Compiler's parser (see the TOML header). Each rule names
an op's status and, for conditional ops, checks from a small fixed vocabulary (:data:`CHECKS`); every node also
passes the generic checks (static shapes, float tensors, no shape computation).
"""
from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import onnx

from hailo_qa.errors import InternalError
from hailo_qa.graph.index import GraphIndex, attr

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

STATUSES = ("supported", "conditional", "unsupported")


@dataclass(frozen=True)
class OpRule:
    op: str
    status: str
    conditions: tuple[Mapping[str, Any], ...] = ()
    reason: str = ""
    workaround: str = ""
    evidence: str = "U"
    int_outputs_ok: bool = False


@dataclass(frozen=True)
class Verdict:
    """Whether one node can go on the device, and if not why and what to do."""

    node: str
    op: str
    ok: bool
    reason: str = ""
    workaround: str = ""
    rule: str = ""  # "op:<status>" or "generic:<check>"
    evidence: str = ""
    details: Mapping[str, Any] = field(default_factory=dict)


@functools.cache
def load_rules(path: str | None = None) -> dict[str, OpRule]:
    """The rule table. Defaults to the packaged ``hailo8_rules.toml``."""
    if path:
        return _user_rules(path)
    text = resources.files("hailo_qa.graph").joinpath("hailo8_rules.toml").read_text(encoding="utf-8")
    return _parse_rules(tomllib.loads(text), InternalError)


def _user_rules(path: str) -> dict[str, OpRule]:
    """A rule table given by the user (``--rules``): every problem is an :class:`InputFileError` naming the file."""
    from hailo_qa.errors import InputFileError

    def bad(what: str) -> InputFileError:
        return InputFileError(f"rule table '{path}' {what}", note="expected a TOML file of [ops.<OpType>] tables "
                              "with status = supported|conditional|unsupported (like hailo_qa/graph/hailo8_rules.toml)",
                              hint="fix the file, or drop --rules to use the packaged Hailo-8 table")
    try:
        with open(path, encoding="utf-8") as f:
            raw = tomllib.loads(f.read())
    except (OSError, UnicodeDecodeError) as err:
        raise bad(f"cannot be read ({getattr(err, 'strerror', None) or err})") from err
    except tomllib.TOMLDecodeError as err:
        raise bad(f"is not valid TOML ({err})") from err
    unknown = sorted(set(raw) - {"ops"})
    if unknown or not isinstance(raw.get("ops"), dict) or not raw["ops"]:
        raise bad(f"has no [ops.*] tables" + (f" (unknown top-level keys {unknown})" if unknown else ""))
    return _parse_rules(raw, lambda msg: bad(msg.removeprefix("rule table: ")))


def _parse_rules(raw: Mapping[str, Any], error: Callable[[str], Exception]) -> dict[str, OpRule]:
    rules = {}
    for op, r in raw.get("ops", {}).items():
        if not isinstance(r, dict):
            raise error(f"rule table: ops.{op} is not a table")
        unknown = set(r) - {"status", "conditions", "reason", "workaround", "evidence", "int_outputs_ok"}
        if unknown or r.get("status") not in STATUSES:
            raise error(f"rule table: bad entry ops.{op} (unknown keys {sorted(unknown)}, status {r.get('status')!r})")
        conds = r.get("conditions", [])
        if not isinstance(conds, list) or any(not isinstance(c, dict) for c in conds):
            raise error(f"rule table: ops.{op}.conditions is not a list of tables")
        for c in conds:
            if c.get("check") not in CHECKS:
                raise error(f"rule table: ops.{op} uses unknown check {c.get('check')!r}")
        rules[op] = OpRule(op, r["status"], tuple(r.get("conditions", ())), r.get("reason", ""),
                           r.get("workaround", ""), r.get("evidence", "U"), bool(r.get("int_outputs_ok", False)))
    return rules


# ---- checks --------------------------------------------------------------------------------------------------------
def _rank(g: GraphIndex, tensor: str) -> int | None:
    return g.info(tensor).rank


def _axes(g: GraphIndex, node: onnx.NodeProto, c: Mapping[str, Any]) -> list[int] | None:
    name = c.get("attr", "axes")
    v = attr(node, name, None)
    if v is None and name == "axes" and len(node.input) > 1 and node.input[1]:
        arr = g.const_value(node.input[1])  # opset ≥ 13/18: axes as an input
        v = None if arr is None else arr.tolist()
    if v is None:
        v = c.get("default")
    if v is None:  # reduce over all axes
        r = _rank(g, node.input[0])
        return list(range(r)) if r else None
    return [int(a) for a in (v if isinstance(v, list) else [v])]


def _norm(axes: list[int], rank: int | None) -> list[int]:
    return [a + rank if (a < 0 and rank) else a for a in axes]


def check_attr(g, node, c):
    v = attr(node, c["name"], c.get("default"))
    return v == c["equals"], f"{c['name']}={v!r} (needs {c['equals']!r})"


def check_axes_in(g, node, c):
    rank = _rank(g, node.input[0])
    axes = _axes(g, node, c)
    if axes is None or rank is None:
        return False, "axes unknown"
    allowed = set(_norm([int(a) for a in c["axes"]], rank))
    got = _norm(axes, rank)
    return set(got) <= allowed, f"axes={got} (allowed {sorted(allowed)} for rank {rank})"


def check_rank_max(g, node, c):
    r = _rank(g, node.input[0])
    return r is not None and r <= c["max"], f"rank={r} (max {c['max']})"


def check_rank_in(g, node, c):
    r = _rank(g, node.output[0])
    return r in c["ranks"], f"output rank={r} (allowed {c['ranks']})"


def check_keeps_batch(g, node, c):
    i, o = g.info(node.input[0]).shape, g.info(node.output[0]).shape
    if node.op_type == "Transpose":
        perm = attr(node, "perm")
        if perm and perm[0] != 0:
            return False, f"perm={perm} moves the batch axis"
    if not i or not o:
        return False, "shape unknown"
    return i[0] == o[0], f"batch {i[0]} → {o[0]}"


def check_perm_in(g, node, c):
    perm = attr(node, "perm")
    return (list(perm) if perm else None) in [list(p) for p in c["perms"]], f"perm={perm}"


def check_const_inputs(g, node, c):
    bad = [node.input[i] for i in c["indices"] if i < len(node.input) and node.input[i]
           and node.input[i] not in g.constants]
    return not bad, (f"non-constant inputs {bad}" if bad else "constant inputs")


def check_tile_batch_one(g, node, c):
    reps = g.const_value(node.input[1]) if len(node.input) > 1 else None
    if reps is None:
        return False, "repeats not constant"
    return int(reps.reshape(-1)[0]) == 1, f"repeats={reps.tolist()} (batch repeat must be 1)"


def check_slice_axes(g, node, c):
    rank = _rank(g, node.input[0])
    if rank is None:
        return False, "rank unknown"
    if rank > c.get("max_rank", rank):
        return False, f"rank {rank} (max {c['max_rank']})"
    axes = g.const_value(node.input[3]) if len(node.input) > 3 and node.input[3] else None
    starts = g.const_value(node.input[1]) if len(node.input) > 1 else None
    if axes is None:
        axes = list(range(len(starts))) if starts is not None else attr(node, "axes", [])
    axes = _norm([int(a) for a in list(axes)], rank)
    steps = g.const_value(node.input[4]) if len(node.input) > 4 and node.input[4] else None
    steps = [1] * len(axes) if steps is None else [int(s) for s in steps.reshape(-1)]
    allowed = set(c["rank4"]) if rank == 4 else ({rank - 1} if c.get("other") == "last" else set(c["other"]))
    if not set(axes) <= allowed:
        return False, f"axes={axes} on rank {rank} (allowed {sorted(allowed)})"
    strided = {int(k): [int(v) for v in vs] for k, vs in c.get("rank4_steps", {}).items()} if rank == 4 else {}
    for a, st in zip(axes, steps):
        if st != 1 and st not in strided.get(a, []):
            return False, (f"step {st} on axis {a} (only step 1"
                           + (f"; steps {strided} on the spatial axes of a 4-D map" if strided else "") + ")")
    return True, f"axes={axes} steps={steps} on rank {rank}"


CHECKS: dict[str, Callable] = {
    "attr": check_attr, "axes_in": check_axes_in, "rank_max": check_rank_max, "rank_in": check_rank_in,
    "keeps_batch": check_keeps_batch, "perm_in": check_perm_in, "const_inputs": check_const_inputs,
    "tile_batch_one": check_tile_batch_one, "slice_axes": check_slice_axes,
}


def evaluate(g: GraphIndex, node: onnx.NodeProto, rules: Mapping[str, OpRule] | None = None) -> Verdict:
    """The device verdict for one node: the op rule first, then the generic checks."""
    rules = rules if rules is not None else load_rules()
    name = g.name(node)
    rule = rules.get(node.op_type)
    if rule is None:
        return Verdict(name, node.op_type, False, f"{node.op_type} is not in the Hailo-8 support table (unknown op)",
                       "run it on the host, or check with the DFC parser where installed", "op:unknown")
    if rule.status == "unsupported":
        return Verdict(name, node.op_type, False, rule.reason, rule.workaround, "op:unsupported", rule.evidence)
    if rule.status == "conditional":
        for c in rule.conditions:
            ok, why = CHECKS[c["check"]](g, node, c)
            if not ok:
                return Verdict(name, node.op_type, False, f"{rule.reason} — here {why}", rule.workaround,
                               f"op:conditional:{c['check']}", rule.evidence, {"check": c["check"], "got": why})
    if node.op_type == "Constant":
        return Verdict(name, node.op_type, True, rule="op:supported")
    failed = generic_verdict(g, node, int_outputs_ok=rule.int_outputs_ok)
    if failed is not None:
        return failed
    return Verdict(name, node.op_type, True, rule.reason if rule.status == "supported" else "",
                   rule="op:" + rule.status, evidence=rule.evidence)


def generic_verdict(g: GraphIndex, node: onnx.NodeProto, *, int_outputs_ok: bool = False) -> Verdict | None:
    """The generic checks every device node passes whatever its op (static shapes, float tensors): the failing
    verdict, or None when they hold."""
    name = g.name(node)
    for t in [i for i in node.input if i and i not in g.constants] + [o for o in node.output if o]:
        info = g.info(t)
        if not info.static:
            return Verdict(name, node.op_type, False,
                           f"tensor '{t}' has a dynamic or unknown shape {info.shape}",
                           "pin dynamic dims (hailo-qa split --batch 1) so the simplifier can fold them",
                           "generic:static_shape", "C")
        if not info.is_float and not (int_outputs_ok and t in node.output):
            return Verdict(name, node.op_type, False,
                           f"tensor '{t}' is {info.dtype_name}: Hailo-8 computes on float feature maps",
                           "keep integer/index arithmetic on the host", "generic:float_tensors", "C")
    return None
