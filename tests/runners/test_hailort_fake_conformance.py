"""The HailoRT contract fake (tests/fakes/hailo_platform) against the real HailoRT 4.23 binding: it cannot drift.

Where the real binding is installed (``.ci/run`` installs it from ``../shared/vendor/``), :func:`differences`
compares, for everything the fake defines: the names ``hailo_platform`` exports, the module each exception lives in
and its base classes, enum members and values, signatures and defaults of every method and property, HailoRT's
status codes and the exception each one becomes, the default ``VDevice`` params, and the no-device behaviour. It
must find nothing; a deliberately drifted fake must be caught (``test_a_drifted_fake_is_caught``).

The fake's behaviour where no device is needed to check it against HailoRT's source (scheduler/activate,
byte-size checks at ``run``, status codes) is tested below on the fake alone, so it runs everywhere.
"""
from __future__ import annotations

import enum
import importlib
import inspect
import sys

import numpy as np
import pytest

from tests.fakes import install_fake_hailort, real_hailort

MODULES = ("hailo_platform", "hailo_platform.pyhailort.pyhailort", "hailo_platform.pyhailort._pyhailort")
CLASSES = ("HEF", "Device", "VDevice", "Control", "BoardInformation", "InferModel", "InferModel.InferStream",
           "ConfiguredInferModel", "ConfiguredInferModel.Bindings", "ConfiguredInferModel.Bindings.InferStream")
PARAMS = ("scheduling_algorithm", "group_id", "device_count", "device_ids", "multi_process_service")


def _modules() -> dict[str, object]:
    return {m: importlib.import_module(m) for m in MODULES}


def _members(e) -> dict[str, int]:
    return {k: int(v) for k, v in e.__members__.items()}


def _is_enum(obj) -> bool:
    return isinstance(obj, type) and (issubclass(obj, enum.Enum) or hasattr(obj, "__members__"))


def _lookup(mod, dotted: str):
    obj = mod
    for part in dotted.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


def _kind(cls, name) -> str:
    for klass in cls.__mro__:
        if name in vars(klass):
            raw = vars(klass)[name]
            return type(raw).__name__ if isinstance(raw, (property, staticmethod, classmethod)) else (
                "class" if isinstance(raw, type) else "function")
    return "missing"


def _signature(obj) -> str:
    try:
        return str(inspect.signature(obj))
    except (TypeError, ValueError):
        return "<no signature>"


def _public_exports(mod) -> dict[str, object]:
    return {n: v for n, v in vars(mod).items()
            if not n.startswith("_") and not inspect.ismodule(v) and n not in ("sys",)}


def _outcome(fn) -> str:
    try:
        value = fn()
    except BaseException as err:  # the class, where it lives, and the message are the contract
        return f"raised {type(err).__module__}.{type(err).__name__}{err.args!r}"
    if isinstance(value, BaseException):
        return f"made {type(value).__module__}.{type(value).__name__}{value.args!r}"
    return f"returned {value!r}"


