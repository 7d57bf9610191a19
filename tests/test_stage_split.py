"""Stage-split equivalence proof, for every manifest model: ``stage2(stage1(x), x) == model(x)``, bit-exact.

Real inputs (the manifest's samples: the DEIMv2 photo, face photos, held-out IMU windows) and Hypothesis-generated
inputs inside each input's declared range. A per-model tolerance is allowed only with a written justification in the
manifest (``split.atol`` + ``split.justification``; the manifest loader enforces it).
"""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hailo_qa.graph.index import GraphIndex
from hailo_qa.graph.split import split_for_model
from hailo_qa.graph.verify import compare_split, proof_runners
from hailo_qa.inputs import host_feeds, sample_feeds

pytestmark = pytest.mark.hqa_select(needs=("file",))


@pytest.fixture(scope="module")
def split(hqa_model, hqa):
    return split_for_model(hqa_model, hqa.work_dir)


@pytest.fixture(scope="module")
def runners(hqa_model, split):
    """The full model and the two-stage pipeline, both on ONNX Runtime (graph optimizations off, see
    hailo_qa.graph.verify), active for the whole module."""
    full_r, pipe_r = proof_runners(hqa_model.file, split, host_feeds=host_feeds(hqa_model))
    with full_r as full, pipe_r as pipe:
        yield full, pipe


def test_stages_are_valid_onnx(split):
    for stage in (split.stage1, split.stage2):
        onnx.checker.check_model(stage, full_check=True)


def test_stage1_is_device_compatible(hqa_model, split):
    """Judged independently of the rule table that built the split: the DFC parser where installed, otherwise a
    separate list of ops Hailo-8 cannot run plus the static-shape requirement (hailo_qa.graph.devicecheck)."""
    from hailo_qa.graph.devicecheck import independent_device_check

    g = GraphIndex(onnx.shape_inference.infer_shapes(split.stage1))
    assert g.inputs == [i.name for i in hqa_model.device_inputs], "Stage 1 must read exactly the image input"
    verdict = independent_device_check(split.stage1_path or split.stage1)
    assert verdict, f"Stage 1 holds what Hailo-8 cannot run ({verdict.authority}):\n" + "\n".join(
        f"  {p}" for p in verdict.problems)


def test_stage2_reads_only_boundary_and_original_inputs(hqa_model, split):
    allowed = {b.name for b in split.boundary} | {i.name for i in hqa_model.inputs}
    assert set(split.stage2_inputs) <= allowed
    assert {b.name for b in split.boundary} <= set(split.stage2_inputs)


def _check(result, what: str) -> None:
    __tracebackhide__ = True
    if not result:
        pytest.fail(f"stage2(stage1(x)) differs from the full model on {what}:\n{result}", pytrace=False)


def test_equivalence_on_real_inputs(hqa_model, runners):
    full, pipe = runners
    samples = sample_feeds(hqa_model)
    if not samples:
        pytest.skip(f"{hqa_model.name}: the manifest registers no samples (add 'samples = [...]')")
    for name, feeds in samples:
        _check(compare_split(full, pipe, feeds, atol=hqa_model.split.atol), f"sample '{name}'")


PATTERNS = ("uniform", "constant", "extremes", "checker", "gaussian")


def _generated(spec, pattern: str, seed: int, level: float) -> np.ndarray:
    lo, hi = spec.range or (0.0, 1.0)
    rng = np.random.default_rng(seed)
    shape = spec.shape
    if pattern == "uniform":
        x = rng.uniform(lo, hi, shape)
    elif pattern == "constant":
        x = np.full(shape, lo + level * (hi - lo))
    elif pattern == "extremes":
        x = np.where(rng.random(shape) < 0.5, lo, hi)
    elif pattern == "checker":
        idx = np.indices(shape).sum(axis=0) % 2
        x = np.where(idx == 0, lo, lo + level * (hi - lo))
    else:
        x = np.clip(rng.normal((lo + hi) / 2, (hi - lo) / 6, shape), lo, hi)
    return x.astype(spec.np_dtype)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pattern=st.sampled_from(PATTERNS), seed=st.integers(0, 2**31 - 1), level=st.floats(0.0, 1.0))
def test_equivalence_on_generated_inputs(hqa_model, runners, pattern, seed, level):
    full, pipe = runners
    feeds = host_feeds(hqa_model)
    for spec in hqa_model.device_inputs:
        feeds[spec.name] = _generated(spec, pattern, seed, level)
    _check(compare_split(full, pipe, feeds, atol=hqa_model.split.atol),
           f"generated input (pattern={pattern}, seed={seed}, level={level:.3f})")
