"""Read a compiled HEF without HailoRT: header, checksums, target architecture, network groups and streams.

A HEF is a big-endian binary header followed by a protobuf (``ProtoHEFHef``) and, from header format 1 on, the
config words (CCWs) and extra sections. Layouts (HailoRT ``hef_internal.hpp`` / ``hef.cpp``)::

    off 0   u32 magic = 0x01484546 (b"\\x01HEF"); u32 header version; u32 hef_proto_size
    v0 (32 B): u32 reserved; u8 md5[16]            MD5 over the proto;          file = 32 + proto
    v1 (28 B): u32 crc32; u64 ccws_size; u32 res.  CRC32 over proto + ccws;     file = 28 + proto + ccws
    v2 (44 B): u64 xxh3; u64 ccws_size; u64 res.x2 XXH3-64 over proto + ccws;   file = 44 + proto + ccws
    v3 (56 B): u64 xxh3; u64 ccws_with_padding; u32 padding; u64 additional_info_size; u64 proto_xxh3; u64 res.
               XXH3-64 over everything after the header; when ``proto_xxh3`` is non-zero HailoRT checks only the
               proto's own XXH3-64.      file = 56 + proto + ccws_with_padding + additional_info

The protobuf is decoded by a small generic wire-format walker (:class:`_Msg`); the field numbers used are those of
HailoRT's ``hef.proto`` and are named where they are read. Every malformed input raises :class:`HefError`.

XXH3 needs the optional ``xxhash`` package; without it a v2/v3 checksum is reported as ``not verified (install
xxhash)``, never as valid.
"""
from __future__ import annotations

import hashlib
import re
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from hailo_qa.errors import DeviceError, InputFileError, did_you_mean

__all__ = [
    "HefError", "HefInfo", "NetworkGroupInfo", "StreamInfo", "ChecksumStatus", "Extension",
    "read_hef", "read_hef_bytes", "hef_runs_on", "HW_ARCH_NAMES", "DEVICE_ARCHS",
]

HEADER_MAGIC = 0x01484546
HEADER_SIZES = {0: 32, 1: 28, 2: 44, 3: 56}
_COMMON = struct.Struct(">III")

HW_ARCH_NAMES: dict[int, str] = {
    0: "HAILO8", 1: "HAILO8P", 2: "HAILO8R", 3: "HAILO8L", 4: "HAILO15M", 5: "HAILO10H", 6: "HAILO15L",
    100: "SAGE_A0", 101: "SAGE_B0", 102: "PAPRIKA_B0", 103: "HAILO15H", 104: "GINGER", 105: "LAVENDER",
    106: "PLUTO", 108: "MARS",
}
"""``ProtoHEFHwArch`` (hef.proto). 103 is HailoRT's ``HW_ARCH__HAILO1XH``: the Hailo-15H/10H family."""

# HailoRT 4.23 DeviceBase::is_hef_compatible (src/device_common/device_internal.cpp): device → accepted HEF archs.
# A Hailo-8 takes HAILO8P/HAILO8R/HAILO8L HEFs, a Hailo-8L only HAILO8L; the legacy HAILO8 (0), SAGE and PAPRIKA
# archs run nowhere on 4.23. (HailoRT 5.x's wider ``hef_arch_to_device_compatible_archs`` is for Hailo-10/15 only.)
_DEVICE_ACCEPTS: dict[str, tuple[str, ...]] = {
    "HAILO8": ("HAILO8P", "HAILO8R", "HAILO8L"),
    "HAILO8L": ("HAILO8L",),
    "HAILO15H": ("GINGER", "LAVENDER", "HAILO15H", "HAILO15M", "HAILO10H"),
    "HAILO10H": ("GINGER", "LAVENDER", "HAILO15H", "HAILO15M", "HAILO10H"),
    "HAILO15L": ("HAILO15L", "PLUTO"),
    "HAILO15M": ("HAILO15M",),
}
# HEF archs that only HailoRT 5.x knows (its devices do not exist for 4.x): arch → device family
HAILORT5_ONLY_ARCHS: dict[str, str] = {"MARS": "HAILO12L"}
_FAMILY: dict[str, str] = {  # HailoRT hef_arch_to_device_arch
    "HAILO8": "HAILO8", "HAILO8P": "HAILO8", "HAILO8R": "HAILO8", "SAGE_A0": "HAILO8_A0", "SAGE_B0": "HAILO8",
    "PAPRIKA_B0": "HAILO8", "HAILO8L": "HAILO8L", "HAILO15H": "HAILO15H", "GINGER": "HAILO15H",
    "LAVENDER": "HAILO15H", "HAILO10H": "HAILO10H", "HAILO15M": "HAILO15M", "HAILO15L": "HAILO15L",
    "PLUTO": "HAILO15L", **HAILORT5_ONLY_ARCHS,
}


def _compatible(arch: str) -> tuple[str, ...]:
    """Device architectures HailoRT 4.23 runs an ``arch`` HEF on, the arch's own family first."""
    devs = [d for d, archs in _DEVICE_ACCEPTS.items() if arch in archs]
    fam = _FAMILY.get(arch)
    if fam in devs:
        devs.remove(fam)
        devs.insert(0, fam)
    return tuple(devs)


DEVICE_ARCHS = ("HAILO8_A0", "HAILO8", "HAILO8L", "HAILO15H", "HAILO15L", "HAILO15M", "HAILO10H", "HAILO12L")
"""Device architectures as HailoRT's ``DeviceArchitectureTypes`` names them."""

_MULTI_LAYOUT = {"HAILO8L", "HAILO15M"}  # hef.cpp is_multi_layout(): I/O lives under partial_network_groups

