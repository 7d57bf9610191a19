"""Stage split: Stage 1 (device: image inputs → feature tensors) + Stage 2 (host: Stage-1 tensors + original
inputs → final outputs).

``auto`` computes the largest device-compatible Stage 1 reachable from the image inputs: a node goes to Stage 1 when
the Hailo-8 rules accept it and every non-constant input comes from an image input or another Stage-1 node (the
forward closure — anything outside it depends on a rejected node or on a host input). ``explicit`` honours cut
tensors (Stage-1 outputs) or end nodes (their outputs become the cut). Sub-models are extracted with
``onnx.utils.Extractor`` and both stages pass ``onnx.checker`` with full shape inference.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import stat
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import onnx

from hailo_qa.errors import GraphError, InputFileError, did_you_mean
from hailo_qa.fsutil import atomic_write, build_once, default_mode, ensure_dir, writable_dir
from hailo_qa.graph.index import GraphIndex
from hailo_qa.graph.io import load_onnx, sha256_file, sha256_model
from hailo_qa.graph.lint import classify, pick_image_inputs
from hailo_qa.graph.prepare import prepare
from hailo_qa.graph.rules import Verdict, load_rules
from hailo_qa.graph.zoo import find_zoo_cut, zoo_vouched

SPLIT_FORMAT = 3
"""Bumped when the split algorithm changes, so cached splits are recomputed."""


@dataclass(frozen=True)
class Boundary:
    """One Stage-1 output tensor and why the cut is there."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    producer: str
    producer_op: str
    consumers: tuple[str, ...]
    reason: str


@dataclass(frozen=True)
class SplitResult:
    """Both stages, their interface and a report. Paths are set once written (:func:`write_stages`)."""

    source: str
    mode: str
    stage1: onnx.ModelProto = field(repr=False)
    stage2: onnx.ModelProto = field(repr=False)
    stage1_inputs: tuple[str, ...]
    stage2_inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    boundary: tuple[Boundary, ...]
    report: Mapping[str, Any] = field(repr=False)
    stage1_path: Path | None = None
    stage2_path: Path | None = None
    alternatives: tuple[SplitResult, ...] = field(default=(), repr=False, compare=False)
    """The other candidate cuts of ``report["candidates"]`` (in order, the chosen one excluded); not written."""

    @property
    def host_inputs(self) -> tuple[str, ...]:
        """Original model inputs fed to Stage 2 directly."""
        names = {b.name for b in self.boundary}
        return tuple(i for i in self.stage2_inputs if i not in names)


# ---- helpers -------------------------------------------------------------------------------------------------------
def _backward(g: GraphIndex, targets: Sequence[str], stop: set[str]) -> tuple[set[int], set[str]]:
    """Nodes (ids) needed to compute ``targets``, stopping at ``stop`` tensors; and graph inputs reached."""
    nodes: set[int] = set()
    reached: set[str] = set()
    todo = list(targets)
    seen: set[str] = set()
    while todo:
        t = todo.pop()
        if t in seen or not t:
            continue
        seen.add(t)
        if t in stop:
            continue
        if t in g.inputs:
            reached.add(t)
            continue
        n = g.producer.get(t)
        if n is None or id(n) in nodes:
            continue
        nodes.add(id(n))
        todo.extend(n.input)
    return nodes, reached


def _extract(model: onnx.ModelProto, inputs: Sequence[str], outputs: Sequence[str], name: str) -> onnx.ModelProto:
    ext = onnx.utils.Extractor(model)
    sub = ext.extract_model(list(inputs), list(outputs))
    sub.ir_version = model.ir_version
    del sub.opset_import[:]
    sub.opset_import.extend(model.opset_import)
    sub.graph.name = name
    sub.producer_name = "hailo-qa split"
    return sub


def _check(model: onnx.ModelProto, what: str) -> None:
    try:
        onnx.checker.check_model(model, full_check=True)
    except Exception as err:  # a bug in the split, not in the user's model
        raise GraphError(f"{what} fails onnx.checker: {str(err).strip().splitlines()[0]}",
                         note="both stages must pass onnx.checker with full shape inference",
                         hint="report this with the model; meanwhile try an explicit --cut") from err


