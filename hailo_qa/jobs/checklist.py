"""``hailo-qa checklist``: the classifier deployment checklist (the seed's "Deployment Validation" list) for any
classification model in the manifest with a ``[deploy]`` section.

One line per item, ✅ pass / ❌ fail / — not measured here (with the reason), the measured value, the gate and the
target it was measured on:

- **before export** (read from the ONNX): no training-only ops, BatchNorm folded, static shapes, nothing the Hailo-8
  rules reject on the device stage;
- **after export**: valid ONNX, simplified (onnxslim finds nothing to fold), lint clean (every rejected op is on the
  host side of the split), the calibration set (real or random, how many), the model script;
- **deployment**, per target (``float``: the ONNX on ORT; ``split``: Stage 1 → the manifest's host step → the host
  stage; ``emulator``: the same with Stage 1 quantized; ``hailo8``: Stage 1 from the HEF on a device): HEF size,
  P95 end-to-end and core latency (device only), accuracy, ECE before → after temperature scaling and
  split-conformal coverage at the manifest's α (:mod:`hailo_qa.evaluate.deploy`).

The same functions back ``tests/test_deploy.py``, so the command and the tests cannot disagree.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from hailo_qa.errors import InputDataError, InputFileError, ManifestError, QAError
from hailo_qa.evaluate.deploy import DEPLOY_GATES, DeployReport, deploy_report
from hailo_qa.manifest import ModelSpec

TARGETS = ("float", "split", "emulator", "hailo8")
SECTIONS = ("before export", "after export", "deployment", "random vs real calibration")
COMPARISON = "random vs real calibration"
"""Informational section: the emulator with random calibration data beside the real set (never fails the list)."""
MARK = {"pass": "✅", "fail": "❌", "skip": "—"}
TRAINING_ONLY_OPS = ("Dropout",)
"""Ops that only belong in a training graph (with BatchNormalization in training mode)."""


def deploy_section(target: str, config: str = "int8") -> str:
    """The ``thresholds`` section gating ``target``: ``deploy.float``, ``deploy.split``, ``deploy.hailo8`` or
    ``deploy.emulator.<config>`` (each falls back to plain ``deploy``)."""
    return f"deploy.emulator.{config}" if target == "emulator" else f"deploy.{target}"


@dataclass(frozen=True)
class Item:
    """One checklist line. ``status``: ``pass``, ``fail`` or ``skip`` (with the reason in ``value``)."""

    section: str
    name: str
    status: str
    value: str
    gate: str = ""
    target: str = ""
    number: float | None = None
    key: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class Checklist:
    model: str
    data: str
    items: list[Item] = field(default_factory=list)
    reports: dict[str, DeployReport] = field(default_factory=dict)
    backends: dict[str, str] = field(default_factory=dict)
    logits: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def failed(self) -> list[Item]:
        return [i for i in self.items if i.status == "fail" and i.section != COMPARISON]

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "data": self.data, "items": [i.to_dict() for i in self.items],
                "reports": {k: v.to_dict() for k, v in self.reports.items()}, "backends": dict(self.backends),
                "passed": not self.failed}

    def render(self) -> str:
        lines = [f"hailo-qa checklist {self.model}  ({self.data})"]
        for sec in SECTIONS:
            its = [i for i in self.items if i.section == sec]
            if not its:
                continue
            lines += ["", sec.capitalize()]
            w = max(len(i.name) for i in its)
            last_skip = ""
            for i in its:
                gate = f"  gate {i.gate}" if i.gate else ""
                tgt = f"  [{i.target}]" if i.target else ""
                value = "(not measured: as above)" if i.status == "skip" and i.value == last_skip else i.value
                last_skip = i.value if i.status == "skip" else ""
                lines.append(f"  {MARK[i.status]} {i.name:<{w}}  {value}{gate}{tgt}")
        n = {s: sum(i.status == s for i in self.items) for s in MARK}
        lines += ["", f"checklist: {n['pass']} passed, {n['fail']} failed, {n['skip']} not measured here"]
        return "\n".join(lines)

    def to_markdown(self) -> str:
        out = [f"# Deployment checklist: {self.model}", "", f"{self.data}", ""]
        for sec in SECTIONS:
            its = [i for i in self.items if i.section == sec]
            if not its:
                continue
            out += [f"## {sec.capitalize()}", "", "| | item | measured | gate | target |", "|---|---|---|---|---|"]
            out += [f"| {MARK[i.status]} | {i.name} | {i.value} | {i.gate} | {i.target} |" for i in its]
            out.append("")
        return "\n".join(out)


# --------------------------------------------------------------------------------------------------------------
# labelled data
def load_labelled(spec: ModelSpec) -> tuple[np.ndarray, np.ndarray]:
    """The manifest's ``deploy.data``: inputs [N, *input shape without batch] in the input dtype, labels [N].

    Raises:
        ManifestError: no ``deploy`` section. InputFileError: unreadable file.
        InputDataError: missing keys, shapes that do not fit the input, labels that are not integers.
    """
    d = spec.deploy
    ctx = f"{spec.name} | deploy"
    if d is None:
        raise ManifestError(f"model '{spec.name}' has no [deploy] section", context=ctx,
                            note="the checklist measures accuracy, ECE and coverage on labelled data",
                            hint=f"add [models.{spec.name}.deploy] data = \"labelled.npz\" (arrays x and y)")
    try:
        with np.load(d.data) as z:
            missing = [k for k in (d.x_key, d.y_key) if k not in z.files]
            if missing:
                raise InputDataError(f"{d.data} has no array {missing}", note=f"it holds {z.files}", context=ctx,
                                     hint="set deploy.x_key / deploy.y_key to the arrays holding inputs and labels")
            x, y = z[d.x_key], z[d.y_key]
    except (OSError, ValueError) as err:
        raise InputFileError(f"cannot read the labelled data {d.data}: {err}", note="expected an .npz file",
                             context=ctx) from err
    inp = spec.device_inputs[0]
    per = int(np.prod(inp.shape[1:]))
    if x.ndim < 1 or x.shape[0] != y.shape[0] or y.ndim != 1 or x[0].size != per:
        raise InputDataError(f"{d.data}: {d.x_key} {x.shape} and {d.y_key} {y.shape} do not fit input "
                             f"'{inp.name}' {list(inp.shape)}", context=ctx,
                             note=f"expected {d.x_key} [N, {', '.join(map(str, inp.shape[1:]))}] and {d.y_key} [N]")
    if not np.issubdtype(y.dtype, np.integer):
        raise InputDataError(f"{d.data}: labels '{d.y_key}' are {y.dtype}", note="expected integer class indices",
                             context=ctx)
    xs = x.reshape((x.shape[0], *inp.shape[1:]))
    if not np.array_equal(xs.astype(inp.np_dtype).astype(xs.dtype), xs):
        raise InputDataError(f"{d.data}: {d.x_key} ({x.dtype}) does not convert exactly to {inp.dtype}", context=ctx,
                             note="expected values representable in the input dtype")
    return xs.astype(inp.np_dtype), y.astype(np.int64)


# --------------------------------------------------------------------------------------------------------------
# static items
def _shape(vi: onnx.ValueInfoProto) -> list:
    return [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else (d.dim_param or "?")
            for d in vi.type.tensor_type.shape.dim]


def before_export_items(spec: ModelSpec, split) -> list[Item]:
    """No training-only ops, BatchNorm folded, static shapes, device stage accepted by the Hailo-8 rules."""
    from hailo_qa.graph.io import load_onnx
    from hailo_qa.graph.lint import lint_onnx

    m = load_onnx(spec.file)
    ops = [n.op_type for n in m.graph.node]
    bn = [n for n in m.graph.node if n.op_type == "BatchNormalization"]
    training_bn = [n.name for n in bn if any(a.name == "training_mode" and a.i for a in n.attribute)
                   or len([o for o in n.output if o]) > 1]
    training = [o for o in ops if o in TRAINING_ONLY_OPS] + ["BatchNormalization(training)"] * len(training_bn)
    items = [Item("before export", "no training-only ops", "fail" if training else "pass",
                  ", ".join(sorted(set(training))) or "none (Dropout, training-mode BatchNorm)", target="onnx",
                  number=float(len(training)), key="training_ops"),
             Item("before export", "BatchNorm folded", "fail" if bn else "pass",
                  f"{len(bn)} BatchNormalization node(s)", target="onnx", number=float(len(bn)), key="batchnorm")]
    dyn = [(vi.name, _shape(vi)) for vi in [*m.graph.input, *m.graph.output]
           if any(not isinstance(d, int) for d in _shape(vi))]
    shapes = ", ".join(f"{vi.name} {_shape(vi)}" for vi in [*m.graph.input, *m.graph.output])
    items.append(Item("before export", "static shapes", "fail" if dyn else "pass",
                      (f"dynamic: {dyn}" if dyn else shapes), target="onnx", number=float(len(dyn)),
                      key="static_shapes"))
    rep = lint_onnx(split.stage1_path or split.stage1, use_dfc=False)
    rej = rep.rejected
    items.append(Item("before export", "device stage accepted by the rules", "fail" if rej else "pass",
                      f"{len(rej)} of {len(rep.verdicts)} Stage-1 nodes rejected"
                      + (f" ({', '.join(f'{v.op} {v.node}' for v in rej[:3])})" if rej else ""),
                      target="stage1", number=float(len(rej)), key="stage1_rejected"))
    return items


def after_export_items(spec: ModelSpec, split, *, config: str = "int8", calib_size: int | None = None,
                       calib_source: str | None = None) -> list[Item]:
    """Valid and simplified ONNX, lint clean, calibration set, model script."""
    from hailo_qa.graph.lint import lint_onnx
    from hailo_qa.quant.calib import calib_set_for_model
    from hailo_qa.quant.model_script import alls_from_spec

    items = []
    try:
        onnx.checker.check_model(str(spec.file), full_check=True)
        items.append(Item("after export", "valid ONNX", "pass", "onnx.checker (full check) passed", target="onnx",
                          key="valid"))
    except Exception as err:  # the checker raises its own ValidationError/InferenceError types
        items.append(Item("after export", "valid ONNX", "fail", f"{type(err).__name__}: {str(err)[:200]}",
                          target="onnx", key="valid"))
    rep = lint_onnx(spec.file, use_dfc=None)
    p = rep.prepared
    compute = lambda mp: sum(n.op_type != "Constant" for n in mp.graph.node)  # noqa: E731 (Constant ≙ initializer)
    raw = compute(onnx.load(str(spec.file), load_external_data=False))
    folded = compute(p.model)
    items.append(Item("after export", "simplified", "pass" if folded >= raw else "fail",
                      f"{raw} compute nodes; {p.simplifier} → {folded}", target="onnx", number=float(raw - folded),
                      key="simplified"))
    stage2_nodes = {n.name for n in split.stage2.graph.node}
    on_device = [v for v in rep.rejected if v.node in {n.name for n in split.stage1.graph.node}]
    where = "; the DFC parser agrees" if rep.dfc is not None else ""
    items.append(Item("after export", "lint clean", "fail" if on_device else "pass",
                      f"{len(rep.rejected)} rejected ({', '.join(sorted({v.op for v in rep.rejected})) or 'none'}), "
                      f"{len(on_device)} left on the device"
                      + (f", {sum(v.node in stage2_nodes for v in rep.rejected)} on the host by the split"
                         if rep.rejected else "") + where,
                      target="onnx", number=float(len(on_device)), key="lint"))
    size = calib_size or spec.calibration.sizes[0]
    try:
        calib = calib_set_for_model(spec, size=size, source=calib_source)
        s = calib.summary()
        is_random = s.source.startswith("random")
        items.append(Item("after export", "calibration set", "fail" if is_random else "pass",
                          f"{s.count} samples from {s.source} ({s.real} real, {s.augmented} augmented)"
                          + (" — random data, not representative" if is_random else ""),
                          target="calib", number=float(s.real), key="calib"))
    except QAError as err:
        items.append(Item("after export", "calibration set", "fail", err.what.splitlines()[0], target="calib",
                          key="calib"))
    try:
        alls = alls_from_spec(spec, config, calib_size=size)
        lines = [ln for ln in alls.splitlines() if ln.strip()]
        items.append(Item("after export", "model script generated", "pass",
                          f"{len(lines)} lines ({config}, calibset_size {size})", target="alls",
                          number=float(len(lines)), key="alls"))
    except QAError as err:
        items.append(Item("after export", "model script generated", "fail", err.what.splitlines()[0],
                          target="alls", key="alls"))
    return items


# --------------------------------------------------------------------------------------------------------------
# targets
def target_runner(spec: ModelSpec, target: str, *, work_dir: Path, split=None, config: str = "int8",
                  backend: str = "auto", calib_size: int | None = None, calib_source: str | None = None,
                  device: str | None = None):
    """An inactive runner computing ``spec``'s final outputs on ``target`` (through the manifest's host step).

    Raises:
        QAError: the target cannot be built (no HEF, no device, a bad host step ...).
    """
    if target == "float":
        from hailo_qa.runners.onnxrt import OnnxrtRunner

        return OnnxrtRunner(spec.file, name=f"{spec.name}:float")
    if target not in TARGETS:
        raise InputDataError(f"unknown checklist target '{target}'", note=f"expected one of {list(TARGETS)}")
    from hailo_qa.graph.split import split_for_model
    from hailo_qa.inputs import host_feeds

    split = split or split_for_model(spec, work_dir)
    stage1 = None
    if target == "emulator":
        from hailo_qa.quant.calib import calib_set_for_model
        from hailo_qa.quant.emulator import make_emulator

        calib = calib_set_for_model(spec, size=calib_size or spec.calibration.sizes[0], source=calib_source)
        stage1 = make_emulator(spec, split, backend=backend, config=config, calib=calib, work_dir=work_dir)
    elif target == "hailo8":
        stage1 = _device_stage1(spec, split, device)
    if spec.host_step is not None:
        from hailo_qa.graph.hoststep import fsq_host_plan, fsq_pipeline

        return fsq_pipeline(split, fsq_host_plan(spec, split), stage1=stage1, host_feeds=host_feeds(spec),
                            name=f"{spec.name}:{target}")
    from hailo_qa.graph.verify import pipeline_for

    return pipeline_for(split, stage1=stage1, host_feeds=host_feeds(spec), name=f"{spec.name}:{target}")


def device_skip_reason(spec: ModelSpec, device: str | None = None) -> str | None:
    """Why the ``hailo8`` target cannot run here (None: it can)."""
    from hailo_qa.hw.device import hef_skip_reason, probe_device

    status = probe_device(device)
    if spec.hef is None:
        dev = status.reason.removeprefix("hailo8: ") if status.reason else "a device is present"
        return (f"no HEF of Stage 1 registered (hef = \"...\") or compiled (hailo-qa compile needs the Hailo DFC); "
                f"device: {dev}")
    return hef_skip_reason(status, spec.hef)


def _device_stage1(spec: ModelSpec, split, device: str | None):
    from hailo_qa.errors import DeviceError

    why = device_skip_reason(spec, device)
    if why:
        raise DeviceError(why, note="the hailo8 target needs a HEF of Stage 1 and a Hailo-8")
    from hailo_qa.runners.hailort import HailortRunner

    probe = HailortRunner(spec.hef)
    names = dict(zip(probe.input_metadata(), split.stage1_inputs))
    names.update(dict(zip(probe.output_metadata(), [b.name for b in split.boundary])))
    return _OnnxLayout(HailortRunner(spec.hef, device_id=device, names=names),
                       {b.name: tuple(b.shape) for b in split.boundary})


class _OnnxLayout:
    """The device's Stage 1 in the ONNX layout: NCHW inputs go to the device channels-last (any channel count, e.g.
    the IMU's 9), its outputs come back in the split's boundary shapes (NHWC → NCHW, NC → the boundary's shape)."""

    def __init__(self, device, out_shapes: dict[str, tuple]) -> None:
        self.device, self.out_shapes = device, out_shapes

    def __getattr__(self, name):  # backend, name, input/output metadata, activate ... are the device runner's
        return getattr(self.device, name)

    def __enter__(self):
        self.device.__enter__()
        return self

    def __exit__(self, *exc):
        return self.device.__exit__(*exc)

    def infer(self, feeds, **kw):
        from hailo_qa.runners.base import nhwc_to_nchw

        metas = self.device.input_metadata()
        dev = {}
        for k, x in feeds.items():
            want = tuple(metas[k].shape)[-3:] if k in metas else ()
            dev[k] = (np.ascontiguousarray(x.transpose(0, 2, 3, 1)) if x.ndim == 4 and tuple(x.shape[-3:]) != want
                      and tuple(x.transpose(0, 2, 3, 1).shape[-3:]) == want else x)
        out = {}
        for k, v in self.device.infer(dev, **kw).items():
            shape = self.out_shapes.get(k)
            if shape is not None and tuple(v.shape) != shape:
                v = nhwc_to_nchw(v) if v.ndim == 4 and tuple(nhwc_to_nchw(v).shape) == shape else v.reshape(shape)
            out[k] = v
        return out


def logits_on(runner, spec: ModelSpec, x: np.ndarray) -> np.ndarray:
    """The first output of ``runner`` for every row of ``x`` (batch 1), as [N, C]."""
    from hailo_qa.inputs import host_feeds

    inp = spec.device_inputs[0]
    extra = host_feeds(spec)
    with runner as r:
        out_name = next(iter(r.output_metadata()))
        rows = [r.infer({**extra, inp.name: x[i:i + 1]})[out_name] for i in range(len(x))]
    return np.concatenate([np.asarray(o).reshape(1, -1) for o in rows])


def target_logits(spec: ModelSpec, target: str, x: np.ndarray, **kw) -> tuple[np.ndarray, str]:
    """``spec``'s logits [N, C] on ``target`` and the label of the backend that computed them."""
    runner = target_runner(spec, target, **kw)
    z = logits_on(runner, spec, x)
    return z, runner.backend.label()


def report_from_logits(spec: ModelSpec, z: np.ndarray, y: np.ndarray, backend: str) -> DeployReport:
    d = spec.deploy
    return deploy_report(z, y, alpha=d.alpha, cal_fraction=d.calibration_fraction, seed=d.seed,
                         temperature_scaling=d.temperature_scaling, backend=backend)


def target_report(spec: ModelSpec, target: str, x: np.ndarray, y: np.ndarray, **kw) -> DeployReport:
    """Accuracy / ECE (raw and temperature-scaled) / conformal coverage of ``spec`` on ``target``."""
    z, backend = target_logits(spec, target, x, **kw)
    return report_from_logits(spec, z, y, backend)


def agreement_item(spec: ModelSpec, target: str, ref: np.ndarray, test: np.ndarray, backend: str,
                   config: str = "int8") -> Item:
    """Top-1 agreement of ``target`` with the float model on every labelled input (count and 95 % Wilson CI),
    gated on the interval's lower bound by ``min_top1_agreement`` in :func:`deploy_section` (or plain ``deploy``);
    a count too small to show the gate even with no flips is not gated (a skip saying how many it needs)."""
    from hailo_qa.evaluate.deploy import AgreementGate

    same = int(np.sum(np.argmax(ref, axis=1) == np.argmax(test, axis=1)))
    n = int(ref.shape[0])
    limit = spec.threshold(deploy_section(target, config), "min_top1_agreement")
    g = AgreementGate(same, n, limit, "inputs")
    text = f"{g.describe()} ({n - same} flips)"
    if g.status == "ungated":
        return Item("deployment", "top-1 agreement with float", "skip",
                    f"{text}; no gate for deploy.min_top1_agreement in the manifest", target=f"{target} ({backend})",
                    number=g.value, key="top1_agreement")
    return Item("deployment", "top-1 agreement with float", {"refused": "skip"}.get(g.status, g.status), text,
                f"≥ {limit:g} (95 % lower bound)", f"{target} ({backend})", g.value, "top1_agreement")


def deploy_items(spec: ModelSpec, target: str, rep: DeployReport, config: str = "int8") -> list[Item]:
    """The accuracy / ECE / coverage lines of one target, gated by :func:`deploy_section`."""
    section = deploy_section(target, config)
    items = []
    ci = lambda lo, hi: f" [95 % CI {lo:.3f}–{hi:.3f}]"  # noqa: E731
    for metric, key in DEPLOY_GATES.items():
        value = getattr(rep, metric)
        limit = spec.threshold(section, key)
        if metric == "accuracy":
            text = f"{value:.4f}{ci(*rep.accuracy_ci)} on {rep.n_eval}"
        elif metric == "ece":
            text = (f"{rep.ece_raw:.4f} → {value:.4f} after temperature scaling (T = {rep.temperature:.3f}, "
                    f"fitted on {rep.n_cal})" if rep.temperature_scaling else f"{value:.4f} (no temperature scaling)")
        else:
            text = (f"{value:.4f}{ci(*rep.coverage_ci)} at α = {rep.alpha} (q̂ {rep.qhat:.4f}, mean set size "
                    f"{rep.mean_set_size:.2f})")
        if limit is None:
            items.append(Item("deployment", metric, "skip", f"{text}; no gate for deploy.{key} in the manifest",
                              target=f"{target} ({rep.backend})", number=float(value), key=metric))
            continue
        ok = value >= limit if key.startswith("min_") else value <= limit
        items.append(Item("deployment", metric, "pass" if ok else "fail", text,
                          f"{'≥' if key.startswith('min_') else '≤'} {limit:g}", f"{target} ({rep.backend})",
                          float(value), metric))
    return items


def hailo8_items(spec: ModelSpec, *, device: str | None = None, latency_iterations: int = 200,
                 latency_warmup: int = 20, work_dir: Path | None = None, split=None) -> list[Item]:
    """HEF size and P95 latency (end to end and core) on the device; lines skipped with the reason here."""
    items = []
    hef_gate = spec.threshold("hailo8", "max_hef_mb")
    if spec.hef is not None:
        mb = spec.hef.stat().st_size / 2**20
        ok = hef_gate is None or mb <= hef_gate
        items.append(Item("deployment", "HEF size", "pass" if ok and hef_gate is not None else
                          ("fail" if not ok else "skip"), f"{mb:.2f} MB ({spec.hef.name})"
                          + ("" if hef_gate is not None else "; no gate for hailo8.max_hef_mb in the manifest"),
                          f"≤ {hef_gate:g} MB" if hef_gate is not None else "", "hailo8", mb, "hef_mb"))
    else:
        items.append(Item("deployment", "HEF size", "skip", device_skip_reason(spec, device) or "",
                          f"≤ {hef_gate:g} MB" if hef_gate is not None else "", "hailo8", key="hef_mb"))
    why = device_skip_reason(spec, device)
    gates = {k: spec.threshold("hailo8", k) for k in ("max_p95_ms", "max_core_p95_ms")}
    names = {"max_p95_ms": "P95 end to end", "max_core_p95_ms": "P95 core inference"}
    if why:
        for k, name in names.items():
            items.append(Item("deployment", name, "skip", why, f"≤ {gates[k]:g} ms" if gates[k] is not None else "",
                              "hailo8", key=k))
        return items
    from hailo_qa.hw.latency import measure_runner

    x, _ = load_labelled(spec)
    from hailo_qa.graph.split import split_for_model

    split = split or split_for_model(spec, work_dir)
    pipe = target_runner(spec, "hailo8", work_dir=work_dir, split=split, device=device)
    inp = spec.device_inputs[0]
    with pipe:
        e2e = measure_runner(pipe, {inp.name: x[:1]}, warmup=latency_warmup, iterations=latency_iterations)
    stats = {"max_p95_ms": e2e["end_to_end"], "max_core_p95_ms": e2e["stage1"] if "stage1" in e2e.stages
             else e2e["device"]}
    for k, name in names.items():
        st, lim = stats[k], gates[k]
        if lim is None:
            items.append(Item("deployment", name, "skip", f"{st.p95_ms:.2f} ms; no gate for hailo8.{k} in the "
                              f"manifest", target="hailo8", number=st.p95_ms, key=k))
        else:
            items.append(Item("deployment", name, "pass" if st.p95_ms <= lim else "fail", f"{st.p95_ms:.2f} ms "
                              f"({st.summary()})", f"≤ {lim:g} ms", "hailo8", st.p95_ms, k))
    return items


# --------------------------------------------------------------------------------------------------------------
def run_checklist(spec: ModelSpec, *, targets: Sequence[str] = ("float", "split", "emulator", "hailo8"),
                  work_dir: Path, config: str = "int8", backend: str = "auto", calib_size: int | None = None,
                  calib_source: str | None = None, device: str | None = None, compare_random_calib: bool = False,
                  progress: Callable[[str], None] | None = None) -> Checklist:
    """The whole checklist for one classification model.

    Raises:
        ManifestError: not a classifier, no ``deploy`` section, an unknown target.
    """
    if spec.task != "classification":
        raise ManifestError(f"model '{spec.name}' is a {spec.task} model", context=f"{spec.name} | checklist",
                            note="the deployment checklist is for classification models (accuracy, ECE, coverage)")
    bad = [t for t in targets if t not in TARGETS]
    if bad:
        raise ManifestError(f"unknown checklist target(s) {bad}", note=f"expected some of {list(TARGETS)}")
    if spec.file is None:
        raise ManifestError(f"model '{spec.name}' has no ONNX file", note="the checklist starts from the ONNX")
    say = progress or (lambda m: None)
    x, y = load_labelled(spec)
    d = spec.deploy
    cl = Checklist(spec.name, f"labelled data: {d.data.name}, N={len(y)} ({d.calibration_fraction:g} calibration "
                              f"split fits T and q̂; the rest is evaluated); α = {d.alpha}")
    from hailo_qa.graph.split import split_for_model

    split = split_for_model(spec, work_dir)
    say("before export …")
    cl.items += before_export_items(spec, split)
    say("after export …")
    cl.items += after_export_items(spec, split, config=config, calib_size=calib_size, calib_source=calib_source)
    if spec.host_step is not None:
        from hailo_qa.graph.hoststep import fsq_host_plan, verify_fsq_step
        from hailo_qa.runners.onnxrt import OnnxrtRunner

        plan = fsq_host_plan(spec, split)
        inp = spec.device_inputs[0]
        with OnnxrtRunner(split.stage1_path or split.stage1) as s1:
            b = np.concatenate([s1.infer({inp.name: x[i:i + 1]})[plan.cut] for i in range(min(len(x), 64))])
        n = verify_fsq_step(plan, b)
        cl.items.append(Item("after export", "host FSQ step = model's Round quantizer", "pass",
                             f"levels {list(plan.levels)} on the {plan.width}-wide '{plan.cut}'; bit-identical on "
                             f"{n} values (incl. every rounding tie)", target="split", number=float(n), key="fsq"))
    for target in targets:
        if target == "hailo8":
            why = device_skip_reason(spec, device)
            if why:
                for metric, key in DEPLOY_GATES.items():
                    lim = spec.threshold(deploy_section("hailo8"), key)
                    cl.items.append(Item("deployment", metric, "skip", why,
                                         f"{'≥' if key.startswith('min_') else '≤'} {lim:g}" if lim is not None
                                         else "", "hailo8", key=metric))
                cl.items += hailo8_items(spec, device=device, work_dir=work_dir, split=split)
                continue
        say(f"{target}: {len(y)} labelled inputs …")
        try:
            z, label = target_logits(spec, target, x, work_dir=work_dir, split=split, config=config,
                                     backend=backend, calib_size=calib_size, calib_source=calib_source,
                                     device=device)
            rep = report_from_logits(spec, z, y, label)
        except QAError as err:
            cl.items.append(Item("deployment", "accuracy / ECE / coverage", "fail", str(err).splitlines()[0],
                                 target=target, key="run"))
            continue
        cl.reports[target] = rep
        cl.backends[target] = rep.backend
        cl.logits[target] = z
        cl.items += deploy_items(spec, target, rep, config)
        if target in ("emulator", "hailo8"):
            if "float" not in cl.logits:
                say("float reference for the top-1 agreement …")
                cl.logits["float"], _ = target_logits(spec, "float", x, work_dir=work_dir)
            cl.items.append(agreement_item(spec, target, cl.logits["float"], z, rep.backend, config))
        if target == "hailo8":
            cl.items += hailo8_items(spec, device=device, work_dir=work_dir, split=split)
    if compare_random_calib and "emulator" in cl.reports:
        say(f"emulator with random calibration data: {len(y)} labelled inputs …")
        rep = target_report(spec, "emulator", x, y, work_dir=work_dir, split=split, config=config, backend=backend,
                            calib_size=calib_size, calib_source="random", device=device)
        cl.reports["emulator@random-calib"] = rep
        cl.backends["emulator@random-calib"] = rep.backend
        cl.items += comparison_items(spec, cl.reports["emulator"], rep, config)
    return cl


def comparison_items(spec: ModelSpec, real: DeployReport, random: DeployReport, config: str = "int8") -> list[Item]:
    """Real vs random calibration of the emulator, per figure; status is the random-calibrated figure against the
    gate (informational: the deployed model uses the real set)."""
    items = []
    for metric, key in DEPLOY_GATES.items():
        a, b = getattr(real, metric), getattr(random, metric)
        limit = spec.threshold(deploy_section("emulator", config), key)
        ok = None if limit is None else (b >= limit if key.startswith("min_") else b <= limit)
        items.append(Item(COMPARISON, metric, "skip" if ok is None else ("pass" if ok else "fail"),
                          f"real {a:.4f} | random {b:.4f} (Δ {b - a:+.4f})",
                          "" if limit is None else f"{'≥' if key.startswith('min_') else '≤'} {limit:g}",
                          f"emulator ({random.backend})", float(b), metric))
    return items


def record(cl: Checklist, history_path: Path, *, config: str, calib_source: str = "") -> str:
    """Every measured figure into the history; returns the run id. The emulator's rows say which calibration
    data it used in ``stage`` (``checklist:calib=real`` / ``checklist:calib=random``), so the report can put them
    side by side (:func:`hailo_qa.store.report.calibration_source_tables`)."""
    from hailo_qa.store.history import History, make_row, new_run_id

    run_id = new_run_id()
    rows = []
    for key, rep in cl.reports.items():
        target, _, variant = key.partition("@")
        source = "random" if variant == "random-calib" or calib_source == "random" else "real"
        stage = f"checklist:calib={source}" if target in ("emulator", "hailo8") else "checklist"
        for metric in ("accuracy", "ece_raw", "ece", "coverage", "mean_set_size", "temperature"):
            rows.append(make_row(run_id=run_id, model=cl.model, metric=f"deploy.{metric}",
                                 value=float(getattr(rep, metric)), target=target,
                                 config=config if target in ("emulator", "hailo8") else "", stage=stage,
                                 extra={"backend": rep.backend, "n_eval": rep.n_eval, "n_cal": rep.n_cal,
                                        "calib_source": source},
                                 nodeid="hailo-qa checklist"))
    with History(history_path) as h:
        h.record_many(rows)
    return run_id
