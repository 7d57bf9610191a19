"""Face recognition per embedder variant, measured the way a recognition team does (issue 11).

Data: the labelled verification set in ``../shared/faces/verification/`` (61 photos of 13 people, 280 labelled
pairs; test data only, never copied into the repo), detected and aligned with YuNet + the ArcFace template. The
first photo of each person is enrolled (gallery), every other photo is a probe.

Per variant (``mobilefacenet[float]``, ``mobilefacenet[int8-calib16@emulator]``, ``…@hailo8``):

- recognition: same/different similarity (min same, max different, margin), TAR/FAR at the manifest threshold,
  TAR@FAR, rank-1, pre-norm absolute and as a ratio to float — against references enrolled with the float model and
  re-enrolled with the variant itself (a HEF without its ONNX is enrolled against itself); photos with a second face
  embed the intended one and report the other's pre-norm;
- distance: the source photo is shrunk until the face is N px wide, detected and aligned again; pre-norm, similarity
  and match rate per face size and the smallest passing face;
- stability: repeats of one input within a session must be bit-identical; sessions (runner released and
  reconfigured) must give the same best similarity and match count.

Gates: ``[models.<m>.thresholds.recognition.<variant id | target.precision | target>]``. Every figure goes to the
history with the variant, so ``hailo-qa report`` can compare variants. Heavy work (detection, alignment, embeddings)
runs once per session / per variant.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest

from hailo_qa import config as hqa_config
from hailo_qa.evaluate import recognition as R
from hailo_qa.inputs import host_feeds, preprocess_image

pytestmark = pytest.mark.hqa_select(task="embedding")

VERIFICATION_DIR = hqa_config.SHARED_DIR / "faces" / "verification"
FACE_PX = (112, 80, 56, 40, 28, 20)
"""Distance: face widths (px) the source photos are shrunk to."""
DISTANCE_PROBES = 8
"""Probes (one per person) shrunk for the distance curve (each size is a new detection: keeps CI short)."""
SESSIONS = 3
"""Sessions: the runner is released and reconfigured (device) or rebuilt (emulator) this many times."""
REPEATS = 3
"""Run-to-run repeats of one input within a session."""


# -- the face set (once per pytest session) ----------------------------------------------------------------------------
@dataclass
class FaceSet:
    vset: R.VerificationSet
    photos: list  # PhotoFaces per photo
    gallery: tuple[int, ...]
    probes: tuple[int, ...]
    session_probes: tuple[int, ...]  # one probe per person
    distance_probes: tuple[int, ...]
    distance: dict = field(default_factory=dict)  # face px → [PhotoFaces | None] per distance probe

    def ids(self, idx) -> list[str]:
        return [self.vset.identities[i] for i in idx]


@pytest.fixture(scope="session")
def face_set() -> FaceSet:
    if not (VERIFICATION_DIR / R.PAIRS_CSV).is_file():
        pytest.skip(f"the labelled verification set is not at {VERIFICATION_DIR} (team material in ../shared, test data "
                    f"only; set HAILO_QA_SHARED to the folder that holds faces/verification/)")
    from hailo_qa.evaluate.faces import YuNetDetector, read_image_bgr

    vset = R.load_verification_set(VERIFICATION_DIR)
    gallery, probes = vset.gallery_probes()
    first: dict[str, int] = {}
    for i in probes:
        first.setdefault(vset.identities[i], i)
    session_probes = tuple(sorted(first.values()))
    fs = FaceSet(vset, [], gallery, probes, session_probes, session_probes[:DISTANCE_PROBES])
    with YuNetDetector() as det:
        fs.photos = [R.faces_in_photo(read_image_bgr(p), det, name=p.name) for p in vset.photos]
        for i in fs.distance_probes:
            bgr = read_image_bgr(vset.photos[i])
            for px in FACE_PX:
                fs.distance.setdefault(px, []).append(R.faces_at_size(bgr, fs.photos[i], px, det))
    return fs


# -- running one variant --------------------------------------------------------------------------------------------------
class _DeviceFeeds:
    """Feeds a HEF's single image input from preprocessed rows (NCHW → NHWC; uint8 input: pixels restored)."""

    def __init__(self, runner, spec) -> None:
        self.runner, self.spec = runner, spec
        self.backend = runner.backend
        inp = spec.device_inputs[0]
        self.input_name = inp.name
        pre = inp.preprocess
        self.mean = np.asarray(pre.mean if pre else (0.0, 0.0, 0.0), np.float32)
        self.std = np.asarray(pre.std if pre else (1.0, 1.0, 1.0), np.float32)

    def __enter__(self):
        self.runner.__enter__()
        meta = self.runner.input_metadata()
        if len(meta) != 1:
            pytest.fail(f"HEF has inputs {sorted(meta)}, expected one image input", pytrace=False)
        (self.name, self.meta), = meta.items()
        self.backend = self.runner.backend
        return self

    def __exit__(self, *exc):
        self.runner.__exit__(*exc)

    def infer(self, feeds):
        x = feeds[self.input_name]
        if x.ndim == 4 and x.shape[1] in (1, 3):
            x = x.transpose(0, 2, 3, 1)
        if self.meta.dtype == np.uint8:
            x = np.clip(np.rint(x * self.std + self.mean), 0, 255)
        return self.runner.infer({self.name: np.ascontiguousarray(x.astype(self.meta.dtype))})