def _validate_names(g: GraphIndex, original: onnx.ModelProto, cut: Sequence[str], end_nodes: Sequence[str]) -> list[str]:
    tensors = set(g.tensor_names())
    names = {g.name(n): n for n in g.nodes}
    out: list[str] = []
    for t in cut:
        if t in g.constants:
            raise GraphError(f"cut tensor '{t}' is a constant after folding",
                             note="cut tensors must be computed from the image inputs",
                             hint="cut at a tensor that depends on the input")
        if t in g.inputs:
            raise GraphError(f"cut tensor '{t}' is a graph input",
                             note="cut tensors are computed by Stage 1: Stage 1 needs at least one node",
                             hint="cut at a tensor produced from the input (list them with: hailo-qa lint MODEL "
                                  "--json)")
        if t not in tensors:
            orig = {o for n in original.graph.node for o in n.output}
            extra = (" (it exists in the original graph but was folded away by the simplifier)"
                     if t in orig else "")
            raise GraphError(f"cut tensor '{t}' does not exist{extra}",
                             note="expected the name of a tensor in the (prepared) graph",
                             hint=did_you_mean(t, tensors) or "list tensor names with: hailo-qa lint MODEL --json")
        out.append(t)
    for nname in end_nodes:
        node = names.get(nname)
        if node is None:
            raise GraphError(f"end node '{nname}' does not exist",
                             note="expected the name of a node in the (prepared) graph",
                             hint=did_you_mean(nname, names) or "list node names with: hailo-qa lint MODEL --json")
        out.extend(o for o in node.output if o)
    return list(dict.fromkeys(out))


def _verdict_map(verdicts: Sequence[Verdict]) -> dict[str, Verdict]:
    return {v.node: v for v in verdicts}


