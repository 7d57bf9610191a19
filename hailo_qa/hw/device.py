"""Hailo device discovery, identity and the reasons a ``hailo8`` test cannot run here.

Nothing is probed at import: :func:`probe_device` imports ``hailo_platform`` and scans on call. Every reason string
names its cause exactly (missing HailoRT, no device, Hailo-8L vs Hailo-8 HEF, HailoRT/HEF version skew), because it
becomes the skip reason users read in ``pytest -m hailo8 -ra``.

Version pairing used for the skew check (Hailo AI Software Suite releases): DFC 3.N ships with HailoRT 4.(N-10)
(DFC 3.29 ↔ HailoRT 4.19 … DFC 3.33 ↔ HailoRT 4.23). A HEF from a newer DFC than the runtime's pair can carry
extensions the runtime rejects (``Failed opening non-compatible HEF with the following unsupported extensions``);
HailoRT 5.x supports only Hailo-10/15.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from hailo_qa.errors import DeviceError
from hailo_qa.runners.hailort import STATUS_OUT_OF_PHYSICAL_DEVICES, _clean, _version, hailort_errors, identify
from hailo_qa.runners.hailort import DeviceIdentity as DeviceIdentity  # re-exported: the binding's pieces live there
from hailo_qa.runners.hailort import hailort_support_reason, import_hailort
from hailo_qa.runners.hailort import identity_from_device as identity_from_device
from hailo_qa.runners.hailort import major_minor as _major_minor
from hailo_qa.runners.hailort import normalize_arch as normalize_arch

_DFC_TO_HAILORT_MINOR_OFFSET = 10
"""DFC 3.N pairs with HailoRT 4.(N - 10)."""

HAILO8_ARCHS = ("hailo8", "hailo8l")


@dataclass(frozen=True)
class DeviceStatus:
    """The outcome of one probe: the HailoRT version, the chosen device, and why hardware tests cannot run."""

    hailort_version: str | None
    identity: DeviceIdentity | None
    device_ids: tuple[str, ...] = ()
    reason: str = ""

    @property
    def usable(self) -> bool:
        return not self.reason


def hailort_version_reason(hailort_version: str | None) -> str | None:
    """Why this HailoRT cannot drive a Hailo-8 (None when it can, or when the version is unknown).

    hailo-qa drives the InferModel API: HailoRT 4.18 to 4.23. Older 4.x and 3.x lack it; 5.x has no Hailo-8 support.
    """
    return hailort_support_reason(hailort_version)


def version_skew_reason(hef_sdk_version: str | None, hailort_version: str | None) -> str | None:
    """Why a HEF compiled by DFC ``hef_sdk_version`` cannot be trusted on HailoRT ``hailort_version``.

    Args:
        hef_sdk_version: the DFC version recorded in the HEF header (``3.29.0``). Unknown → no HEF-side check.
        hailort_version: the HailoRT version. Unknown → no runtime-side check.

    Returns:
        The reason, or None when the pair is compatible (or cannot be judged).
    """
    rt_reason = hailort_version_reason(hailort_version)
    if rt_reason:
        return rt_reason
    dfc, rt = _major_minor(hef_sdk_version), _major_minor(hailort_version)
    if dfc is None:
        return None
    if dfc[0] != 3:
        return (f"hailo8: the HEF was compiled by DFC {hef_sdk_version}; Hailo-8 HEFs come from DFC 3.x, paired with "
                f"HailoRT 4.x (DFC {dfc[0]}.x targets other devices/runtimes)")
    if rt is None:
        return None
    paired = dfc[1] - _DFC_TO_HAILORT_MINOR_OFFSET
    if rt[1] < paired:
        return (f"hailo8: HailoRT/HEF version skew: the HEF was compiled by DFC {hef_sdk_version} (pairs with HailoRT "
                f"4.{paired}) but HailoRT is {hailort_version}; an older HailoRT rejects newer HEFs (unsupported "
                f"extensions). Upgrade HailoRT to 4.{paired} or recompile with DFC 3.{rt[1] + 10}")
    return None


def arch_reason(hef_arch: str, device_arch: str) -> str | None:
    """Why a HEF for ``hef_arch`` cannot run on a ``device_arch`` device (None when it can).

    Uses :func:`hailo_qa.hw.hef.hef_runs_on` (HailoRT 4.23's ``is_hef_compatible``).
    """
    from hailo_qa.hw.hef import HAILORT5_ONLY_ARCHS, hef_runs_on

    if hef_runs_on(hef_arch, device_arch):
        return None
    arch = hef_arch.strip().upper().removeprefix("PROTO__HW_ARCH__")
    if arch in HAILORT5_ONLY_ARCHS:
        return (f"hailo8: the HEF targets {arch}, a HailoRT 5.x-only architecture ({HAILORT5_ONLY_ARCHS[arch]}); "
                f"HailoRT 4.x, the last line for Hailo-8, cannot run it on this {device_arch} device")
    if arch in ("HAILO15H", "HAILO15M", "HAILO15L", "HAILO10H", "GINGER", "LAVENDER", "PLUTO"):
        return (f"hailo8: the HEF targets {arch} (Hailo-10/15 family, DFC 5.x or a Hailo-15 build); recompile with "
                f"DFC 3.x --hw-arch {device_arch} for this {device_arch} device")
    if arch == "HAILO8" and device_arch in ("hailo8", "hailo8r"):
        return ("hailo8: the HEF has the legacy arch id 0 (HAILO8); HailoRT 4.23 accepts HAILO8P/HAILO8R/HAILO8L "
                "HEFs on a Hailo-8: recompile with a current DFC 3.x")
    if device_arch == "hailo8l":
        return (f"hailo8: the device is Hailo-8L but the HEF targets {hef_arch} (a Hailo-8L accepts only Hailo-8L "
                f"HEFs; compile with --hw-arch hailo8l)")
    return f"hailo8: the HEF targets {hef_arch}, which does not run on this {device_arch} device"


def hef_skip_reason(status: DeviceStatus, hef_path: str | Path) -> str | None:
    """Why ``hef_path`` cannot run on the probed device: environment, architecture or version skew (None = runs)."""
    if not status.usable:
        return status.reason
    from hailo_qa.hw.hef import read_hef

    info = read_hef(hef_path)
    assert status.identity is not None
    return (arch_reason(str(info.hw_arch), status.identity.architecture)
            or version_skew_reason(info.sdk_version, status.hailort_version))


# --- probing (imports hailo_platform) ---------------------------------------------------------------------------
def probe_device(device_id: str | None = None) -> DeviceStatus:
    """Import HailoRT, scan, identify the chosen device; never raises.

    Args:
        device_id: the device to use. Defaults to the first one ``Device.scan()`` returns.
    """
    try:
        hp = import_hailort()
    except DeviceError as err:
        return DeviceStatus(None, None, reason=f"hailo8: {err.what} ({err.__cause__})")
    version = _version(hp)
    why = hailort_version_reason(version)
    if why:
        return DeviceStatus(version, None, reason=why)
    try:
        errs = hailort_errors(hp)
    except (ImportError, AttributeError) as err:
        return DeviceStatus(version, None, reason=f"hailo8: HailoRT {version}'s Python binding lacks the modules 4.x "
                                                  f"has (hailo_platform.pyhailort.pyhailort / _pyhailort): {err}")
    try:
        ids = tuple(_clean(i) for i in hp.Device.scan())
    except Exception as err:  # a broken driver must give a skip reason, not a collection error
        return DeviceStatus(version, None, reason=f"hailo8: Device.scan() failed: {errs.describe(err)} "
                                                  f"(check the PCIe driver: `lsmod | grep hailo_pci`)")
    if not ids:
        return DeviceStatus(version, None, reason=f"hailo8: {_no_device_reason(hp, errs, version)}")
    chosen = device_id or ids[0]
    if chosen not in ids:
        return DeviceStatus(version, None, ids, reason=f"hailo8: device {chosen} (--hqa-device/HAILO_QA_DEVICE) is "
                                                       f"not among the scanned devices {list(ids)}")
    try:
        ident = identify(chosen, hp)
    except DeviceError as err:
        return DeviceStatus(version, None, ids, reason=f"hailo8: {err.what} ({err.note})")
    except Exception as err:
        return DeviceStatus(version, None, ids, reason=f"hailo8: could not identify device {chosen}: "
                                                       f"{errs.describe(err)}")
    if ident.architecture not in HAILO8_ARCHS + ("hailo8r",):
        return DeviceStatus(version, ident, ids, reason=f"hailo8: device {chosen} is a {ident.architecture}, not a "
                                                        f"Hailo-8/8L")
    return DeviceStatus(version, ident, ids)


def _no_device_reason(hp, errs, version: str) -> str:
    """The skip reason when ``Device.scan()`` is empty, confirmed by HailoRT itself: ``VDevice()`` with default
    params fails with status 74 (HAILO_OUT_OF_PHYSICAL_DEVICES) on a machine without a Hailo device."""
    base = f"no Hailo device found: Device.scan() returned [] (HailoRT {version})"
    try:
        vdev = hp.VDevice(hp.VDevice.create_params())
    except errs.any as err:
        code, name = errs.status(err)
        if code == STATUS_OUT_OF_PHYSICAL_DEVICES:
            return (f"{base} and VDevice() failed with status {code} ({name or 'HAILO_OUT_OF_PHYSICAL_DEVICES'}); "
                    f"check `hailortcli scan` and the PCIe driver (`lsmod | grep hailo_pci`)")
        return f"{base}; VDevice() raised {errs.describe(err)}"
    try:
        opened = list(vdev.get_physical_devices_ids())
    finally:
        vdev.release()
    return f"{base}, yet VDevice() opened {opened}: set --hqa-device / HAILO_QA_DEVICE to one of them"


def describe_devices(device_id: str | None = None) -> str:
    """One line for the pytest report header: the device in use, or why there is none."""
    st = probe_device(device_id)
    if st.identity is not None and st.usable:
        more = f" (+{len(st.device_ids) - 1} more)" if len(st.device_ids) > 1 else ""
        return f"{st.identity.describe()}{more}"
    return f"none ({st.reason.removeprefix('hailo8: ')})"
