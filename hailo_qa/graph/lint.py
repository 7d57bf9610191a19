"""``hailo-qa lint``: which nodes Hailo-8 rejects, why, and what to do — per node.

The verdicts come from the rule table (:mod:`hailo_qa.graph.rules`, a documented approximation). Where the Dataflow
Compiler is installed, its parser's verdict (errors per node and recommended end nodes from
``ParsingWithRecommendationException``) takes precedence and is reported beside ours.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import onnx

from hailo_qa.errors import GraphError, did_you_mean
from hailo_qa.graph.index import GraphIndex
from hailo_qa.graph.io import load_onnx
from hailo_qa.graph.prepare import Prepared, prepare
from hailo_qa.graph.rules import Verdict, evaluate, load_rules


@dataclass(frozen=True)
class LintReport:
    """Lint result for one model."""

    source: str
    prepared: Prepared
    image_inputs: tuple[str, ...]
    host_inputs: tuple[str, ...]
    verdicts: tuple[Verdict, ...]
    host_only: tuple[str, ...]  # nodes that depend on host inputs (never device candidates)
    dfc: Any = None  # hailo_qa.runners.dfc.ParseVerdict when the DFC parser ran
    dfc_note: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def rejected(self) -> tuple[Verdict, ...]:
        return tuple(v for v in self.verdicts if not v.ok)

    def counts(self) -> dict[str, int]:
        ops: dict[str, int] = {}
        for v in self.rejected:
            ops[v.op] = ops.get(v.op, 0) + 1
        return dict(sorted(ops.items(), key=lambda kv: -kv[1]))

    def to_dict(self) -> dict[str, Any]:
        p = self.prepared
        return {
            "source": self.source,
            "rules": "hailo-qa Hailo-8 rule table (approximation of the DFC parser)",
            "image_inputs": list(self.image_inputs), "host_inputs": list(self.host_inputs),
            "preparation": {"pinned": {k: {"from": list(a), "to": list(b)} for k, (a, b) in p.pinned.items()},
                            "dynamic_inputs": list(p.dynamic_raw), "shape_computation_nodes": len(p.shape_nodes_raw),
                            "nodes_before": p.nodes_before, "nodes_after": p.nodes_after,
                            "simplifier": p.simplifier, "proof": p.proof, "notes": list(p.notes)},
            "nodes": len(self.verdicts), "rejected": len(self.rejected), "rejected_by_op": self.counts(),
            "findings": [{"node": v.node, "op": v.op, "rule": v.rule, "reason": v.reason,
                          "workaround": v.workaround, "evidence": v.evidence} for v in self.rejected],
            "host_only_nodes": list(self.host_only),
            "dfc": (self.dfc.to_dict() if hasattr(self.dfc, "to_dict") else self.dfc) if self.dfc else None,
            "dfc_note": self.dfc_note,
        }

    def render(self, *, limit: int = 200) -> str:
        p = self.prepared
        lines = [f"hailo-qa lint: {self.source}",
                 f"  image inputs (device): {', '.join(self.image_inputs)}"
                 + (f"; host inputs: {', '.join(self.host_inputs)}" if self.host_inputs else "")]
        for k, (a, b) in p.pinned.items():
            lines.append(f"  pinned {k}: {list(a)} → {list(b)}")
        lines.append(f"  {len(p.shape_nodes_raw)} shape-computation nodes; {p.nodes_before} → {p.nodes_after} nodes "
                     f"after folding ({p.simplifier})")
        for n in p.notes:
            if "fell back" in n or "proof" in n:
                lines.append(f"  preparation: {n}")
        lines.append(f"  {len(self.verdicts)} nodes checked, {len(self.rejected)} rejected by the Hailo-8 rules "
                     f"(an approximation of the DFC parser)")
        if self.rejected:
            lines.append("")
            w = max(len(v.node) for v in self.rejected[:limit])
            w = min(max(w, 4), 60)
            lines.append(f"  {'node':<{w}}  {'op':<15} reason → workaround")
            for v in self.rejected[:limit]:
                lines.append(f"  {v.node[:w]:<{w}}  {v.op:<15} {v.reason} → {v.workaround}")
            if len(self.rejected) > limit:
                lines.append(f"  … {len(self.rejected) - limit} more (use --json for all)")
            lines.append("")
            lines.append("  rejected by op: " + ", ".join(f"{k}×{n}" for k, n in self.counts().items()))
        if self.host_only:
            lines.append(f"  {len(self.host_only)} nodes depend on host inputs and stay on the host")
        if self.dfc is not None:
            lines.append(f"  DFC parser verdict (takes precedence): {self.dfc}")
        elif self.dfc_note:
            lines.append(f"  DFC: {self.dfc_note}")
        return "\n".join(lines)


def pick_image_inputs(g: GraphIndex, names: Sequence[str] | None = None, *, source: str = "model") -> list[str]:
    """The image-like device inputs: given ``names`` (validated), else every float rank-4 input.

    Raises:
        GraphError: a name is not an input, or no input is image-like.
    """
    if names:
        for n in names:
            if n not in g.inputs:
                raise GraphError(f"'{n}' is not an input of {source}", note=f"inputs: {g.inputs}",
                                 hint=did_you_mean(n, g.inputs) or "")
            info = g.info(n)
            if not info.is_float or info.rank != 4:
                raise GraphError(f"input '{n}' of {source} is not image-like ({info.dtype_name}, shape {info.shape})",
                                 note="expected a float rank-4 tensor (N,C,H,W or N,H,W,C) for the device stage",
                                 hint="the device stage takes images or feature maps; pass host-side inputs to "
                                      "Stage 2 instead")
        return list(names)
    found = [n for n in g.inputs if g.info(n).is_float and g.info(n).rank == 4]
    if not found:
        desc = ", ".join(f"{n} {g.info(n).dtype_name}{list(g.info(n).shape or [])}" for n in g.inputs)
        raise GraphError(f"{source} has no image-like input (inputs: {desc})",
                         note="expected at least one float rank-4 input (N,C,H,W or N,H,W,C) to run on the Hailo-8",
                         hint="Hailo-8 runs convolutional stages on images/feature maps; a model without one cannot "
                              "be split into a device stage")
    return found


def classify(g: GraphIndex, image_inputs: Sequence[str], rules=None) -> tuple[list[Verdict], list[str]]:
    """Verdicts for every non-constant node, plus the nodes that depend on non-image (host) inputs."""
    host_inputs = set(g.inputs) - set(image_inputs)
    tainted: set[str] = set(host_inputs)
    verdicts, host_only = [], []
    for n in g.topo_nodes():
        if all((not i) or i in g.constants for i in n.input) and n.op_type != "Shape":
            continue  # constant subgraph, folded or foldable
        if any(i in tainted for i in n.input):
            tainted.update(n.output)
            host_only.append(g.name(n))
        verdicts.append(evaluate(g, n, rules))
    return verdicts, host_only


def lint_onnx(model: str | Path | onnx.ModelProto, *, batch: int = 1, shapes: Mapping[str, Sequence[int]] | None = None,
              image_inputs: Sequence[str] | None = None, simplify: bool = True, use_dfc: bool | None = None,
              rules_path: str | None = None, reshape: bool = False,
              cache_dir: str | Path | None = None) -> LintReport:
    """Lint a model for Hailo-8.

    Args:
        model: path or ModelProto.
        batch: size for a dynamic batch. Defaults to 1.
        shapes: explicit static input shapes. Defaults to pinning dynamic dims.
        image_inputs: the device inputs. Defaults to every float rank-4 input.
        simplify: fold constants/shapes with onnxslim first. Defaults to True.
        use_dfc: ask the DFC parser too. Defaults to "when installed".
        rules_path: an alternative rule table (TOML). Defaults to the packaged Hailo-8 table.
        reshape: let ``shapes`` change static dims. Defaults to False.
        cache_dir: the cache of proven prepared graphs (see :func:`~hailo_qa.graph.prepare.prepare`). Defaults to
            None (prepare afresh).
    """
    source = str(model) if not isinstance(model, onnx.ModelProto) else (model.graph.name or "<model>")
    m = load_onnx(model) if not isinstance(model, onnx.ModelProto) else model
    prep = prepare(m, batch=batch, shapes=shapes, simplify=simplify, reshape=reshape, cache_dir=cache_dir)
    g = GraphIndex(prep.model)
    imgs = pick_image_inputs(g, image_inputs, source=source)
    verdicts, host_only = classify(g, imgs, load_rules(rules_path))
    dfc_verdict, dfc_note = None, ""
    from hailo_qa import toolchain

    if use_dfc is None:
        use_dfc = toolchain.dfc().found
    if use_dfc and not isinstance(model, onnx.ModelProto):
        from hailo_qa.runners.dfc import dfc_parse_verdict

        shp = {i: list(g.info(i).shape) for i in imgs}
        dfc_verdict = dfc_parse_verdict(str(model), net_name=Path(str(model)).stem.replace("-", "_"),
                                        start_nodes=list(imgs), end_nodes=None, input_shapes=shp, hw_arch="hailo8")
    elif not use_dfc:
        dfc_note = f"not consulted ({toolchain.dfc().reason or 'disabled'}); verdicts are hailo-qa's rule table"
    return LintReport(source, prep, tuple(imgs), tuple(i for i in g.inputs if i not in imgs), tuple(verdicts),
                      tuple(host_only), dfc_verdict, dfc_note, prep.notes)