def differences(fake: dict[str, object], real: dict[str, object], *, fake_state=None) -> list[str]:
    """Every way the fake differs from the real binding, for what the fake defines (empty = conforms)."""
    out: list[str] = []
    top_f, top_r = fake["hailo_platform"], real["hailo_platform"]
    pyh_f, pyh_r = fake["hailo_platform.pyhailort.pyhailort"], real["hailo_platform.pyhailort.pyhailort"]

    # 1. what `hailo_platform` exports, and where each exception lives
    for name, obj in _public_exports(top_f).items():
        if name in ("__version__",):
            continue
        if not hasattr(top_r, name):
            out.append(f"hailo_platform.{name}: exported by the fake, not by HailoRT")
    for name, obj in _public_exports(top_r).items():
        if isinstance(obj, type) and issubclass(obj, BaseException) and hasattr(pyh_f, name) \
                and not hasattr(top_f, name):
            out.append(f"hailo_platform.{name}: exported by HailoRT, not by the fake")
    for modname in MODULES[1:]:
        mf, mr = fake[modname], real[modname]
        for name in _public_exports(mf):
            if not hasattr(mr, name):
                out.append(f"{modname}.{name}: defined by the fake, absent from HailoRT's module")
        for name, obj in vars(mf).items():
            if name.startswith("_") or not isinstance(obj, type) or not issubclass(obj, BaseException):
                continue
            robj = getattr(mr, name, None)
            if robj is None:
                continue  # reported above
            if obj.__module__ != robj.__module__:
                out.append(f"{name}: lives in {obj.__module__} in the fake, {robj.__module__} in HailoRT")
            bases_f = [c.__name__ for c in obj.__mro__]
            bases_r = [c.__name__ for c in robj.__mro__]
            if bases_f != bases_r:
                out.append(f"{name}: bases {bases_f} in the fake, {bases_r} in HailoRT")

    # 2. enums: members and values
    for modname in MODULES:
        for name, obj in vars(fake[modname]).items():
            if name.startswith("_") or not _is_enum(obj):
                continue
            robj = getattr(real[modname], name, None)
            if robj is not None and _members(obj) != _members(robj):
                out.append(f"{name}: members {_members(obj)} in the fake, {_members(robj)} in HailoRT")

    # 3. signatures, defaults and kinds (method / property / static / class method)
    for dotted in CLASSES:
        cf, cr = _lookup(pyh_f, dotted), _lookup(pyh_r, dotted)
        if cf is None:
            continue
        if cr is None:
            out.append(f"{dotted}: class missing from HailoRT")
            continue
        for name in vars(cf):
            if name.startswith("_") and name not in ("__init__", "__enter__", "__exit__"):
                continue
            kf, kr = _kind(cf, name), _kind(cr, name)
            if kf != kr:
                out.append(f"{dotted}.{name}: {kf} in the fake, {kr} in HailoRT")
            elif kf in ("function", "staticmethod", "classmethod"):
                sf, sr = _signature(getattr(cf, name)), _signature(getattr(cr, name))
                if sf != sr:
                    out.append(f"{dotted}.{name}{sf} in the fake, {dotted}.{name}{sr} in HailoRT")

    # 4. status codes and the exception ExceptionWrapper makes of each
    raw_f, raw_r = fake["hailo_platform.pyhailort._pyhailort"], real["hailo_platform.pyhailort._pyhailort"]
    code = 0
    while True:  # up to and including the first code HailoRT does not know
        want, got = _outcome(lambda: raw_r.get_status_message(code)), _outcome(lambda: raw_f.get_status_message(code))
        if got != want:
            out.append(f"status {code}: {got} in the fake, {want} in HailoRT")
        ef = _outcome(lambda: pyh_f.ExceptionWrapper.create_exception_from_status(code))
        er = _outcome(lambda: pyh_r.ExceptionWrapper.create_exception_from_status(code))
        if ef != er:
            out.append(f"status {code} becomes {ef} in the fake, {er} in HailoRT")
        if want == "returned ''":
            break
        code += 1
    if code < 90:
        out.append(f"HailoRT knows only {code} status codes: the comparison did not run")

    # 5. default VDevice params (4.x Python: no scheduler, group 'UNIQUE')
    pf, pr = top_f.VDevice.create_params(), top_r.VDevice.create_params()
    for attr in PARAMS:
        vf, vr = getattr(pf, attr, "<missing>"), getattr(pr, attr, "<missing>")
        norm = (lambda v: (getattr(v, "name", None), int(v)) if _is_enum(type(v)) else v)
        if norm(vf) != norm(vr):
            out.append(f"VDevice.create_params().{attr}: {vf!r} in the fake, {vr!r} in HailoRT")

    # 6. the no-device behaviour (the real machine has no device; the fake is given none)
    if fake_state is not None:
        fake_state.devices = []
        for what, call in (("Device.scan()", lambda hp: hp.Device.scan()),
                           ("VDevice()", lambda hp: hp.VDevice()),
                           ("Device('0000:01:00.0')", lambda hp: hp.Device("0000:01:00.0"))):
            got, want = _outcome(lambda: call(top_f)), _outcome(lambda: call(top_r))
            if got != want:
                out.append(f"{what} without a device: {got} in the fake, {want} in HailoRT")
    return out


