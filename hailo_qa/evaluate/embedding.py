"""Face-embedding metrics (pure NumPy): how close a target's embeddings stay to the float reference, and whether
they still tell people apart.

All functions take *raw* model outputs, [N, D] (one row per image, before L2 normalisation), so the pre-norm — the
L2 norm before normalisation, which falls as image quality (distance, blur) falls and is used by face apps as a
quality score — can be reported too. Cosines are computed on normalised rows; a zero row has cosine 0 with
everything (it carries no direction).

Figures:

- fidelity: per-image cosine between a target's and the float embedding of the same image (min, P5, mean);
- pre-norm: per-image norm and its ratio to float (quantisation often shrinks or inflates it);
- identity separation: cosines of same-identity pairs vs different-identity pairs; margin = min same − max diff
  (> 0: one threshold separates everyone) and mean same − mean diff;
- match rate at a threshold: fraction of pairs classified right (same ⇔ cosine ≥ threshold); TAR, FAR;
- nearest-neighbour agreement: for each image, does its nearest other image (by cosine) have the same identity under
  the target as under float;
- run-to-run stability: N repeats of one input must be bit-identical;
- distance sweep: pre-norm and cosine to the float full-resolution embedding as faces shrink.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from hailo_qa.errors import InputDataError
from hailo_qa.evaluate.metrics import cosine_similarity

DEFAULT_MATCH_THRESHOLD = 0.30
"""Cosine threshold for "same person" (the seed project's)."""

GATE_KEYS = ("min_cosine", "min_p5_cosine", "min_margin", "match_threshold", "min_match_rate",
             "min_nn_agreement", "min_pre_norm_ratio", "max_pre_norm_ratio")
"""The manifest's ``thresholds.embedding.<target>`` keys understood by :meth:`EmbeddingReport.check`."""


# -- basics ------------------------------------------------------------------------------------------------------
def as_embeddings(x: np.ndarray, *, name: str = "embeddings") -> np.ndarray:
    """Validate and return ``x`` as float64 [N, D] (a [N, 1, 1, D]-style output is flattened per row).

    Raises:
        InputDataError: not at least 1-D per row, empty, or holding NaN/Inf.
    """
    a = np.asarray(x)
    if a.ndim == 1:
        a = a[None]
    if a.ndim < 2 or a.shape[0] == 0 or a[0].size == 0:
        raise InputDataError(f"{name} have shape {a.shape}", note="expected [N, D] embeddings, N ≥ 1, D ≥ 1",
                             context="embedding")
    a = a.reshape(a.shape[0], -1).astype(np.float64)
    if not np.isfinite(a).all():
        bad = int((~np.isfinite(a)).any(axis=1).sum())
        raise InputDataError(f"{name} hold NaN or Inf in {bad} of {a.shape[0]} rows",
                             note="expected finite embeddings", hint="the model or its input is broken for those "
                             "images; check the preprocessing and the runner's output dequantisation",
                             context="embedding")
    return a


def _same_shape(ref: np.ndarray, test: np.ndarray) -> None:
    if ref.shape != test.shape:
        raise InputDataError(f"reference {ref.shape} and test {test.shape} embeddings differ in shape",
                             note="expected one row per image, same images in the same order, same dimension",
                             context="embedding")


def pre_norm(emb: np.ndarray) -> np.ndarray:
    """Per-row L2 norm of raw embeddings, [N]."""
    return np.linalg.norm(as_embeddings(emb), axis=1)


def l2_normalize(emb: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm; zero rows stay zero."""
    a = as_embeddings(emb)
    n = np.linalg.norm(a, axis=1, keepdims=True)
    return np.divide(a, n, out=np.zeros_like(a), where=n > 0)


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine between row i of ``a`` and row i of ``b``, [N], in [-1, 1]."""
    a, b = as_embeddings(a, name="reference embeddings"), as_embeddings(b, name="test embeddings")
    _same_shape(a, b)
    return np.asarray(cosine_similarity(a, b, axis=-1), np.float64).reshape(-1)


def cosine_matrix(a: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    """All-pairs cosine, [N, M] (``b`` defaults to ``a``)."""
    na = l2_normalize(a)
    nb = na if b is None else l2_normalize(b)
    if na.shape[1] != nb.shape[1]:
        raise InputDataError(f"embedding dimensions differ ({na.shape[1]} vs {nb.shape[1]})",
                             note="expected embeddings from the same model", context="embedding")
    return np.clip(na @ nb.T, -1.0, 1.0)


def _ids(identities: Sequence[str], n: int) -> np.ndarray:
    ids = np.asarray(list(identities), dtype=object)
    if ids.shape != (n,):
        raise InputDataError(f"got {ids.size} identities for {n} embeddings",
                             note="expected one identity per embedding row",
                             hint="set identities = {stem = \"person\"} for every sample in the manifest",
                             context="embedding")
    return ids


# -- figures -------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FidelityStats:
    """Per-image cosine between target and float embeddings of the same image."""

    per_image: tuple[float, ...]
    min: float
    p5: float
    mean: float


def fidelity(ref: np.ndarray, test: np.ndarray) -> FidelityStats:
    """Cosine of each test embedding to the reference (float/golden) embedding of the same image."""
    c = cosine_rows(ref, test)
    return FidelityStats(tuple(float(v) for v in c), float(c.min()), float(np.percentile(c, 5)), float(c.mean()))


@dataclass(frozen=True)
class PreNormStats:
    """Pre-normalisation norms of target and reference, and their per-image ratio (test / ref)."""

    ref: tuple[float, ...]
    test: tuple[float, ...]
    ratio: tuple[float, ...]
    min_ratio: float
    max_ratio: float
    mean_ratio: float


def pre_norm_stats(ref: np.ndarray, test: np.ndarray) -> PreNormStats:
    """Pre-norms and test/ref ratios. A zero reference norm gives ratio inf (or nan for 0/0)."""
    r, t = as_embeddings(ref, name="reference embeddings"), as_embeddings(test, name="test embeddings")
    _same_shape(r, t)
    nr, nt = np.linalg.norm(r, axis=1), np.linalg.norm(t, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = nt / nr
    return PreNormStats(tuple(map(float, nr)), tuple(map(float, nt)), tuple(map(float, ratio)),
                        float(ratio.min()), float(ratio.max()), float(ratio.mean()))


@dataclass(frozen=True)
class IdentityStats:
    """Same-identity vs different-identity cosines over all unordered pairs.

    ``margin_min`` = min same − max diff (> 0: some threshold separates every pair);
    ``margin_mean`` = mean same − mean diff.
    """

    n_same: int
    n_diff: int
    min_same: float
    mean_same: float
    max_diff: float
    mean_diff: float
    margin_min: float
    margin_mean: float
    pairs: tuple[tuple[int, int, float, bool], ...]  # (i, j, cosine, same identity)


def identity_separation(emb: np.ndarray, identities: Sequence[str]) -> IdentityStats:
    """Cosine statistics of same- vs different-identity pairs.

    Raises:
        InputDataError: no same-identity pair or no different-identity pair (the margin is undefined).
    """
    sim = cosine_matrix(emb)
    ids = _ids(identities, sim.shape[0])
    iu, ju = np.triu_indices(sim.shape[0], k=1)
    same = ids[iu] == ids[ju]
    s = sim[iu, ju]
    if not same.any() or same.all():
        raise InputDataError(f"identity separation needs both same- and different-identity pairs "
                             f"(got {int(same.sum())} same, {int((~same).sum())} different)",
                             note="expected at least two images of one person and at least two people",
                             hint="add another photo of someone already in the set", context="embedding")
    ss, sd = s[same], s[~same]
    return IdentityStats(int(same.sum()), int((~same).sum()), float(ss.min()), float(ss.mean()), float(sd.max()),
                         float(sd.mean()), float(ss.min() - sd.max()), float(ss.mean() - sd.mean()),
                         tuple((int(i), int(j), float(v), bool(m)) for i, j, v, m in zip(iu, ju, s, same)))


@dataclass(frozen=True)
class MatchStats:
    """Pair verification at one cosine threshold: rate = fraction of pairs right; TAR/FAR on same/diff pairs."""

    threshold: float
    rate: float
    true_accept_rate: float
    false_accept_rate: float
    n_pairs: int


def match_rate(emb: np.ndarray, identities: Sequence[str], threshold: float = DEFAULT_MATCH_THRESHOLD) -> MatchStats:
    """Verification over all unordered pairs: a pair is declared "same" when its cosine ≥ ``threshold``.

    Args:
        emb: [N, D] raw embeddings, N ≥ 2.
        identities: one identity per row.
        threshold: cosine threshold. Defaults to 0.30.
    """
    sim = cosine_matrix(emb)
    ids = _ids(identities, sim.shape[0])
    if sim.shape[0] < 2:
        raise InputDataError("match rate needs at least two embeddings", note=f"got {sim.shape[0]}",
                             context="embedding")
    iu, ju = np.triu_indices(sim.shape[0], k=1)
    same = ids[iu] == ids[ju]
    accept = sim[iu, ju] >= threshold
    tar = float(accept[same].mean()) if same.any() else float("nan")
    far = float(accept[~same].mean()) if (~same).any() else float("nan")
    return MatchStats(float(threshold), float((accept == same).mean()), tar, far, int(iu.size))


@dataclass(frozen=True)
class NNAgreement:
    """Nearest other image per row under the reference and under the target, and how often their identities agree."""

    rate: float
    ref_nn: tuple[int, ...]
    test_nn: tuple[int, ...]


def nn_agreement(ref: np.ndarray, test: np.ndarray, identities: Sequence[str] | None = None) -> NNAgreement:
    """Fraction of rows whose nearest neighbour (by cosine, self excluded) has the same identity under ``test`` as
    under ``ref``. Without identities the neighbour index itself must agree.
    """
    r, t = as_embeddings(ref, name="reference embeddings"), as_embeddings(test, name="test embeddings")
    _same_shape(r, t)
    n = r.shape[0]
    if n < 2:
        raise InputDataError("nearest-neighbour agreement needs at least two embeddings", note=f"got {n}",
                             context="embedding")
    ids = _ids(identities, n) if identities is not None else np.arange(n).astype(object)

    def nn(e: np.ndarray) -> np.ndarray:
        s = cosine_matrix(e)
        np.fill_diagonal(s, -np.inf)
        return s.argmax(axis=1)

    rn, tn = nn(r), nn(t)
    return NNAgreement(float((ids[rn] == ids[tn]).mean()), tuple(map(int, rn)), tuple(map(int, tn)))


@dataclass(frozen=True)
class StabilityReport:
    """Run-to-run differences of repeated inference on the same input(s), each run compared with the first."""

    runs: int
    elements: int
    differing_runs: int
    differing_elements: int
    max_abs_diff: float

    @property
    def identical(self) -> bool:
        return self.differing_elements == 0

    def describe(self) -> str:
        if self.identical:
            return f"{self.runs} runs bit-identical ({self.elements} values each)"
        return (f"{self.differing_runs} of {self.runs - 1} repeat runs differ from run 0: "
                f"{self.differing_elements} values of {self.elements * (self.runs - 1)} differ, "
                f"max |diff| = {self.max_abs_diff:.3g}")


def run_stability(runs: Sequence[np.ndarray]) -> StabilityReport:
    """Compare every run with the first, bit for bit (NaN equals NaN in the same place).

    Raises:
        InputDataError: fewer than two runs, or runs of different shapes.
    """
    arrs = [np.asarray(r) for r in runs]
    if len(arrs) < 2:
        raise InputDataError(f"run-to-run stability needs at least 2 runs, got {len(arrs)}",
                             note="expected N ≥ 2 repeats of the same input", context="embedding")
    first = arrs[0]
    diff_runs = diff_elems = 0
    max_diff = 0.0
    for a in arrs[1:]:
        if a.shape != first.shape:
            raise InputDataError(f"repeat run has shape {a.shape}, the first {first.shape}",
                                 note="expected identical shapes for repeats of one input", context="embedding")
        same = a == first
        if a.dtype.kind in "fc":
            same |= np.isnan(a) & np.isnan(first)
        neq = ~same
        k = int(neq.sum())
        if k:
            diff_runs += 1
            diff_elems += k
            d = np.abs(a.astype(np.float64) - first.astype(np.float64))[neq]
            max_diff = max(max_diff, float(np.nanmax(d)) if np.isfinite(d).any() else float("inf"))
    return StabilityReport(len(arrs), int(first.size), diff_runs, diff_elems, max_diff)


@dataclass(frozen=True)
class DistancePoint:
    """One step of the distance sweep: faces downscaled to ``scale`` of 112 px and upscaled back."""

    scale: float
    mean_pre_norm: float
    pre_norm_ratio: float  # mean over images of pre_norm(at scale) / pre_norm(float, full resolution)
    mean_cosine: float  # to the float full-resolution embedding of the same image
    min_cosine: float


def distance_sweep(ref_full: np.ndarray, by_scale: Mapping[float, np.ndarray]) -> tuple[DistancePoint, ...]:
    """How pre-norm and similarity fall as faces shrink.

    Args:
        ref_full: float embeddings of the full-resolution crops, [N, D].
        by_scale: scale → the target's embeddings of the same crops degraded to that scale, [N, D] each.

    Returns:
        one point per scale, largest scale first.
    """
    ref = as_embeddings(ref_full, name="reference embeddings")
    nref = np.linalg.norm(ref, axis=1)
    out = []
    for s in sorted(by_scale, reverse=True):
        e = as_embeddings(by_scale[s], name=f"embeddings at scale {s}")
        _same_shape(ref, e)
        c = cosine_rows(ref, e)
        n = np.linalg.norm(e, axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = float(np.mean(n / nref))
        out.append(DistancePoint(float(s), float(n.mean()), ratio, float(c.mean()), float(c.min())))
    return tuple(out)


# -- one report per target -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EmbeddingReport:
    """Every embedding figure of one target against the float reference."""

    target: str
    fidelity: FidelityStats
    pre_norm: PreNormStats
    identity: IdentityStats
    match: MatchStats
    nn: NNAgreement

    def figures(self) -> dict[str, float]:
        """Flat metric name → value (what goes to the history)."""
        f = {"cosine_min": self.fidelity.min, "cosine_p5": self.fidelity.p5, "cosine_mean": self.fidelity.mean,
             "pre_norm_ratio_min": self.pre_norm.min_ratio, "pre_norm_ratio_max": self.pre_norm.max_ratio,
             "pre_norm_ratio_mean": self.pre_norm.mean_ratio,
             "pre_norm_mean": float(np.mean(self.pre_norm.test)),
             "same_min": self.identity.min_same, "same_mean": self.identity.mean_same,
             "diff_max": self.identity.max_diff, "diff_mean": self.identity.mean_diff,
             "margin_min": self.identity.margin_min, "margin_mean": self.identity.margin_mean,
             "match_rate": self.match.rate, "true_accept_rate": self.match.true_accept_rate,
             "false_accept_rate": self.match.false_accept_rate, "nn_agreement": self.nn.rate}
        return {k: float(v) for k, v in f.items()}

    def check(self, thresholds: Mapping[str, float]) -> list[str]:
        """Failed gates, one line each (empty: all pass). Keys as in the manifest's ``thresholds.embedding.*``.

        ``match_threshold`` is not a gate: it is the threshold the match rate was computed at, and it must equal
        ``self.match.threshold``.
        """
        unknown = sorted(set(thresholds) - set(GATE_KEYS))
        if unknown:
            raise InputDataError(f"unknown embedding threshold keys {unknown}", note=f"expected some of {GATE_KEYS}",
                                 context="embedding")
        lo = {"min_cosine": ("cosine min", self.fidelity.min), "min_p5_cosine": ("cosine P5", self.fidelity.p5),
              "min_margin": ("margin (min same - max diff)", self.identity.margin_min),
              "min_match_rate": (f"match rate @ {self.match.threshold:g}", self.match.rate),
              "min_nn_agreement": ("nearest-neighbour identity agreement", self.nn.rate),
              "min_pre_norm_ratio": ("pre-norm ratio min", self.pre_norm.min_ratio)}
        fails = []
        for key, (label, value) in lo.items():
            if key in thresholds and not value >= thresholds[key]:
                fails.append(f"{self.target}: {label} = {value:.4f} < {key} {thresholds[key]:.4f}")
        if "max_pre_norm_ratio" in thresholds and not self.pre_norm.max_ratio <= thresholds["max_pre_norm_ratio"]:
            fails.append(f"{self.target}: pre-norm ratio max = {self.pre_norm.max_ratio:.4f} > max_pre_norm_ratio "
                         f"{thresholds['max_pre_norm_ratio']:.4f}")
        if "match_threshold" in thresholds and thresholds["match_threshold"] != self.match.threshold:
            fails.append(f"{self.target}: match rate computed at {self.match.threshold:g}, manifest says "
                         f"match_threshold {thresholds['match_threshold']:g}")
        return fails

    def table(self) -> str:
        """Human-readable summary for failure messages and logs."""
        return "\n".join(f"  {k:<22} {v: .4f}" for k, v in self.figures().items())

    def to_dict(self) -> dict:
        return asdict(self)


def evaluate(ref: np.ndarray, test: np.ndarray, identities: Sequence[str], *, target: str,
             threshold: float = DEFAULT_MATCH_THRESHOLD) -> EmbeddingReport:
    """All figures of ``test`` (a target's raw embeddings) against ``ref`` (float raw embeddings of the same images).

    Args:
        ref: [N, D] float reference embeddings.
        test: [N, D] target embeddings, same images in the same order.
        identities: one identity per row.
        target: label for messages (``float``, ``emulator.int8``, ``hailo8``).
        threshold: cosine threshold for the match rate. Defaults to 0.30.
    """
    return EmbeddingReport(target, fidelity(ref, test), pre_norm_stats(ref, test),
                           identity_separation(test, identities), match_rate(test, identities, threshold),
                           nn_agreement(ref, test, identities))
