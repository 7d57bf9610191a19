"""Embedding similarity per target: float (ORT, golden), quantization emulator, Hailo-8 — for every embedding model.

Per target, on the model's aligned face samples (manifest ``samples`` + ``identities``): cosine to the float
embedding per image (min, P5, mean), pre-norm and its ratio to float, same- vs different-identity similarity and the
margin, match rate at ``match_threshold``, nearest-neighbour identity agreement, run-to-run stability (repeats must
be bit-identical), and a distance sweep (crops downscaled to 1.0 … 0.25 of 112 px and upscaled back). Gates:
``[models.<m>.thresholds.embedding.<target>]`` (``float``, ``emulator.<config>``, ``hailo8``). Every figure goes to
the history (``hqa_history``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from hailo_qa.evaluate import embedding as E
from hailo_qa.evaluate.faces import simulate_distance
from hailo_qa.inputs import host_feeds, preprocess_image, read_image_rgb
from hailo_qa.manifest import PRECISION_CONFIGS, VariantSpec
from hailo_qa.runners.onnxrt import OnnxrtRunner

pytestmark = pytest.mark.hqa_select(task="embedding")

SCALES = (1.0, 0.75, 0.5, 0.35, 0.25)
"""Distance sweep: fraction of the 112-px crop kept before upscaling back."""
REPEATS = 5
"""Run-to-run stability: identical inferences of the first sample."""
GOLDEN_NAME = "aligned_faces"


@dataclass(frozen=True)
class FaceSet:
    """The model's face samples, preprocessed for its device input."""

    names: tuple[str, ...]
    identities: tuple[str, ...]
    input_name: str
    x: np.ndarray  # [N, ...] one preprocessed batch-1 input per row (concatenated on axis 0)
    by_scale: dict  # scale → [N, ...] inputs of the distance-degraded crops


@pytest.fixture(scope="module")
def face_set(hqa_model) -> FaceSet:
    spec = hqa_model
    if spec.file is None:
        pytest.skip(f"{spec.name}: HEF-only entry (no ONNX 'file'): no float reference embedding to compare with "
                    f"here; tests/test_face_recognition.py runs it enrolled against itself (same/different identity, "
                    f"pre-norm, distance, sessions)")
    dev = spec.device_inputs
    if len(dev) != 1 or not spec.samples:
        pytest.fail(f"{spec.name}: embedding tests need one image input and face samples (got {len(dev)} device "
                    f"inputs, {len(spec.samples)} samples); set samples = [\"faces/aligned/*.png\"]", pytrace=False)
    inp = dev[0]
    names = tuple(p.stem for p in spec.samples)
    missing = [n for n in names if n not in spec.identities]
    if missing:
        pytest.fail(f"{spec.name}: samples {missing} have no identity; add them to identities = {{stem = \"who\"}}",
                    pytrace=False)
    crops = [read_image_rgb(p) for p in spec.samples]
    by_scale = {s: np.concatenate([preprocess_image(simulate_distance(c, s), inp) for c in crops]) for s in SCALES}
    return FaceSet(names, tuple(spec.identities[n] for n in names), inp.name, by_scale[1.0], by_scale)


def _embed(runner, spec, face_set: FaceSet, x: np.ndarray) -> np.ndarray:
    """Run each row through ``runner`` (batch 1) and stack the single embedding output."""
    rows = []
    for xi in x:
        out = runner.infer({**host_feeds(spec), face_set.input_name: np.ascontiguousarray(xi[None])})
        if len(out) != 1:
            pytest.fail(f"{spec.name}: expected one embedding output, got {sorted(out)}", pytrace=False)
        rows.append(next(iter(out.values())).reshape(1, -1))
    return np.concatenate(rows)


@dataclass(frozen=True)
class TargetRun:
    emb: np.ndarray
    by_scale: dict
    repeats: list


def _run_target(runner, spec, face_set: FaceSet) -> TargetRun:
    with runner:
        emb = _embed(runner, spec, face_set, face_set.x)
        by_scale = {s: (emb if s == 1.0 else _embed(runner, spec, face_set, x)) for s, x in face_set.by_scale.items()}
        repeats = [_embed(runner, spec, face_set, face_set.x[:1]) for _ in range(REPEATS)]
    return TargetRun(emb, by_scale, repeats)


@pytest.fixture(scope="module")
def float_run(hqa_model, face_set) -> tuple[TargetRun, object]:
    runner = OnnxrtRunner(hqa_model.file, name=f"{hqa_model.name}:float")
    return _run_target(runner, hqa_model, face_set), runner.backend


def _gates(spec, target: str) -> dict[str, float]:
    gates = dict(spec.thresholds.get(f"embedding.{target}", spec.thresholds.get("embedding", {})))
    if not gates:
        pytest.fail(f"{spec.name}: no [models.{spec.name}.thresholds.embedding.{target}] gates in the manifest; "
                    f"measure this target and set min_cosine, min_margin, min_match_rate ... from the figures",
                    pytrace=False)
    return gates