def _embedder(runner, spec):
    inp = spec.device_inputs[0]
    feeds = host_feeds(spec) if spec.file is not None else {}

    def embed(crops) -> np.ndarray:
        rows = []
        for c in crops:
            out = runner.infer({**feeds, inp.name: preprocess_image(c, inp)})
            if len(out) != 1:
                pytest.fail(f"{spec.name}: expected one embedding output, got {sorted(out)}", pytrace=False)
            rows.append(np.asarray(next(iter(out.values())), np.float64).reshape(1, -1))
        return np.concatenate(rows) if rows else np.zeros((0, 1))

    return embed


def make_runner(spec, variant, request):
    """An inactive runner for one variant (float ONNX, emulator pipeline or HEF on a device)."""
    if variant.target == "float":
        from hailo_qa.runners.onnxrt import OnnxrtRunner

        return OnnxrtRunner(spec.file, name=f"{spec.name}:float")
    if variant.target == "emulator":
        from hailo_qa.runners.pipeline import HostPipeline

        split = request.getfixturevalue("hqa_split_for")(spec)
        stage1 = request.getfixturevalue("hqa_emulator")(spec, variant.precision, variant.calib_size,
                                                         variant.int16_layers, split=split,
                                                         calib_source=variant.calib_source)
        return HostPipeline(stage1, split.stage2_path, host_feeds=host_feeds(spec))
    from hailo_qa.hw.device import hef_skip_reason, probe_device
    from hailo_qa.runners.hailort import HailortRunner

    hqa = request.getfixturevalue("hqa")
    status = probe_device(hqa.device)
    reason = status.reason if not status.usable else hef_skip_reason(status, variant.hef)
    if reason:
        pytest.skip(reason)
    return _DeviceFeeds(HailortRunner(variant.hef, device_id=hqa.device, name=f"{spec.name}:{variant.id}"), spec)


@dataclass
class VariantRun:
    """Every embedding one variant produced, computed once per variant."""

    spec: object
    variant: object
    backend: object
    emb: np.ndarray  # [photos, D]
    others: dict  # photo name → pre-norms of the other faces in it
    distance: dict  # px → (probe positions, [n, D])
    sessions: list  # [session_probes, D] per session
    repeats: list  # [1, D] per repeat (session 0)