# HailoRTDefaults::get_device_format_order (compiler format id -> device order) and the default host order.
_DEVICE_ORDER = {0: "NHWC", 1: "NHCW", 2: "NC", 3: "FCR", 4: "BAYER_RGB", 5: "NHW", 6: "HAILO_NMS_ON_CHIP",
                 7: "F8CR", 8: "RGB888", 11: "YUY2", 13: "NHWC", 14: "HAILO_YYUV", 15: "HAILO_YYVU",
                 16: "HAILO_YYYYUV"}
_HOST_ORDER = {"NHWC": "NHWC", "NHCW": "NHWC", "NC": "NC", "FCR": "FCR", "F8CR": "F8CR", "NHW": "NHW",
               "BAYER_RGB": "BAYER_RGB", "RGB888": "NHWC", "YUY2": "YUY2", "HAILO_YYUV": "NV12",
               "HAILO_YYVU": "NV21", "HAILO_YYYYUV": "I420", "HAILO_NMS_ON_CHIP": "HAILO_NMS_BY_CLASS"}
_DATA_TYPES = {1: "UINT8", 2: "UINT16"}
_PLANES_FORMATS = {0: "NV12", 1: "NV21", 2: "I420"}

NOT_VERIFIED = "not verified (install xxhash)"


class HefError(InputFileError):
    """A HEF file is missing, unreadable, truncated, corrupt or not a HEF at all."""


# --------------------------------------------------------------------------------------------------------------
# Optional XXH3
# --------------------------------------------------------------------------------------------------------------

def _load_xxh3() -> Callable[[bytes | memoryview], int] | None:
    try:
        import xxhash
    except ImportError:
        return None
    return xxhash.xxh3_64_intdigest


_xxh3_64: Callable[[bytes | memoryview], int] | None = _load_xxh3()
"""XXH3-64 of a buffer, or None when the ``xxhash`` package is not installed (looked up at call time)."""


# --------------------------------------------------------------------------------------------------------------
# Protobuf wire format
# --------------------------------------------------------------------------------------------------------------

class _WireError(Exception):
    """Malformed protobuf; turned into a HefError at the API boundary."""


