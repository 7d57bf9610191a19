"""A measured INT16 suggestion: which layers to move to 16-bit, and what each one actually buys.

The per-layer noise analysis (:mod:`hailo_qa.quant.noise`) only *ranks* layers: a layer with low SNR is a
candidate, not a suggestion — moving it to 16-bit can help, do nothing, or make the output worse (the face user's
fc1/conv33/dw16 did). :func:`measure_int16_suggestion` therefore

1. localises the INT8 noise: the DFC's Layer Noise Analysis where the DFC is the emulator (candidates in HAR layer
   names), else the built-in ONNX Runtime analysis (candidates in ONNX node names, with their HAR names next to them
   when the DFC is installed and can parse the model);
2. measures the INT8 baseline, each of the top ``k`` candidates alone, and all of them together — each time a
   fresh ``int16_selective`` quantization on the same calibration set — on the same held-out inputs
   (:func:`hailo_qa.quant.evaluation.eval_feeds`, never calibration data), and when only some helped, those together;
3. calls the best measured set with a positive gain the suggestion, and reports every gain, negative ones as
   "worse". When nothing helps there is no suggestion, and the report says so.

Gains are output SNR differences (dB) on the emulator that produced them; ``ort-emulator`` numbers are hailo-qa's
approximation of Hailo numerics, never Hailo's, and the result names its backend.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hailo_qa.errors import InputDataError

IMPROVES, WORSE, NO_CHANGE = "improves", "worse", "no change"


def verdict(gain_db: float) -> str:
    """``improves`` for a positive SNR gain, ``worse`` for a negative one, ``no change`` for exactly zero/NaN."""
    if gain_db > 0:
        return IMPROVES
    if gain_db < 0:
        return WORSE
    return NO_CHANGE


@dataclass(frozen=True)
class Measured:
    """One measured precision set.

    Attributes:
        what: ``int8`` (the baseline), ``alone``, ``together`` (all top-k) or ``helpful together``.
        layers: the 16-bit layers as applied (HAR names on the DFC, ONNX names on the ORT emulator).
        har_names: the same layers as HAR layer names, where known.
        snr_db, cosine: held-out output SNR (dB) and worst cosine against float.
        gain_db: ``snr_db`` minus the INT8 baseline's.
        verdict: see :func:`verdict`.
    """

    what: str
    layers: tuple[str, ...]
    har_names: tuple[str, ...]
    snr_db: float
    cosine: float
    gain_db: float
    verdict: str

    def to_dict(self) -> dict[str, Any]:
        return {"what": self.what, "layers": list(self.layers), "har_names": list(self.har_names),
                "snr_db": _num(self.snr_db), "cosine": _num(self.cosine), "gain_db": _num(self.gain_db),
                "verdict": self.verdict}


def _num(v: float) -> float | str:
    return float(v) if math.isfinite(v) else str(v)


@dataclass(frozen=True)
class Int16Suggestion:
    """The noise analysis' candidates and what measuring them showed.

    Attributes:
        model: the model.
        calib_size: calibration samples of every quantization.
        backend: the emulator's ``BackendInfo`` dict (who produced the SNRs).
        noise_source: ``dfc`` (Hailo's Layer Noise Analysis) or ``ort`` (hailo-qa's).
        names: ``har`` (candidates are HAR layer names) or ``onnx`` (ONNX node names).
        candidates: the top-k layers of the noise ranking, worst first, in ``names``.
        candidate_snr_db: the analysis' per-layer SNR (dfc) or added noise (ort) of each candidate, dB.
        layer_map: candidate → HAR layer names, where an HN was available.
        eval_inputs: the held-out inputs every row was measured on.
        rows: the baseline, then every measured set.
        suggested: the layers to make 16-bit — the best measured set with a positive gain — or ``()``.
        note: one sentence on what the numbers are.
    """

    model: str
    calib_size: int
    backend: Mapping[str, Any]
    noise_source: str
    names: str
    candidates: tuple[str, ...]
    candidate_snr_db: tuple[float, ...]
    layer_map: Mapping[str, tuple[str, ...]]
    eval_inputs: tuple[str, ...]
    rows: tuple[Measured, ...]
    suggested: tuple[str, ...] = ()
    note: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def baseline(self) -> Measured:
        return self.rows[0]

    @property
    def suggested_row(self) -> Measured | None:
        for r in self.rows[1:]:
            if r.layers == self.suggested and self.suggested:
                return r
        return None

    def gain_of(self, layer: str) -> float:
        """The measured gain of ``layer`` alone (dB)."""
        for r in self.rows:
            if r.what == "alone" and r.layers == (layer,):
                return r.gain_db
        raise KeyError(layer)

    def alls_lines(self) -> list[str]:
        """Model-script lines for the suggestion, in HAR layer names (the model script never takes ONNX node names):
        empty without a suggestion or when the HAR names are unknown (no DFC to parse the model)."""
        row = self.suggested_row
        if row is None or not row.har_names:
            return []
        return [f"quantization_param([{', '.join(row.har_names)}], precision_mode=a16_w16)"]

    def manifest_line(self) -> str:
        """The suggestion as the manifest's ``int16_layers`` (hailo-qa maps ONNX names to HAR names itself)."""
        return "int16_layers = [" + ", ".join(f'"{n}"' for n in self.suggested) + "]" if self.suggested else ""

    def table(self) -> str:
        """Human-readable: what the candidates were, what each measured set gained, the suggestion."""
        b = self.backend
        label = f"{b.get('name', '?')}@{b.get('version', '?')}"
        kind = "HAR layer names" if self.names == "har" else "ONNX node names"
        lines = [f"{self.model}: INT16 candidates from the {self.noise_source} noise analysis ({kind}), measured on "
                 f"{label} (hailo={bool(b.get('hailo'))}), calib {self.calib_size}, {len(self.eval_inputs)} held-out "
                 f"inputs"]
        shown = []
        for r in self.rows:
            text = ", ".join(r.layers) if r.layers else "- (int8 baseline)"
            if r.har_names and tuple(r.har_names) != tuple(r.layers):
                text += f" → {', '.join(r.har_names)}"
            shown.append(text + ("" if r.what in ("int8", "alone") else f" [{r.what}]"))
        w = max(len("16-bit layers"), *map(len, shown))
        lines.append(f"  {'16-bit layers':<{w}} {'SNR dB':>8} {'gain dB':>8}  verdict")
        for r, text in zip(self.rows, shown):
            gain = "" if r.what == "int8" else f"{r.gain_db:+8.2f}"
            lines.append(f"  {text:<{w}} {r.snr_db:8.2f} {gain:>8}  {'' if r.what == 'int8' else r.verdict}")
        if self.suggested:
            row = self.suggested_row
            script = "; ".join(self.alls_lines()) or ("HAR names unknown without the DFC; hailo-qa maps ONNX names "
                                                      "through the HN when it writes the model script")
            lines.append(f"  suggestion: {', '.join(self.suggested)} ({row.gain_db:+.2f} dB measured)")
            lines.append(f"    manifest: {self.manifest_line()}")
            lines.append(f"    model script: {script}")
        else:
            lines.append("  suggestion: none — no measured set of candidates raised the held-out SNR over INT8")
        if self.note:
            lines.append(f"  note: {self.note}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "calib_size": self.calib_size, "backend": dict(self.backend),
                "noise_source": self.noise_source, "names": self.names, "candidates": list(self.candidates),
                "candidate_snr_db": [_num(v) for v in self.candidate_snr_db],
                "layer_map": {k: list(v) for k, v in self.layer_map.items()},
                "eval_inputs": list(self.eval_inputs), "rows": [r.to_dict() for r in self.rows],
                "suggested": list(self.suggested), "manifest": self.manifest_line(), "alls": self.alls_lines(),
                "note": self.note, **dict(self.extra)}