def run_variant(spec, variant, runner, fs: FaceSet, *, sessions: int = SESSIONS, repeats: int = REPEATS) -> VariantRun:
    embed = _embedder(runner, spec)
    out_sessions, reps = [], []
    with runner:
        emb = embed([p.crop for p in fs.photos])
        others = {p.name: np.linalg.norm(embed(p.others), axis=1) for p in fs.photos if p.others}
        dist = {}
        for px, faces in fs.distance.items():
            pos = [k for k, f in enumerate(faces) if f is not None]
            dist[px] = (pos, embed([faces[k].crop for k in pos]))
        reps = [embed([fs.photos[fs.session_probes[0]].crop]) for _ in range(repeats)]
        out_sessions.append(embed([fs.photos[i].crop for i in fs.session_probes]))
        backend = runner.backend
    for _ in range(sessions - 1):  # release the device / drop the emulator session, then configure again
        with runner:
            out_sessions.append(embed([fs.photos[i].crop for i in fs.session_probes]))
    return VariantRun(spec, variant, backend, emb, others, dist, out_sessions, reps)


@pytest.fixture(scope="session")
def hqa_split_for(hqa_work_dir):
    from hailo_qa.graph.split import split_for_model

    cache = {}

    def get(spec):
        if spec.name not in cache:
            cache[spec.name] = split_for_model(spec, hqa_work_dir)
        return cache[spec.name]

    return get


@pytest.fixture(scope="session")
def float_runs(request, face_set):
    """model name → the float reference's VariantRun (computed once)."""
    from hailo_qa.manifest import VariantSpec

    cache = {}

    def get(spec):
        if spec.file is None:
            return None
        if spec.name not in cache:
            v = VariantSpec("float", "float32", name="float")
            cache[spec.name] = run_variant(spec, v, make_runner(spec, v, request), face_set, sessions=1, repeats=1)
        return cache[spec.name]

    return get


@pytest.fixture(scope="module")
def variant_run(hqa_variant, face_set, request, float_runs) -> VariantRun:
    spec, variant = hqa_variant
    if variant.target == "float":
        run = float_runs(spec)
        if len(run.sessions) < SESSIONS:  # the float reference run skips sessions; measure them for its own row
            run = run_variant(spec, variant, make_runner(spec, variant, request), face_set)
        return run
    return run_variant(spec, variant, make_runner(spec, variant, request), face_set)


def recognition_gates(spec, variant) -> dict[str, float]:
    """``recognition.<variant id>``, else ``recognition.<target>.<precision>``, else ``recognition.<target>``, else
    ``recognition``; a target with none fails (gates are measured, never invented)."""
    t = spec.thresholds
    for sec in (f"recognition.{variant.id}", f"recognition.{variant.target}.{variant.precision}",
                f"recognition.{variant.target}", "recognition"):
        if sec in t:
            return dict(t[sec])
    pytest.fail(f"{spec.name}[{variant.id}]: no [models.{spec.name}.thresholds.recognition.{variant.target}] gates in "
                f"the manifest; measure this variant and set min_tar, max_far, min_rank1 ... from its figures",
                pytrace=False)


def record(hqa_history, run: VariantRun, figures: dict[str, float], *, stage: str = "", extra=None) -> None:
    v = run.variant
    for metric, value in figures.items():
        if value is None or not np.isfinite(value):
            continue
        hqa_history.record(model=run.spec.name, metric=f"recognition.{metric}", value=float(value), target=v.target,
                           config="" if v.target == "float" else v.precision, calib_size=v.calib_size,
                           variant=v.id, stage=stage, backend=run.backend,
                           extra={"variant": v.label(), **(extra or {})})


def _stats(run: VariantRun, fs: FaceSet, gallery_emb: np.ndarray, gates, float_run) -> R.RecognitionStats:
    return R.recognition_stats(gallery_emb, fs.ids(fs.gallery), run.emb[list(fs.probes)], fs.ids(fs.probes),
                               threshold=gates.get("match_threshold", R.DEFAULT_MATCH_THRESHOLD),
                               far_target=gates.get("far_target", R.DEFAULT_FAR_TARGET),
                               float_probes=None if float_run is None else float_run.emb[list(fs.probes)])


