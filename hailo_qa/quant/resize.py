"""Letterbox vs stretch: what an image input's resize mode does to a quantized model (issue #10, item 3).

A detector is calibrated and deployed on images resized one way: ``stretch`` (to H×W, aspect not kept) or
``letterbox`` (scaled to fit, centred on a ``pad`` gray; the input's ``preprocess.resize``). The two give different
activation statistics — pad bands, object sizes and aspect ratios — so calibrating one way and feeding the other
moves INT8 accuracy. :func:`resize_study` measures the four cases on the same photos::

    calibrated with \\ evaluated with   stretch        letterbox
    stretch                             matched        mismatch
    letterbox                           mismatch       matched

Each cell is a :class:`~hailo_qa.quant.evaluation.QuantEval` of the quantized Stage 1 against the float model fed
the *same* evaluation inputs (per-output SNR and cosine; detection agreement where the model's outputs decode to
boxes), so a cell measures the quantization error only. The evaluation photos are never calibration photos.
A mismatched cell carries the note ``preprocessing mismatch: ...`` (:func:`hailo_qa.quant.calib.resize_mismatch`).

``hailo-qa emulate MODEL --resize-study`` prints the table; README "letterbox vs stretch" has the measured figures.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hailo_qa.errors import InputDataError
from hailo_qa.manifest import ModelSpec
from hailo_qa.quant.evaluation import QuantEval, backend_note

MODES = ("stretch", "letterbox")


def declared_resize(spec: ModelSpec) -> str:
    """The resize mode the manifest declares for ``spec``'s first device input (``stretch`` by default)."""
    pre = spec.device_inputs[0].preprocess if spec.device_inputs else None
    return pre.resize if pre is not None else "stretch"


def with_resize(spec: ModelSpec, mode: str) -> ModelSpec:
    """``spec`` with every image input's ``preprocess.resize`` set to ``mode``.

    Raises:
        InputDataError: an unknown mode, or a model without an image input that has a ``preprocess``.
    """
    if mode not in MODES:
        raise InputDataError(f"resize mode {mode!r} is unknown", note=f"expected one of {', '.join(MODES)}",
                             context=spec.name)
    if not any(i.kind == "image" and i.preprocess is not None for i in spec.device_inputs):
        raise InputDataError(f"{spec.name} has no image input with a preprocess to resize",
                             note="letterbox vs stretch applies to image inputs read from image files",
                             hint="declare preprocess = { color = ..., mean = [...], std = [...] } on the input",
                             context=spec.name)
    inputs = tuple(dataclasses.replace(i, preprocess=dataclasses.replace(i.preprocess, resize=mode))
                   if i.kind == "image" and i.preprocess is not None else i for i in spec.inputs)
    return dataclasses.replace(spec, inputs=inputs)


