"""A compiled HEF on a Hailo device, through HailoRT 4.18–4.23's InferModel API (``hailo_platform``, imported lazily).

The call sequence is the one in Hailo's own HailoRT 4.23 tutorial (``HRT_0_Async_Inference_Tutorial``) and
Application-Code-Examples::

    params = VDevice.create_params()                              # 4.x Python default: NO scheduler
    params.scheduling_algorithm = HailoSchedulingAlgorithm.ROUND_ROBIN
    params.device_ids = [device_id]                               # never VDevice(params, device_ids=...): drops params
    vdevice = VDevice(params)
    infer_model = vdevice.create_infer_model(hef, network_group)  # "name" (4.19+) / "network_name" (4.18): positional
    infer_model.set_batch_size(1); input/output .set_format_type(FormatType.FLOAT32)
    configured = infer_model.configure()                          # used as a context manager
    (configured.activate() when unscheduled)
    bindings = configured.create_bindings(output_buffers=...); bindings.input(n).set_buffer(x)
    configured.run([bindings], timeout_ms)                        # raises HailoRTTimeout on timeout

Host-side quantization: inputs and outputs are requested as ``FormatType.FLOAT32`` so HailoRT applies the HEF's
(qp_scale, qp_zp) on the host; tensors are NHWC with batch 1, as the device sees them (declared in
``TensorMeta.layout`` so :class:`~hailo_qa.runners.pipeline.HostPipeline` converts at the boundary). NMS outputs
(``HAILO_NMS_BY_CLASS``) come back in HailoRT's TF layout ``(1, classes, 5, max_bboxes)``; the per-class lists
HailoRT returns by default are kept in ``last_detections``.

Errors: HailoRT raises ``HailoRTException`` subclasses (``HailoRTTimeout`` lives in
``hailo_platform.pyhailort.pyhailort``, not in ``hailo_platform``) and, from unwrapped calls (``Device(id)``,
``Device.scan()``, ``HEF.get_*_vstream_infos()``), the raw ``_pyhailort.HailoRTStatusException``, which is *not* a
``HailoRTException``. Both are caught here and become :class:`~hailo_qa.errors.DeviceError` with the status code.

Every ``run`` also sits behind a watchdog: if HailoRT does not return within ``timeout_ms`` plus a grace period (a
vanished device can leave the driver call blocked), the runner gives up with a clear error instead of hanging.

Lifecycle: ``__enter__`` opens the ``VDevice``, identifies the device (releasing the ``Device`` objects
``get_physical_devices()`` opens), creates and configures the infer model; ``__exit__`` releases everything on
every path, also after a timeout or a vanished device.
"""
from __future__ import annotations

import hashlib
import importlib
import queue
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from hailo_qa.errors import DeviceError, InputFileError, InternalError
from hailo_qa.runners.base import BackendInfo, BaseRunner, TensorMeta

MIN_HAILORT = (4, 18)
"""The InferModel API appeared in HailoRT 4.18."""
MAX_HAILORT = (4, 23)
"""The last HailoRT for Hailo-8 (5.x supports only Hailo-10/15)."""

NMS_ORDERS = ("HAILO_NMS_BY_CLASS", "HAILO_NMS", "HAILO_NMS_BY_SCORE", "HAILO_NMS_WITH_BYTE_MASK")
STATUS_OUT_OF_PHYSICAL_DEVICES = 74


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# --- the binding: import, versions, exceptions, device identity (hw.device builds discovery on these) -----------
def major_minor(version: str | None) -> tuple[int, int] | None:
    m = re.match(r"\s*v?(\d+)\.(\d+)", version or "")
    return (int(m.group(1)), int(m.group(2))) if m else None


def hailort_support_reason(version: str | None) -> str | None:
    """Why this HailoRT cannot drive a Hailo-8 through hailo-qa (None when it can, or the version is unknown)."""
    rt = major_minor(version)
    if rt is None:
        return None
    if rt[0] >= 5:
        return (f"hailo8: HailoRT {version} is a 5.x release, which supports only Hailo-10/15, not Hailo-8 "
                f"(install HailoRT 4.x, the last being 4.23.0, from the hailo8 branch / Developer Zone)")
    if rt < MIN_HAILORT:
        return (f"hailo8: HailoRT {version} predates the InferModel API (added in HailoRT 4.18) that hailo-qa drives; "
                f"supported: HailoRT 4.18 to 4.23 (upgrade to 4.23.0, paired with DFC 3.33)")
    return None