def _varint(buf: memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    end = len(buf)
    while True:
        if pos >= end:
            raise _WireError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise _WireError("varint longer than 10 bytes")


def _walk(buf: memoryview) -> Iterator[tuple[int, int, Any]]:
    """Yield ``(field_number, wire_type, value)`` for each field of one message; bounds-checked, linear time.

    Values: wire type 0 → int, 1 → 8 bytes, 2 → memoryview slice, 5 → 4 bytes.
    """
    pos, end = 0, len(buf)
    while pos < end:
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise _WireError("field number 0")
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            if pos + 8 > end:
                raise _WireError("truncated 64-bit field")
            value, pos = buf[pos:pos + 8], pos + 8
        elif wire == 2:
            length, pos = _varint(buf, pos)
            if length > end - pos:
                raise _WireError(f"field {number}: length {length} runs past the end of its message")
            value, pos = buf[pos:pos + length], pos + length
        elif wire == 5:
            if pos + 4 > end:
                raise _WireError("truncated 32-bit field")
            value, pos = buf[pos:pos + 4], pos + 4
        else:
            raise _WireError(f"field {number}: unsupported wire type {wire}")
        yield number, wire, value


class _Msg:
    """One decoded message: field number → list of ``(wire_type, value)``. Sub-messages decode on demand."""

    __slots__ = ("_fields",)

    def __init__(self, buf: bytes | memoryview = b"") -> None:
        self._fields: dict[int, list[tuple[int, Any]]] = {}
        for number, wire, value in _walk(memoryview(buf)):
            self._fields.setdefault(number, []).append((wire, value))

    def has(self, number: int) -> bool:
        return number in self._fields

    def _all(self, number: int, wire: int) -> list[Any]:
        items = self._fields.get(number, [])
        for w, _ in items:
            if w != wire:
                raise _WireError(f"field {number}: wire type {w}, expected {wire}")
        return [v for _, v in items]

    def uint(self, number: int) -> int:
        values = self._all(number, 0)
        return values[-1] if values else 0  # proto3: the last occurrence wins; absent means 0

    def boolean(self, number: int) -> bool:
        return bool(self.uint(number))

    def real(self, number: int) -> float | None:
        """A float (wire 5) or double (wire 1) field; None when absent."""
        items = self._fields.get(number)
        if not items:
            return None
        wire, value = items[-1]
        if wire == 5:
            return struct.unpack("<f", value)[0]
        if wire == 1:
            return struct.unpack("<d", value)[0]
        raise _WireError(f"field {number}: wire type {wire} for a floating-point field")

    def doubles(self, number: int) -> tuple[float, ...]:
        """A ``repeated double``, packed (wire 2) or not (wire 1)."""
        out: list[float] = []
        for wire, value in self._fields.get(number, []):
            if wire == 2:
                if len(value) % 8:
                    raise _WireError(f"field {number}: packed doubles of {len(value)} bytes")
                out.extend(v for (v,) in struct.iter_unpack("<d", value))
            elif wire == 1:
                out.append(struct.unpack("<d", value)[0])
            else:
                raise _WireError(f"field {number}: wire type {wire} for repeated double")
        return tuple(out)

    def text(self, number: int) -> str:
        values = self._all(number, 2)
        return _utf8(values[-1], number) if values else ""

    def texts(self, number: int) -> tuple[str, ...]:
        return tuple(_utf8(v, number) for v in self._all(number, 2))

    def msg(self, number: int) -> _Msg:
        values = self._all(number, 2)
        return _Msg(values[-1]) if values else _Msg()

    def msgs(self, number: int) -> list[_Msg]:
        return [_Msg(v) for v in self._all(number, 2)]


def _utf8(value: memoryview, number: int) -> str:
    try:
        return bytes(value).decode("utf-8")
    except UnicodeDecodeError as err:
        raise _WireError(f"field {number}: string is not valid UTF-8") from err


# --------------------------------------------------------------------------------------------------------------
# Result records
# --------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ChecksumStatus:
    """One checksum of the file.

    Attributes:
        kind: ``md5``, ``crc32``, ``xxh3_64`` or ``proto_xxh3_64``.
        state: ``valid`` or ``not verified (install xxhash)`` (a mismatch raises :class:`HefError` instead).
        covers: which bytes it covers, in words.
        offset: first covered byte. size: number of covered bytes.
        expected: the value stored in the header (hex).
    """

    kind: str
    state: str
    covers: str
    offset: int
    size: int
    expected: str

    @property
    def valid(self) -> bool:
        return self.state == "valid"

    def __str__(self) -> str:
        return f"{self.kind} {self.state} ({self.covers}, {self.size:,} bytes)"


@dataclass(frozen=True)
class StreamInfo:
    """One boundary stream (edge layer) of a network group.

    Attributes:
        name: stream name (``<network group>/<layer>``).
        direction: ``input`` (host → device) or ``output`` (device → host).
        shape: ``(height, width, features)`` as the HEF stores it.
        data_bytes: bytes per element on the device (1 → uint8, 2 → uint16).
        format_type: ``UINT8``/``UINT16`` (from ``data_bytes``).
        device_format_order: the device-side order (``NHWC``, ``NHCW``, ``NC``, ...), from the compiler format id.
        format_order: HailoRT's default host order for it (``NHWC`` for NHCW, ``NC`` ...).
        kind: edge layer kind: ``info``, ``mux`` or ``planes``.
        qp_zp, qp_scale: the per-tensor zero point and scale (None when the HEF has no numeric info).
            Real value = (q - qp_zp) * qp_scale.
        limvals: ``(min, max)`` real range, or None.
        qp_zps, qp_scales: per-feature lists when present (``OUTPUT_SCALE_PER_FEATURE``), else empty.
        original_names: the names in the original (ONNX) model.
        hn_output_layer_name: the HN layer feeding the stream.
        nms: NMS parameters for an NMS output (``number_of_classes``, ``max_bboxes_per_class``, ``bbox_size``).
        context_index: the context the edge layer belongs to.
        padded_shape: ``(padded_height, padded_width, padded_features)``: the device buffer (HailoRT's stream
            ``hw_shape``), e.g. 64 features where the vstream has 63.
        sys_index: the DMA channel index HailoRT reports as the stream's ``sys_index``.
    """

    name: str
    direction: str
    shape: tuple[int, int, int]
    data_bytes: int
    format_type: str
    device_format_order: str
    format_order: str
    kind: str = "info"
    qp_zp: float | None = None
    qp_scale: float | None = None
    limvals: tuple[float, float] | None = None
    qp_zps: tuple[float, ...] = ()
    qp_scales: tuple[float, ...] = ()
    original_names: tuple[str, ...] = ()
    hn_output_layer_name: str = ""
    nms: dict[str, int] | None = None
    context_index: int = 0
    padded_shape: tuple[int, int, int] | None = None
    sys_index: int = 0

    @property
    def per_feature_quant(self) -> bool:
        """True when the per-feature zp/scale lists are not all equal (a genuinely per-feature encoding)."""
        return len(set(self.qp_scales)) > 1 or len(set(self.qp_zps)) > 1

    @property
    def host_shape(self) -> tuple[int, ...]:
        """The shape HailoRT gives the vstream by default (NC → ``(features,)``, NHW → ``(h, w)``)."""
        h, w, c = self.shape
        if self.format_order == "NC":
            return (c,)
        if self.format_order == "NHW":
            return (h, w)
        return self.shape

    @property
    def device_shape(self) -> tuple[int, ...]:
        """The padded device-side shape, as HailoRT's ``StreamInfo.shape`` reports it (NC → ``(padded_features,)``)."""
        h, w, c = self.padded_shape or self.shape
        if self.device_format_order == "NC":
            return (c,)
        if self.device_format_order == "NHW":
            return (h, w)
        return (h, w, c)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "direction": self.direction, "shape": list(self.shape),
            "host_shape": list(self.host_shape), "device_shape": list(self.device_shape),
            "sys_index": self.sys_index, "data_bytes": self.data_bytes, "format_type": self.format_type,
            "device_format_order": self.device_format_order, "format_order": self.format_order, "kind": self.kind,
            "qp_zp": self.qp_zp, "qp_scale": self.qp_scale,
            "limvals": list(self.limvals) if self.limvals is not None else None,
            "qp_zps": list(self.qp_zps), "qp_scales": list(self.qp_scales),
            "per_feature_quant": self.per_feature_quant, "original_names": list(self.original_names),
            "hn_output_layer_name": self.hn_output_layer_name, "nms": dict(self.nms) if self.nms else None,
            "context_index": self.context_index,
        }


