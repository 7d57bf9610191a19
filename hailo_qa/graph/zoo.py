"""Model Zoo cut points: recognise a detector family and find the end nodes Hailo's Model Zoo parses it to.

The families are data (``zoo_cuts.toml``), each with the ``hailo-ai/hailo_model_zoo`` configuration it comes from.
The split offers the family's cut beside the largest device stage (:func:`hailo_qa.graph.split.stages_from_onnx`):
for YOLOv8 the six final head convolutions, where Hailo's on-chip ``nms_postprocess`` attaches.

A family may also say which ops the Model Zoo proves run on the device for it (``device_proven``, with the Zoo files
that prove it, ``proven_by``): DETR's transformer, which the Zoo compiles whole for Hailo-8 but our conservative rule
table rejects. That evidence applies only to a model recognised as that family and only to the nodes before the Zoo's
end nodes (:func:`zoo_vouched`); the split report lists every node accepted that way.
"""
from __future__ import annotations

import functools
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import onnx

from hailo_qa.errors import InternalError
from hailo_qa.graph.index import GraphIndex
from hailo_qa.graph.rules import CHECKS, Verdict, generic_verdict

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

STRATEGIES = ("names", "head_convs", "output_producers", "concat_parts")
LAYOUT_OPS = frozenset({"Reshape", "Transpose", "Concat", "Flatten", "Squeeze", "Unsqueeze", "Sigmoid", "Softmax",
                        "Identity"})
"""Ops :data:`head_convs` walks back through from an output to its head convolution."""


@dataclass(frozen=True)
class ProvenOp:
    """An op the Model Zoo runs on the device for a family: its op type, the conditions (checks of
    :data:`hailo_qa.graph.rules.CHECKS`) under which the Zoo's graphs have it, and what it is there."""

    op: str
    conditions: tuple[Mapping[str, Any], ...] = ()
    what: str = ""


@dataclass(frozen=True)
class Family:
    name: str
    description: str
    zoo: tuple[str, ...]
    strategy: str
    end_nodes: tuple[str, ...] = ()
    then: Mapping[str, str] | None = None
    min_matches: int = 1
    outputs: str = ""
    decode: str = ""
    parts: tuple[str, ...] = ()
    device_proven: tuple[ProvenOp, ...] = ()
    proven_by: tuple[str, ...] = ()


@dataclass(frozen=True)
class ZooCut:
    """A recognised family and its Model Zoo end nodes in one graph."""

    family: Family
    end_nodes: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"family": self.family.name, "description": self.family.description, "zoo": list(self.family.zoo),
                "end_nodes": list(self.end_nodes), "decode": self.family.decode}


@functools.cache
def load_families(path: str | None = None) -> tuple[Family, ...]:
    """The family table. Defaults to the packaged ``zoo_cuts.toml``."""
    from pathlib import Path

    text = (Path(path).read_text(encoding="utf-8") if path else
            resources.files("hailo_qa.graph").joinpath("zoo_cuts.toml").read_text(encoding="utf-8"))
    out = []
    for name, f in tomllib.loads(text).get("families", {}).items():
        unknown = set(f) - {"description", "zoo", "strategy", "end_nodes", "then", "min_matches", "outputs", "decode",
                            "parts", "device_proven", "proven_by"}
        if unknown or f.get("strategy") not in STRATEGIES or not f.get("zoo"):
            raise InternalError(f"zoo_cuts.toml: bad family {name} (unknown keys {unknown}, strategy "
                                f"{f.get('strategy')}, zoo source {f.get('zoo')})")
        proven = tuple(_proven_op(name, p) for p in f.get("device_proven", ()))
        if proven and not f.get("proven_by"):
            raise InternalError(f"zoo_cuts.toml: family {name} has device_proven ops but no proven_by sources")
        out.append(Family(name, f.get("description", ""), tuple(f["zoo"]), f["strategy"], tuple(f.get("end_nodes", ())),
                          dict(f.get("then", {})) or None, int(f.get("min_matches", 1)), f.get("outputs", ""),
                          f.get("decode", ""), tuple(f.get("parts", ())), proven, tuple(f.get("proven_by", ()))))
    return tuple(out)


def _proven_op(family: str, p: Mapping[str, Any]) -> ProvenOp:
    conds = p.get("conditions", [])
    unknown = set(p) - {"op", "conditions", "what"}
    if unknown or not p.get("op") or any(c.get("check") not in CHECKS for c in conds):
        raise InternalError(f"zoo_cuts.toml: bad device_proven entry {dict(p)} of family {family} (unknown keys "
                            f"{unknown}; checks must be among {sorted(CHECKS)})")
    return ProvenOp(p["op"], tuple(conds), p.get("what", ""))


