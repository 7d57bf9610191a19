"""Faces the way a recognition team measures them: a gallery enrolled from photos, probes from *other* photos.

Pure metric functions on raw embeddings (``[N, D]``, before L2 normalisation, so the pre-norm is kept), plus the
labelled verification set reader and the photo → aligned-face steps (YuNet + ArcFace template, as
:mod:`hailo_qa.evaluate.faces`), including distance emulated by shrinking the *source photo* and detecting again.

Figures (:class:`RecognitionStats`):

- genuine similarities (each probe vs its own identity's reference) and impostor similarities (each probe vs every
  other identity's reference): min same, mean same, max different, mean different, margin = min same − max diff;
- TAR and FAR at the manifest's ``match_threshold`` (0.30, the seed's), and TAR at a fixed FAR (the threshold is
  the impostor score that lets at most ``far_target`` of impostor pairs through);
- rank-1 identification: the probe's most similar reference is its own identity;
- pre-norm of the probes (absolute; the seed gates it at ≥ 5.0) and, given float embeddings, its ratio to float.

References are either enrolled with the float model (the deployed app's database) or re-enrolled with the variant
itself (does the quantized embedding space still separate people, even if it moved?): :func:`recognition_stats`
takes the gallery embeddings as given, the caller decides which.
"""
from __future__ import annotations

import csv
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from hailo_qa.errors import InputDataError, InputFileError
from hailo_qa.evaluate.embedding import DEFAULT_MATCH_THRESHOLD, as_embeddings, cosine_matrix

DEFAULT_FAR_TARGET = 0.01
"""FAR at which TAR@FAR is read (1 %: with 13 identities × 48 probes, 5 of 576 impostor pairs)."""
DEFAULT_MIN_PRE_NORM = 5.0
"""The seed's pre-norm gate (face quality score of the deployed app)."""
PAIRS_CSV = "face-recognition-pivot.csv"

GATE_KEYS = ("match_threshold", "min_tar", "max_far", "far_target", "min_tar_at_far", "min_rank1", "min_margin",
             "min_pre_norm", "min_pre_norm_ratio", "max_pre_norm_ratio", "max_session_spread",
             "max_session_match_spread", "min_pre_norm_distance_drop", "min_smallest_passing_px",
             "max_smallest_passing_px")
"""``[models.<m>.thresholds.recognition.<target>]`` keys (see :func:`check_gates`)."""


# -- the labelled verification set ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class VerificationSet:
    """Photos with an identity each (connected components of the "same person" pairs) and the labelled pairs."""

    folder: Path
    photos: tuple[Path, ...]
    identities: tuple[str, ...]
    pairs: tuple[tuple[int, int, bool], ...]  # (photo index, photo index, same person)
    reference: Mapping[str, tuple[float, ...]] = field(default_factory=dict)  # other models' distance per pair

    def gallery_probes(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """(gallery, probes) photo indices: the first photo (by name) of each identity is enrolled, the others
        are probes. An identity with one photo is enrolled only (an impostor reference for everyone else)."""
        first: dict[str, int] = {}
        for i in sorted(range(len(self.photos)), key=lambda k: _natural(self.photos[k].name)):
            first.setdefault(self.identities[i], i)
        gallery = tuple(sorted(first.values()))
        probes = tuple(i for i in range(len(self.photos)) if i not in set(gallery))
        return gallery, probes


def _natural(name: str) -> tuple:
    import re

    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name))