def choose(rows: Sequence[Measured]) -> tuple[str, ...]:
    """The suggestion from measured rows: the set with the largest positive gain (fewer layers on a tie), or ``()``.

    Only measured rows count; the baseline (``int8``) never does.
    """
    best: Measured | None = None
    for r in rows:
        if r.what == "int8" or not r.layers or not r.gain_db > 0:
            continue
        if best is None or r.gain_db > best.gain_db or (r.gain_db == best.gain_db and len(r.layers) < len(best.layers)):
            best = r
    return best.layers if best is not None else ()


# --------------------------------------------------------------------------------------------------------------
def _outputs_snr(ref, test) -> tuple[float, float]:
    from hailo_qa.quant.evaluation import stage1_metrics

    m = stage1_metrics(ref, test)
    return float(m["snr_db"]), float(m["cosine"])


def _dfc_noise(spec, split, calib, work: Path, *, data_count: int):
    """Hailo's Layer Noise Analysis on the INT8 HAR: (ranked LayerNoise in HN names, ONNX→HN layer map)."""
    from hailo_qa.quant.emulator import dfc_quantized_har
    from hailo_qa.quant.model_script import layer_map_from_hn
    from hailo_qa.runners.dfc import DfcSession

    har, _ = dfc_quantized_har(spec, split, config="int8", calib=calib, work_dir=work)
    session = DfcSession(work / "dfc", hw_arch=spec.hw_arch, har=har, name=f"{spec.name}:dfc-noise")
    data = np.concatenate(list(calib.as_nhwc()), axis=0)
    noise = session.analyze_noise(data, data_count=min(data_count, len(data)))
    return noise, layer_map_from_hn(session.hn())