# ---- the split -----------------------------------------------------------------------------------------------------
def stages_from_onnx(model: str | Path | onnx.ModelProto, *, cut: Sequence[str] = (), end_nodes: Sequence[str] = (),
                     batch: int = 1, shapes: Mapping[str, Sequence[int]] | None = None,
                     image_inputs: Sequence[str] | None = None, allow_rejected: bool = False,
                     rules_path: str | None = None, use_dfc: bool = False, simplify: bool = True,
                     reshape: bool = False, cut_patterns: bool = True,
                     cache_dir: str | Path | None = None) -> SplitResult:
    """Split a model into a device Stage 1 and a host Stage 2.

    Args:
        model: path or ModelProto.
        cut: explicit Stage-1 output tensors. Defaults to automatic.
        end_nodes: explicit Stage-1 end nodes (their outputs become the cut). Defaults to automatic.
        batch: static size for a dynamic batch. Defaults to 1.
        shapes: explicit static input shapes. Defaults to pinning dynamic dims.
        image_inputs: the device inputs. Defaults to every float rank-4 input; Stage 1 must end up with one.
        allow_rejected: accept an explicit Stage 1 that holds ops the rules reject. Defaults to False.
        rules_path: alternative rule table. Defaults to the packaged Hailo-8 rules.
        use_dfc: for an automatic split, ask the installed DFC parser first; when it recommends end nodes
            (``ParsingWithRecommendationException``), they take precedence over the rule table. Defaults to False.
        simplify: fold constants and shapes with onnxslim (proven; see :func:`~hailo_qa.graph.prepare.prepare`).
            Defaults to True.
        reshape: let ``shapes`` change static dims. Defaults to False.
        cut_patterns: for an automatic split of a recognised detector family (:mod:`hailo_qa.graph.zoo`), cut at
            the Model Zoo's end nodes, with the largest device stage reported beside it (``report["candidates"]``).
            Defaults to True; False gives the largest device stage.
        cache_dir: the cache of proven prepared graphs (see :func:`~hailo_qa.graph.prepare.prepare`). Defaults to
            None (prepare afresh).

    Raises:
        InputFileError: the model cannot be loaded. GraphError: bad cut names, a cut that does not separate the
        graph, no image-like input, no device-compatible node.
    """
    source = str(model) if not isinstance(model, onnx.ModelProto) else (model.graph.name or "<model>")
    original = load_onnx(model) if not isinstance(model, onnx.ModelProto) else model
    prep = prepare(original, batch=batch, shapes=shapes, simplify=simplify, reshape=reshape,
                   cache_dir=cache_dir)
    pm = prep.model
    g = GraphIndex(pm)
    imgs = pick_image_inputs(g, image_inputs, source=source)
    verdicts, host_only = classify(g, imgs, load_rules(rules_path))
    vmap = _verdict_map(verdicts)
    dfc_note = ""
    if use_dfc and not (cut or end_nodes) and not isinstance(model, onnx.ModelProto):
        from hailo_qa.runners.dfc import dfc_parse_verdict

        verdict = dfc_parse_verdict(str(model), net_name=Path(str(model)).stem.replace("-", "_"),
                                    start_nodes=list(imgs), input_shapes={i: list(g.info(i).shape) for i in imgs})
        if verdict.recommended_end_nodes:
            end_nodes, allow_rejected = tuple(verdict.recommended_end_nodes), True
            dfc_note = f"end nodes recommended by the DFC parser ({verdict.backend})"
    if cut or end_nodes:
        return _cut(source, original, prep, g, imgs, verdicts, vmap, cut=cut, end_nodes=end_nodes,
                    allow_rejected=allow_rejected, dfc_note=dfc_note)
    largest = _cut(source, original, prep, g, imgs, verdicts, vmap)
    zoo = find_zoo_cut(g) if cut_patterns else None
    if zoo is None:
        return largest
    vouched = _zoo_vouched(g, zoo, vmap)
    try:
        zoo_split = _cut(source, original, prep, g, imgs, verdicts, {**vmap, **vouched}, end_nodes=zoo.end_nodes,
                         zoo=zoo)
    except GraphError as err:  # the rules reject part of the Zoo's Stage 1: keep the largest stage, say why
        largest.report["zoo"] = {**zoo.to_dict(), "offered": False, "why_not": err.what}
        largest.report["candidates"] = [_candidate("largest device stage", largest, g, chosen=True)]
        return largest
    cands = [_candidate("largest device stage", largest, g, chosen=False),
             _candidate(f"Model Zoo cut ({zoo.family.name})", zoo_split, g, chosen=True)]
    zoo_split.report["zoo"] = {**zoo.to_dict(), "offered": True,
                               "accepted_on_zoo_evidence": [{"node": v.node, "op": v.op,
                                                             "rules_said": v.details["rules_said"]}
                                                            for v in vouched.values()],
                               "proven_by": list(zoo.family.proven_by) if vouched else []}
    zoo_split.report["candidates"] = cands
    return dataclasses.replace(zoo_split, alternatives=(largest,))


def _zoo_vouched(g: GraphIndex, zoo, vmap: Mapping[str, Verdict]) -> dict[str, Verdict]:
    """The verdicts the family's Model Zoo evidence overturns, for the nodes before the Zoo's end nodes only."""
    if not zoo.family.device_proven:
        return {}
    names = {g.name(n): n for n in g.nodes}
    ends = [o for e in zoo.end_nodes if e in names for o in names[e].output if o]
    ids, _ = _backward(g, ends, set())
    return zoo_vouched(g, zoo, vmap, [n for n in g.nodes if id(n) in ids])


