"""INT8 error of each candidate cut of a split: the ``INT8 error`` column of ``split_report.md``'s "Cuts side by
side" table (the largest device stage beside the Model Zoo cut).

Each candidate's Stage 1 is quantized with the built-in emulator (``ort-emulator``: hailo-qa's ONNX Runtime
approximation of Hailo numerics, never Hailo's) and compared with the float Stage 1 on held-out inputs: SNR and
cosine over all boundary outputs and per boundary output. ``hailo-qa split`` has no real data, so calibration and
evaluation inputs are seeded uniform noise in the input's value range (``[0, 1]`` unless given): the figures compare
cuts with each other; the deployment error comes from ``hailo-qa emulate`` on a manifest entry with real samples.
"""
from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hailo_qa.errors import InputDataError, QAError

CALIB_SALT, EVAL_SALT = 0xC417, 0xE7A2


def _input_spec(split, value_range: tuple[float, float]):
    from hailo_qa.manifest import InputSpec

    name = split.stage1_inputs[0]
    vi = next(i for i in split.stage1.graph.input if i.name == name)
    shape = tuple(int(d.dim_value) for d in vi.type.tensor_type.shape.dim)
    if len(shape) != 4:
        raise InputDataError(f"Stage-1 input '{name}' has shape {list(shape)}",
                             note="the INT8 error of a cut needs a rank-4 image input")
    layout = "NHWC" if shape[3] in (1, 3, 4) and shape[1] not in (1, 3, 4) else "NCHW"
    return InputSpec(name=name, shape=shape, layout=layout, range=tuple(map(float, value_range)))


def cut_int8_error(split, *, work_dir: str | Path, calib_size: int = 16, n_eval: int = 4, seed: int = 0,
                   value_range: tuple[float, float] = (0.0, 1.0),
                   eval_range: tuple[float, float] | None = None) -> dict[str, Any]:
    """Quantize one split's Stage 1 (INT8, built-in emulator) and measure it against the float Stage 1.

    Args:
        value_range: range of the uniform calibration (and, by default, evaluation) inputs.
        eval_range: range of the evaluation inputs. Defaults to ``value_range``.

    Returns:
        ``{"backend", "backend_note", "snr_db", "cosine", "per_output": {name: {"snr_db", "cosine"}},
        "calibration", "eval_inputs"}``.
    """
    from hailo_qa.quant.calib import calib_set_from_arrays
    from hailo_qa.quant.evaluation import backend_note, stage1_metrics
    from hailo_qa.runners.emulator_ort import OrtEmulatorRunner, OrtQuantConfig
    from hailo_qa.runners.onnxrt import OnnxrtRunner

    inp = _input_spec(split, value_range)
    lo, hi = inp.range
    calib_x = np.random.default_rng([seed, CALIB_SALT]).uniform(lo, hi, (calib_size, *inp.shape[1:]))
    calib = calib_set_from_arrays(calib_x.astype(np.float32), inp, model="split", validate=False)
    elo, ehi = eval_range or (lo, hi)
    feeds = [{inp.name: np.random.default_rng([seed, EVAL_SALT, k]).uniform(elo, ehi, inp.shape).astype(np.float32)}
             for k in range(n_eval)]
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=work, prefix=".cut.") as tmp:
        s1 = Path(tmp) / "stage1.onnx"
        s1.write_bytes(split.stage1.SerializeToString())
        with OnnxrtRunner(s1, name="stage1-float") as ref_r:
            ref = [ref_r.infer(f) for f in feeds]
        runner = OrtEmulatorRunner(s1, calib, OrtQuantConfig("int8"), work, input_name=inp.name,
                                   layouts={inp.name: inp.layout}, name="split-cut:ort-emulator[int8]")
        with runner:
            test = [runner.infer(f) for f in feeds]
        backend = runner.backend
    m = stage1_metrics(ref, test)
    names = list(ref[0])
    per = {n: {"snr_db": m.get(f"snr_db/{n}", m["snr_db"]), "cosine": m.get(f"cosine/{n}", m["cosine"])}
           for n in names}
    return {"backend": f"{backend.name}@{backend.version}", "backend_note": backend_note(backend.name, backend.hailo),
            "snr_db": m["snr_db"], "cosine": m["cosine"], "per_output": per,
            "calibration": f"{calib_size} seeded uniform samples in [{lo:g}, {hi:g}] (no real data: compares cuts, "
                           f"not the deployment error)",
            "eval_inputs": n_eval}


def fill_candidate_errors(split, *, work_dir: str | Path, calib_size: int = 16, n_eval: int = 4, seed: int = 0,
                          value_range: tuple[float, float] = (0.0, 1.0)) -> None:
    """Add ``int8`` (:func:`cut_int8_error`) to every entry of ``split.report["candidates"]`` in place.

    The chosen candidate is ``split`` itself, the others are ``split.alternatives`` (same labels, in order). A cut
    that cannot be measured gets ``int8_not_measured`` (why) instead; the split itself is never failed by this.
    """
    cands: Sequence[dict] = split.report.get("candidates") or ()
    others = list(getattr(split, "alternatives", ()))
    for c in cands:
        s = split if c.get("chosen") else (others.pop(0) if others else None)
        if s is None:
            continue
        try:
            c["int8"] = cut_int8_error(s, work_dir=work_dir, calib_size=calib_size, n_eval=n_eval, seed=seed,
                                       value_range=value_range)
        except QAError as err:  # the split stands; the report says why this figure is missing
            c["int8_not_measured"] = err.what
            continue
        except Exception as err:  # noqa: BLE001  ORT's quantizer on an odd Stage 1: reported, never a traceback
            c["int8_not_measured"] = f"the emulator failed on this Stage 1 ({type(err).__name__}: {err})"[:300]
            continue
        c["int8_snr_db"] = c["int8"]["snr_db"]