def _hn_layer_map(spec, split, work: Path) -> dict[str, tuple[str, ...]] | None:
    """ONNX → HAR layer names from a DFC parse of Stage 1 (None when the DFC is not installed or cannot parse)."""
    from hailo_qa import toolchain
    from hailo_qa.errors import QAError

    if not toolchain.dfc().found:
        return None
    from hailo_qa.quant.model_script import layer_map_from_hn
    from hailo_qa.runners.dfc import DfcSession

    try:
        s = DfcSession(work / "dfc" / "parse", hw_arch=spec.hw_arch, name=f"{spec.name}:dfc-parse")
        s.translate_onnx(split.stage1_path, spec.name, start_nodes=list(split.stage1_inputs))
        return layer_map_from_hn(s.hn())
    except QAError:
        return None


def measure_int16_suggestion(spec, *, calib_size: int, backend: str = "auto", work_dir: str | Path,
                             k: int | None = None, n_eval: int = 4, seed: int = 0, split=None,
                             feeds: Sequence[tuple[str, Mapping[str, np.ndarray]]] | None = None,
                             noise_feeds: int = 4, progress=None) -> Int16Suggestion:
    """Find INT16 candidates with the noise analysis, then measure them on held-out inputs (module docstring).

    Args:
        spec: the model (needs ``file``).
        calib_size: calibration samples for every quantization (the same set each time).
        backend: ``auto``, ``dfc`` or ``ort`` (:func:`hailo_qa.quant.emulator.resolve_backend`).
        work_dir: cache folder.
        k: candidates to measure. Defaults to ``quantization.suggest_k``.
        n_eval, seed: held-out inputs (:func:`hailo_qa.quant.evaluation.eval_feeds`).
        split: the model's split. Defaults to :func:`hailo_qa.graph.split.split_for_model`.
        feeds: held-out inputs to use instead (never calibration data).
        noise_feeds: inputs the ORT analysis probes with (the DFC analysis uses up to 64 calibration samples).
        progress: called as ``progress(text)`` before each quantization. Defaults to none.

    Returns:
        An :class:`Int16Suggestion`.

    Raises:
        InputDataError: ``k`` < 1, bad size/backend; ManifestError/ToolchainError from the steps.
    """
    from hailo_qa.graph.split import split_for_model
    from hailo_qa.quant.calib import calib_set_for_model
    from hailo_qa.quant.emulator import make_emulator, resolve_backend
    from hailo_qa.quant.evaluation import calib_paths, eval_feeds
    from hailo_qa.quant.noise import suggest_for_model, suggest_int16
    from hailo_qa.runners.onnxrt import OnnxrtRunner

    k = spec.quantization.suggest_k if k is None else k
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise InputDataError(f"k={k!r} candidates to measure", note="expected k >= 1", context=spec.name,
                             hint="set quantization.suggest_k >= 1 or pass k")
    if not isinstance(calib_size, int) or calib_size < 1:
        raise InputDataError(f"calibration size {calib_size!r} is not a positive integer", note="expected >= 1",
                             context=spec.name)
    chosen = resolve_backend(backend)
    work = Path(work_dir)
    split = split or split_for_model(spec, work)
    calib = calib_set_for_model(spec, size=calib_size)
    say = progress or (lambda text: None)

    say("noise analysis")
    if chosen == "dfc":
        noise, layer_map = _dfc_noise(spec, split, calib, work, data_count=64)
        names = "har"
        candidates = suggest_int16(noise, k)
    else:
        candidates, noise = suggest_for_model(spec, split, calib, work, k=k, n_feeds=noise_feeds)
        names = "onnx"
        layer_map = _hn_layer_map(spec, split, work) or {}
    by_layer = {}
    for n in noise:
        by_layer.setdefault(n.layer, n)
    cand_snr = tuple(float(by_layer[c].snr_db if names == "har" else by_layer[c].added_db) for c in candidates)

    def har_of(layers: Sequence[str]) -> tuple[str, ...]:
        if names == "har":
            return tuple(layers)
        out: list[str] = []
        for layer in layers:
            out.extend(h for h in layer_map.get(layer, ()) if h not in out)
        return tuple(out)

    if feeds is None:
        feeds = eval_feeds(spec, n_eval=n_eval, seed=seed, exclude=calib_paths(calib))
    s1_feeds = [{n: f[n] for n in split.stage1_inputs} for _, f in feeds]
    with OnnxrtRunner(split.stage1_path, name="stage1-float") as ref_r:
        ref = [ref_r.infer(f) for f in s1_feeds]

    backend_info: dict[str, Any] = {}

    def measure(what: str, layers: tuple[str, ...], base: float | None) -> Measured:
        say(f"{what}: {', '.join(layers) or 'int8'}")
        config = "int16_selective" if layers else "int8"
        runner = make_emulator(spec, split, backend=chosen, config=config, calib=calib, work_dir=work,
                               int16_layers=layers)
        with runner:
            test = [runner.infer(f) for f in s1_feeds]
        if not layers:
            backend_info.update(runner.backend.to_dict())
        snr, cos = _outputs_snr(ref, test)
        gain = 0.0 if base is None else snr - base
        return Measured(what, layers, har_of(layers), snr, cos, gain, verdict(gain) if layers else "")

    base = measure("int8", (), None)
    rows = [base]
    rows += [measure("alone", (c,), base.snr_db) for c in candidates]
    if len(candidates) > 1:
        rows.append(measure("together", tuple(candidates), base.snr_db))
    helpful = tuple(r.layers[0] for r in rows if r.what == "alone" and r.gain_db > 0)
    if 1 < len(helpful) < len(candidates):
        rows.append(measure("helpful together", helpful, base.snr_db))
    suggested = choose(rows)
    from hailo_qa.quant.evaluation import backend_note

    note = backend_note(str(backend_info.get("name", "")), bool(backend_info.get("hailo", False)))
    return Int16Suggestion(model=spec.name, calib_size=calib.count, backend=backend_info,
                           noise_source="dfc" if names == "har" else "ort", names=names,
                           candidates=tuple(candidates), candidate_snr_db=cand_snr,
                           layer_map={c: har_of((c,)) for c in candidates if har_of((c,))},
                           eval_inputs=tuple(n for n, _ in feeds), rows=tuple(rows), suggested=suggested,
                           note=note)
