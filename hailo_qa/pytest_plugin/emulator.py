"""pytest fixtures and parametrization for the quantization emulators (``pytest -m emulator``).

- ``hqa_precision`` × ``hqa_calib_size``: a test taking both runs once per precision config (the model's
  ``quantization.configs``) and calibration size (``calibration.sizes``, or ``--hqa-calib-sizes``). Combinations a
  model does not list are deselected at collection. Without ``--hqa-calib-sizes`` a smoke size of
  :data:`SMOKE_CALIB_SIZE` is added so the default run covers every model quickly; sizes above
  :data:`FAST_CALIB_MAX` are marked ``slow``.
- ``hqa_emulator_backend``: the backend in force (``--hqa-emulator``, ``auto`` resolved).
- ``hqa_work_dir``: the cache folder for splits and quantized models.
- ``hqa_split``: the model's Stage-1/Stage-2 split (cached on disk).
- ``hqa_emulator``: a factory ``hqa_emulator(model, config, calib_size, int16_layers=()) -> Runner`` building the
  Stage-1 emulator (``int16_selective`` without manifest layers uses the noise-analysis suggestion). Calibration
  sets and calibrated runners are built once per session and reused (a configs × sizes sweep in one run).
"""
from __future__ import annotations

import pytest

SMOKE_CALIB_SIZE = 16
"""Calibration size added to the default run (keeps ``pytest -m emulator`` within its time budget)."""
FAST_CALIB_MAX = 32
"""Calibration sizes above this are marked ``slow``."""


def _session(config):
    from hailo_qa.pytest_plugin.plugin import get_session

    return get_session(config)


def model_sizes(spec, override: tuple[int, ...] | None) -> tuple[int, ...]:
    """The calibration sizes a model runs at: the override, else the manifest's plus the smoke size."""
    if override:
        return tuple(override)
    return tuple(sorted({SMOKE_CALIB_SIZE, *spec.calibration.sizes}))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    names = metafunc.fixturenames
    if "hqa_precision" not in names and "hqa_calib_size" not in names:
        return
    from hailo_qa.manifest import PRECISION_CONFIGS

    s = _session(metafunc.config)
    models = [m for m in s.manifest if not s.models or m.name in s.models]
    if "hqa_precision" in names:
        used = {c for m in models for c in m.quantization.configs}
        metafunc.parametrize("hqa_precision", [c for c in PRECISION_CONFIGS if c in used] or ["int8"],
                             scope="module")
    if "hqa_calib_size" in names:
        sizes = sorted({n for m in models for n in model_sizes(m, s.calib_sizes)}) or [SMOKE_CALIB_SIZE]
        metafunc.parametrize("hqa_calib_size", [pytest.param(n, id=f"calib{n}", marks=[pytest.mark.slow]
                                                             if n > FAST_CALIB_MAX else []) for n in sizes],
                             scope="module")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    s = _session(config)
    keep, drop = [], []
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        spec = params.get("hqa_model")
        if spec is None or not ({"hqa_precision", "hqa_calib_size"} & set(params)):
            keep.append(item)
            continue
        ok = params.get("hqa_precision", spec.quantization.configs[0]) in spec.quantization.configs
        ok = ok and params.get("hqa_calib_size", SMOKE_CALIB_SIZE) in model_sizes(spec, s.calib_sizes)
        (keep if ok else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(scope="session")
def hqa_emulator_backend(hqa) -> str:
    """The emulator backend in force: ``dfc`` or ``ort``."""
    return hqa.emulator_backend()


@pytest.fixture(scope="session")
def hqa_work_dir(hqa):
    """Cache folder for splits, quantized models and HARs (``--hqa-work-dir``)."""
    from hailo_qa import config
    from hailo_qa.fsutil import ensure_dir, state_subdir

    if hqa.work_dir == config.STATE_DIR / "work":
        state_subdir("work", "--hqa-work-dir")
        return ensure_dir(hqa.work_dir, "the work folder under HAILO_QA_STATE_DIR")
    return ensure_dir(hqa.work_dir, "--hqa-work-dir")


@pytest.fixture(scope="module")
def hqa_split(hqa_model, hqa_work_dir):
    """The model's split (Stage 1 = what runs on the Hailo), cached on disk."""
    from hailo_qa.graph.split import split_for_model

    return split_for_model(hqa_model, hqa_work_dir)


@pytest.fixture(scope="session")
def hqa_emulator(hqa_emulator_backend, hqa_work_dir):
    """Factory: ``hqa_emulator(model, config, calib_size, int16_layers=(), split=None) -> Runner`` (inactive).

    ``int16_selective`` without layers (argument or manifest) uses :func:`hailo_qa.quant.noise.suggest_for_model`.
    The runner's ``backend`` names the emulator and its version; ``runner.int16_layers`` the 16-bit layers used.
    """
    from hailo_qa.graph.split import split_for_model
    from hailo_qa.quant.calib import calib_set_for_model
    from hailo_qa.quant.emulator import make_emulator
    from hailo_qa.quant.noise import suggest_for_model

    calibs: dict[tuple, object] = {}
    runners: dict[tuple, object] = {}

    def build(model, config: str, calib_size: int, int16_layers=(), split=None, calib_source: str | None = None,
              fresh: bool = False):
        # one calibration set and one calibrated model per (model, config, size, layers, source) for the whole
        # session: a precision × calibration-size sweep calibrates each combination once (issue 11 item 7)
        src = calib_source if calib_source and calib_source != model.calibration.source else None
        key = (model.name, model.digest(), config, calib_size, tuple(int16_layers), src)
        if key in runners and not fresh:
            return runners[key]
        split = split or split_for_model(model, hqa_work_dir)
        ckey = (model.name, model.digest(), calib_size, src)
        if ckey not in calibs:
            calibs[ckey] = calib_set_for_model(model, size=calib_size, source=src)
        calib = calibs[ckey]
        layers = tuple(int16_layers) or tuple(model.quantization.int16_layers)
        if config == "int16_selective" and not layers:
            layers, _ = suggest_for_model(model, split, calib, hqa_work_dir)
        runner = make_emulator(model, split, backend=hqa_emulator_backend, config=config, calib=calib,
                               work_dir=hqa_work_dir, int16_layers=layers)
        runner.int16_layers = layers if config == "int16_selective" else ()
        runners[key] = runner
        return runner

    build.calibrations = calibs  # what the session calibrated (tests read it to prove reuse)
    return build