def _evaluate_and_gate(spec, target: str, run: TargetRun, ref: np.ndarray, face_set: FaceSet, backend,
                       hqa_history, *, config: str = "", calib_size: int | None = None,
                       variant: str = "") -> E.EmbeddingReport:
    """All figures of one target: record them, then fail on instability, a broken sweep or a crossed gate."""
    __tracebackhide__ = True
    gates = _gates(spec, target)
    rep = E.evaluate(ref, run.emb, face_set.identities, target=target,
                     threshold=gates.get("match_threshold", E.DEFAULT_MATCH_THRESHOLD))
    stab = E.run_stability(run.repeats)
    sweep = E.distance_sweep(ref, run.by_scale)
    hist_target = target.split(".")[0]
    figs = dict(rep.figures())
    figs["run_to_run_differing_values"] = float(stab.differing_elements)
    figs["run_to_run_max_abs_diff"] = stab.max_abs_diff
    for p in sweep:
        figs[f"distance{p.scale:g}_pre_norm_mean"] = p.mean_pre_norm
        figs[f"distance{p.scale:g}_pre_norm_ratio"] = p.pre_norm_ratio
        figs[f"distance{p.scale:g}_cosine_mean"] = p.mean_cosine
        figs[f"distance{p.scale:g}_cosine_min"] = p.min_cosine
    for metric, value in figs.items():
        hqa_history.record(model=spec.name, metric=f"embedding.{metric}", value=float(value), target=hist_target,
                           config=config, calib_size=calib_size, backend=backend, variant=variant or target,
                           extra={"samples": list(face_set.names)})
    sweep_text = "\n".join(f"  scale {p.scale:<5g} pre-norm {p.mean_pre_norm:8.3f} (x{p.pre_norm_ratio:.3f})  "
                           f"cosine mean {p.mean_cosine:.4f} min {p.min_cosine:.4f}" for p in sweep)
    summary = f"{spec.name} [{target}] on {backend.label()}:\n{rep.table()}\ndistance sweep:\n{sweep_text}"
    print(summary)
    if not stab.identical:
        pytest.fail(f"{spec.name} [{target}]: run-to-run instability: {stab.describe()}", pytrace=False)
    near, far = sweep[0], sweep[-1]
    if not (far.mean_pre_norm < near.mean_pre_norm and far.mean_cosine < near.mean_cosine):
        pytest.fail(f"{spec.name} [{target}]: the distance sweep does not degrade (pre-norm and cosine should fall "
                    f"as faces shrink):\n{sweep_text}", pytrace=False)
    fails = rep.check(gates)
    if fails:
        pytest.fail("\n".join(fails) + "\n" + summary, pytrace=False)
    return rep


# -- float ----------------------------------------------------------------------------------------------------------------
def test_float_embeddings_match_golden_and_gates(hqa_model, face_set, float_run, hqa_golden, hqa_history):
    run, backend = float_run
    outputs = {"embedding": run.emb.astype(np.float32)}
    outputs.update({f"distance_{s:g}": e.astype(np.float32) for s, e in run.by_scale.items() if s != 1.0})
    outcome = hqa_golden.check(outputs, model=hqa_model, target="float", name=GOLDEN_NAME, backend=backend,
                               provenance={"samples": list(face_set.names), "scales": list(SCALES)},
                               atol=1e-4, min_cosine=0.99999)
    from hailo_qa.store.golden import read_golden

    golden = read_golden(outcome.paths)
    _evaluate_and_gate(hqa_model, "float", run, golden.outputs["embedding"].astype(np.float64), face_set, backend,
                       hqa_history, variant="float")


# -- emulator -------------------------------------------------------------------------------------------------------------
@pytest.mark.emulator
@pytest.mark.parametrize("config", PRECISION_CONFIGS)
def test_emulator_embeddings(hqa_model, config, face_set, float_run, hqa, hqa_history, hqa_emulator):
    if config not in hqa_model.quantization.configs:
        pytest.skip(f"{hqa_model.name}: precision config {config} is not in quantization.configs "
                    f"{list(hqa_model.quantization.configs)}")
    from hailo_qa.graph.split import split_for_model
    from hailo_qa.runners.pipeline import HostPipeline

    split = split_for_model(hqa_model, hqa.work_dir)
    size = min(hqa.calib_sizes or hqa_model.calibration.sizes)
    stage1 = hqa_emulator(hqa_model, config, size, split=split)  # int16_selective: noise-suggested layers
    calib_count = stage1.backend.details.get("calib_size", size)
    pipe = HostPipeline(stage1, split.stage2_path, host_feeds=host_feeds(hqa_model))
    run = _run_target(pipe, hqa_model, face_set)
    ref, _ = float_run
    _evaluate_and_gate(hqa_model, f"emulator.{config}", run, ref.emb, face_set, pipe.backend, hqa_history,
                       config=config, calib_size=calib_count,
                       variant=VariantSpec("emulator", config, size).id)  # the id of the sweep's variant