@dataclass(frozen=True)
class HailortErrors:
    """Where HailoRT's exceptions really live in one installed binding.

    Attributes:
        wrapped: ``hailo_platform.pyhailort.pyhailort.HailoRTException`` (base of every wrapped error).
        raw: ``hailo_platform.pyhailort._pyhailort.HailoRTStatusException`` (unwrapped calls; not a subclass).
        timeout: ``hailo_platform.pyhailort.pyhailort.HailoRTTimeout``.
        status_message: ``_pyhailort.get_status_message`` (status code → ``HAILO_...`` name), when present.
    """

    wrapped: type
    raw: type
    timeout: type
    status_message: Callable[[int], str] | None = None

    @property
    def any(self) -> tuple[type, ...]:
        return (self.wrapped, self.raw)

    def status(self, err: BaseException) -> tuple[int | None, str]:
        """(status code, ``HAILO_...`` name) of a HailoRT error: from the raw exception's code, the wrapped one's
        ``__cause__`` or its ``libhailort failed with error: N (NAME)`` text."""
        for e in (err, err.__cause__):
            if isinstance(e, self.raw) and e.args:
                try:
                    code = int(e.args[0])
                except (TypeError, ValueError):
                    continue
                return code, self._name(code)
        m = re.search(r"error:\s*(\d+)\s*\((\w+)\)", str(err))
        if m:
            return int(m.group(1)), m.group(2)
        return None, ""

    def _name(self, code: int) -> str:
        if self.status_message is None:
            return ""
        try:
            return str(self.status_message(code))
        except Exception:
            return ""

    def describe(self, err: BaseException) -> str:
        """``Class: message (status N NAME)``; the raw exception's message is only its code, so it is not repeated."""
        code, name = self.status(err)
        text = "" if isinstance(err, self.raw) else f": {err}"
        status = f" (status {code}{' ' + name if name else ''})" if code is not None and (
            f"{code} (" not in text) else ""
        return f"{err.__class__.__name__}{text}{status}"


def hailort_errors(hp) -> HailortErrors:
    """The exception classes of the binding ``hp`` (the real one or the contract fake), from their real modules."""
    pyh = importlib.import_module(f"{hp.__name__}.pyhailort.pyhailort")
    raw_mod = importlib.import_module(f"{hp.__name__}.pyhailort._pyhailort")
    return HailortErrors(wrapped=pyh.HailoRTException, raw=raw_mod.HailoRTStatusException,
                         timeout=pyh.HailoRTTimeout, status_message=getattr(raw_mod, "get_status_message", None))


@dataclass(frozen=True)
class DeviceIdentity:
    """Who the device is: stored in every hardware result (``BackendInfo.details["device"]``).

    Attributes:
        device_id: HailoRT device id (PCIe BDF such as ``0000:01:00.0``).
        architecture: normalized architecture: ``hailo8``, ``hailo8l``, ``hailo15h`` ...
        firmware_version: firmware version as HailoRT prints it (``4.23.0 (release,app,extended context switch
            buffer)``).
        serial_number: board serial number (``""`` when not configured).
        board_name: board name (on Hailo-8L modules this still reads "Hailo-8": trust ``architecture``).
        product_name: product name (``""`` when not configured).
        hailort_version: version of the HailoRT Python binding that identified the device.
    """

    device_id: str
    architecture: str
    firmware_version: str
    serial_number: str = ""
    board_name: str = ""
    product_name: str = ""
    hailort_version: str = ""

    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    def describe(self) -> str:
        return (f"{self.architecture} id={self.device_id} fw={self.firmware_version} "
                f"serial={self.serial_number or '?'} board={self.board_name or '?'}")


