"""HEF reader: synthetic HEFs (hand-encoded protobuf, all header formats), the real HEFs, corrupt copies, fuzzing.

XXH3 (header formats 2 and 3) is computed independently with the system ``libxxhash`` through ctypes when it is
present, to prove which bytes each checksum covers; the reader itself only uses the optional ``xxhash`` package.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import json
import struct
import zlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hailo_qa.config import SHARED_DIR
from hailo_qa.errors import DeviceError, InputFileError
from hailo_qa.hw import hef as hefmod
from hailo_qa.hw.hef import NOT_VERIFIED, HefError, hef_runs_on, read_hef, read_hef_bytes

HEF_DIR = SHARED_DIR / "hef"
ARCFACE_H8 = HEF_DIR / "arcface_mobilefacenet_hailo8_fmt1.hef"
REAL = {
    0: HEF_DIR / "hand_landmark_lite_hailo8_fmt0.hef",
    1: ARCFACE_H8,
    2: HEF_DIR / "arcface_mobilefacenet_hailo8_fmt2.hef",
    3: HEF_DIR / "arcface_mobilefacenet_hailo10h_fmt3.hef",
}
needs_shared = pytest.mark.skipif(
    not all(p.is_file() for p in REAL.values()),
    reason=f"shared HEFs not found under {HEF_DIR} (set HAILO_QA_SHARED to the team's shared/ folder)")


def _load_libxxh3():
    name = ctypes.util.find_library("xxhash") or "libxxhash.so.0"
    try:
        lib = ctypes.CDLL(name)
    except OSError:
        return None
    fn = lib.XXH3_64bits
    fn.restype, fn.argtypes = ctypes.c_uint64, [ctypes.c_char_p, ctypes.c_size_t]
    return lambda buf: int(fn(bytes(buf), len(buf)))


LIBXXH3 = _load_libxxh3()
needs_xxh3 = pytest.mark.skipif(LIBXXH3 is None, reason="system libxxhash not found: no independent XXH3-64")


@pytest.fixture
def no_xxhash(monkeypatch):
    """The reader as it runs without the xxhash package."""
    monkeypatch.setattr(hefmod, "_xxh3_64", None)


@pytest.fixture
def with_xxh3(monkeypatch):
    """The reader with an XXH3 implementation (the system libxxhash standing in for the xxhash package)."""
    if LIBXXH3 is None:
        pytest.skip("system libxxhash not found: no independent XXH3-64")
    monkeypatch.setattr(hefmod, "_xxh3_64", LIBXXH3)


# ----------------------------------------------------------------------------------------------------------------
# A tiny protobuf encoder and HEF writer
# ----------------------------------------------------------------------------------------------------------------

def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def f_uint(num: int, value: int) -> bytes:
    return varint(num << 3) + varint(value)


def f_bytes(num: int, value: bytes | str) -> bytes:
    raw = value.encode() if isinstance(value, str) else value
    return varint(num << 3 | 2) + varint(len(raw)) + raw


def f_float(num: int, value: float) -> bytes:
    return varint(num << 3 | 5) + struct.pack("<f", value)


def f_double(num: int, value: float) -> bytes:
    return varint(num << 3 | 1) + struct.pack("<d", value)


def f_packed_doubles(num: int, values) -> bytes:
    return f_bytes(num, b"".join(struct.pack("<d", v) for v in values))


def edge(name, direction, h, w, c, *, zp=0.0, scale=1.0, lim=(0.0, 255.0), zps=(), scales=(), originals=(),
         data_bytes=1, fmt=0, connection=0, nms=None) -> bytes:
    base = f_uint(1, h) + f_uint(3, w) + f_uint(5, c) + f_uint(7, fmt) + f_uint(12, data_bytes)
    if nms:
        base += f_bytes(11, f_bytes(1, f_uint(2, nms[0]) + f_uint(3, nms[1]) + f_uint(4, 5)))
    numeric = f_float(1, zp) + f_float(2, scale) + f_float(3, lim[0]) + f_float(4, lim[1])
    if zps:
        numeric += f_packed_doubles(5, zps) + f_packed_doubles(6, scales)
    info = f_bytes(1, name) + f_bytes(2, base) + f_bytes(3, numeric) + f_bytes(4, name + "_hn")
    info += b"".join(f_bytes(5, o) for o in originals)
    csi = f_bytes(5, f_bytes(2, "context_0") + f_uint(3, connection))
    return f_uint(1, direction) + f_bytes(3, info) + csi


def context(*edges: bytes, index: int = 0) -> bytes:
    return f_uint(1, index) + f_bytes(3, f_bytes(1, f"context_{index}") + b"".join(f_bytes(2, e) for e in edges))


def group_body(name="net", fps=1234.5, latency=0.002, outputs=("net/out_b", "net/out_a")) -> bytes:
    meta = f_bytes(1, name) + f_uint(2, 0) + f_double(4, fps) + f_double(6, latency)
    ctx0 = context(
        edge("net/in", 0, 32, 32, 3, originals=("images",)),
        edge("net/out_a", 1, 1, 1, 4, zp=10, scale=0.5, lim=(-5.0, 122.5), zps=(10, 10, 10, 10),
             scales=(0.5, 0.25, 0.5, 0.5), originals=("logits", "Gemm_7"), fmt=2),
        edge("net/intermediate", 1, 8, 8, 16, connection=1))  # an inter-context edge: not a stream
    ctx1 = context(edge("net/out_b", 1, 4, 4, 8, zp=128, scale=0.01, lim=(-1.28, 1.27), data_bytes=2, fmt=1,
                        originals=("boxes",)), index=1)
    return (f_bytes(1, meta) + f_bytes(3, ctx0) + f_bytes(3, ctx1) + b"".join(f_bytes(4, o) for o in outputs)
            + f_bytes(6, name))


def proto(*, arch=1, sdk="3.29.0", ts=1726770697807, groups=None, version=5) -> bytes:
    header = f_uint(1, arch) + f_uint(2, ts) + f_bytes(3, sdk) + f_uint(4, version)
    groups = [group_body()] if groups is None else groups
    return (f_bytes(1, header) + b"".join(f_bytes(2, g) for g in groups) + f_bytes(3, b"\x00" * 64)
            + f_bytes(5, f_uint(1, 12) + f_bytes(2, "KO Run ASAP (KO_RUN_ASAP)"))
            + f_bytes(6, f_uint(1, 11) + f_bytes(2, "HW Padding")))


def xxh3_or_dummy(buf: bytes) -> int:
    return LIBXXH3(buf) if LIBXXH3 else 0x1234_5678_9ABC_DEF0


def wrap(body: bytes, version: int, *, ccws: bytes = b"\xAB" * 100, padding: int = 0, additional: bytes = b"",
         proto_xxh: bool = True) -> bytes:
    """A HEF file around ``body`` with correct sizes and checksums (XXH3 needs libxxhash, else a dummy)."""
    magic = struct.pack(">III", 0x01484546, version, len(body))
    if version == 0:
        return magic + struct.pack(">I16s", 0, hashlib.md5(body).digest()) + body
    if version == 1:
        residue = body + ccws
        return magic + struct.pack(">IQI", zlib.crc32(residue), len(ccws), 0) + residue
    if version == 2:
        residue = body + ccws
        return magic + struct.pack(">QQQQ", xxh3_or_dummy(residue), len(ccws), 0, 0) + residue
    residue = body + b"\x00" * padding + ccws + additional
    pxx = xxh3_or_dummy(body) if proto_xxh else 0
    return magic + struct.pack(">QQIQQQ", xxh3_or_dummy(residue), padding + len(ccws), padding, len(additional),
                               pxx, 0) + residue


def write(tmp_path: Path, data: bytes, name: str = "model.hef") -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


# ----------------------------------------------------------------------------------------------------------------
# Synthetic HEFs
# ----------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("version", [0, 1, 2, 3])
def test_synthetic_hef_decodes_in_every_header_format(tmp_path, version, no_xxhash):
    info = read_hef(write(tmp_path, wrap(proto(), version)))
    assert info.header_version == version
    assert (info.hw_arch, info.hw_arch_id, info.device_family, info.runs_on) == ("HAILO8P", 1, "HAILO8", ("HAILO8",))
    assert info.sdk_version == "3.29.0"
    assert info.timestamp is not None and info.timestamp.isoformat() == "2024-09-19T18:31:37.807000+00:00"
    (g,) = info.network_groups
    assert (g.name, g.bottleneck_fps, g.latency_s, g.context_count) == ("net", 1234.5, 0.002, 2)
    assert [s.name for s in g.inputs] == ["net/in"]
    # sorted output order from the HEF, inter-context edge dropped
    assert [s.name for s in g.outputs] == ["net/out_b", "net/out_a"]
    a = g.stream("net/out_a")
    assert (a.shape, a.host_shape, a.format_order, a.data_bytes, a.format_type) == ((1, 1, 4), (4,), "NC", 1, "UINT8")
    assert (a.qp_zp, a.qp_scale, a.limvals) == (10.0, 0.5, (-5.0, 122.5))
    assert a.qp_scales == (0.5, 0.25, 0.5, 0.5) and a.per_feature_quant
    assert a.original_names == ("logits", "Gemm_7") and g.stream("Gemm_7") is a
    b = g.stream("net/out_b")
    assert (b.format_type, b.device_format_order, b.format_order, b.context_index) == ("UINT16", "NHCW", "NHWC", 1)
    assert not b.per_feature_quant
    assert [e.name for e in info.extensions] == ["KO Run ASAP (KO_RUN_ASAP)"]
    assert [e.type_index for e in info.optional_extensions] == [11]
    json.dumps(info.to_dict())


def test_checksums_in_v0_and_v1_are_always_verified(tmp_path):
    v0 = read_hef(write(tmp_path, wrap(proto(), 0)))
    v1 = read_hef(write(tmp_path, wrap(proto(), 1), "b.hef"))
    assert [(c.kind, c.state, c.offset) for c in v0.checksums] == [("md5", "valid", 32)]
    assert [(c.kind, c.state, c.offset) for c in v1.checksums] == [("crc32", "valid", 28)]
    assert v1.checksums[0].size == v1.file_size - 28


@pytest.mark.parametrize("version", [2, 3])
def test_xxh3_without_xxhash_is_reported_not_verified_never_valid(tmp_path, version, no_xxhash):
    info = read_hef(write(tmp_path, wrap(proto(), version)))
    assert info.checksums and all(c.state == NOT_VERIFIED and not c.valid for c in info.checksums)
    assert "valid" not in info.checksum_status.replace("not verified", "")


@needs_xxh3
@pytest.mark.parametrize("version", [2, 3])
def test_xxh3_verified_when_an_implementation_exists(tmp_path, version, with_xxh3):
    info = read_hef(write(tmp_path, wrap(proto(), version, padding=16, additional=b"extra" if version == 3 else b"")))
    assert all(c.valid for c in info.checksums)
    assert {c.kind for c in info.checksums} == ({"xxh3_64"} if version == 2 else {"xxh3_64", "proto_xxh3_64"})


def test_v3_without_proto_checksum_checks_the_whole_residue(tmp_path, no_xxhash):
    info = read_hef(write(tmp_path, wrap(proto(), 3, proto_xxh=False)))
    assert [c.kind for c in info.checksums] == ["xxh3_64"]


def test_hailo8l_multi_layout_reads_streams_from_partial_network_groups(tmp_path):
    partial = lambda bitmap: f_bytes(1, group_body()) + f_bytes(2, f_uint(1, bitmap))  # noqa: E731
    ng = f_bytes(1, f_bytes(1, "net")) + f_bytes(7, partial(1)) + f_bytes(7, partial(3))
    info = read_hef(write(tmp_path, wrap(proto(arch=3, groups=[ng]), 1)))
    assert (info.hw_arch, info.device_family, info.runs_on) == ("HAILO8L", "HAILO8L", ("HAILO8L", "HAILO8"))
    (g,) = info.network_groups
    assert g.layouts == 2 and g.name == "net" and g.bottleneck_fps == 1234.5
    assert [s.name for s in g.outputs] == ["net/out_b", "net/out_a"]
    assert info.runs_on_device("hailo8") and info.runs_on_device("hailo8l")


def test_net_flow_core_op_and_network_group_name_field(tmp_path):
    op = f_bytes(1, "core") + f_bytes(4, group_body(name="inner"))  # ProtoHEFOp{name=1, core_op=4}
    ng = f_bytes(8, op) + f_bytes(10, "outer")
    info = read_hef(write(tmp_path, wrap(proto(groups=[ng]), 1)))
    (g,) = info.network_groups
    assert g.name == "outer" and len(g.inputs) == 1 and len(g.outputs) == 2


def test_nms_output_is_reported(tmp_path):
    body = (f_bytes(1, f_bytes(1, "det"))
            + f_bytes(3, context(edge("det/in", 0, 640, 640, 3),
                                 edge("det/nms", 1, 1, 1, 1, nms=(80, 100), fmt=6))))
    (g,) = read_hef(write(tmp_path, wrap(proto(groups=[body]), 1))).network_groups
    nms = g.stream("det/nms")
    assert nms.nms == {"number_of_classes": 80, "max_bboxes_per_class": 100, "bbox_size": 5}
    assert nms.device_format_order == "HAILO_NMS_ON_CHIP"


def test_sdk_version_is_extracted_from_dfc5_strings(tmp_path):
    raw = "sdk-version: 5.1.0, git-branch: HEAD, git-commit: 3b0857d02d"
    info = read_hef(write(tmp_path, wrap(proto(sdk=raw, arch=103, ts=0), 1)))
    assert (info.sdk_version, info.sdk_version_raw, info.timestamp) == ("5.1.0", raw, None)


def test_network_group_lookup(tmp_path):
    info = read_hef(write(tmp_path, wrap(proto(groups=[group_body("a"), group_body("b")]), 1)))
    assert [g.name for g in info.network_groups] == ["a", "b"] and info.network_group("b").name == "b"
    with pytest.raises(HefError, match="2 network groups"):
        info.network_group()
    with pytest.raises(HefError, match="did you mean 'a'"):
        info.network_group("aa")
    with pytest.raises(HefError, match="no stream 'net/ot_a'") as exc:
        info.network_group("a").stream("net/ot_a")
    assert "net/out_a" in exc.value.hint


def test_unknown_arch_runs_nowhere(tmp_path):
    info = read_hef(write(tmp_path, wrap(proto(arch=77), 1)))
    assert (info.hw_arch, info.runs_on, info.device_family) == ("UNKNOWN_77", (), "UNKNOWN")
    with pytest.raises(DeviceError, match="no known device"):
        info.check_runs_on("hailo8")


@pytest.mark.parametrize("hef_arch, device, runs", [  # HailoRT 4.23 is_hef_compatible
    ("HAILO8", "hailo8", False),  # legacy arch id 0: no 4.23 device accepts it
    ("HAILO8P", "hailo8", True), ("HAILO8R", "HAILO8", True),
    ("HAILO8", "hailo8l", False), ("HAILO8P", "hailo8l", False), ("HAILO8R", "hailo8l", False),
    ("HAILO8L", "hailo8", True), ("HAILO8L", "hailo8l", True), ("PROTO__HW_ARCH__HAILO8L", "hailo8l", True),
    ("HAILO15H", "hailo8", False), ("HAILO15H", "hailo10h", True), ("HAILO10H", "hailo8", False),
    ("HAILO15M", "hailo8", False), ("HAILO15M", "hailo15h", True), ("HAILO15L", "hailo8l", False),
    ("PLUTO", "hailo15l", True), ("SAGE_B0", "hailo8", False), ("MARS", "hailo8", False),
    ("UNKNOWN_7", "hailo8", False),
])
def test_hef_runs_on_table(hef_arch, device, runs):
    assert hef_runs_on(hef_arch, device) is runs


def test_legacy_and_hailort5_only_archs_are_named(tmp_path):
    legacy = read_hef(write(tmp_path, wrap(proto(arch=0), 1)))
    assert (legacy.hw_arch, legacy.runs_on) == ("HAILO8", ())
    with pytest.raises(DeviceError, match="legacy HAILO8 arch id 0"):
        legacy.check_runs_on("hailo8")
    mars = read_hef(write(tmp_path, wrap(proto(arch=108), 1)))
    assert (mars.hw_arch, mars.device_family, mars.runs_on) == ("MARS", "HAILO12L", ())
    with pytest.raises(DeviceError, match="HailoRT 5.x-only architecture"):
        mars.check_runs_on("hailo8")


def test_hef_runs_on_unknown_device_is_a_clear_error():
    with pytest.raises(DeviceError, match="unknown device architecture 'hailo9'") as exc:
        hef_runs_on("HAILO8P", "hailo9")
    assert "Hint:" in str(exc.value)


# ----------------------------------------------------------------------------------------------------------------
# Real HEFs
# ----------------------------------------------------------------------------------------------------------------

@needs_shared
def test_real_arcface_hailo8_known_content():
    info = read_hef(ARCFACE_H8)
    assert (info.header_version, info.proto_size, info.ccws_size, info.file_size) == (1, 997_288, 2_506_040, 3_503_356)
    assert (info.hw_arch, info.hw_arch_id, info.device_family) == ("HAILO8P", 1, "HAILO8")
    assert info.sdk_version == "3.29.0" and info.timestamp_ms == 1726770697807
    assert [(c.kind, c.state) for c in info.checksums] == [("crc32", "valid")]
    assert info.runs_on_device("hailo8") and not info.runs_on_device("hailo8l")
    g = info.network_group()
    assert g.name == "arcface_mobilefacenet"
    assert g.bottleneck_fps == pytest.approx(3460.24, abs=0.01) and g.latency_s == pytest.approx(0.00333, abs=1e-5)
    (inp,) = g.inputs
    assert (inp.name, inp.shape, inp.data_bytes, inp.format_type) == (
        "arcface_mobilefacenet/input_layer1", (112, 112, 3), 1, "UINT8")
    assert (inp.qp_scale, inp.qp_zp, inp.limvals) == (1.0, 0.0, (0.0, 255.0))
    assert inp.original_names == ("model_script_layer_normalization1",)
    (out,) = g.outputs
    assert (out.name, out.shape, out.host_shape, out.data_bytes) == ("arcface_mobilefacenet/fc1", (1, 1, 512),
                                                                     (512,), 1)
    assert out.qp_zp == 144.0 and out.qp_scale == pytest.approx(0.016739, rel=1e-4)
    assert out.limvals == pytest.approx((-2.410, 1.858), abs=1e-3)
    assert out.original_names == ("MatMul_95", "BatchNormalization_96")
    assert len(out.qp_scales) == 512 and not out.per_feature_quant  # per-feature list present, all equal
    # dequantization consistency: the limvals are the uint8 range mapped back to reals
    assert (0 - out.qp_zp) * out.qp_scale == pytest.approx(out.limvals[0], abs=1e-4)
    assert (255 - out.qp_zp) * out.qp_scale == pytest.approx(out.limvals[1], abs=1e-4)


@needs_shared
@pytest.mark.parametrize("version", [0, 1, 2, 3])
def test_real_hefs_of_every_header_format(version, no_xxhash):
    info = read_hef(REAL[version])
    assert info.header_version == version and info.network_groups
    g = info.network_groups[0]
    assert g.inputs and g.outputs and all(s.qp_scale for s in (*g.inputs, *g.outputs))
    expected = {0: [("md5", "valid")], 1: [("crc32", "valid")], 2: [("xxh3_64", NOT_VERIFIED)],
                3: [("proto_xxh3_64", NOT_VERIFIED), ("xxh3_64", NOT_VERIFIED)]}[version]
    assert [(c.kind, c.state) for c in info.checksums] == expected
    json.dumps(info.to_dict())


@needs_shared
def test_real_hand_landmark_fmt0():
    info = read_hef(REAL[0])
    g = info.network_group("hand_landmark_lite")
    assert info.sdk_version == "3.25.0" and g.inputs[0].shape == (224, 224, 3)
    assert [s.name for s in g.outputs] == [f"hand_landmark_lite/fc{i}" for i in (1, 4, 3, 2)]
    assert g.stream("Identity_3").shape == (1, 1, 63)


@needs_shared
@needs_xxh3
@pytest.mark.parametrize("version", [2, 3])
def test_real_xxh3_checksums_cover_the_bytes_hailort_says(version, with_xxh3):
    info = read_hef(REAL[version])
    assert info.checksums and all(c.valid for c in info.checksums)
    covered = {c.kind: (c.offset, c.size) for c in info.checksums}
    hsize = {2: 44, 3: 56}[version]
    assert covered["xxh3_64"] == (hsize, info.file_size - hsize)
    if version == 3:
        assert covered["proto_xxh3_64"] == (hsize, info.proto_size)


@needs_shared
def test_real_hailo10h_hef_is_not_runnable_on_hailo8():
    info = read_hef(REAL[3])
    assert (info.hw_arch_id, info.device_family) == (103, "HAILO15H")
    assert "HAILO8" not in info.runs_on and "HAILO10H" in info.runs_on
    assert info.sdk_version == "5.1.0"
    for device in ("hailo8", "hailo8l"):
        assert not info.runs_on_device(device)
        with pytest.raises(DeviceError) as exc:
            info.check_runs_on(device)
        text = str(exc.value)
        assert "HAILO15H" in text and "cannot run" in text and "Note:" in text and "Hint:" in text


# ----------------------------------------------------------------------------------------------------------------
# Corrupt files: each a clear HefError
# ----------------------------------------------------------------------------------------------------------------

def _error(data: bytes, tmp_path: Path, name: str = "bad.hef") -> HefError:
    with pytest.raises(HefError) as exc:
        read_hef(write(tmp_path, data, name))
    err = exc.value
    assert isinstance(err, InputFileError) and err.note and err.hint
    return err


@pytest.mark.parametrize("version", [0, 1, 2, 3])
def test_truncation_at_many_points(tmp_path, version, no_xxhash):
    data = wrap(proto(), version)
    cuts = sorted({0, 1, 4, 11, 12, 20, 27, 31, 43, 55, len(data) // 2, len(data) - 1} - {len(data)})
    for cut in cuts:
        err = _error(data[:cut], tmp_path)
        assert ("empty" if cut == 0 else "truncated") in err.what


@needs_shared
def test_real_hef_truncated(tmp_path):
    data = ARCFACE_H8.read_bytes()
    for cut in (3, 20, 1000, 997_288, len(data) - 1):
        assert "truncated" in _error(data[:cut], tmp_path).what


def test_bad_magic_and_png_renamed(tmp_path):
    assert "not a HEF file" in _error(b"\x02HEF" + wrap(proto(), 1)[4:], tmp_path).what
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
    err = _error(png, tmp_path, "image.hef")
    assert "PNG" in err.what and "magic" in err.note


def test_unknown_header_version(tmp_path):
    data = bytearray(wrap(proto(), 1))
    data[4:8] = struct.pack(">I", 7)
    err = _error(bytes(data), tmp_path)
    assert "header version 7" in err.what


@pytest.mark.parametrize("version, region", [(0, "proto"), (1, "proto"), (1, "ccws")])
def test_flipped_byte_is_a_checksum_mismatch(tmp_path, version, region):
    data = bytearray(wrap(proto(), version))
    hsize = {0: 32, 1: 28}[version]
    pos = hsize + 5 if region == "proto" else len(data) - 10
    data[pos] ^= 0x40
    err = _error(bytes(data), tmp_path)
    assert "checksum mismatch" in err.what and ("md5" if version == 0 else "crc32") in err.what


@needs_xxh3
@pytest.mark.parametrize("version, region, kind", [(2, "proto", "xxh3_64"), (2, "ccws", "xxh3_64"),
                                                   (3, "proto", "proto_xxh3_64"), (3, "ccws", "xxh3_64")])
def test_flipped_byte_is_an_xxh3_mismatch(tmp_path, version, region, kind, with_xxh3):
    data = bytearray(wrap(proto(), version))
    pos = {2: 44, 3: 56}[version] + 5 if region == "proto" else len(data) - 10
    data[pos] ^= 0x01
    err = _error(bytes(data), tmp_path)
    assert f"{kind} checksum mismatch" in err.what


@needs_shared
def test_real_hef_flipped_in_proto_and_in_ccws(tmp_path):
    data = ARCFACE_H8.read_bytes()
    for pos in (28 + 100, 28 + 997_288 + 5000):
        bad = bytearray(data)
        bad[pos] ^= 0xFF
        assert "crc32 checksum mismatch" in _error(bytes(bad), tmp_path).what


@pytest.mark.parametrize("version, offset, fmt, delta", [
    (0, 8, ">I", 1), (1, 8, ">I", 1), (1, 16, ">Q", 1), (2, 20, ">Q", -1), (3, 20, ">Q", 8), (3, 32, ">Q", 3),
])
def test_wrong_sizes_in_header(tmp_path, version, offset, fmt, delta, no_xxhash):
    data = bytearray(wrap(proto(), version, additional=b"x" * 8 if version == 3 else b""))
    (value,) = struct.unpack_from(fmt, data, offset)
    struct.pack_into(fmt, data, offset, value + delta)
    err = _error(bytes(data), tmp_path)
    assert "header describes" in err.what and "expected file size" in err.note


def test_extra_trailing_bytes(tmp_path):
    assert "longer than its header says" in _error(wrap(proto(), 1) + b"\x00", tmp_path).what


def test_v3_padding_larger_than_ccws(tmp_path, no_xxhash):
    data = bytearray(wrap(proto(), 3, padding=4))
    struct.pack_into(">I", data, 28, 10_000)
    assert "padding" in _error(bytes(data), tmp_path).what


def test_empty_file_directory_and_missing_file(tmp_path):
    assert "empty" in _error(b"", tmp_path).what
    with pytest.raises(HefError, match="is a directory"):
        read_hef(tmp_path)
    with pytest.raises(HefError, match="does not exist"):
        read_hef(tmp_path / "nope.hef")


def test_malformed_protobuf_with_valid_checksum(tmp_path):
    body = proto()[:-3] + b"\x0a\xff\x7f"  # a length-delimited field claiming 16 KiB that is not there
    err = _error(wrap(body, 1), tmp_path)
    assert "protobuf is malformed" in err.what and "checksum matched" in err.note


def test_protobuf_without_network_group(tmp_path):
    assert "no network group" in _error(wrap(proto(groups=[]), 0), tmp_path).what


def test_wrong_wire_type_and_bad_utf8(tmp_path):
    header = f_bytes(1, f_uint(1, 1) + f_bytes(3, b"\xff\xfe"))
    assert "UTF-8" in _error(wrap(header + f_bytes(2, group_body()), 1), tmp_path).what
    bad_meta = f_bytes(1, f_bytes(1, "n") + f_uint(4, 5)) + f_bytes(3, context())  # fps as varint: wrong type
    assert "malformed" in _error(wrap(proto(groups=[bad_meta]), 1), tmp_path).what


# ----------------------------------------------------------------------------------------------------------------
# Fuzzing: only HefError may escape, parsing terminates
# ----------------------------------------------------------------------------------------------------------------

SYNTH = {v: wrap(proto(), v, additional=b"AI" if v == 3 else b"") for v in (0, 1, 2, 3)}


def _mutate(data: bytes, draw) -> bytes:
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "truncate", "insert", "delete"]))
        if not out:
            break
        pos = draw(st.integers(0, len(out) - 1))
        if op == "flip":
            out[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "truncate":
            del out[pos:]
        elif op == "insert":
            out[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        else:
            del out[pos:pos + draw(st.integers(1, 8))]
    return bytes(out)


def _parse_or_hef_error(data: bytes) -> None:
    try:
        info = read_hef_bytes(data)
    except HefError as err:
        assert str(err)
    else:
        json.dumps(info.to_dict())


@given(version=st.sampled_from([0, 1, 2, 3]), data=st.data())
def test_fuzz_file_mutations(version, data):
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(hefmod, "_xxh3_64", None)  # v2/v3 then reach the protobuf decoder unverified
        _parse_or_hef_error(_mutate(SYNTH[version], data.draw))


@given(data=st.data())
def test_fuzz_protobuf_behind_a_valid_checksum(data):
    _parse_or_hef_error(wrap(_mutate(proto(), data.draw), 1))


@given(body=st.binary(max_size=300))
def test_fuzz_random_protobuf_bytes(body):
    _parse_or_hef_error(wrap(body, 0))


@needs_shared
@settings(max_examples=10, deadline=None)
@given(data=st.data())
def test_fuzz_real_hef(data):
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(hefmod, "_xxh3_64", None)
        _parse_or_hef_error(_mutate(REAL[data.draw(st.sampled_from([1, 2, 3]))].read_bytes(), data.draw))
