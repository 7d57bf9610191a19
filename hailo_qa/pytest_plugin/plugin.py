"""pytest plugin (registered through the ``pytest11`` entry point as ``hailo_qa``).

- markers ``emulator``, ``hailo8``, ``slow`` (and ``hqa_select`` to filter manifest models);
- an option group of ``--hqa-*`` options, read once into a :class:`QASession`;
- a report header saying which toolchain pieces were found and which emulator backend is active;
- ``hqa_model`` parametrization: any test that takes the ``hqa_model`` fixture runs once per manifest model
  (ids = model names), filtered by ``@pytest.mark.hqa_select(task=..., needs=(...))``;
- ``hqa_variant`` parametrization: once per (model, variant) — the float reference (``float``) and every manifest
  variant (``ModelSpec.variants``) — with ids like ``mobilefacenet[int16_selective-calib2048@hailo8]``; emulator
  variants carry the ``emulator`` marker, HEF variants ``hailo8``. ``hqa_select(targets=(...))`` picks targets.

Area fixtures (goldens, history, device, emulator) live in their own modules, listed in :data:`PLUGIN_MODULES`.
Import-light: nothing vendor-related is imported at import time, so ``pytest --help`` stays fast.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from hailo_qa import config
from hailo_qa.options import positive_int as parse_positive_int
from hailo_qa.options import sizes as parse_sizes

PLUGIN_MODULES: list[str] = [
    # area fixture modules, registered in pytest_configure
    "hailo_qa.pytest_plugin.golden",
    "hailo_qa.pytest_plugin.hw",
    "hailo_qa.pytest_plugin.emulator",
    "hailo_qa.pytest_plugin.parallel",
]

MARKERS = {
    "emulator": "needs a quantization emulator (the Hailo DFC, or hailo-qa's built-in ONNX Runtime one)",
    "hailo8": "needs HailoRT (hailo_platform) and a Hailo-8 device; skipped with the exact reason otherwise",
    "slow": "long-running (full calibration sweeps, large sample counts); deselect with -m 'not slow'",
    "hqa_select(task=None, needs=(), names=None, targets=None, thresholds=()): filter which manifest models (and "
    "variant targets) an hqa_model / hqa_variant test runs on (thresholds: sections the model must gate)": "",
}


def parse_emulator(value: str) -> str:
    if value not in ("auto", "dfc", "ort"):
        raise argparse.ArgumentTypeError(f"Could not parse value: {value!r}. Expected one of auto, dfc, ort")
    return value


def parse_names(value: str) -> tuple[str, ...]:
    names = tuple(v.strip() for v in value.split(",") if v.strip())
    if not names:
        raise argparse.ArgumentTypeError(f"Could not parse value: {value!r}. Expected comma-separated model names")
    return names


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("hailo_qa", "hailo-qa: Hailo-8 model validation")
    g.addoption("--hqa-manifest", metavar="PATH", default=None,
                help=f"model manifest (TOML) to validate. Default: {config.MANIFEST}")
    g.addoption("--hqa-models", metavar="NAMES", type=parse_names, default=None,
                help="comma-separated subset of manifest models to run. Default: all")
    g.addoption("--hqa-emulator", metavar="BACKEND", type=parse_emulator, default=config.EMULATOR,
                help="quantization emulator: auto (DFC if importable, else built-in), dfc, ort. Default: %(default)r")
    g.addoption("--hqa-calib-sizes", metavar="SIZES", type=parse_sizes, default=None,
                help="override every model's calibration sizes, e.g. 16,64. Default: the manifest's")
    g.addoption("--hqa-golden-dir", metavar="DIR", default=None,
                help=f"golden store root. Default: {config.GOLDEN_DIR}")
    g.addoption("--hqa-update-golden", action="store_true", default=False,
                help="rewrite goldens from this run; tests that rewrote a golden fail (review, then commit)")
    g.addoption("--hqa-regen-all", action="store_true", default=False,
                help="rewrite all goldens from this run and let the tests pass")
    g.addoption("--hqa-history", metavar="PATH|URL", default=None,
                help="history: an SQLite file, a postgresql://user:password@host/db URL (a team server), or 'off'. "
                     f"Default: HAILO_QA_HISTORY or {config.HISTORY_DB}")
    g.addoption("--hqa-fail-on-regression", action="store_true", default=False,
                help="fail a test when a metric regressed against its accepted baseline")
    g.addoption("--hqa-device", metavar="ID", default=config.DEVICE_ID,
                help="HailoRT device id to use (e.g. 0000:01:00.0). Default: the first one scanned")
    g.addoption("--hqa-latency-iterations", metavar="N", type=parse_positive_int, default=200,
                help="timed iterations per latency measurement. Default: %(default)r")
    g.addoption("--hqa-latency-warmup", metavar="N", type=parse_positive_int, default=20,
                help="warm-up iterations before timing. Default: %(default)r")
    g.addoption("--hqa-work-dir", metavar="DIR", default=None,
                help=f"cache for split stages and emulator artefacts. Default: {config.STATE_DIR / 'work'}")


@dataclass
class QASession:
    """All ``--hqa-*`` options, read once."""

    manifest_path: Path
    models: tuple[str, ...] | None
    emulator: str
    calib_sizes: tuple[int, ...] | None
    golden_dir: Path
    update_golden: bool
    regen_all: bool
    history: str | None
    fail_on_regression: bool
    device: str | None
    latency_iterations: int
    latency_warmup: int
    work_dir: Path
    _manifest: object = field(default=None, repr=False)

    @classmethod
    def from_config(cls, cfg: pytest.Config) -> "QASession":
        opt = cfg.getoption
        if opt("--hqa-update-golden") and opt("--hqa-regen-all"):
            raise pytest.UsageError("--hqa-update-golden and --hqa-regen-all are exclusive.\n"
                                    "Note: update rewrites goldens and fails the tests that changed them; "
                                    "regen-all rewrites them and passes.\nHint: pick one.")
        hist = opt("--hqa-history")
        return cls(
            manifest_path=Path(opt("--hqa-manifest") or config.MANIFEST),
            models=opt("--hqa-models"), emulator=opt("--hqa-emulator"), calib_sizes=opt("--hqa-calib-sizes"),
            golden_dir=Path(opt("--hqa-golden-dir") or config.GOLDEN_DIR),
            update_golden=opt("--hqa-update-golden"), regen_all=opt("--hqa-regen-all"),
            history=None if hist == "off" else str(hist or config.HISTORY),
            fail_on_regression=opt("--hqa-fail-on-regression"), device=opt("--hqa-device"),
            latency_iterations=opt("--hqa-latency-iterations"), latency_warmup=opt("--hqa-latency-warmup"),
            work_dir=Path(opt("--hqa-work-dir") or config.STATE_DIR / "work"))

    @property
    def manifest(self):
        """The loaded manifest (loaded once; a broken manifest is a usage error with the manifest's message)."""
        if self._manifest is None:
            from hailo_qa.errors import ManifestError
            from hailo_qa.manifest import load_manifest

            try:
                m = load_manifest(self.manifest_path)
            except ManifestError as err:
                raise pytest.UsageError(str(err)) from None
            if self.models:
                unknown = [n for n in self.models if n not in m.names()]
                if unknown:
                    raise pytest.UsageError(f"--hqa-models names unknown models {unknown}.\n"
                                            f"Note: the manifest registers {m.names()}.")
            self._manifest = m
        return self._manifest

    def emulator_backend(self) -> str:
        """The emulator backend in force: ``dfc`` or ``ort`` (``auto`` resolved)."""
        if self.emulator != "auto":
            return self.emulator
        from hailo_qa import toolchain

        return "dfc" if toolchain.dfc().found else "ort"


SESSION_KEY = pytest.StashKey[QASession]()


def get_session(cfg: pytest.Config) -> QASession:
    return cfg.stash[SESSION_KEY]


def pytest_configure(config: pytest.Config) -> None:
    for name, text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {text}" if text else name)
    config.stash[SESSION_KEY] = QASession.from_config(config)
    if config.stash[SESSION_KEY].emulator == "dfc":  # one clear refusal, not one traceback per test
        from hailo_qa.errors import QAError
        from hailo_qa.toolchain import require_emulator

        try:
            require_emulator("dfc", option="--hqa-emulator")
        except QAError as err:
            raise pytest.UsageError(str(err)) from None
    for mod in PLUGIN_MODULES:
        if not config.pluginmanager.has_plugin(mod):
            config.pluginmanager.import_plugin(mod)


def pytest_collection(session: pytest.Session) -> None:
    """Load the manifest before collection, so a broken one is a usage error (exit 4) and not a collection error."""
    get_session(session.config).manifest  # noqa: B018


def pytest_report_header(config: pytest.Config) -> list[str]:
    from hailo_qa import toolchain

    s = get_session(config)
    dfc, hrt = toolchain.dfc(), toolchain.hailort()
    device = "not probed (no HailoRT)"
    if hrt.found:
        from hailo_qa.hw.device import describe_devices  # lazy: only when HailoRT is importable

        device = describe_devices(s.device)
    emu = s.emulator_backend()
    emu_text = ("dfc (Hailo Dataflow Compiler emulator)" if emu == "dfc" else
                f"ort (hailo-qa built-in ONNX Runtime approximation of Hailo numerics, onnxruntime "
                f"{toolchain.onnxruntime_version()})")
    from hailo_qa import config as hqa_config

    notice = hqa_config.state_dir_notice()
    return [*([f"hailo_qa: {notice}"] if notice else []), f"hailo_qa: manifest={s.manifest_path}",
            f"hailo_qa: {dfc.describe()} {hrt.describe()} hailortcli={'yes' if toolchain.hailortcli() else 'no'} "
            f"device={device}",
            f"hailo_qa: emulator={emu_text} goldens={s.golden_dir} history={s.history or 'off'}"]


def _selected_models(metafunc: pytest.Metafunc):
    s = get_session(metafunc.config)
    sel = metafunc.definition.get_closest_marker("hqa_select")
    kw = sel.kwargs if sel else {}
    task = kw.get("task")
    tasks = (task,) if isinstance(task, str) else tuple(task or ())
    needs = tuple(kw.get("needs", ()))
    names = kw.get("names")
    sections = tuple(kw.get("thresholds", ()))
    out = []
    for m in s.manifest:
        if s.models and m.name not in s.models:
            continue
        if tasks and m.task not in tasks:
            continue
        if names and m.name not in names:
            continue
        if any(not getattr(m, n) for n in needs):
            continue
        if any(not any(k == sec or k.startswith(sec + ".") for k in m.thresholds) for sec in sections):
            continue
        out.append(m)
    return out, f"task={tasks or 'any'} needs={needs or 'nothing'}", kw


def model_variants(spec, calib_sizes: tuple[int, ...] | None = None) -> list:
    """``(float reference when there is an ONNX file) + spec.variants``; ``calib_sizes`` (``--hqa-calib-sizes``)
    replaces the sizes of the default configs × sizes sweep (declared variants keep theirs)."""
    import dataclasses

    from hailo_qa.manifest import VariantSpec

    vs = list(spec.variants)
    if calib_sizes and not spec.declared_variants:
        swept = dataclasses.replace(spec, calibration=dataclasses.replace(spec.calibration, sizes=tuple(calib_sizes)))
        vs = list(swept.variants)
    return ([VariantSpec("float", "float32", name="float")] if spec.file is not None else []) + vs


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "hqa_variant" in metafunc.fixturenames:
        s = get_session(metafunc.config)
        models, what, kw = _selected_models(metafunc)
        targets = tuple(kw.get("targets", ("float", "emulator", "hailo8")))
        params = []
        for m in models:
            for v in model_variants(m, s.calib_sizes):
                if v.target not in targets:
                    continue
                marks = [getattr(pytest.mark, v.target)] if v.target in ("emulator", "hailo8") else []
                why = m.unavailable if (v.target != "hailo8" or m.file is not None) and not m.available else \
                    v.unavailable
                if why:
                    marks.append(pytest.mark.skip(reason=f"{m.name}[{v.id}]: {why}"))
                params.append(pytest.param((m, v), id=f"{m.name}[{v.id}]", marks=marks))
        if not params:
            params = [pytest.param(None, id="no-variant", marks=pytest.mark.skip(
                reason=f"no manifest model variant matches {what} targets={targets}"))]
        metafunc.parametrize("hqa_variant", params, scope="module")
    if "hqa_model" not in metafunc.fixturenames:
        return
    models, what, _ = _selected_models(metafunc)
    params = []
    for m in models:
        marks = [pytest.mark.skip(reason=f"{m.name}: {m.unavailable}")] if not m.available else []
        params.append(pytest.param(m, id=m.name, marks=marks))
    if not params:
        params = [pytest.param(None, id="no-model", marks=pytest.mark.skip(
            reason=f"no manifest model matches {what}"))]
    metafunc.parametrize("hqa_model", params, scope="module")


@pytest.fixture(scope="session")
def hqa(request: pytest.FixtureRequest) -> QASession:
    """The hailo-qa session: parsed ``--hqa-*`` options and the manifest.

    Example::

        def test_x(hqa):
            for model in hqa.manifest: ...
    """
    return get_session(request.config)


@pytest.fixture(scope="session")
def hqa_manifest(hqa: QASession):
    """The loaded model manifest."""
    return hqa.manifest


# ------------------------------------------------------------------------------------ the suite's errors as failures
_SETUP_ERROR = pytest.StashKey[BaseException]()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_setup(item: pytest.Item):
    """A :class:`~hailo_qa.errors.QAError` while setting up a test's fixtures (a bad sample, an unwritable work
    folder, a corrupt golden ...) fails the test — FAILED with the error's what / Note / Hint — instead of erroring
    it with a traceback. Other exceptions (bugs) still error."""
    from hailo_qa.errors import QAError

    try:
        return (yield)
    except QAError as err:
        item.stash[_SETUP_ERROR] = err
        return None


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function):
    err = pyfuncitem.stash.get(_SETUP_ERROR, None)
    if err is not None:
        pytest.fail(f"{type(err).__name__}: {err}", pytrace=False)
    return None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """A QAError failing a test is reported as its message (what / Note / Hint), not a traceback, unless a traceback
    style was asked for (``--tb=long``, ``--full-trace``: the pytest equivalent of ``hailo-qa --debug``)."""
    report = yield
    from hailo_qa.errors import QAError

    if (report.failed and call.excinfo is not None and call.excinfo.errisinstance(QAError)
            and item.config.getoption("tbstyle", "auto") == "auto" and not item.config.getoption("fulltrace", False)):
        report.longrepr = f"{call.excinfo.typename}: {call.excinfo.value}"
    return report