@dataclass(frozen=True)
class NetworkGroupInfo:
    """One network group.

    Attributes:
        name: network group name.
        index: execution order index.
        bottleneck_fps: the compiler's post-placement bottleneck FPS (None if absent).
        latency_s: the compiler's simulated latency in seconds (None if absent).
        inputs, outputs: boundary streams; outputs in HailoRT's sorted output order.
        sorted_output_names: the HEF's sorted output order (HailoRT's vstream order).
        stream_names: input and output stream names in edge-layer order (HailoRT's stream order).
        network_names: the networks (connected components) inside.
        context_count: number of contexts (1 = single context).
        layouts: number of partial cluster layouts (Hailo-8L/15M multi-layout HEFs), 0 otherwise.
    """

    name: str
    index: int
    bottleneck_fps: float | None
    latency_s: float | None
    inputs: tuple[StreamInfo, ...]
    outputs: tuple[StreamInfo, ...]
    sorted_output_names: tuple[str, ...] = ()
    network_names: tuple[str, ...] = ()
    context_count: int = 1
    layouts: int = 0
    stream_names: tuple[str, ...] = ()

    def stream(self, name: str) -> StreamInfo:
        """The input or output stream called ``name`` (also matched by original name)."""
        for s in (*self.inputs, *self.outputs):
            if s.name == name or name in s.original_names:
                return s
        names = [s.name for s in (*self.inputs, *self.outputs)]
        raise HefError(f"network group '{self.name}' has no stream '{name}'.",
                       note="expected one of: " + ", ".join(names) + ".", hint=did_you_mean(name, names) or None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "index": self.index, "bottleneck_fps": self.bottleneck_fps,
            "latency_s": self.latency_s, "context_count": self.context_count, "layouts": self.layouts,
            "network_names": list(self.network_names), "sorted_output_names": list(self.sorted_output_names),
            "stream_names": list(self.stream_names),
            "inputs": [s.to_dict() for s in self.inputs], "outputs": [s.to_dict() for s in self.outputs],
        }


@dataclass(frozen=True)
class Extension:
    """A (required or optional) HEF extension: ``type_index`` into ``ProtoHEFExtensionType`` and its name."""

    type_index: int
    name: str