def _cut(source, original, prep, g: GraphIndex, imgs, verdicts, vmap, *, cut: Sequence[str] = (),
         end_nodes: Sequence[str] = (), allow_rejected: bool = False, dfc_note: str = "", zoo=None) -> SplitResult:
    """One split of the prepared graph: explicit (``cut``/``end_nodes``) or the largest device stage."""
    pm = prep.model
    explicit = bool(cut or end_nodes)

    if explicit:
        mode = "explicit"
        boundary_names = _validate_names(g, original, cut, end_nodes)
        s1_ids, reached = _backward(g, boundary_names, set())
        bad_inputs = sorted(reached - set(imgs))
        if bad_inputs:
            raise GraphError(f"the cut {boundary_names} depends on non-image inputs {bad_inputs}",
                             note="Stage 1 runs on the device and may only read the image inputs "
                                  f"{imgs}", hint="cut earlier, before the host inputs are used")
        s1_nodes = [n for n in g.nodes if id(n) in s1_ids]
        rejected = [vmap[g.name(n)] for n in s1_nodes if g.name(n) in vmap and not vmap[g.name(n)].ok]
        if rejected and not allow_rejected:
            v = rejected[0]
            raise GraphError(f"the explicit Stage 1 holds {len(rejected)} node(s) the Hailo-8 rules reject, e.g. "
                             f"'{v.node}' ({v.op}): {v.reason}",
                             note="Stage 1 must contain only device-compatible ops",
                             hint=f"cut before '{v.node}' ({v.workaround}), or pass --allow-rejected if the DFC "
                                  f"accepts it")
    else:
        mode = "auto"
        rejected = []
        dev: set[str] = set(imgs)
        s1_nodes = []
        for n in g.topo_nodes():
            name = g.name(n)
            v = vmap.get(name)
            if v is None:
                continue  # constant subgraph
            live = [i for i in n.input if i and i not in g.constants]
            if v.ok and live and all(i in dev for i in live):
                s1_nodes.append(n)
                dev.update(o for o in n.output if o)
        if not s1_nodes:
            first = next((v for v in verdicts if not v.ok), None)
            raise GraphError(f"no node reachable from the image inputs {imgs} is device-compatible",
                             note="Stage 1 needs at least one op the Hailo-8 accepts, fed by the image input",
                             hint=(f"the first op, '{first.node}' ({first.op}), is rejected: {first.reason}"
                                   if first else "check the model with hailo-qa lint"))
        s1_ids = {id(n) for n in s1_nodes}
        produced = {o for n in s1_nodes for o in n.output if o}
        boundary_names = []
        for n in g.nodes:  # keep graph order for a stable interface
            if id(n) in s1_ids:
                continue
            boundary_names.extend(i for i in n.input if i in produced)
        boundary_names.extend(o for o in g.outputs if o in produced)
        boundary_names = list(dict.fromkeys(boundary_names))

    # Stage 2: everything the outputs need, stopping at the boundary
    s2_ids, s2_reached = _backward(g, g.outputs, set(boundary_names))
    overlap = [g.name(n) for n in g.nodes if id(n) in s2_ids and id(n) in s1_ids]
    if overlap:
        raise GraphError(f"the cut does not separate the graph: Stage 2 would recompute {len(overlap)} Stage-1 "
                         f"node(s), e.g. '{overlap[0]}'",
                         note="every tensor Stage 2 needs from Stage 1 must be a cut tensor",
                         hint="add the missing tensors to the cut: "
                              + ", ".join(sorted({o for n in g.nodes if g.name(n) in overlap[:3] for o in n.output}))[:300])
    used_boundary = [b for b in boundary_names if b in _stage2_reads(g, s2_ids) or b in g.outputs]
    unused = [b for b in boundary_names if b not in used_boundary]
    if unused and explicit:
        raise GraphError(f"cut tensor(s) {unused} are not needed to compute the outputs",
                         note="every cut tensor must feed Stage 2", hint="drop them from the cut")
    stage2_inputs = used_boundary + [i for i in g.inputs if i in s2_reached]
    stage1 = _extract(pm, imgs, used_boundary, "stage1")
    # Stage 1 must read exactly one image input
    s1_in = [i.name for i in stage1.graph.input if i.name not in {t.name for t in stage1.graph.initializer}]
    if len(s1_in) != 1:
        raise GraphError(f"Stage 1 reads {len(s1_in)} image inputs {s1_in}",
                         note="a Hailo device stage takes a single image-like input",
                         hint="choose one with --input NAME (the others go to the host)")
    stage2 = _extract(pm, stage2_inputs, g.outputs, "stage2")
    _check(stage1, "Stage 1")
    _check(stage2, "Stage 2")

    consumers: dict[str, list[str]] = {b: [] for b in used_boundary}
    for n in g.nodes:
        if id(n) in s2_ids:
            for i in n.input:
                if i in consumers:
                    consumers[i].append(g.name(n))
    bounds = []
    for b in used_boundary:
        info = g.info(b)
        prod = g.producer[b]
        why = (f"Model Zoo end node ({zoo.family.name}: {zoo.family.zoo[0].split(' ')[0]})" if zoo is not None
               else _why(b, consumers[b], vmap, g, explicit))
        bounds.append(Boundary(b, tuple(int(d) for d in info.shape), info.dtype_name, g.name(prod), prod.op_type,
                               tuple(consumers[b]), why))
    s2_nodes = [n for n in g.nodes if id(n) in s2_ids]
    if dfc_note:
        mode = "dfc"
    if zoo is not None:
        mode = "zoo"
    report = _report(source, original, prep, mode, imgs, s1_nodes, s2_nodes, bounds, stage2_inputs, vmap, g,
                     rejected)
    if dfc_note:
        report["dfc"] = dfc_note
    return SplitResult(source, mode, stage1, stage2, (s1_in[0],), tuple(stage2_inputs), tuple(g.outputs),
                       tuple(bounds), report)