@pytest.fixture
def both(monkeypatch):
    """(fake modules, real modules, fake state): the real binding captured first, then the fake installed."""
    real_hailort()
    real = _modules()
    _, state = install_fake_hailort(monkeypatch)
    fake = _modules()
    assert fake["hailo_platform"] is not real["hailo_platform"]
    return fake, real, state


def test_fake_conforms_to_the_real_binding(both):
    fake, real, state = both
    assert differences(fake, real, fake_state=state) == []


def _drift_format_order(fake, monkeypatch):
    drifted = enum.IntEnum("FormatOrder", [("NHWC", 1), ("NC", 2)])  # the fake's old values
    monkeypatch.setattr(fake["hailo_platform.pyhailort._pyhailort"], "FormatOrder", drifted)


def _drift_export_timeout(fake, monkeypatch):
    monkeypatch.setattr(fake["hailo_platform"], "HailoRTTimeout",
                        fake["hailo_platform.pyhailort.pyhailort"].HailoRTTimeout, raising=False)


def _drift_get_buffer(fake, monkeypatch):
    stream = fake["hailo_platform.pyhailort.pyhailort"].ConfiguredInferModel.Bindings.InferStream
    monkeypatch.setattr(stream, "get_buffer", lambda self, tf_format=None: self._buffer)


def _drift_create_infer_model(fake, monkeypatch):
    vdev = fake["hailo_platform.pyhailort.pyhailort"].VDevice
    monkeypatch.setattr(vdev, "create_infer_model", lambda self, hef_source, network_name="": None)


def _drift_default_scheduler(fake, monkeypatch):
    params = fake["hailo_platform.pyhailort._pyhailort"].VDeviceParams
    original = params.__init__

    def init(self):
        original(self)
        self.scheduling_algorithm = fake["hailo_platform.pyhailort.pyhailort"].HailoSchedulingAlgorithm.ROUND_ROBIN

    monkeypatch.setattr(params, "__init__", init)


def _drift_status_exception_base(fake, monkeypatch):
    pyh = fake["hailo_platform.pyhailort.pyhailort"]
    monkeypatch.setattr(fake["hailo_platform.pyhailort._pyhailort"], "HailoRTStatusException",
                        type("HailoRTStatusException", (pyh.HailoRTException,), {"__module__": pyh.__name__}))


def _drift_no_device_error(fake, monkeypatch):
    from hailo_platform import _fake

    monkeypatch.setattr(_fake.STATE, "devices", [], raising=False)
    monkeypatch.setattr(fake["hailo_platform.pyhailort.pyhailort"].Device, "scan",
                        classmethod(lambda cls: (_ for _ in ()).throw(RuntimeError("no driver"))))


@pytest.mark.parametrize("drift, caught", [
    (_drift_format_order, "FormatOrder: members"),
    (_drift_export_timeout, "hailo_platform.HailoRTTimeout: exported by the fake, not by HailoRT"),
    (_drift_get_buffer, "ConfiguredInferModel.Bindings.InferStream.get_buffer(self, tf_format=None) in the fake"),
    (_drift_create_infer_model, "VDevice.create_infer_model(self, hef_source, network_name='') in the fake"),
    (_drift_default_scheduler, "VDevice.create_params().scheduling_algorithm"),
    (_drift_status_exception_base, "HailoRTStatusException: lives in"),
    (_drift_no_device_error, "Device.scan() without a device"),
])
def test_a_drifted_fake_is_caught(both, monkeypatch, drift, caught):
    fake, real, state = both
    drift(fake, monkeypatch)
    diffs = differences(fake, real, fake_state=state)
    assert any(caught in d for d in diffs), diffs