def normalize_arch(value: Any) -> str:
    """HailoRT's architecture (enum or text such as ``HAILO8L``, ``HAILO8_B0``) → ``hailo8l`` / ``hailo8`` / ...

    ``HAILO8L`` is matched before ``HAILO8`` (a plain prefix test would call an 8L an 8).
    """
    text = getattr(value, "name", None) or str(value)
    t = text.upper().split(".")[-1].replace("-", "")
    if t.startswith("HAILO8L"):
        return "hailo8l"
    if t.startswith("HAILO8R"):
        return "hailo8r"
    if t.startswith("HAILO8"):
        return "hailo8"
    return t.lower()


def _clean(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).decode("ascii", "replace")
    return str(value).rstrip("\x00").strip()


def import_hailort():
    """``hailo_platform``, or :class:`DeviceError` saying how to get it.

    HailoRT's ``hailort.log`` is routed to ``.hailo_qa/hailort/`` unless ``HAILORT_LOGGER_PATH`` is set.
    """
    from hailo_qa import config

    config.route_hailort_log()
    try:
        import hailo_platform
    except ImportError as err:
        raise DeviceError("hailo_platform (HailoRT's Python binding) is not installed",
                          note="expected the hailort-4.x wheel on the machine with the Hailo-8 (e.g. the Pi)",
                          hint="install HailoRT 4.x from the Hailo Developer Zone, or deselect with -m 'not hailo8'",
                          step="device") from err
    return hailo_platform


def _version(hp) -> str:
    return str(getattr(hp, "__version__", "") or "unknown")


def no_device_error(what: str, *, note: str, step: str = "device", context: str | None = None) -> DeviceError:
    """The one wording for "there is no Hailo device" (it becomes the skip reason users read)."""
    return DeviceError(f"no Hailo device found: {what}", note=note,
                       hint="check `hailortcli scan`, the PCIe driver (`lsmod | grep hailo_pci`, `dmesg | grep hailo`) "
                            "and --hqa-device / HAILO_QA_DEVICE", step=step, context=context)


def identify(device_id: str, hp=None) -> DeviceIdentity:
    """Open ``device_id``'s control channel, read its identity, release it.

    Raises:
        DeviceError: the device cannot be opened ("no Hailo device found" when ``Device.scan()`` does not list it).
    """
    hp = hp or import_hailort()
    errs = hailort_errors(hp)
    try:
        dev = hp.Device(device_id)
    except errs.any as err:
        try:
            ids = list(hp.Device.scan())
        except errs.any:
            ids = None
        if ids is not None and device_id not in ids:
            raise no_device_error(f"Device({device_id!r}) raised {errs.describe(err)}",
                                  note=f"expected {device_id} among Device.scan() = {ids}") from err
        raise DeviceError(f"could not open Hailo device {device_id}: {errs.describe(err)}",
                          note="expected a scanned, free device",
                          hint="check `hailortcli scan` and that no other process holds the device",
                          step="device") from err
    try:
        return identity_from_device(dev, hp)
    finally:
        _release_quietly(dev, errs)


def _release_quietly(obj, errs: HailortErrors) -> str | None:
    try:
        obj.release()
    except errs.any as err:
        return errs.describe(err)
    return None


def identity_from_device(dev, hp) -> DeviceIdentity:
    """Identity of an open ``hailo_platform.Device``; the firmware version is ``str()`` of HailoRT's object."""
    bi = dev.control.identify()
    return DeviceIdentity(
        device_id=_clean(getattr(dev, "device_id", "")), architecture=normalize_arch(bi.device_architecture),
        firmware_version=_clean(bi.firmware_version), serial_number=_clean(getattr(bi, "serial_number", "")),
        board_name=_clean(getattr(bi, "board_name", "")), product_name=_clean(getattr(bi, "product_name", "")),
        hailort_version=_version(hp))