# -- the tests ---------------------------------------------------------------------------------------------------------------
def test_recognition(hqa_variant, variant_run, face_set, float_runs, hqa_history):
    spec, variant = hqa_variant
    fs, run = face_set, variant_run
    gates = recognition_gates(spec, variant)
    fl = float_runs(spec)
    self_stats = _stats(run, fs, run.emb[list(fs.gallery)], gates, fl)
    record(hqa_history, run, self_stats.figures(), stage="self-enrolled")
    text = f"{spec.name}[{variant.id}] on {run.backend.label()}\nre-enrolled with the variant itself:\n" \
           f"{self_stats.table()}"
    gated = self_stats
    if fl is not None:
        float_stats = _stats(run, fs, fl.emb[list(fs.gallery)], gates, fl)
        record(hqa_history, run, float_stats.figures(), stage="float-enrolled")
        text += f"\nagainst references enrolled with the float model:\n{float_stats.table()}"
        gated = float_stats
    pairs = R.pair_stats(run.emb, fs.vset.pairs, threshold=gates.get("match_threshold", R.DEFAULT_MATCH_THRESHOLD))
    record(hqa_history, run, {"pairs_tar": pairs.tar, "pairs_far": pairs.far, "pairs_accuracy": pairs.accuracy})
    second = {name: float(n.max()) for name, n in run.others.items()}
    record(hqa_history, run, {"second_face_pre_norm_max": max(second.values())} if second else {},
           extra={"second_faces": second})
    text += (f"\nlabelled pairs ({pairs.n_same} same / {pairs.n_diff} different): TAR {pairs.tar:.3f} FAR "
             f"{pairs.far:.3f} accuracy {pairs.accuracy:.3f}\nsecond faces (pre-norm of the other face): "
             + ", ".join(f"{k} {v:.2f}" for k, v in second.items()))
    print(text)
    fails = R.check_gates(gates, gated)
    if fl is not None:  # the quantized space may have moved: the self-enrolled figures must pass the same gates
        fails += [f"self-enrolled: {f}" for f in R.check_gates(
            {k: v for k, v in gates.items() if k not in ("min_pre_norm_ratio", "max_pre_norm_ratio")}, self_stats)]
    if fails:
        pytest.fail("\n".join(fails) + "\n" + text, pytrace=False)


def distance_figures(run: VariantRun, fs: FaceSet, gates, ref_run: VariantRun
                     ) -> tuple[tuple[R.DistancePoint, ...], dict[str, float]]:
    """Similarity of each shrunk probe to its identity's reference (``ref_run``'s gallery: the float model's when
    there is one, as the deployed app enrolls)."""
    thr = gates.get("match_threshold", R.DEFAULT_MATCH_THRESHOLD)
    refs = ref_run.emb[list(fs.gallery)]
    gid = fs.ids(fs.gallery)
    pts = {}
    for px, (pos, emb) in run.distance.items():
        if not pos:
            pts[px] = (np.zeros(0), np.zeros(0))
            continue
        ref = refs[[gid.index(fs.vset.identities[fs.distance_probes[k]]) for k in pos]]
        a = emb / np.linalg.norm(emb, axis=1, keepdims=True).clip(1e-30)
        b = ref / np.linalg.norm(ref, axis=1, keepdims=True).clip(1e-30)
        pts[px] = (np.linalg.norm(emb, axis=1), np.einsum("ij,ij->i", a, b))
    curve = R.distance_curve(pts, len(fs.distance_probes), threshold=thr)
    figs = {}
    for p in curve:
        figs.update({f"distance.{p.face_px}px.pre_norm_mean": p.pre_norm_mean,
                     f"distance.{p.face_px}px.similarity_mean": p.similarity_mean,
                     f"distance.{p.face_px}px.match_rate": p.match_rate,
                     f"distance.{p.face_px}px.detected": float(p.n)})
    smallest = R.smallest_passing_face(curve)
    figs["smallest_passing_face_px"] = float(smallest) if smallest is not None else float("nan")
    figs["pre_norm_distance_drop"] = R.pre_norm_distance_drop(curve)
    return curve, figs