# --- the fake's behaviour, as HailoRT 4.23's source has it (runs with or without the real binding) -----------------
@pytest.fixture
def fake_net(monkeypatch, tmp_path):
    hp, state = install_fake_hailort(monkeypatch)
    from hailo_platform import _fake

    hef = str(tmp_path / "n.hef")
    state.hefs[hef] = _fake.FakeNet([_fake.FakeStream("n/in", (2, 2, 3))], [_fake.FakeStream("n/out", (4,))], "n")
    return hp, state, hef


def _configured(hp, hef, params=None, **kw):
    vdev = hp.VDevice(params, **kw)
    im = vdev.create_infer_model(hef)
    return vdev, im, im.configure()


def test_no_scheduler_and_no_activate_fails_with_stream_not_activated(fake_net):
    hp, _, hef = fake_net
    _, im, cim = _configured(hp, hef)  # create_params() default: scheduler NONE
    b = cim.create_bindings(output_buffers={"n/out": np.empty(4, np.uint8)})
    b.input().set_buffer(np.zeros((2, 2, 3), np.uint8))
    with pytest.raises(hp.HailoRTException, match=r"^libhailort failed with error: 72 \(HAILO_STREAM_NOT_ACTIVATED\)$"):
        cim.run([b], 1000)
    cim.activate()
    cim.run([b], 1000)
    np.testing.assert_array_equal(b.output().get_buffer(), np.floor(13.0 * np.arange(4)) % 256)


def test_device_ids_keyword_drops_params_and_the_scheduler(fake_net):
    hp, state, hef = fake_net
    params = hp.VDevice.create_params()
    params.scheduling_algorithm = hp.HailoSchedulingAlgorithm.ROUND_ROBIN
    hp.VDevice(params, device_ids=["0000:01:00.0"])
    assert state.last_scheduler == hp.HailoSchedulingAlgorithm.NONE
    params.device_ids = ["0000:01:00.0"]
    _, _, cim = _configured(hp, hef, params)
    assert state.last_scheduler == hp.HailoSchedulingAlgorithm.ROUND_ROBIN
    from hailo_platform.pyhailort.pyhailort import HailoRTInvalidOperationException

    with pytest.raises(HailoRTInvalidOperationException):  # activate() is invalid with a scheduler
        cim.activate()


def test_byte_size_is_checked_at_run_not_at_set_buffer(fake_net):
    hp, _, hef = fake_net
    params = hp.VDevice.create_params()
    params.scheduling_algorithm = hp.HailoSchedulingAlgorithm.ROUND_ROBIN
    _, im, cim = _configured(hp, hef, params)
    im.output().set_format_type(hp.FormatType.FLOAT32)
    b = cim.create_bindings(output_buffers={"n/out": np.empty(4, np.uint8)})  # float32 expected: 16 bytes
    b.input().set_buffer(np.zeros((2, 2, 3), np.uint8))
    from hailo_platform.pyhailort.pyhailort import HailoRTInvalidArgumentException

    with pytest.raises(HailoRTInvalidArgumentException, match="Invalid argument"):
        cim.run([b], 1000)
    with pytest.raises(hp.HailoRTException, match="Buffer must be C_CONTIGUOUS"):
        b.input().set_buffer(np.zeros((3, 2, 2), np.uint8).transpose(1, 2, 0))


def test_raw_status_exception_is_not_a_hailort_exception(fake_net):
    hp, state, _ = fake_net
    from hailo_platform.pyhailort._pyhailort import HailoRTStatusException

    assert not issubclass(HailoRTStatusException, hp.HailoRTException)
    state.devices = []
    assert hp.Device.scan() == []
    with pytest.raises(HailoRTStatusException) as ei:
        hp.Device("0000:01:00.0")
    assert ei.value.args == ("2",)
    with pytest.raises(hp.HailoRTException, match=r"error: 74 \(HAILO_OUT_OF_PHYSICAL_DEVICES\)"):
        hp.VDevice()


def test_modules_restored_after_the_fake(fake_net):
    assert sys.modules["hailo_platform"].__version__.endswith("+fake")