def _macs(g: GraphIndex, node: onnx.NodeProto) -> int:
    """Multiply-accumulates of a Conv/ConvTranspose/MatMul/Gemm node (0 for other ops or unknown shapes)."""
    try:
        if node.op_type in ("Conv", "ConvTranspose"):
            w = g.info(node.input[1]).shape
            out = g.info(node.output[0]).shape
            n = 1
            for d in out:
                n *= int(d)
            k = 1
            for d in w[1:]:
                k *= int(d)
            return n * k
        if node.op_type in ("MatMul", "Gemm"):
            a = g.info(node.input[0]).shape
            out = g.info(node.output[0]).shape
            n = 1
            for d in out:
                n *= int(d)
            kdim = a[-1] if not (node.op_type == "Gemm" and any(x.name == "transA" and x.i for x in node.attribute)) \
                else a[0]
            return n * int(kdim)
    except (TypeError, ValueError, IndexError):
        return 0
    return 0


def _candidate(label: str, r: SplitResult, g: GraphIndex, *, chosen: bool) -> dict[str, Any]:
    """One cut for the side-by-side table: boundary, device/host node counts and the host's compute."""
    host = set(r.report.get("stage2_node_names", ()))
    dev = set(r.report.get("stage1_node_names", ()))
    return {"label": label, "chosen": chosen, "mode": r.mode,
            "boundary": [{"name": b.name, "shape": list(b.shape), "producer": b.producer} for b in r.boundary],
            "stage1_nodes": r.report["stage1"]["nodes"], "stage2_nodes": r.report["stage2"]["nodes"],
            "stage1_macs": sum(_macs(g, n) for n in g.nodes if g.name(n) in dev),
            "host_macs": sum(_macs(g, n) for n in g.nodes if g.name(n) in host),
            "host_ops": r.report["stage2"]["ops"]}


def _stage2_reads(g: GraphIndex, s2_ids: set[int]) -> set[str]:
    return {i for n in g.nodes if id(n) in s2_ids for i in n.input if i}


def _why(tensor: str, consumers: Sequence[str], vmap: Mapping[str, Verdict], g: GraphIndex, explicit: bool) -> str:
    if explicit:
        return "explicit cut (or end nodes recommended by the DFC parser)"
    if tensor in g.outputs and not consumers:
        return "model output computed entirely on the device"
    for c in consumers:
        v = vmap.get(c)
        if v is not None and not v.ok:
            return f"feeds '{c}' ({v.op}), rejected: {v.reason}"
    return f"feeds host node(s) {list(consumers)[:3]} that depend on rejected ops or host inputs"