def load_verification_set(folder: str | Path) -> VerificationSet:
    """Read ``face-recognition-pivot.csv`` (``file_x,file_y,decision`` + reference distances) and its photos.

    Identities are the connected components of the ``Yes`` pairs, named after their first photo.

    Raises:
        InputFileError: the folder, the CSV or a listed photo is missing.
        InputDataError: the CSV lacks the columns, or a ``No`` pair joins two photos of one identity.
    """
    d = Path(folder)
    csv_path = d / PAIRS_CSV
    if not csv_path.is_file():
        raise InputFileError(f"no labelled pairs at '{csv_path}'", note=f"expected {PAIRS_CSV} (file_x,file_y,"
                             "decision,...) beside the photos", hint="set HAILO_QA_SHARED to the folder holding "
                             "faces/verification/", context="faces")
    with csv_path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    if not rows or not {"file_x", "file_y", "decision"} <= set(rows[0]):
        raise InputDataError(f"'{csv_path}' has no file_x,file_y,decision rows", note="expected deepface's "
                             "face-recognition-pivot.csv layout", context="faces")
    names = sorted({r["file_x"] for r in rows} | {r["file_y"] for r in rows}, key=_natural)
    missing = [n for n in names if not (d / n).is_file()]
    if missing:
        raise InputFileError(f"{len(missing)} photos listed in '{csv_path}' are missing, e.g. {missing[0]}",
                             note="expected every file_x/file_y beside the CSV", context="faces")
    parent = {n: n for n in names}

    def root(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for r in rows:
        if r["decision"].strip().lower() == "yes":
            parent[root(r["file_x"])] = root(r["file_y"])
    index = {n: i for i, n in enumerate(names)}
    comp_first: dict[str, str] = {}
    for n in names:
        comp_first.setdefault(root(n), Path(n).stem)
    ids = tuple(f"person_{comp_first[root(n)]}" for n in names)
    pairs, ref = [], {}
    ref_cols = [c for c in rows[0] if c not in ("file_x", "file_y", "decision")]
    for r in rows:
        same = r["decision"].strip().lower() == "yes"
        i, j = index[r["file_x"]], index[r["file_y"]]
        if not same and ids[i] == ids[j]:
            raise InputDataError(f"pair {r['file_x']}/{r['file_y']} is labelled 'No' but other 'Yes' pairs join "
                                 f"them into one identity", note="expected consistent labels", context="faces")
        pairs.append((i, j, same))
    for c in ref_cols:
        try:
            ref[c] = tuple(float(r[c]) for r in rows)
        except ValueError:
            continue
    return VerificationSet(d, tuple(d / n for n in names), ids, tuple(pairs), ref)


# -- figures ----------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RecognitionStats:
    """Gallery/probe recognition figures of one variant (see the module docstring)."""

    n_gallery: int
    n_probes: int
    n_genuine: int
    n_impostor: int
    threshold: float
    min_same: float
    mean_same: float
    max_diff: float
    mean_diff: float
    margin: float
    tar: float
    far: float
    far_target: float
    tar_at_far: float
    threshold_at_far: float
    rank1: float
    pre_norm_mean: float
    pre_norm_min: float
    pre_norm_ratio_mean: float | None = None  # probes' pre-norm / float pre-norm of the same photos
    diff_p95: float = float("nan")  # 95th percentile of impostor similarities
    genuine: tuple[float, ...] = ()
    impostor: tuple[float, ...] = ()

    def figures(self) -> dict[str, float]:
        """Flat figure name → value (what the history records)."""
        d = {k: float(v) for k, v in asdict(self).items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        return {k: v for k, v in d.items() if k not in ("n_gallery",)}

    def table(self) -> str:
        ratio = f"  (×{self.pre_norm_ratio_mean:.3f} of float)" if self.pre_norm_ratio_mean is not None else ""
        return (f"  {self.n_probes} probes vs {self.n_gallery} references: {self.n_genuine} genuine, "
                f"{self.n_impostor} impostor pairs\n"
                f"  same-person   min {self.min_same:.4f} mean {self.mean_same:.4f}\n"
                f"  diff-person   max {self.max_diff:.4f} p95 {self.diff_p95:.4f} mean {self.mean_diff:.4f}   "
                f"margin {self.margin:+.4f}\n"
                f"  @{self.threshold:.2f}: TAR {self.tar:.3f} FAR {self.far:.3f}   TAR@FAR≤{self.far_target:g} "
                f"{self.tar_at_far:.3f} (threshold {self.threshold_at_far:.4f})   rank-1 {self.rank1:.3f}\n"
                f"  pre-norm      mean {self.pre_norm_mean:.3f} min {self.pre_norm_min:.3f}{ratio}")


def tar_at_far(genuine: np.ndarray, impostor: np.ndarray, far_target: float) -> tuple[float, float]:
    """(TAR, threshold): the lowest threshold letting through at most ``far_target`` of the impostor scores
    (accept = score > threshold), and the genuine accept rate there."""
    g, imp = np.asarray(genuine, np.float64), np.sort(np.asarray(impostor, np.float64))[::-1]
    if g.size == 0 or imp.size == 0:
        raise InputDataError("TAR@FAR needs genuine and impostor scores", note=f"got {g.size} genuine, {imp.size} "
                             "impostor", context="recognition")
    if not 0 <= far_target < 1:
        raise InputDataError(f"far_target {far_target} is out of range", note="expected 0 ≤ FAR < 1",
                             context="recognition")
    k = int(np.floor(far_target * imp.size))  # impostors allowed through
    t = float(imp[k])
    return float((g > t).mean()), t


def recognition_stats(gallery: np.ndarray, gallery_ids: Sequence[str], probes: np.ndarray, probe_ids: Sequence[str],
                      *, threshold: float = DEFAULT_MATCH_THRESHOLD, far_target: float = DEFAULT_FAR_TARGET,
                      float_probes: np.ndarray | None = None) -> RecognitionStats:
    """Gallery vs probes (see :class:`RecognitionStats`).

    Args:
        gallery: raw reference embeddings, one per identity (float-enrolled, or re-enrolled with the variant).
        gallery_ids: their identities (unique).
        probes: raw probe embeddings of *other* photos.
        probe_ids: one identity per probe; every one must be enrolled.
        threshold: "same person" cosine threshold. Defaults to 0.30.
        far_target: FAR for TAR@FAR. Defaults to 0.01.
        float_probes: the float model's embeddings of the same probes, for the pre-norm ratio. Defaults to none.

    Raises:
        InputDataError: duplicate or missing references, or fewer than two identities.
    """
    g, p = as_embeddings(gallery, name="gallery embeddings"), as_embeddings(probes, name="probe embeddings")
    gid, pid = list(gallery_ids), list(probe_ids)
    if len(gid) != g.shape[0] or len(pid) != p.shape[0]:
        raise InputDataError(f"got {len(gid)} gallery and {len(pid)} probe identities for {g.shape[0]} and "
                             f"{p.shape[0]} embeddings", note="expected one identity per row", context="recognition")
    if len(set(gid)) != len(gid) or len(gid) < 2:
        raise InputDataError(f"the gallery holds {len(gid)} references of {len(set(gid))} identities",
                             note="expected one reference per identity and at least two identities",
                             context="recognition")
    unknown = sorted(set(pid) - set(gid))
    if unknown:
        raise InputDataError(f"probes of {unknown[:3]} have no reference in the gallery",
                             note="expected every probe identity enrolled", context="recognition")
    sim = cosine_matrix(p, g)
    own = np.array([gid.index(i) for i in pid])
    mask = np.zeros_like(sim, bool)
    mask[np.arange(len(pid)), own] = True
    gen, imp = sim[mask], sim[~mask]
    taf, t_far = tar_at_far(gen, imp, far_target)
    norms = np.linalg.norm(p, axis=1)
    ratio = None
    if float_probes is not None:
        fn = np.linalg.norm(as_embeddings(float_probes, name="float probe embeddings"), axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = float(np.mean(norms / fn))
    return RecognitionStats(
        n_gallery=len(gid), n_probes=len(pid), n_genuine=int(gen.size), n_impostor=int(imp.size),
        threshold=float(threshold), min_same=float(gen.min()), mean_same=float(gen.mean()), max_diff=float(imp.max()),
        mean_diff=float(imp.mean()), margin=float(gen.min() - imp.max()), tar=float((gen >= threshold).mean()),
        far=float((imp >= threshold).mean()), far_target=float(far_target), tar_at_far=taf, threshold_at_far=t_far,
        rank1=float((sim.argmax(axis=1) == own).mean()), pre_norm_mean=float(norms.mean()),
        pre_norm_min=float(norms.min()), pre_norm_ratio_mean=ratio, diff_p95=float(np.percentile(imp, 95)),
        genuine=tuple(map(float, gen)),
        impostor=tuple(map(float, imp)))


@dataclass(frozen=True)
class PairStats:
    """The labelled pairs (both photos embedded by the variant): TAR/FAR at the threshold and the AUC-free margin."""

    n_same: int
    n_diff: int
    tar: float
    far: float
    accuracy: float


def pair_stats(emb: np.ndarray, pairs: Sequence[tuple[int, int, bool]], *,
               threshold: float = DEFAULT_MATCH_THRESHOLD) -> PairStats:
    """Verification of labelled pairs: accept when cosine ≥ ``threshold``."""
    sim = cosine_matrix(emb)
    s = np.array([sim[i, j] for i, j, _ in pairs])
    same = np.array([m for *_, m in pairs], bool)
    if not same.any() or same.all():
        raise InputDataError("labelled pairs need both same- and different-person pairs",
                             note=f"got {int(same.sum())} same, {int((~same).sum())} different", context="recognition")
    acc = s >= threshold
    return PairStats(int(same.sum()), int((~same).sum()), float(acc[same].mean()), float(acc[~same].mean()),
                     float((acc == same).mean()))


# -- distance ----------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DistancePoint:
    """Faces shrunk (source photo downscaled, detected and aligned again) to ``face_px`` wide."""

    face_px: int
    n: int  # probes still detected at this size
    pre_norm_mean: float
    similarity_mean: float  # to the probe's enrolled reference
    similarity_min: float
    match_rate: float  # fraction of the probes *asked for* matching at the threshold (undetected = no match)


def distance_curve(points: Mapping[int, tuple[np.ndarray, np.ndarray]], n_asked: int, *,
                   threshold: float = DEFAULT_MATCH_THRESHOLD) -> tuple[DistancePoint, ...]:
    """One point per face size (largest first) from ``face_px → (pre_norms [n], similarities [n])``."""
    out = []
    for px in sorted(points, reverse=True):
        norms, sims = (np.asarray(a, np.float64) for a in points[px])
        if sims.size == 0:
            out.append(DistancePoint(int(px), 0, float("nan"), float("nan"), float("nan"), 0.0))
            continue
        out.append(DistancePoint(int(px), int(sims.size), float(norms.mean()), float(sims.mean()),
                                 float(sims.min()), float((sims >= threshold).sum() / max(n_asked, 1))))
    return tuple(out)


def smallest_passing_face(curve: Sequence[DistancePoint], *, min_match_rate: float = 0.5) -> int | None:
    """The smallest face size (px) down to which every size matches at ``min_match_rate`` or better; None when
    even the largest fails."""
    best = None
    for p in sorted(curve, key=lambda q: -q.face_px):
        if p.match_rate < min_match_rate:
            break
        best = p.face_px
    return best


def pre_norm_distance_drop(curve: Sequence[DistancePoint]) -> float:
    """Pre-norm at the largest face minus at the smallest detected one (> 0: the quality score falls with
    distance, as a face app expects; a degenerate model's stays flat)."""
    pts = [p for p in sorted(curve, key=lambda q: -q.face_px) if p.n]
    if len(pts) < 2:
        return float("nan")
    return float(pts[0].pre_norm_mean - pts[-1].pre_norm_mean)


# -- sessions -----------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SessionStats:
    """Per session (runner rebuilt / device released and reconfigured): the best probe similarity to its reference
    and how many probes matched; spread = max − min over sessions."""

    best_similarity: tuple[float, ...]
    match_count: tuple[int, ...]
    similarity_spread: float
    match_spread: int
    max_abs_diff: float  # largest element-wise embedding difference between any session and session 0

    def describe(self) -> str:
        best = ", ".join(f"{v:.4f}" for v in self.best_similarity)
        return (f"{len(self.best_similarity)} sessions: best similarity [{best}] (spread {self.similarity_spread:.4g})"
                f", matches {list(self.match_count)} (spread {self.match_spread}), max |Δembedding| "
                f"{self.max_abs_diff:.3g}")


def session_stats(sessions: Sequence[np.ndarray], references: np.ndarray, *,
                  threshold: float = DEFAULT_MATCH_THRESHOLD) -> SessionStats:
    """Sessions of the same probes: ``sessions[k]`` [N, D] raw embeddings, ``references`` [N, D] the enrolled
    reference of each probe's identity (row-aligned).

    Raises:
        InputDataError: fewer than two sessions, or shapes that differ.
    """
    if len(sessions) < 2:
        raise InputDataError(f"session stability needs at least 2 sessions, got {len(sessions)}",
                             note="expected N ≥ 2 sessions over the same probes", context="recognition")
    ref = as_embeddings(references, name="references")
    best, count, diffs = [], [], []
    first = as_embeddings(sessions[0], name="session 0")
    for k, s in enumerate(sessions):
        e = as_embeddings(s, name=f"session {k}")
        if e.shape != ref.shape:
            raise InputDataError(f"session {k} has shape {e.shape}, the references {ref.shape}",
                                 note="expected one embedding per probe in every session", context="recognition")
        sims = np.einsum("ij,ij->i", *(x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-30)
                                       for x in (e, ref)))
        best.append(float(sims.max()))
        count.append(int((sims >= threshold).sum()))
        diffs.append(float(np.abs(e - first).max()))
    return SessionStats(tuple(best), tuple(count), float(max(best) - min(best)), int(max(count) - min(count)),
                        float(max(diffs)))


# -- gates ----------------------------------------------------------------------------------------------------------------
def check_gates(gates: Mapping[str, float], stats: RecognitionStats | None = None,
                sessions: SessionStats | None = None, curve: Sequence[DistancePoint] | None = None) -> list[str]:
    """Human-readable failures of the figures given against ``gates`` (keys in :data:`GATE_KEYS`); a gate whose
    figure was not measured here is not checked (its own test checks it)."""
    fails = []

    def low(name: str, value: float | None, key: str) -> None:
        if key in gates and value is not None and not (value >= gates[key]):
            fails.append(f"{name} = {value:.4g} < {key} {gates[key]:g}")

    def high(name: str, value: float | None, key: str) -> None:
        if key in gates and value is not None and not (value <= gates[key]):
            fails.append(f"{name} = {value:.4g} > {key} {gates[key]:g}")

    if stats is not None:
        low(f"TAR@{stats.threshold:.2f}", stats.tar, "min_tar")
        high(f"FAR@{stats.threshold:.2f}", stats.far, "max_far")
        low(f"TAR@FAR≤{stats.far_target:g}", stats.tar_at_far, "min_tar_at_far")
        low("rank-1", stats.rank1, "min_rank1")
        low("margin (min same − max diff)", stats.margin, "min_margin")
        low("pre-norm min", stats.pre_norm_min, "min_pre_norm")
        low("pre-norm ratio to float", stats.pre_norm_ratio_mean, "min_pre_norm_ratio")
        high("pre-norm ratio to float", stats.pre_norm_ratio_mean, "max_pre_norm_ratio")
    if sessions is not None:
        high("session best-similarity spread", sessions.similarity_spread, "max_session_spread")
        high("session match-count spread", float(sessions.match_spread), "max_session_match_spread")
    if curve is not None:
        low("pre-norm drop from the largest to the smallest face", pre_norm_distance_drop(curve),
            "min_pre_norm_distance_drop")
        smallest = smallest_passing_face(curve)
        if "max_smallest_passing_px" in gates:
            if smallest is None:
                fails.append(f"no face size passes (largest {max(p.face_px for p in curve)} px fails the "
                             f"{gates.get('match_threshold', DEFAULT_MATCH_THRESHOLD):.2f} threshold)")
            elif smallest > gates["max_smallest_passing_px"]:
                fails.append(f"smallest passing face = {smallest} px > max_smallest_passing_px "
                             f"{gates['max_smallest_passing_px']:g}")
    return fails


# -- photos → aligned faces -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PhotoFaces:
    """One photo's intended face (the largest) aligned, plus the other detected faces' aligned crops."""

    name: str
    crop: np.ndarray  # 112×112×3 uint8 RGB
    face_px: float  # detected box width in the photo
    others: tuple[np.ndarray, ...] = ()
    box: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)


def _iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def faces_in_photo(bgr: np.ndarray, detector, *, name: str = "photo",
                   expect_box: tuple[float, float, float, float] | None = None) -> PhotoFaces:
    """Detect all faces, align the intended one (the best overlap with ``expect_box``, else the largest) and the
    others.

    Raises:
        NoFaceError: no face found.
    """
    from hailo_qa.evaluate.faces import align_face, select_face

    faces = detector.detect(bgr)
    if expect_box is not None and faces:
        best = max(faces, key=lambda f: _iou(f.box, expect_box))
        main = best if _iou(best.box, expect_box) > 0.3 else select_face(faces, name=name)
    else:
        main = select_face(faces, name=name)
    rgb = np.ascontiguousarray(bgr[..., ::-1])
    crop, _ = align_face(rgb, main.landmarks)
    others = tuple(align_face(rgb, f.landmarks)[0] for f in faces if f is not main)
    return PhotoFaces(name, crop, float(main.box[2] - main.box[0]), others, tuple(main.box))


def shrink_photo(bgr: np.ndarray, scale: float) -> np.ndarray:
    """The whole photo downscaled by ``scale`` (area interpolation: a smaller, further-away face, as a camera would
    see it), never below 1×1."""
    import cv2

    if not 0 < scale <= 1:
        raise InputDataError(f"shrink scale {scale} is out of range", note="expected 0 < scale ≤ 1",
                             context="faces")
    if scale == 1:
        return bgr.copy()
    h, w = bgr.shape[:2]
    return cv2.resize(bgr, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)


def faces_at_size(bgr: np.ndarray, full: PhotoFaces, face_px: int, detector) -> PhotoFaces | None:
    """Shrink the photo so its intended face is ``face_px`` wide, detect and align again; None when the detector
    no longer finds it (or the face is already smaller)."""
    from hailo_qa.evaluate.faces import NoFaceError

    scale = face_px / full.face_px
    if scale > 1:
        return None
    small = shrink_photo(bgr, scale)
    try:
        return faces_in_photo(small, detector, name=f"{full.name}@{face_px}px",
                              expect_box=tuple(v * scale for v in full.box))
    except NoFaceError:
        return None


EmbedFn = Callable[[Sequence[np.ndarray]], np.ndarray]
"""aligned RGB crops → raw embeddings [N, D]."""