def test_recognition_distance(hqa_variant, variant_run, face_set, float_runs, hqa_history):
    spec, variant = hqa_variant
    gates = recognition_gates(spec, variant)
    ref = float_runs(spec) or variant_run
    curve, figs = distance_figures(variant_run, face_set, gates, ref)
    record(hqa_history, variant_run, figs, stage="self-enrolled" if ref is variant_run else "float-enrolled")
    text = "\n".join(f"  {p.face_px:>4} px: detected {p.n}/{len(face_set.distance_probes)}  pre-norm "
                     f"{p.pre_norm_mean:7.3f}  similarity mean {p.similarity_mean:.4f} min {p.similarity_min:.4f}  "
                     f"match rate {p.match_rate:.2f}" for p in curve)
    text = (f"{spec.name}[{variant.id}] distance (source photo shrunk, detected and aligned again):\n{text}\n"
            f"  smallest passing face: {figs['smallest_passing_face_px']:g} px")
    print(text)
    fails = R.check_gates(gates, curve=curve)
    if fails:
        pytest.fail("\n".join(fails) + "\n" + text, pytrace=False)


def test_recognition_stability(hqa_variant, variant_run, face_set, float_runs, hqa_history):
    from hailo_qa.evaluate.embedding import run_stability

    spec, variant = hqa_variant
    gates = recognition_gates(spec, variant)
    run, fs = variant_run, face_set
    refs = (float_runs(spec) or run).emb[list(fs.gallery)]
    gid = fs.ids(fs.gallery)
    per_probe_ref = refs[[gid.index(fs.vset.identities[i]) for i in fs.session_probes]]
    sess = R.session_stats(run.sessions, per_probe_ref,
                           threshold=gates.get("match_threshold", R.DEFAULT_MATCH_THRESHOLD))
    stab = run_stability(run.repeats)
    record(hqa_history, run, {"session_similarity_spread": sess.similarity_spread,
                              "session_match_spread": float(sess.match_spread),
                              "session_max_abs_diff": sess.max_abs_diff,
                              "run_to_run_differing_values": float(stab.differing_elements)},
           extra={"session_best_similarity": list(sess.best_similarity), "session_matches": list(sess.match_count)})
    text = f"{spec.name}[{variant.id}]: {sess.describe()}; repeats: {stab.describe()}"
    print(text)
    fails = R.check_gates(gates, sessions=sess)
    if not stab.identical:
        fails.append(f"run-to-run instability within a session: {stab.describe()}")
    if fails:
        pytest.fail("\n".join(fails) + "\n" + text, pytrace=False)


# -- the gates can fail: degenerate embedders, and session drift on the HailoRT contract fake --------------------------------
class _FnRunner:
    """A stand-in embedder (tests only): ``fn(x) -> [1, D]``; its backend says it is synthetic."""

    def __init__(self, fn, name: str) -> None:
        from hailo_qa.runners.base import BackendInfo

        self.fn = fn
        self.backend = BackendInfo(f"synthetic-{name}", "0", "float")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None

    def infer(self, feeds):
        return {"embedding": self.fn(next(iter(feeds.values())))}


def _spec_for_faces(tmp_path, gates: dict, *, hef: bool = False):
    """A HEF-only embedding entry with the given recognition gates (written as a manifest, loaded as users do)."""
    from hailo_qa.manifest import load_manifest

    (tmp_path / "face.hef").write_bytes(b"HEF stand-in for the contract fake")
    body = ['[models.face_hef]', 'hef = "face.hef"', 'task = "embedding"', '[[models.face_hef.inputs]]',
            'name = "face/input_layer1"', 'shape = [1, 112, 112, 3]', 'layout = "NHWC"', 'range = [0.0, 255.0]',
            '[models.face_hef.thresholds.recognition.hailo8]'] + [f"{k} = {v}" for k, v in gates.items()]
    p = tmp_path / "models.toml"
    p.write_text("\n".join(body) + "\n")
    return load_manifest(p).get("face_hef")


