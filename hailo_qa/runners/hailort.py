"""A compiled HEF on a Hailo device, through HailoRT 4.x's InferModel API (``hailo_platform``, imported lazily).

Host-side quantization: inputs and outputs are requested as ``FormatType.FLOAT32`` so HailoRT applies the HEF's
(qp_scale, qp_zp) on the host; tensors are NHWC with batch 1, as the device sees them (declared in
``TensorMeta.layout`` so :class:`~hailo_qa.runners.pipeline.HostPipeline` converts at the boundary).

Lifecycle: ``__enter__`` opens a ``VDevice``, creates and configures the infer model; ``__exit__`` shuts the
configured model down and releases the ``VDevice`` on every path, also after a timeout or a vanished device.
"""
from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from hailo_qa.errors import DeviceError, InputFileError, InternalError
from hailo_qa.runners.base import BackendInfo, BaseRunner, TensorMeta


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# --- the binding: import, device identity (hw.device builds discovery on these) -------------------------------
@dataclass(frozen=True)
class DeviceIdentity:
    """Who the device is: stored in every hardware result (``BackendInfo.details["device"]``).

    Attributes:
        device_id: HailoRT device id (PCIe BDF such as ``0000:01:00.0``).
        architecture: normalized architecture: ``hailo8``, ``hailo8l``, ``hailo15h`` ...
        firmware_version: firmware version string as HailoRT prints it.
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
    """``hailo_platform``, or :class:`DeviceError` saying how to get it."""
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


def identify(device_id: str, hp=None) -> DeviceIdentity:
    """Open ``device_id``'s control channel, read its identity, release it."""
    hp = hp or import_hailort()
    try:
        dev = hp.Device(device_id)
    except hp.HailoRTException as err:
        raise DeviceError(f"could not open Hailo device {device_id}: {err}", note="expected a scanned device id",
                          hint="check `hailortcli scan` and that no other process holds the device",
                          step="device") from err
    try:
        return identity_from_device(dev, hp)
    finally:
        dev.release()


def identity_from_device(dev, hp) -> DeviceIdentity:
    """Identity of an open ``hailo_platform.Device``."""
    bi = dev.control.identify()
    return DeviceIdentity(
        device_id=_clean(getattr(dev, "device_id", "")), architecture=normalize_arch(bi.device_architecture),
        firmware_version=_clean(bi.firmware_version), serial_number=_clean(getattr(bi, "serial_number", "")),
        board_name=_clean(getattr(bi, "board_name", "")), product_name=_clean(getattr(bi, "product_name", "")),
        hailort_version=_version(hp))