def _ops(nodes) -> dict[str, int]:
    ops: dict[str, int] = {}
    for n in nodes:
        ops[n.op_type] = ops.get(n.op_type, 0) + 1
    return dict(sorted(ops.items(), key=lambda kv: (-kv[1], kv[0])))


def _report(source, original, prep, mode, imgs, s1_nodes, s2_nodes, bounds, stage2_inputs, vmap, g, rejected):
    host_rejected: dict[str, str] = {}
    for n in s2_nodes:
        v = vmap.get(g.name(n))
        if v is not None and not v.ok and n.op_type not in host_rejected:
            host_rejected[n.op_type] = v.reason
    return {
        "format": SPLIT_FORMAT,
        "source": source,
        "source_sha256": sha256_model(original),
        "mode": mode,
        "rules": "hailo-qa Hailo-8 rule table (approximation of the DFC parser)",
        "preparation": {"pinned": {k: {"from": list(a), "to": list(b)} for k, (a, b) in prep.pinned.items()},
                        "shape_computation_nodes": len(prep.shape_nodes_raw), "simplifier": prep.simplifier,
                        "nodes_before": prep.nodes_before, "nodes_after": prep.nodes_after,
                        "proof": prep.proof, "notes": list(prep.notes)},
        "stage1": {"inputs": list(imgs), "nodes": len(s1_nodes), "ops": _ops(s1_nodes),
                   "outputs": [b.name for b in bounds]},
        "stage2": {"inputs": list(stage2_inputs), "nodes": len(s2_nodes), "ops": _ops(s2_nodes)},
        "boundary": [dataclasses.asdict(b) for b in bounds],
        "host_ops": host_rejected,
        "stage1_rejected_allowed": [v.node for v in rejected],
        "stage1_node_names": [g.name(n) for n in s1_nodes],
        "stage2_node_names": [g.name(n) for n in s2_nodes],
    }