@pytest.mark.parametrize("kind", ["constant", "random"])
def test_a_degenerate_embedder_fails_the_manifest_gates_on_real_faces(kind, face_set, hqa_manifest, tmp_path):
    spec = hqa_manifest.get("mobilefacenet")
    gates = recognition_gates(spec, spec.variants[0])
    rng = np.random.default_rng(7)
    direction = rng.standard_normal((1, 128))
    fn = (lambda x: 10 * direction) if kind == "constant" else (lambda x: rng.standard_normal((1, 128)) * 1.5)
    hef_spec = _spec_for_faces(tmp_path, gates)
    run = run_variant(hef_spec, hef_spec.variants[0], _FnRunner(fn, kind), face_set, sessions=2, repeats=2)
    stats = _stats(run, face_set, run.emb[list(face_set.gallery)], gates, None)
    curve, _ = distance_figures(run, face_set, gates, run)
    fails = R.check_gates(gates, stats) + R.check_gates(gates, curve=curve)
    text = "\n".join(fails)
    assert "rank-1" in text and "TAR@FAR" in text and "pre-norm drop" in text, text
    assert ("FAR@0.30" in text) if kind == "constant" else ("TAR@0.30" in text and "margin" in text), text


def _fake_device_embedder(monkeypatch, spec, float_model):
    """Install the HailoRT contract fake with a net that runs the float embedder on what the device receives."""
    from hailo_qa.runners.onnxrt import OnnxrtRunner
    from tests.fakes import install_fake_hailort

    hp, state = install_fake_hailort(monkeypatch)
    from hailo_platform import _fake

    ref = OnnxrtRunner(float_model, name="fake-device-compute")
    ref.activate()

    def compute(inputs):
        x = next(iter(inputs.values())).astype(np.float32)  # NHWC 0–255
        x = (x.reshape(1, 112, 112, 3).transpose(0, 3, 1, 2) - 127.5) / 127.5
        return {"face/fc1": next(iter(ref.infer({"input": np.ascontiguousarray(x)}).values()))}

    state.hefs[str(spec.hef)] = _fake.FakeNet([_fake.FakeStream("face/input_layer1", (112, 112, 3))],
                                              [_fake.FakeStream("face/fc1", (128,), 0.05, 128.0)],
                                              name="face", compute=compute)
    return state, ref


def test_session_drift_on_the_contract_fake_is_caught(monkeypatch, tmp_path, face_set, hqa_manifest):
    """A HEF-only variant on the (fake) device runs every test that needs no float reference — enrolled against
    itself — and drift injected between sessions (release + reconfigure) fails the session gate."""
    from hailo_qa.runners.hailort import HailortRunner

    mfn = hqa_manifest.get("mobilefacenet")
    if not mfn.available:
        pytest.skip(mfn.unavailable)
    gates = recognition_gates(mfn, mfn.variant("int8-calib16@emulator") if any(
        v.id == "int8-calib16@emulator" for v in mfn.variants) else mfn.variants[0])
    spec = _spec_for_faces(tmp_path, gates)
    state, ref = _fake_device_embedder(monkeypatch, spec, mfn.file)
    try:
        variant = spec.variants[0]
        assert variant.id == "hef@hailo8"
        run = run_variant(spec, variant, _DeviceFeeds(HailortRunner(spec.hef, name="face"), spec), face_set)
        assert "tests/fakes" in run.backend.details["hailort_module"].replace("\\", "/")
        stats = _stats(run, face_set, run.emb[list(face_set.gallery)], gates, None)
        refs = run.emb[list(face_set.gallery)]
        gid = face_set.ids(face_set.gallery)
        per_probe = refs[[gid.index(face_set.vset.identities[i]) for i in face_set.session_probes]]
        steady = R.session_stats(run.sessions, per_probe)
        assert steady.similarity_spread == 0 and R.check_gates(gates, stats, sessions=steady) == []
        state.session_drift, state.configures = 0.3, 0  # a new device session count from here
        drifting = run_variant(spec, variant, _DeviceFeeds(HailortRunner(spec.hef, name="face"), spec), face_set)
        sess = R.session_stats(drifting.sessions, per_probe)
        fails = R.check_gates(gates, sessions=sess)
        assert any("session best-similarity spread" in f for f in fails), sess.describe()
        assert sess.best_similarity[0] == pytest.approx(steady.best_similarity[0])  # session 0 is unchanged
    finally:
        ref.deactivate()