class HailortRunner(BaseRunner):
    """Runs a HEF on a Hailo-8 through HailoRT.

    Args:
        hef_path: the compiled HEF.
        device_id: HailoRT device id (``0000:01:00.0``). Defaults to HailoRT's choice (the first device).
        timeout_ms: per-frame ``run`` timeout. Defaults to 10000.
        names: vstream name → name to expose (e.g. the Stage-1 ONNX tensor names). Defaults to the vstream names.
        name: runner name used in messages. Defaults to ``hailort``.

    Attributes:
        setup_times: seconds spent opening the VDevice (``open_s``) and creating+configuring the model
            (``configure_s``), filled by ``__enter__``.
        last_device_time: seconds spent inside ``ConfiguredInferModel.run`` in the last ``infer``.
        identity: the device's :class:`DeviceIdentity` once active.

    Example::

        with HailortRunner("model.hef") as r:
            out = r.infer({"net/input_layer1": x_nhwc})
    """

    def __init__(self, hef_path: str | Path, *, device_id: str | None = None, timeout_ms: int = 10000,
                 names: Mapping[str, str] | None = None, name: str | None = None) -> None:
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
        self.device_id = device_id
        self.timeout_ms = int(timeout_ms)
        self._rename = dict(names or {})
        self._vdevice = None
        self._infer_model = None
        self._configured = None
        self._vanished = False
        self.identity = None
        self.setup_times: dict[str, float] = {}
        self.last_device_time: float | None = None
        self.release_errors: list[str] = []
        self.backend = BackendInfo("hailort", str(getattr(self._hp, "__version__", "unknown")), "hailo8",
                                   hailo=True, details={"hef": str(self.hef_path),
                                                        "hef_sha256": _sha256(self.hef_path),
                                                        "hailort_module": str(getattr(self._hp, "__file__", ""))})
        self._in_meta, self._out_meta, self._quant = self._read_vstreams()

    # metadata (from the HEF; no device needed) -----------------------------------------------------------------
    def _read_vstreams(self):
        hp = self._hp
        try:
            hef = hp.HEF(str(self.hef_path))
            ins, outs = hef.get_input_vstream_infos(), hef.get_output_vstream_infos()
        except hp.HailoRTException as err:
            raise InputFileError(f"HailoRT could not read HEF '{self.hef_path}': {err}",
                                 note="expected a HEF compiled for this HailoRT's device family",
                                 hint="check `hailortcli parse-hef` on it; recompile if it is corrupt",
                                 context=self.name) from err

        def meta(info) -> TensorMeta:
            shape = (1, *(int(d) for d in info.shape))
            return TensorMeta(self._rename.get(info.name, info.name), shape, np.dtype(np.float32),
                              "NHWC" if len(shape) == 4 else None)

        quant = {self._rename.get(i.name, i.name): (float(i.quant_info.qp_scale), float(i.quant_info.qp_zp))
                 for i in (*ins, *outs)}
        return ({i.name: meta(i) for i in ins}, {o.name: meta(o) for o in outs}, quant)

    def input_metadata(self) -> dict[str, TensorMeta]:
        return {m.name: m for m in self._in_meta.values()}

    def output_metadata(self) -> dict[str, TensorMeta]:
        return {m.name: m for m in self._out_meta.values()}

    def quant_info(self, name: str) -> tuple[float, float]:
        """(qp_scale, qp_zp) of an input or output, by exposed name: one quantization step is ``qp_scale``."""
        return self._quant[name]

    # lifecycle -------------------------------------------------------------------------------------------------
    def _activate(self) -> None:
        hp = self._hp
        t0 = time.perf_counter()
        try:
            params = hp.VDevice.create_params()
            self._vdevice = (hp.VDevice(params, device_ids=[self.device_id]) if self.device_id
                             else hp.VDevice(params))
        except hp.HailoRTException as err:
            raise DeviceError(f"could not open a Hailo device{' ' + self.device_id if self.device_id else ''}: "
                              f"{err.__class__.__name__}: {err}",
                              note="expected a free Hailo-8 visible to `hailortcli scan`",
                              hint="check the PCIe driver (`lsmod | grep hailo`), that no other process holds the "
                                   "device, and --hqa-device", step="infer", context=self.name) from err
        t1 = time.perf_counter()
        try:
            self.identity = self._identify()
            im = self._vdevice.create_infer_model(str(self.hef_path))
            im.set_batch_size(1)
            for n in im.input_names:
                im.input(n).set_format_type(hp.FormatType.FLOAT32)
            for n in im.output_names:
                im.output(n).set_format_type(hp.FormatType.FLOAT32)
            self._infer_model = im
            self._configured = im.configure().__enter__()
        except hp.HailoRTException as err:
            self._release()
            raise DeviceError(f"HailoRT could not configure '{self.hef_path.name}': {err.__class__.__name__}: {err}",
                              note="expected a HEF compiled for this device's architecture by a DFC that matches "
                                   "this HailoRT",
                              hint="compare `hailortcli parse-hef` with `hailortcli fw-control identify`",
                              step="infer", context=self.name) from err
        except BaseException:
            self._release()
            raise
        self.setup_times = {"open_s": t1 - t0, "configure_s": time.perf_counter() - t1}
        details = dict(self.backend.details)
        details["device"] = self.identity.to_dict() if self.identity else {}
        self.backend = replace(self.backend, details=details)

    def _identify(self):
        getter = getattr(self._vdevice, "get_physical_devices", None)
        if getter is not None:
            devs = getter()
            if devs:
                return identity_from_device(devs[0], self._hp)
        return identify(self.device_id, self._hp) if self.device_id else None

    def _release(self) -> None:
        cim, vdev = self._configured, self._vdevice
        self._configured = self._infer_model = self._vdevice = None
        for what, fn in (("configured model", lambda: cim.__exit__(None, None, None) if cim else None),
                         ("VDevice", lambda: vdev.release() if vdev else None)):
            try:
                fn()
            except Exception as err:  # a vanished device fails its release; keep going, keep the record
                self.release_errors.append(f"{what}: {err.__class__.__name__}: {err}")

    def _deactivate(self) -> None:
        self._release()

    # inference -------------------------------------------------------------------------------------------------
    def _infer(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        hp, cim = self._hp, self._configured
        if cim is None:
            raise InternalError(f"{self.name}: configured model missing on an active runner")
        if self._vanished:
            raise DeviceError("the Hailo device vanished earlier in this session", note="expected a live device",
                              hint="re-open the runner after checking `hailortcli scan`", step="infer",
                              context=self.name)
        outs = {n: np.empty(m.shape[1:], np.float32) for n, m in self._out_meta.items()}
        bindings = cim.create_bindings(output_buffers=outs)
        for vs, m in self._in_meta.items():
            bindings.input(vs).set_buffer(np.ascontiguousarray(feeds[m.name][0], dtype=np.float32))
        t0 = time.perf_counter()
        try:
            cim.run([bindings], self.timeout_ms)
        except hp.HailoRTTimeout as err:
            raise DeviceError(f"inference timed out after {self.timeout_ms} ms", note="expected one frame to "
                              "finish well within the timeout", hint="raise timeout_ms, check that no other process "
                              "monopolises the device (scheduler), and `dmesg | grep hailo`", step="infer",
                              context=self.name) from err
        except hp.HailoRTException as err:
            self._vanished = True
            raise DeviceError(f"the Hailo device failed or vanished during inference: {err.__class__.__name__}: "
                              f"{err}", note="expected the device to stay present for the whole run",
                              hint="check `hailortcli scan`, `dmesg | grep hailo` and the power supply, then rerun",
                              step="infer", context=self.name) from err
        self.last_device_time = time.perf_counter() - t0
        return {m.name: np.asarray(bindings.output(vs).get_buffer(), np.float32)[None].copy()
                for vs, m in self._out_meta.items()}