def render_report(report: Mapping[str, Any]) -> str:
    """Markdown rendering of a split report."""
    s1, s2 = report["stage1"], report["stage2"]
    lines = [f"# Stage split of `{report['source']}` ({report['mode']})", "",
             f"- rules: {report['rules']}",
             f"- preparation: {report['preparation']['simplifier']}; "
             f"{report['preparation']['nodes_before']} → {report['preparation']['nodes_after']} nodes; pinned "
             + (", ".join(f"{k} {v['from']}→{v['to']}" for k, v in report["preparation"]["pinned"].items()) or "none")
             + (f"; proven against the original: {report['preparation']['proof']['summary']}"
                if report["preparation"].get("proof") else ""),
             *(f"- preparation note: {n}" for n in report["preparation"].get("notes", [])
               if "fell back" in n or "proof" in n),
             *([f"- equivalence proof: {report['proof']['summary']}"] if report.get("proof") else []),
             f"- Stage 1 (device): {s1['nodes']} nodes, input {s1['inputs']}, ops "
             + ", ".join(f"{k}×{v}" for k, v in s1["ops"].items()),
             f"- Stage 2 (host): {s2['nodes']} nodes, inputs {len(s2['inputs'])}, ops "
             + ", ".join(f"{k}×{v}" for k, v in s2["ops"].items()), "",
             "## Boundary tensors", "", "| tensor | shape | dtype | producer | why the cut is here |",
             "|---|---|---|---|---|"]
    for b in report["boundary"]:
        lines.append(f"| `{b['name']}` | {list(b['shape'])} | {b['dtype']} | {b['producer']} ({b['producer_op']}) "
                     f"| {b['reason']} |")
    if report.get("zoo"):
        z = report["zoo"]
        lines += ["", f"## Model Zoo cut ({z['family']})", "", f"- {z['description']}",
                  *(f"- from `{src}`" for src in z["zoo"]),
                  f"- end nodes: {', '.join(f'`{n}`' for n in z['end_nodes'])}"]
        if not z.get("offered"):
            lines.append(f"- not used: {z.get('why_not', '')}")
        if z.get("accepted_on_zoo_evidence"):
            acc = z["accepted_on_zoo_evidence"]
            ops: dict[str, int] = {}
            for a in acc:
                ops[a["op"]] = ops.get(a["op"], 0) + 1
            lines += ["", f"### {len(acc)} node(s) accepted on the Model Zoo's evidence, NOT by our rule table", "",
                      f"Our rules reject these nodes ({', '.join(f'{k}×{v}' for k, v in ops.items())}); they are on "
                      f"the device because the Model Zoo compiles this family for Hailo-8 with them "
                      f"(the Zoo config vouches, not our rules):", "",
                      *(f"- from `{src}`" for src in z.get("proven_by", [])), "",
                      "| node | op | what our rules say |", "|---|---|---|",
                      *(f"| `{a['node']}` | {a['op']} | {a['rules_said']} |" for a in acc)]
    if report.get("candidates"):
        lines += ["", "## Cuts side by side", "",
                  "| cut | boundary | device nodes | host nodes | host MACs | INT8 error: SNR dB / cosine min "
                  "(worst output) |", "|---|---|---|---|---|---|"]
        for c in report["candidates"]:
            bnd = ", ".join(f"`{b['name']}` {b['shape']}" for b in c["boundary"][:6]) + (
                f" (+{len(c['boundary']) - 6})" if len(c["boundary"]) > 6 else "")
            q = c.get("int8")
            err = f"not measured ({c['int8_not_measured']})" if c.get("int8_not_measured") else \
                "not measured" if q is None else (
                f"{q['snr_db']:.1f} / {q['cosine']:.5f} (worst output "
                f"{min(v['snr_db'] for v in q['per_output'].values()):.1f} dB)")
            lines.append(f"| {'**' + c['label'] + '** (chosen)' if c['chosen'] else c['label']} | {bnd} "
                         f"| {c['stage1_nodes']} | {c['stage2_nodes']} | {c['host_macs']:,} | {err} |")
        measured = [c["int8"] for c in report["candidates"] if c.get("int8")]
        if measured:
            lines += ["", f"INT8 error by {measured[0]['backend']} ({measured[0]['backend_note']}); calibration: "
                          f"{measured[0]['calibration']}; {measured[0]['eval_inputs']} held-out random inputs. "
                          "Per boundary output:", ""]
            lines += [f"- {c['label']}: " + ", ".join(f"`{n}` {v['snr_db']:.1f} dB / {v['cosine']:.5f}"
                                                      for n, v in c["int8"]["per_output"].items())
                      for c in report["candidates"] if c.get("int8")]
    if report["host_ops"]:
        lines += ["", "## Ops left on the host (rejected by the rules)", ""]
        lines += [f"- **{op}**: {why}" for op, why in report["host_ops"].items()]
    return "\n".join(lines) + "\n"


def write_stages(result: SplitResult, out_dir: str | Path) -> SplitResult:
    """Write ``stage1.onnx``, ``stage2.onnx``, ``split_report.json`` and ``split_report.md`` (atomically)."""
    out = ensure_dir(out_dir, "split output folder")
    files = {"stage1.onnx": result.stage1.SerializeToString(), "stage2.onnx": result.stage2.SerializeToString(),
             "split_report.json": json.dumps(result.report, indent=2).encode(),
             "split_report.md": render_report(result.report).encode()}
    for name, data in files.items():
        atomic_write(out / name, data)
    return dataclasses.replace(result, stage1_path=out / "stage1.onnx", stage2_path=out / "stage2.onnx",
                               alternatives=result.alternatives)


def load_stages(out_dir: str | Path) -> SplitResult:
    """Read back a split written by :func:`write_stages`."""
    d = Path(out_dir)
    try:
        report = json.loads((d / "split_report.json").read_text())
        s1, s2 = onnx.load(str(d / "stage1.onnx")), onnx.load(str(d / "stage2.onnx"))
    except (OSError, ValueError) as err:
        raise InputFileError(f"split directory '{d}' is incomplete or corrupt ({err})",
                             note="expected stage1.onnx, stage2.onnx and split_report.json",
                             hint="re-run hailo-qa split") from err
    bounds = tuple(Boundary(**{**b, "shape": tuple(b["shape"]), "consumers": tuple(b["consumers"])})
                   for b in report["boundary"])
    outputs = tuple(o.name for o in s2.graph.output)
    return SplitResult(report["source"], report["mode"], s1, s2, tuple(report["stage1"]["inputs"]),
                       tuple(report["stage2"]["inputs"]), outputs, bounds, report, d / "stage1.onnx",
                       d / "stage2.onnx")