# --- a watchdog thread around calls into HailoRT that may block --------------------------------------------------
class _Watchdog:
    """Runs calls on one daemon thread and gives up waiting after a deadline (the thread is then abandoned)."""

    def __init__(self) -> None:
        self._jobs: queue.Queue = queue.Queue()
        self.stuck = False
        threading.Thread(target=self._loop, name="hailo-qa-hailort", daemon=True).start()

    def _loop(self) -> None:
        while True:
            fn, box = self._jobs.get()
            if fn is None:
                return
            try:
                box["result"] = fn()
            except BaseException as err:  # handed to the caller
                box["error"] = err
            box["done"].set()

    def call(self, fn: Callable[[], Any], timeout_s: float) -> Any:
        if self.stuck:
            raise TimeoutError("an earlier HailoRT call never returned")
        box: dict[str, Any] = {"done": threading.Event()}
        self._jobs.put((fn, box))
        if not box["done"].wait(timeout_s):
            self.stuck = True
            raise TimeoutError(f"HailoRT did not return within {timeout_s:.1f} s")
        if "error" in box:
            raise box["error"]
        return box["result"]

    def close(self) -> None:
        if not self.stuck:
            self._jobs.put((None, None))


@dataclass(frozen=True)
class _Stream:
    """One vstream as the runner uses it."""

    name: str           # HailoRT's vstream name
    meta: TensorMeta    # what the runner exposes (renamed, with batch)
    nms: tuple[int, int] | None = None  # (classes, max_bboxes_per_class) for NMS outputs