def zoo_vouched(g: GraphIndex, zoo: ZooCut, verdicts: Mapping[str, Verdict],
                stage1: Sequence[onnx.NodeProto]) -> dict[str, Verdict]:
    """The nodes of ``stage1`` (the nodes before the Zoo's end nodes) that our rules reject but the family's
    ``device_proven`` accepts, with their new verdicts (rule ``zoo:<family>``; the rules' reason kept in details).

    Only op-rule rejections are overturned, and only when the node passes every condition of a matching entry and
    the generic checks (static shapes, float tensors) the rules apply to every device node.
    """
    fam = zoo.family
    out: dict[str, Verdict] = {}
    for n in stage1:
        v = verdicts.get(g.name(n))
        if v is None or v.ok or not v.rule.startswith("op:"):
            continue
        for p in fam.device_proven:
            if p.op != n.op_type or not all(CHECKS[c["check"]](g, n, c)[0] for c in p.conditions):
                continue
            if generic_verdict(g, n) is None:
                out[v.node] = Verdict(v.node, v.op, True, f"accepted on the Model Zoo's evidence ({fam.name}: "
                                      f"{p.what or p.op}); our rules say: {v.reason}", rule=f"zoo:{fam.name}",
                                      evidence="H", details={"rules_said": v.reason, "proven_by": list(fam.proven_by)})
            break
    return out


def _names_cut(g: GraphIndex, fam: Family) -> list[str]:
    pats = [re.compile(p) for p in fam.end_nodes]
    found = []
    for n in g.topo_nodes():
        name = g.name(n)
        if not any(p.search(name) for p in pats):
            continue
        for rx, op in (fam.then or {}).items():
            if re.search(rx, name):
                cons = [c for o in n.output for c in g.consumers.get(o, [])]
                if len(cons) == 1 and cons[0].op_type == op:
                    n = cons[0]
        found.append(g.name(n))
    return list(dict.fromkeys(found))


def _head_convs(g: GraphIndex, outputs: Sequence[str]) -> list[str]:
    found = []
    for out in outputs:
        todo, seen = [out], set()
        while todo:
            t = todo.pop()
            if t in seen or t not in g.producer:
                continue
            seen.add(t)
            n = g.producer[t]
            src = g.producer.get(n.input[0]) if n.input else None
            if n.op_type in ("Conv", "ConvTranspose"):
                found.append(g.name(n))
            elif n.op_type == "Split" and src is not None and src.op_type in ("Conv", "ConvTranspose"):
                found.append(g.name(n))  # one conv split into class and box maps (NanoDet share_cls_reg)
            elif n.op_type in LAYOUT_OPS:
                todo.extend(i for i in n.input if i and i not in g.constants)
    return list(dict.fromkeys(found))


def _concat_parts(g: GraphIndex, parts: Sequence[str]) -> list[str]:
    """Walking back from each output through layout ops, the producers of every Concat whose inputs come from
    exactly ``parts`` (op types, in order): e.g. YOLOX's per-level ``Concat(reg Conv, obj Sigmoid, cls Sigmoid)``."""
    found = []
    for out in g.outputs:
        todo, seen = [out], set()
        while todo:
            t = todo.pop(0)
            if t in seen or t not in g.producer:
                continue
            seen.add(t)
            n = g.producer[t]
            ins = [i for i in n.input if i and i not in g.constants]
            prods = [g.producer.get(i) for i in ins]
            if (n.op_type == "Concat" and len(prods) == len(parts)
                    and all(p is not None and p.op_type == op for p, op in zip(prods, parts))):
                found.extend(g.name(p) for p in prods)
            elif n.op_type in LAYOUT_OPS:
                todo.extend(ins)
    return list(dict.fromkeys(found))


def find_zoo_cut(g: GraphIndex, families: Sequence[Family] | None = None) -> ZooCut | None:
    """The first family ``g`` belongs to, with its end nodes in ``g``; None when no family matches."""
    for fam in families if families is not None else load_families():
        if fam.outputs and not all(re.search(fam.outputs, o) for o in g.outputs):
            continue
        if fam.strategy == "names":
            nodes = _names_cut(g, fam)
            if len(nodes) >= fam.min_matches:
                return ZooCut(fam, tuple(nodes))
        elif fam.strategy == "head_convs":
            nodes = _head_convs(g, g.outputs)
            if len(nodes) >= fam.min_matches:
                return ZooCut(fam, tuple(nodes))
        elif fam.strategy == "concat_parts":
            nodes = _concat_parts(g, fam.parts)
            if len(nodes) >= fam.min_matches:
                return ZooCut(fam, tuple(nodes))
        else:
            nodes = list(dict.fromkeys(g.name(g.producer[o]) for o in g.outputs if o in g.producer))
            if len(nodes) >= fam.min_matches:
                return ZooCut(fam, tuple(nodes))
    return None