@dataclass(frozen=True)
class HefInfo:
    """Everything hailo-qa reads from a HEF.

    Attributes:
        path: the file (None when read from bytes).
        file_size: bytes.
        header_version: header format 0..3.
        proto_size, ccws_size, padding_size, additional_info_size: section sizes from the header.
        checksums: the checksums the format has, each valid or not verified.
        hw_arch: target architecture (``ProtoHEFHwArch`` name, e.g. ``HAILO8P``); ``UNKNOWN_<n>`` if unknown.
        hw_arch_id: its numeric value.
        device_family: HailoRT's device architecture for it (``HAILO8``, ``HAILO8L``, ``HAILO15H`` ...).
        runs_on: every device architecture HailoRT accepts it on.
        sdk_version: DFC/SDK version (``3.29.0``); sdk_version_raw: the string as stored.
        proto_version: the ``ProtoHEFHeader.version`` field.
        timestamp: compile time (UTC), None when absent; timestamp_ms: the raw value.
        network_groups: the network groups.
        extensions, optional_extensions: the HEF's extension lists.
    """

    path: Path | None
    file_size: int
    header_version: int
    proto_size: int
    ccws_size: int
    padding_size: int
    additional_info_size: int
    checksums: tuple[ChecksumStatus, ...]
    hw_arch: str
    hw_arch_id: int
    device_family: str
    runs_on: tuple[str, ...]
    sdk_version: str
    sdk_version_raw: str
    proto_version: int
    timestamp: datetime | None
    timestamp_ms: int
    network_groups: tuple[NetworkGroupInfo, ...]
    extensions: tuple[Extension, ...] = ()
    optional_extensions: tuple[Extension, ...] = ()

    @property
    def checksum_status(self) -> str:
        """One line: ``crc32 valid`` / ``xxh3_64 not verified (install xxhash)``."""
        return "; ".join(f"{c.kind} {c.state}" for c in self.checksums)

    @property
    def name(self) -> str:
        return self.path.name if self.path else "<bytes>"

    def network_group(self, name: str | None = None) -> NetworkGroupInfo:
        """The network group called ``name``, or the only one when ``name`` is None."""
        names = [g.name for g in self.network_groups]
        if name is None:
            if len(self.network_groups) == 1:
                return self.network_groups[0]
            raise HefError(f"{self.name} holds {len(names)} network groups; which one?",
                           note="expected a name: " + ", ".join(names) + ".", hint="pass one of those names.")
        for g in self.network_groups:
            if g.name == name:
                return g
        raise HefError(f"{self.name} has no network group {name!r}.", note="expected one of: " + ", ".join(names),
                       hint=did_you_mean(name, names) or "pass one of those names.")

    def runs_on_device(self, device_arch: str) -> bool:
        """Whether HailoRT would accept this HEF on a ``device_arch`` device (see :func:`hef_runs_on`)."""
        return hef_runs_on(self.hw_arch, device_arch)

    def incompatibility(self, device_arch: str) -> DeviceError | None:
        """The error :meth:`check_runs_on` would raise, or None when the HEF runs on ``device_arch``."""
        dev = _device_arch(device_arch)
        if dev in self.runs_on:
            return None
        targets = ", ".join(self.runs_on) or "no known device"
        if self.hw_arch in HAILORT5_ONLY_ARCHS:
            targets += f" ({self.hw_arch} is a HailoRT 5.x-only architecture; HailoRT 4.x, the Hailo-8 line, has none)"
        elif self.hw_arch == "HAILO8":
            targets += " (the legacy HAILO8 arch id 0; HailoRT 4.23 accepts HAILO8P/HAILO8R/HAILO8L HEFs on a Hailo-8)"
        if dev == "HAILO8L":
            hint = "recompile the HAR for hw_arch='hailo8l' (a HAILO8L HEF runs on Hailo-8L and Hailo-8)."
        elif dev == "HAILO8":
            hint = ("recompile the HAR for hw_arch='hailo8' with Dataflow Compiler 3.x "
                    "(DFC 5.x targets Hailo-10H/15H only).")
        else:
            hint = f"recompile for hw_arch='{dev.lower()}'."
        return DeviceError(
            f"{self.name} was compiled for {self.hw_arch} ({_family_words(self.device_family)}) and cannot run "
            f"on a {dev} device.",
            note=f"HailoRT 4.23 accepts a {self.hw_arch} HEF only on: {targets}.", hint=hint, context="hef")

    def check_runs_on(self, device_arch: str) -> None:
        """Raise :class:`~hailo_qa.errors.DeviceError` (with Note/Hint) unless the HEF runs on ``device_arch``."""
        err = self.incompatibility(device_arch)
        if err is not None:
            raise err

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable summary."""
        return {
            "path": str(self.path) if self.path else None, "file_size": self.file_size,
            "header_version": self.header_version, "proto_size": self.proto_size, "ccws_size": self.ccws_size,
            "padding_size": self.padding_size, "additional_info_size": self.additional_info_size,
            "checksums": [{"kind": c.kind, "state": c.state, "valid": c.valid, "covers": c.covers,
                           "offset": c.offset, "size": c.size, "expected": c.expected} for c in self.checksums],
            "hw_arch": self.hw_arch, "hw_arch_id": self.hw_arch_id, "device_family": self.device_family,
            "runs_on": list(self.runs_on), "sdk_version": self.sdk_version, "sdk_version_raw": self.sdk_version_raw,
            "proto_version": self.proto_version,
            "timestamp": self.timestamp.isoformat() if self.timestamp else None, "timestamp_ms": self.timestamp_ms,
            "network_groups": [g.to_dict() for g in self.network_groups],
            "extensions": [{"type_index": e.type_index, "name": e.name} for e in self.extensions],
            "optional_extensions": [{"type_index": e.type_index, "name": e.name} for e in self.optional_extensions],
        }


# --------------------------------------------------------------------------------------------------------------
# Architecture compatibility
# --------------------------------------------------------------------------------------------------------------

def _family_words(family: str) -> str:
    return {"HAILO8": "Hailo-8", "HAILO8L": "Hailo-8L", "HAILO15H": "Hailo-15H/10H family",
            "HAILO15M": "Hailo-15M", "HAILO15L": "Hailo-15L", "HAILO8_A0": "Hailo-8 A0",
            "HAILO12L": "Hailo-12L, HailoRT 5.x only", "HAILO10H": "Hailo-10H"}.get(family, family)


def _device_arch(device_arch: str) -> str:
    dev = device_arch.strip().upper().replace("-", "")
    if dev not in DEVICE_ARCHS:
        raise DeviceError(f"unknown device architecture {device_arch!r}.",
                          note="expected one of: " + ", ".join(a.lower() for a in DEVICE_ARCHS) + ".",
                          hint=did_you_mean(device_arch.lower(), [a.lower() for a in DEVICE_ARCHS])
                          or "use hailo8 or hailo8l for Hailo-8 family devices.")
    return dev


def hef_runs_on(hef_arch: str, device_arch: str) -> bool:
    """Whether HailoRT runs a HEF compiled for ``hef_arch`` on a ``device_arch`` device.

    Follows HailoRT 4.23's ``is_hef_compatible``: a Hailo-8 device accepts HAILO8P, HAILO8R and HAILO8L HEFs; a
    Hailo-8L device only HAILO8L; the legacy HAILO8 (0) arch runs nowhere; Hailo-10H/15 targets never on Hailo-8.

    Args:
        hef_arch: the HEF's ``hw_arch`` name (``HAILO8P``; a ``PROTO__HW_ARCH__`` prefix is accepted).
        device_arch: the device (``hailo8``, ``hailo8l``, ``HAILO10H`` ...; case-insensitive).

    Raises:
        DeviceError: ``device_arch`` is not a known device architecture.
    """
    dev = _device_arch(device_arch)
    arch = hef_arch.strip().upper().removeprefix("PROTO__HW_ARCH__")
    return arch in _DEVICE_ACCEPTS.get(dev, ())


# --------------------------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------------------------

def read_hef(path: str | Path) -> HefInfo:
    """Read and validate a HEF file.

    Args:
        path: the ``.hef`` file.

    Raises:
        HefError: missing, unreadable, a directory, empty, truncated, wrong magic, unknown header version,
            inconsistent sizes, checksum mismatch or a malformed protobuf.
    """
    p = Path(path)
    hint = "check the path; a HEF is produced by the Dataflow Compiler (`hailo compiler model.har`)."
    if not p.exists():
        raise HefError(f"HEF file {str(p)!r} does not exist.", note="expected a path to a .hef file.", hint=hint)
    if p.is_dir():
        raise HefError(f"{str(p)!r} is a directory, not a HEF file.", note="expected a path to a .hef file.",
                       hint=hint)
    try:
        data = p.read_bytes()
    except OSError as err:
        raise HefError(f"cannot read HEF file {str(p)!r}: {err.strerror or err}.",
                       note="expected a readable regular file.", hint="check permissions.") from err
    return read_hef_bytes(data, path=p)


def _sniff(data: bytes) -> str:
    kinds = {b"\x89PNG": "a PNG image", b"\xff\xd8\xff": "a JPEG image", b"PK\x03\x04": "a zip archive",
             b"\x1f\x8b": "a gzip archive (a HAR is a tar.gz)", b"\x08": "possibly an ONNX/protobuf file"}
    for magic, what in kinds.items():
        if data.startswith(magic):
            return f" It looks like {what}."
    return ""


def read_hef_bytes(data: bytes, *, path: Path | None = None) -> HefInfo:
    """Parse and validate HEF content already in memory (see :func:`read_hef`).

    Args:
        data: the whole file.
        path: where it came from, for messages. Defaults to none.
    """
    name = path.name if path else "HEF data"
    size = len(data)
    if size == 0:
        raise HefError(f"{name} is empty (0 bytes).", note="expected a HEF: a 28-56 byte header, then a protobuf.",
                       hint="the file was not written completely; copy or compile it again.")
    if size < _COMMON.size:
        raise HefError(f"{name} is truncated: {size} bytes, shorter than the 12-byte HEF header.",
                       note="expected at least 12 bytes starting with b'\\x01HEF'.", hint="copy the file again.")
    magic, version, proto_size = _COMMON.unpack_from(data, 0)
    if magic != HEADER_MAGIC:
        raise HefError(f"{name} is not a HEF file: it starts with {bytes(data[:4])!r}.{_sniff(data)}",
                       note="expected the HEF magic b'\\x01HEF' (0x01484546).",
                       hint="pass the .hef the Dataflow Compiler produced, not the .onnx/.har or another file.")
    if version not in HEADER_SIZES:
        raise HefError(f"{name} has HEF header version {version}, which hailo-qa does not know.",
                       note="expected header format 0, 1, 2 or 3.",
                       hint="the file is corrupt, or comes from a newer Dataflow Compiler; update hailo-qa.")
    hsize = HEADER_SIZES[version]
    if size < hsize:
        raise HefError(f"{name} is truncated: {size} bytes, shorter than its {hsize}-byte v{version} header.",
                       note=f"expected a {hsize}-byte header followed by a {proto_size:,}-byte protobuf.",
                       hint="copy the file again.")
    view = memoryview(data)
    ccws = padding = additional = 0
    checksums: list[ChecksumStatus] = []

    def size_error(expected: int, parts: str) -> HefError:
        short = "truncated" if size < expected else "longer than its header says"
        return HefError(f"{name} is {short}: {size:,} bytes, but its v{version} header describes {expected:,}.",
                        note=f"expected file size = {parts} = {expected:,}.",
                        hint="the file is cut off or corrupt; copy or compile it again.")

    if version == 0:
        (md5,) = struct.unpack_from(">16s", data, 16)
        if proto_size != size - hsize:
            raise size_error(hsize + proto_size, f"header {hsize} + proto {proto_size:,}")
        _check(checksums, name, "md5", hashlib.md5(view[hsize:]).digest(), md5, hsize, size - hsize,
               "the protobuf")
    elif version == 1:
        crc, ccws = struct.unpack_from(">IQ", data, 12)
        expected = hsize + proto_size + ccws
        if expected != size:
            raise size_error(expected, f"header {hsize} + proto {proto_size:,} + ccws {ccws:,}")
        _check(checksums, name, "crc32", zlib.crc32(view[hsize:]), crc, hsize, size - hsize,
               "protobuf + config words")
    elif version == 2:
        xxh, ccws = struct.unpack_from(">QQ", data, 12)
        expected = hsize + proto_size + ccws
        if expected != size:
            raise size_error(expected, f"header {hsize} + proto {proto_size:,} + ccws {ccws:,}")
        _check_xxh3(checksums, name, "xxh3_64", view, xxh, hsize, size - hsize, "protobuf + config words")
    else:
        xxh, ccws, padding, additional, proto_xxh = struct.unpack_from(">QQIQQ", data, 12)
        if padding > ccws:
            raise HefError(f"{name} is corrupt: its padding ({padding:,} bytes) is larger than the config-word "
                           f"section that includes it ({ccws:,} bytes).",
                           note="expected ccws_size_with_padding >= hef_padding_size.",
                           hint="copy or compile the file again.")
        expected = hsize + proto_size + ccws + additional
        if expected != size:
            raise size_error(expected, f"header {hsize} + proto {proto_size:,} + ccws with padding {ccws:,} + "
                                       f"additional info {additional:,}")
        if proto_xxh:
            _check_xxh3(checksums, name, "proto_xxh3_64", view, proto_xxh, hsize, proto_size, "the protobuf")
        _check_xxh3(checksums, name, "xxh3_64", view, xxh, hsize, size - hsize,
                    "protobuf + padding + config words + additional info")

    try:
        root = _Msg(view[hsize:hsize + proto_size])
        return _decode(root, path=path, name=name, size=size, version=version, proto_size=proto_size,
                       ccws=ccws, padding=padding, additional=additional, checksums=tuple(checksums))
    except _WireError as err:
        verified = all(c.valid for c in checksums)
        raise HefError(f"{name}: the HEF protobuf is malformed ({err}).",
                       note="expected a valid ProtoHEFHef message"
                            + (" (the checksum matched, so the file was written this way)." if verified else "."),
                       hint="copy or compile the file again" + ("" if verified else
                                                                 "; install xxhash to verify its checksum") + ".")


def _check(out: list[ChecksumStatus], name: str, kind: str, computed: int | bytes, stored: int | bytes,
           offset: int, length: int, covers: str) -> None:
    as_hex = (lambda v: v.hex() if isinstance(v, bytes) else f"{v:016x}" if kind.startswith(("xxh", "proto"))
              else f"{v:08x}")
    if computed != stored:
        raise HefError(f"{name} is corrupt: {kind} checksum mismatch (header {as_hex(stored)}, "
                       f"computed {as_hex(computed)} over {covers}).",
                       note=f"expected the {kind} of bytes {offset:,}..{offset + length:,} to match the header.",
                       hint="the file was damaged in transfer or storage; copy or compile it again.")
    out.append(ChecksumStatus(kind, "valid", covers, offset, length, as_hex(stored)))


def _check_xxh3(out: list[ChecksumStatus], name: str, kind: str, view: memoryview, stored: int, offset: int,
                length: int, covers: str) -> None:
    impl = _xxh3_64
    if impl is None:
        out.append(ChecksumStatus(kind, NOT_VERIFIED, covers, offset, length, f"{stored:016x}"))
        return
    _check(out, name, kind, impl(view[offset:offset + length]), stored, offset, length, covers)


_SDK_RE = re.compile(r"(\d+\.\d+\.\d+)")


def _decode(root: _Msg, *, path: Path | None, name: str, size: int, version: int, proto_size: int, ccws: int,
            padding: int, additional: int, checksums: tuple[ChecksumStatus, ...]) -> HefInfo:
    header = root.msg(1)  # ProtoHEFHef.header
    arch_id = header.uint(1)
    arch = HW_ARCH_NAMES.get(arch_id, f"UNKNOWN_{arch_id}")
    compatible = _compatible(arch)
    ts_ms = header.uint(2)
    sdk_raw = header.text(3)
    sdk = m.group(1) if (m := _SDK_RE.search(sdk_raw)) else sdk_raw
    groups = tuple(_network_group(ng, arch) for ng in root.msgs(2))
    if not groups:
        raise HefError(f"{name} holds no network group.", note="expected at least one network group in the HEF.",
                       hint="the file is corrupt or was not produced by the Dataflow Compiler's compile step.")
    return HefInfo(
        path=path, file_size=size, header_version=version, proto_size=proto_size, ccws_size=ccws,
        padding_size=padding, additional_info_size=additional, checksums=checksums, hw_arch=arch, hw_arch_id=arch_id,
        device_family=_FAMILY.get(arch, "UNKNOWN"), runs_on=compatible, sdk_version=sdk,
        sdk_version_raw=sdk_raw, proto_version=header.uint(4), timestamp=_timestamp(ts_ms), timestamp_ms=ts_ms,
        network_groups=groups,
        extensions=tuple(Extension(e.uint(1), e.text(2)) for e in root.msgs(5)),
        optional_extensions=tuple(Extension(e.uint(1), e.text(2)) for e in root.msgs(6)),
    )


def _timestamp(ms: int) -> datetime | None:
    if not ms:
        return None
    try:
        return datetime.fromtimestamp(ms / 1000, tz=timezone.utc)
    except (OverflowError, OSError, ValueError):
        return None


def _network_group(ng: _Msg, arch: str) -> NetworkGroupInfo:
    # ProtoHEFNetworkGroup: ops=8 (ProtoHEFOp.core_op=4 in net-flow HEFs), network_group_name=10,
    # network_group_index=11, network_group_metadata=1, contexts=3, sorted_outputs_order=4,
    # fused_layers_metadata=5, networks_names=6, partial_network_groups=7. ProtoHEFCoreOp uses the same 1..7.
    core = ng
    for op in ng.msgs(8):
        if op.has(4):
            core = op.msg(4)
            break
    partials = [p.msg(1) for p in core.msgs(7)]  # ProtoHEFPartialNetworkGroup/-CoreOp: {network_group|core_op=1}
    body = core
    if partials and (arch in _MULTI_LAYOUT or not core.has(3)):
        body = partials[0]  # all layouts expose the same streams
    meta = body.msg(1) if body.has(1) else core.msg(1) if core.has(1) else ng.msg(1)
    gname = ng.text(10) or meta.text(1)
    sorted_outputs = body.texts(4) or core.texts(4) or ng.texts(4)
    fused = body.msg(5)
    if fused.boolean(1) and fused.texts(2):  # network_has_fused_layers → updated_sorted_output_names
        sorted_outputs = fused.texts(2)
    contexts = body.msgs(3)
    if not sorted_outputs and contexts:
        sorted_outputs = contexts[-1].msg(3).texts(5)  # very old HEFs: in the last context's metadata
    inputs: dict[str, StreamInfo] = {}
    outputs: dict[str, StreamInfo] = {}
    for position, ctx in enumerate(contexts):
        index = ctx.uint(1) or position
        for edge in ctx.msg(3).msgs(2):  # ProtoHEFContext.metadata=3 → ProtoHEFContextMetadata.edge_layers=2
            if edge.msg(5).uint(3) != 0:  # context_switch_info.edge_connection_type: 0 = BOUNDARY
                continue
            stream = _stream(edge, index)
            if stream is None:
                continue
            target = inputs if stream.direction == "input" else outputs
            target.setdefault(stream.name, stream)
    order = {n: i for i, n in enumerate(sorted_outputs)}
    ordered_outputs = sorted(outputs.values(), key=lambda s: order.get(s.name, len(order)))
    fps = meta.real(4)
    latency = meta.real(6)
    return NetworkGroupInfo(
        name=gname, index=ng.uint(11) or meta.uint(2), bottleneck_fps=fps, latency_s=latency,
        inputs=tuple(inputs.values()), outputs=tuple(ordered_outputs), sorted_output_names=sorted_outputs,
        network_names=body.texts(6) or ng.texts(6), context_count=len(contexts), layouts=len(partials),
        stream_names=tuple(inputs) + tuple(outputs),
    )


def _padded(base: _Msg) -> tuple[int, int, int] | None:
    padded = (base.uint(2), base.uint(4), base.uint(6))
    return padded if any(padded) else None


def _stream(edge: _Msg, context_index: int) -> StreamInfo | None:
    # ProtoHEFEdgeLayer: direction=1 (0 host→device, 1 device→host), layer_info=3, layer_mux=4, layer_planes=8
    direction = "output" if edge.uint(1) == 1 else "input"
    if edge.has(3):
        info, kind, names_field = edge.msg(3), "info", 5
    elif edge.has(4):
        info, kind, names_field = edge.msg(4), "mux", 6
    elif edge.has(8):
        planes = edge.msg(8)  # ProtoHEFEdgeLayerPlanes{name=1, planes_format=2, height=4, width=5, features=6}
        fmt = _PLANES_FORMATS.get(planes.uint(2), f"PLANES_{planes.uint(2)}")
        first = planes.msgs(3)[0].msg(1).msg(2) if planes.has(3) else _Msg()
        data_bytes = first.uint(12) or 1
        return StreamInfo(name=planes.text(1), direction=direction,
                          shape=(planes.uint(4), planes.uint(5), planes.uint(6)), data_bytes=data_bytes,
                          format_type=_DATA_TYPES.get(data_bytes, f"BYTES_{data_bytes}"),
                          device_format_order=fmt, format_order=fmt, kind="planes", context_index=context_index)
    else:
        return None
    # ProtoHEFEdgeLayerInfo{name=1, edge_layer_base=2, numeric_info=3, hn_output_layer_name=4, original_names=5}
    # (mux: original_names=6, no numeric info)
    base = info.msg(2)  # ProtoHEFEdgeLayerBase{height=1, padded_height=2, width=3, padded_width=4, features=5,
    #                     padded_features=6, format=7, sys_index=8, additional_info=11, data_bytes=12}
    data_bytes = base.uint(12)
    fmt_id = base.uint(7)
    device_order = _DEVICE_ORDER.get(fmt_id, f"FORMAT_{fmt_id}")
    nms = None
    nms_msg = base.msg(11).msg(1)  # additional_info.nms_info
    if base.msg(11).has(1):
        nms = {"number_of_classes": nms_msg.uint(2), "max_bboxes_per_class": nms_msg.uint(3),
               "bbox_size": nms_msg.uint(4)}
        device_order = "HAILO_NMS_ON_CHIP"
    qp_zp = qp_scale = None
    limvals = None
    zps: tuple[float, ...] = ()
    scales: tuple[float, ...] = ()
    if kind == "info" and info.has(3):
        numeric = info.msg(3)  # {qp_zp=1, qp_scale=2, limvals_min=3, limvals_max=4 (float); qp_zps=5, qp_scales=6}
        qp_zp = numeric.real(1) or 0.0
        qp_scale = numeric.real(2) or 0.0
        limvals = (numeric.real(3) or 0.0, numeric.real(4) or 0.0)
        zps, scales = numeric.doubles(5), numeric.doubles(6)
    return StreamInfo(
        name=info.text(1), direction=direction, shape=(base.uint(1), base.uint(3), base.uint(5)),
        data_bytes=data_bytes, format_type=_DATA_TYPES.get(data_bytes, f"BYTES_{data_bytes}"),
        device_format_order=device_order, format_order=_HOST_ORDER.get(device_order, device_order), kind=kind,
        qp_zp=qp_zp, qp_scale=qp_scale, limvals=limvals, qp_zps=zps, qp_scales=scales,
        original_names=info.texts(names_field), hn_output_layer_name=info.text(4), nms=nms,
        context_index=context_index, padded_shape=_padded(base),
        sys_index=base.uint(8),
    )


# --------------------------------------------------------------------------------------------------------------
# ``hailortcli parse-hef`` (HailoRT's own description of a HEF), to compare with this reader
# --------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CliStream:
    """One ``Input|Output <name> <TYPE>, <ORDER>(<d>x<d>...)`` line of ``hailortcli parse-hef``."""

    direction: str
    name: str
    format_type: str
    format_order: str
    shape: tuple[int, ...]


@dataclass(frozen=True)
class CliNetworkGroup:
    """One network group as ``hailortcli parse-hef --parse-streams --parse-vstreams`` prints it."""

    name: str
    contexts: str
    network_names: tuple[str, ...]
    streams: tuple[CliStream, ...]
    vstreams: tuple[CliStream, ...]


_CLI_STREAM = re.compile(r"^\s*(Input|Output)\s+(\S+)\s+(\w+),\s*(\w+)\(([\dx]+)\)\s*$")


def parse_hef_description(text: str) -> tuple[str, tuple[CliNetworkGroup, ...]]:
    """``hailortcli parse-hef FILE --parse-streams --parse-vstreams`` stdout → (architecture, network groups).

    HailoRT prints the device family (``HAILO8`` for a HAILO8P HEF). Stream lines before the first ``Stream infos:``
    / ``VStream infos:`` header count as vstreams (plain ``parse-hef`` prints only those).

    Raises:
        HefError: the text has no ``Architecture HEF was compiled for:`` line or no network group.
    """
    arch = ""
    groups: list[dict[str, Any]] = []
    section = "vstreams"
    for line in text.splitlines():
        if m := re.match(r"^\s*Architecture HEF was compiled for:\s*(\S+)", line):
            arch = m.group(1)
        elif m := re.match(r"^\s*Network group name:\s*([^,]+),\s*(.+?)\s*$", line):
            groups.append({"name": m.group(1).strip(), "contexts": m.group(2), "network_names": [], "streams": [],
                           "vstreams": []})
            section = "vstreams"
        elif (m := re.match(r"^\s*Network name:\s*(\S+)", line)) and groups:
            groups[-1]["network_names"].append(m.group(1))
        elif re.match(r"^\s*Stream infos:", line):
            section = "streams"
        elif re.match(r"^\s*VStream infos:", line):
            section = "vstreams"
        elif (m := _CLI_STREAM.match(line)) and groups:
            shape = tuple(int(d) for d in m.group(5).split("x"))
            groups[-1][section].append(CliStream(m.group(1).lower(),
                                                 m.group(2), m.group(3), m.group(4), shape))
    if not arch or not groups:
        raise HefError("the hailortcli parse-hef output has no architecture line or no network group.",
                       note="expected 'Architecture HEF was compiled for: ...' and 'Network group name: ...'",
                       hint="run `hailortcli parse-hef FILE --parse-streams --parse-vstreams` by hand.")
    return arch, tuple(CliNetworkGroup(g["name"], g["contexts"], tuple(g["network_names"]), tuple(g["streams"]),
                                       tuple(g["vstreams"])) for g in groups)