class HailortRunner(BaseRunner):
    """Runs a HEF on a Hailo-8 through HailoRT's InferModel API.

    Args:
        hef_path: the compiled HEF.
        device_id: HailoRT device id (``0000:01:00.0``), put in ``params.device_ids``. Defaults to HailoRT's
            choice (the first free device).
        timeout_ms: per-frame ``run`` timeout. Defaults to 10000.
        names: vstream name → name to expose (e.g. the Stage-1 ONNX tensor names). Defaults to the vstream names.
        name: runner name used in messages. Defaults to ``hailort``.
        network_group: the network group to run, by name (a HEF can hold several; the manifest's
            ``network_group``). Defaults to the HEF's only one; a HEF with several needs it.
        scheduler: use HailoRT's ROUND_ROBIN model scheduler (as Hailo's examples do). False: no scheduler, and the
            configured model is ``activate()``d instead. Defaults to True.
        grace_s: how long past ``timeout_ms`` to wait for HailoRT to return before declaring the device lost.
            Defaults to 5.

    Attributes:
        setup_times: seconds spent opening the VDevice (``open_s``) and creating+configuring the model
            (``configure_s``), filled by ``__enter__``.
        last_device_time: seconds spent inside ``ConfiguredInferModel.run`` in the last ``infer``.
        last_detections: NMS output name → HailoRT's per-class list of ``(n, 5)`` arrays from the last ``infer``.
        identity: the device's :class:`DeviceIdentity` once active.

    Example::

        with HailortRunner("model.hef") as r:
            out = r.infer({"net/input_layer1": x_nhwc})
    """

    def __init__(self, hef_path: str | Path, *, device_id: str | None = None, timeout_ms: int = 10000,
                 names: Mapping[str, str] | None = None, name: str | None = None,
                 network_group: str | None = None, scheduler: bool = True, grace_s: float = 5.0) -> None:
        super().__init__(name or "hailort")
        self.hef_path = Path(hef_path)
        if not self.hef_path.is_file():
            raise InputFileError(f"HEF '{self.hef_path}' does not exist", note="expected a compiled .hef file",
                                 hint="compile the model (hailo-qa compile) or fix the manifest's hef path",
                                 context=self.name)
        if timeout_ms <= 0:
            raise DeviceError(f"timeout_ms must be positive, got {timeout_ms}", note="expected milliseconds > 0",
                              step="infer", context=self.name)
        self._hp = import_hailort()
        why = hailort_support_reason(_version(self._hp))
        if why:
            raise DeviceError(why.removeprefix("hailo8: "), note="expected HailoRT 4.18 to 4.23",
                              hint="install the HailoRT 4.x release that matches your DFC (DFC 3.33 ↔ HailoRT 4.23)",
                              step="device", context=self.name)
        self._errs = hailort_errors(self._hp)
        self.device_id = device_id
        self.timeout_ms = int(timeout_ms)
        self.scheduler = bool(scheduler)
        self.grace_s = float(grace_s)
        self._rename = dict(names or {})
        self._vdevice = None
        self._infer_model = None
        self._configured = None
        self._activated = False
        self._watchdog: _Watchdog | None = None
        self._vanished = False
        self.identity = None
        self.setup_times: dict[str, float] = {}
        self.last_device_time: float | None = None
        self.last_detections: dict[str, list[np.ndarray]] = {}
        self.release_errors: list[str] = []
        self.network_group = self._pick_network_group(network_group)
        self.backend = BackendInfo("hailort", _version(self._hp), "hailo8", hailo=True,
                                   details={"hef": str(self.hef_path), "hef_sha256": _sha256(self.hef_path),
                                            "network_group": self.network_group,
                                            "scheduler": "ROUND_ROBIN" if self.scheduler else "NONE",
                                            "hailort_module": str(getattr(self._hp, "__file__", ""))})
        self._ins, self._outs = self._read_vstreams()
        self._quant: dict[str, list[tuple[float, float]]] = self._hef_quant

    # metadata (from the HEF; no device needed) -----------------------------------------------------------------
    def _hef_error(self, err: BaseException) -> InputFileError:
        return InputFileError(f"HailoRT could not read HEF '{self.hef_path}': {self._errs.describe(err)}",
                              note="expected a HEF compiled for this HailoRT's device family",
                              hint="check `hailortcli parse-hef` on it; recompile if it is corrupt",
                              context=self.name)

    def _pick_network_group(self, wanted: str | None) -> str:
        try:
            self._hef = self._hp.HEF(str(self.hef_path))
            groups = list(self._hef.get_network_group_names())
        except self._errs.any as err:
            raise self._hef_error(err) from err
        if wanted:
            if wanted not in groups:
                from hailo_qa.errors import did_you_mean

                raise InputFileError(f"HEF '{self.hef_path.name}' has no network group {wanted!r}",
                                     note=f"expected one of {groups}",
                                     hint=did_you_mean(wanted, groups) or "fix the manifest's network_group",
                                     context=self.name)
            return wanted
        if len(groups) != 1:
            raise InputFileError(f"HEF '{self.hef_path.name}' holds {len(groups)} network groups {groups}",
                                 note="expected one, or the one to run named by the manifest's network_group",
                                 hint=f"add network_group = \"{groups[0] if groups else '...'}\" to the model entry",
                                 context=self.name)
        return groups[0]

    def _read_vstreams(self) -> tuple[dict[str, _Stream], dict[str, _Stream]]:
        try:
            ins = self._hef.get_input_vstream_infos(self.network_group)
            outs = self._hef.get_output_vstream_infos(self.network_group)
        except self._errs.any as err:
            raise self._hef_error(err) from err
        quant: dict[str, list[tuple[float, float]]] = {}

        def stream(info) -> _Stream:
            exposed = self._rename.get(info.name, info.name)
            q = info.quant_info
            quant[exposed] = [(float(q.qp_scale), float(q.qp_zp))]
            order = getattr(getattr(info.format, "order", None), "name", "")
            if order in NMS_ORDERS:
                nms = info.nms_shape
                classes, boxes = int(nms.number_of_classes), int(nms.max_bboxes_per_class)
                return _Stream(info.name, TensorMeta(exposed, (1, classes, 5, boxes), np.dtype(np.float32), None),
                               (classes, boxes))
            shape = (1, *(int(d) for d in info.shape))
            return _Stream(info.name, TensorMeta(exposed, shape, np.dtype(np.float32),
                                                 "NHWC" if len(shape) == 4 else None))

        result = ({i.name: stream(i) for i in ins}, {o.name: stream(o) for o in outs})
        self._hef_quant = quant
        return result

    def input_metadata(self) -> dict[str, TensorMeta]:
        return {s.meta.name: s.meta for s in self._ins.values()}

    def output_metadata(self) -> dict[str, TensorMeta]:
        return {s.meta.name: s.meta for s in self._outs.values()}

    def quant_infos(self, name: str) -> list[tuple[float, float]]:
        """Every (qp_scale, qp_zp) of an input or output, by exposed name: one per feature when the HEF was
        compiled with per-feature output encodings (HailoRT's ``InferStream.quant_infos``, read once configured),
        else one."""
        return list(self._quant[name])

    def quant_info(self, name: str) -> tuple[Any, Any]:
        """(qp_scale, qp_zp) of an input or output, by exposed name: one quantization step is ``qp_scale``.

        Floats for a per-tensor encoding; arrays over the feature (last) axis when it is per feature.
        """
        q = self._quant[name]
        if len(q) == 1 or len(set(q)) == 1:
            return q[0]
        return (np.array([s for s, _ in q], np.float64), np.array([z for _, z in q], np.float64))

    # lifecycle -------------------------------------------------------------------------------------------------
    def _device_error(self, what: str, err: BaseException, *, step: str = "infer") -> DeviceError:
        code, _ = self._errs.status(err)
        where = f" {self.device_id}" if self.device_id else ""
        try:
            scanned = list(self._hp.Device.scan())
        except self._errs.any:
            scanned = None
        missing = scanned is not None and (not scanned or (self.device_id and self.device_id not in scanned))
        if code == STATUS_OUT_OF_PHYSICAL_DEVICES or missing:
            ids = f", params.device_ids=[{self.device_id!r}]" if self.device_id else ""
            return no_device_error(f"VDevice(params{ids}) raised {self._errs.describe(err)}",
                                   note=f"expected a free Hailo-8 visible to `hailortcli scan` (Device.scan() = "
                                        f"{scanned})", step=step, context=self.name)
        return DeviceError(f"{what}{where}: {self._errs.describe(err)}",
                           note="expected a free Hailo-8 visible to `hailortcli scan`",
                           hint="check the PCIe driver (`lsmod | grep hailo_pci`), that no other process holds the "
                                f"device, and --hqa-device; HailoRT's log: {_log_dir()}", step=step,
                           context=self.name)

    def _activate(self) -> None:
        hp, errs = self._hp, self._errs
        self._vanished = False
        t0 = time.perf_counter()
        try:
            params = hp.VDevice.create_params()
            params.scheduling_algorithm = (hp.HailoSchedulingAlgorithm.ROUND_ROBIN if self.scheduler
                                           else hp.HailoSchedulingAlgorithm.NONE)
            if self.device_id:
                params.device_ids = [self.device_id]
            self._vdevice = hp.VDevice(params)
        except errs.any as err:
            raise self._device_error("could not open a Hailo device", err) from err
        t1 = time.perf_counter()
        try:
            self.identity = self._identify()
            im = self._vdevice.create_infer_model(str(self.hef_path), self.network_group)
            im.set_batch_size(1)
            for s in im.inputs:
                s.set_format_type(hp.FormatType.FLOAT32)
            for s in im.outputs:
                s.set_format_type(hp.FormatType.FLOAT32)
            self._infer_model = im
            self._configured = im.configure().__enter__()
            if not self.scheduler:
                self._configured.activate()
                self._activated = True
            self._read_model_quant(im)
        except errs.any as err:
            self._release()
            raise DeviceError(f"HailoRT could not configure '{self.hef_path.name}' ({self.network_group}): "
                              f"{errs.describe(err)}",
                              note="expected a HEF compiled for this device's architecture by a DFC that matches "
                                   "this HailoRT",
                              hint="compare `hailortcli parse-hef` with `hailortcli fw-control identify`",
                              step="infer", context=self.name) from err
        except BaseException:
            self._release()
            raise
        self._watchdog = _Watchdog()
        self.setup_times = {"open_s": t1 - t0, "configure_s": time.perf_counter() - t1}
        details = dict(self.backend.details)
        details["device"] = self.identity.to_dict() if self.identity else {}
        self.backend = replace(self.backend, details=details)

    def _read_model_quant(self, im) -> None:
        for vs, s in (*self._ins.items(), *self._outs.items()):
            infos = list(im.input(vs).quant_infos if vs in self._ins else im.output(vs).quant_infos)
            if infos:
                self._quant[s.meta.name] = [(float(q.qp_scale), float(q.qp_zp)) for q in infos]

    def _identify(self) -> DeviceIdentity | None:
        """The identity of the VDevice's (first) physical device; releases every ``Device`` HailoRT opened for it."""
        devs = list(self._vdevice.get_physical_devices())
        try:
            return identity_from_device(devs[0], self._hp) if devs else None
        finally:
            for d in devs:
                err = _release_quietly(d, self._errs)
                if err:
                    self.release_errors.append(f"physical Device: {err}")

    def _release(self) -> None:
        cim, vdev, activated, dog = self._configured, self._vdevice, self._activated, self._watchdog
        self._configured = self._infer_model = self._vdevice = self._watchdog = None
        self._activated = False
        steps = (("deactivate", lambda: cim.deactivate() if (cim and activated) else None),
                 ("configured model", lambda: cim.__exit__(None, None, None) if cim else None),
                 ("VDevice", lambda: vdev.release() if vdev else None))
        for what, fn in steps:
            try:
                if dog is not None and dog.stuck:
                    self.release_errors.append(f"{what}: skipped, HailoRT is stuck in an earlier call")
                    continue
                fn()
            except Exception as err:  # a vanished device fails its release; keep going, keep the record
                self.release_errors.append(f"{what}: {err.__class__.__name__}: {err}")
        if dog is not None:
            dog.close()

    def _deactivate(self) -> None:
        self._release()

    # inference -------------------------------------------------------------------------------------------------
    def _infer(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        errs, cim, im, dog = self._errs, self._configured, self._infer_model, self._watchdog
        if cim is None or im is None or dog is None:
            raise InternalError(f"{self.name}: configured model missing on an active runner")
        if self._vanished:
            raise DeviceError("the Hailo device vanished earlier in this session", note="expected a live device",
                              hint="re-open the runner after checking `hailortcli scan`", step="infer",
                              context=self.name)
        outs = {vs: np.empty(im.output(vs).shape, np.float32) for vs in self._outs}
        bindings = cim.create_bindings(output_buffers=outs)
        for vs, s in self._ins.items():
            bindings.input(vs).set_buffer(np.ascontiguousarray(feeds[s.meta.name][0], dtype=np.float32))

        def run() -> float:
            t0 = time.perf_counter()
            cim.run([bindings], self.timeout_ms)
            return time.perf_counter() - t0

        try:
            self.last_device_time = dog.call(run, self.timeout_ms / 1000 + self.grace_s)
        except TimeoutError as err:
            self._vanished = True
            raise DeviceError(f"HailoRT did not return within {self.timeout_ms} ms + {self.grace_s:g} s grace; the "
                              f"device is presumed lost", note="expected run() to return or raise HailoRTTimeout "
                              "within its timeout", hint="check `hailortcli scan`, `dmesg | grep hailo` and the power "
                              "supply, then rerun", step="infer", context=self.name) from err
        except errs.timeout as err:
            raise DeviceError(f"inference timed out after {self.timeout_ms} ms ({errs.describe(err)})",
                              note="expected one frame to finish well within the timeout",
                              hint="raise timeout_ms, check that no other process monopolises the device "
                                   "(scheduler), and `dmesg | grep hailo`", step="infer", context=self.name) from err
        except errs.any as err:
            self._vanished = True
            raise DeviceError(f"the Hailo device failed or vanished during inference: {errs.describe(err)}",
                              note="expected the device to stay present for the whole run",
                              hint="check `hailortcli scan`, `dmesg | grep hailo` and the power supply, then rerun; "
                                   f"HailoRT's log: {_log_dir()}", step="infer", context=self.name) from err
        result: dict[str, np.ndarray] = {}
        self.last_detections = {}
        for vs, s in self._outs.items():
            out = bindings.output(vs)
            if s.nms is not None:
                self.last_detections[s.meta.name] = [np.array(c, copy=True) for c in out.get_buffer()]
                result[s.meta.name] = np.asarray(out.get_buffer(tf_format=True), np.float32)[None].copy()
            else:
                result[s.meta.name] = np.asarray(out.get_buffer(), np.float32).reshape(s.meta.shape).copy()
        return result


def _log_dir() -> str:
    from hailo_qa import config

    return config.hailort_log_location()