@dataclass(frozen=True)
class ResizeStudy:
    """The four calibrate × evaluate resize cases of one model.

    Attributes:
        model, config: what was quantized.
        declared: the manifest's resize mode.
        calib_size: calibration samples requested.
        cells: ``{(calibrated with, evaluated with): QuantEval}``.
    """

    model: str
    config: str
    declared: str
    calib_size: int
    cells: Mapping[tuple[str, str], QuantEval]

    def cell(self, calib: str, evaluated: str) -> QuantEval:
        return self.cells[(calib, evaluated)]

    def mismatch_cost(self, evaluated: str | None = None) -> dict[str, float]:
        """Matched minus mismatched, evaluated with ``evaluated`` (default: the declared mode): per metric, how
        much calibrating the other way loses (positive = the mismatch is worse)."""
        e = evaluated or self.declared
        other = MODES[1 - MODES.index(e)]
        good, bad = self.cell(e, e).metrics, self.cell(other, e).metrics
        return {k: float(good[k]) - float(bad[k]) for k in good if k in bad and k != "max_abs_err"}

    def table(self) -> str:
        """Markdown: one row per case (SNR, cosine, the worst output's SNR, detection agreement)."""
        first = next(iter(self.cells.values()))
        lines = [f"# Letterbox vs stretch: {self.model} [{self.config}, calib {self.calib_size}]", "",
                 f"Backend: {first.backend_label()} ({backend_note(first.backend_name, first.hailo)}). Manifest: "
                 f"resize = {self.declared}. Calibration: {first.calib_real} real samples, {first.calib_augmented} "
                 f"augmented. Evaluated on {len(first.eval_inputs)} inputs, never calibration data.", "",
                 "| calibrated | evaluated | case | SNR dB | cosine min | worst output (SNR dB) | detection agree |",
                 "|---|---|---|---:|---:|---|---:|"]
        for (c, e), r in self.cells.items():
            per = {k.split("/", 1)[1]: v for k, v in r.metrics.items() if k.startswith("snr_db/")}
            worst = min(per, key=per.get) if per else None
            agr = r.metrics.get("detection_agreement")
            case = "matched" if c == e else "**mismatch**"
            lines.append(f"| {c} | {e} | {case} | {r.snr_db:.2f} | {r.cosine_min:.4f} | "
                         + (f"{worst} ({per[worst]:.2f})" if worst else "-") + " | "
                         + ("-" if agr is None else f"{agr:.3f}") + " |")
        lines.append("")
        for e in sorted(MODES, key=lambda m: m != self.declared):
            cost = self.mismatch_cost(e)
            lines.append(f"Mismatch cost evaluated with {e}{' (declared)' if e == self.declared else ''}: SNR "
                         f"{cost.get('snr_db', math.nan):+.2f} dB, worst cosine {cost.get('cosine', math.nan):+.4f}"
                         + (f", detection agreement {cost['detection_agreement']:+.3f}"
                            if "detection_agreement" in cost else "") + " (matched minus mismatched; positive: "
                         "calibrating the other way is worse).")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "config": self.config, "declared": self.declared,
                "calib_size": self.calib_size,
                "cells": [{"calibrated": c, "evaluated": e, "mismatch": c != e, **r.to_dict()}
                          for (c, e), r in self.cells.items()],
                "mismatch_cost": {e: self.mismatch_cost(e) for e in MODES}}


def resize_study(spec: ModelSpec, *, calib_size: int, config: str = "int8", backend: str = "auto",
                 work_dir: str | Path, n_eval: int = 4, calib_source: str | Path | None = None,
                 eval_samples: Sequence[Path] | None = None, split=None) -> ResizeStudy:
    """Quantize ``spec``'s Stage 1 calibrated with each resize mode and evaluate each on both (four cells).

    Args:
        spec: the model (an image input with a ``preprocess``).
        calib_size: calibration samples (real first; augmentation as the manifest says).
        config, backend, work_dir, n_eval: see :func:`hailo_qa.quant.evaluation.evaluate_quantization`.
        calib_source: calibration source instead of the manifest's (a folder or glob of photos). Defaults to the
            manifest's.
        eval_samples: evaluation photos instead of the manifest's samples; calibration photos among them are left
            out. Defaults to the manifest's samples.
        split: the model's split. Defaults to :func:`hailo_qa.graph.split.split_for_model`.
    """
    from hailo_qa.graph.split import split_for_model
    from hailo_qa.quant.calib import calib_set_for_model
    from hailo_qa.quant.evaluation import calib_paths, eval_feeds, evaluate_quantization

    declared = declared_resize(spec)
    split = split or split_for_model(spec, Path(work_dir))
    calibs = {c: calib_set_for_model(with_resize(spec, c), size=calib_size, source=calib_source) for c in MODES}
    exclude = set().union(*(calib_paths(cs) for cs in calibs.values()))
    photos = tuple(eval_samples) if eval_samples is not None else spec.samples
    held_out = tuple(p for p in photos if Path(p).resolve() not in exclude)
    # only held-out photos (a detector's end-to-end check also runs the registered photos); with none left, the
    # manifest's held-out augmentations of its photos (see eval_feeds)
    base = dataclasses.replace(spec, samples=held_out or photos)
    cells: dict[tuple[str, str], QuantEval] = {}
    for e in MODES:
        ev = with_resize(base, e)
        feeds = eval_feeds(ev, n_eval=n_eval, exclude=exclude)
        for c in MODES:
            cells[(c, e)] = evaluate_quantization(ev, config=config, calib_size=calib_size, backend=backend,
                                                  work_dir=work_dir, n_eval=n_eval, feeds=feeds, split=split,
                                                  calib=calibs[c], agree_feeds=feeds)
    order = [(declared, declared), (MODES[1 - MODES.index(declared)], declared)]
    order += [k for k in cells if k not in order]
    return ResizeStudy(model=spec.name, config=config, declared=declared, calib_size=calib_size,
                       cells={k: cells[k] for k in order})