def split_dir_for_model(spec, work_dir: str | Path, *, simplify: bool | None = None) -> Path:
    """Where :func:`split_for_model` caches the split of ``spec``."""
    shapes = {i.name: list(i.shape) for i in spec.inputs}
    simplify = spec.split.simplify if simplify is None else simplify
    key_src = json.dumps({"sha": sha256_file(spec.file), "split": dataclasses.asdict(spec.split), "shapes": shapes,
                          "images": [i.name for i in spec.device_inputs], "format": SPLIT_FORMAT,
                          "simplify": simplify}, sort_keys=True)
    key = hashlib.sha256(key_src.encode()).hexdigest()[:16]
    return Path(work_dir) / "splits" / f"{spec.name}-{key}"


def split_for_model(spec, work_dir: str | Path, *, simplify: bool | None = None) -> SplitResult:
    """The split of a manifest model, cached on disk under ``work_dir/splits`` (safe under pytest-xdist).

    The cache key covers the model file's sha256, the split spec, the input shapes, ``simplify`` and
    :data:`SPLIT_FORMAT`. The folder is written whole and renamed into place; a process that needs a split another
    one is building (a pytest-xdist worker) waits for it (:func:`hailo_qa.fsutil.build_lock`) and reads it.

    Args:
        simplify: override the manifest's ``split.simplify`` (``--no-simplify``). Defaults to the manifest's.
    """
    if spec.file is None:
        raise GraphError(f"model '{spec.name}' has no ONNX file to split", note="expected 'file' in the manifest")
    shapes = {i.name: list(i.shape) for i in spec.inputs}
    simplify = spec.split.simplify if simplify is None else simplify
    final = split_dir_for_model(spec, work_dir, simplify=simplify)
    def built() -> SplitResult | None:
        return load_stages(final) if (final / "split_report.json").is_file() else None

    def build() -> SplitResult:
        _build_split(spec, final, shapes, simplify)
        return load_stages(final)

    return build_once(final, built, build)  # another xdist worker splitting this model: wait, read its split


def _build_split(spec, final: Path, shapes: dict[str, list], simplify: bool) -> None:
    try:
        result = stages_from_onnx(spec.file, cut=spec.split.cut, end_nodes=spec.split.end_nodes,
                                  batch=spec.split.batch, shapes=shapes, reshape=spec.split.reshape,
                                  image_inputs=[i.name for i in spec.device_inputs], simplify=simplify)
    except GraphError as err:
        raise err.with_context(f"{spec.name} | split")
    writable_dir(final.parent, "the split cache")
    try:
        tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}."))
        # not mkdtemp's 0700: a shared state folder serves every user (and keep a setgid folder's group bit)
        os.chmod(tmp, default_mode() | (final.parent.stat().st_mode & stat.S_ISGID))
    except OSError as err:
        raise InputFileError(f"the split cache '{final.parent}' is not writable ({err.strerror or err})",
                             note="expected a folder this user can create files in (a state folder shared by "
                                  "several users must be group-writable, e.g. chmod g+ws)",
                             hint="set HAILO_QA_STATE_DIR (or --work-dir / --hqa-work-dir) to a folder of your own"
                             ) from err
    try:
        write_stages(result, tmp)
        try:
            os.replace(tmp, final)
        except OSError:  # another process won the race (it built without the lock): use its copy
            shutil.rmtree(tmp, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def discard_split(split: SplitResult) -> None:
    """Remove a cached split's files (after a failed proof, so no stage files that look valid stay behind)."""
    if split.stage1_path is not None:
        shutil.rmtree(split.stage1_path.parent, ignore_errors=True)