# -- Hailo-8 --------------------------------------------------------------------------------------------------------------
@pytest.mark.hailo8
def test_hailo8_embeddings(hqa_model, face_set, float_run, hqa, hqa_history):
    if hqa_model.hef is None:
        pytest.skip(f"{hqa_model.name}: no HEF registered (manifest 'hef'); compile the model to test it on Hailo-8")
    from hailo_qa.hw.device import hef_skip_reason, probe_device
    from hailo_qa.runners.hailort import HailortRunner

    status = probe_device(hqa.device)
    reason = status.reason if not status.usable else hef_skip_reason(status, hqa_model.hef)
    if reason:
        pytest.skip(reason)
    runner = HailortRunner(hqa_model.hef, device_id=hqa.device, name=f"{hqa_model.name}:hailo8",
                           network_group=hqa_model.network_group or None)
    run = _run_target(_DeviceFeeds(runner, hqa_model, face_set), hqa_model, face_set)
    ref, _ = float_run
    _evaluate_and_gate(hqa_model, "hailo8", run, ref.emb, face_set, runner.backend, hqa_history,
                       variant=VariantSpec("hailo8", "", hef=hqa_model.hef).id)


class _DeviceFeeds:
    """Feeds a HEF's single NHWC image input from our preprocessed NCHW rows.

    A uint8 input (normalization on chip) gets the raw pixels back by inverting the manifest's preprocess
    (x * std + mean); a float input gets the preprocessed values.
    """

    def __init__(self, runner, spec, face_set: FaceSet) -> None:
        self.runner, self.face_set = runner, face_set
        self.backend = runner.backend
        pre = spec.input(face_set.input_name).preprocess
        self.mean = np.asarray(pre.mean if pre else (0.0, 0.0, 0.0), np.float32)
        self.std = np.asarray(pre.std if pre else (1.0, 1.0, 1.0), np.float32)

    def __enter__(self):
        self.runner.__enter__()
        meta = self.runner.input_metadata()
        if len(meta) != 1:
            pytest.fail(f"HEF has inputs {sorted(meta)}, expected one image input", pytrace=False)
        (self.name, self.meta), = meta.items()
        return self

    def __exit__(self, *exc):
        self.runner.__exit__(*exc)

    def infer(self, feeds):
        x = feeds[self.face_set.input_name]
        if x.ndim == 4 and x.shape[1] in (1, 3):
            x = x.transpose(0, 2, 3, 1)
        if self.meta.dtype == np.uint8:
            x = np.clip(np.rint(x * self.std + self.mean), 0, 255)
        return self.runner.infer({self.name: np.ascontiguousarray(x.astype(self.meta.dtype))})


# -- the gate logic itself must be able to fail ---------------------------------------------------------------------------
class _Recorder:
    def __init__(self) -> None:
        self.rows: list[tuple[str, float]] = []

    def record(self, *, model, metric, value, target, **kw) -> None:
        self.rows.append((metric, value))


def test_gate_fails_on_run_to_run_differences_and_crossed_gates():
    from types import SimpleNamespace

    from hailo_qa.runners.base import BackendInfo

    rng = np.random.default_rng(0)
    ref = rng.normal(size=(4, 8))
    ref[1] = ref[0] + 0.05 * rng.normal(size=8)  # "a" twice
    fs = FaceSet(("a1", "a2", "b", "c"), ("a", "a", "b", "c"), "input", np.zeros((4, 1)), {})
    by_scale = {1.0: ref, 0.25: 0.5 * ref + 0.2 * rng.normal(size=ref.shape)}
    spec = SimpleNamespace(name="synthetic", thresholds={"embedding.t": {"min_cosine": 0.999, "min_margin": 0.0}})
    backend = BackendInfo("synthetic", "0", "float")
    rec = _Recorder()
    noisy = ref[:1].copy()
    noisy[0, 3] += 1e-3
    with pytest.raises(pytest.fail.Exception, match=r"1 of 2 repeat runs differ .* 1 values of 16 differ, max "
                                                     r"\|diff\| = 0.001"):
        _evaluate_and_gate(spec, "t", TargetRun(ref, by_scale, [ref[:1], ref[:1], noisy]), ref, fs, backend, rec)
    assert ("embedding.run_to_run_differing_values", 1.0) in rec.rows  # recorded before failing
    bad = ref.copy()
    bad[2] = -bad[2]
    with pytest.raises(pytest.fail.Exception, match="cosine min = -1.0000 < min_cosine"):
        _evaluate_and_gate(spec, "t", TargetRun(bad, by_scale, [ref[:1]] * 2), ref, fs, backend, rec)
    spec_no_gates = SimpleNamespace(name="synthetic", thresholds={})
    with pytest.raises(pytest.fail.Exception, match="no .*thresholds.embedding.t. gates"):
        _evaluate_and_gate(spec_no_gates, "t", TargetRun(ref, by_scale, [ref[:1]] * 2), ref, fs, backend, rec)
