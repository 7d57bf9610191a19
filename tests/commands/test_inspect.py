"""``hailo-qa inspect``: table, JSON, ``--device-arch`` exit codes, clear errors for bad files."""
from __future__ import annotations

import hashlib
import json
import struct
import zlib

import pytest

from hailo_qa.cli import main
from hailo_qa.config import SHARED_DIR

HEF_DIR = SHARED_DIR / "hef"
H8 = HEF_DIR / "arcface_mobilefacenet_hailo8_fmt1.hef"
H10 = HEF_DIR / "arcface_mobilefacenet_hailo10h_fmt3.hef"
needs_shared = pytest.mark.skipif(not (H8.is_file() and H10.is_file()),
                                  reason=f"shared HEFs not found under {HEF_DIR} (set HAILO_QA_SHARED)")


def _v(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _u(num: int, value: int) -> bytes:
    return _v(num << 3) + _v(value)


def _b(num: int, value: bytes | str) -> bytes:
    raw = value.encode() if isinstance(value, str) else value
    return _v(num << 3 | 2) + _v(len(raw)) + raw


def _f(num: int, value: float) -> bytes:
    return _v(num << 3 | 5) + struct.pack("<f", value)


def _edge(name: str, direction: int, shape, zp: float, scale: float, originals=()) -> bytes:
    base = _u(1, shape[0]) + _u(3, shape[1]) + _u(5, shape[2]) + _u(12, 1)
    numeric = _f(1, zp) + _f(2, scale) + _f(3, (0 - zp) * scale) + _f(4, (255 - zp) * scale)
    info = _b(1, name) + _b(2, base) + _b(3, numeric) + b"".join(_b(5, o) for o in originals)
    return _u(1, direction) + _b(3, info)


def synthetic_hef(arch: int, version: int = 1) -> bytes:
    meta = _b(1, "toy") + _v(4 << 3 | 1) + struct.pack("<d", 500.0) + _v(6 << 3 | 1) + struct.pack("<d", 0.004)
    ctx = _b(3, _b(2, _edge("toy/in", 0, (64, 64, 3), 0, 1, ("input",)))
             + _b(2, _edge("toy/out", 1, (1, 1, 10), 128, 0.05, ("logits",))))
    body = (_b(1, _u(1, arch) + _u(2, 1700000000000) + _b(3, "3.28.0"))
            + _b(2, _b(1, meta) + _b(3, ctx) + _b(4, "toy/out")))
    head = struct.pack(">III", 0x01484546, version, len(body))
    if version == 0:
        return head + struct.pack(">I16s", 0, hashlib.md5(body).digest()) + body
    ccws = b"\x01" * 32
    return head + struct.pack(">IQI", zlib.crc32(body + ccws), len(ccws), 0) + body + ccws


@pytest.fixture
def toy_h8(tmp_path):
    p = tmp_path / "toy_h8.hef"
    p.write_bytes(synthetic_hef(arch=1))
    return p


def test_table_shows_arch_runs_on_sdk_checksum_and_streams(toy_h8, capsys):
    assert main(["inspect", str(toy_h8)]) == 0
    out = capsys.readouterr().out
    for text in ("HAILO8P (hw_arch 1)", "device family HAILO8", "Runs on", "3.28.0", "2023-11-14 22:13:20 UTC",
                 "crc32 valid", "Network group 'toy'", "500.0 fps", "4.000 ms", "toy/in", "64x64x3", "toy/out",
                 "1x1x10", "128", "0.05", "[-6.4, 6.35]", "logits"):
        assert text in out, text


def test_json_is_the_full_record(toy_h8, capsys):
    assert main(["inspect", str(toy_h8), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert (doc["hw_arch"], doc["device_family"], doc["runs_on"]) == ("HAILO8P", "HAILO8", ["HAILO8"])
    (g,) = doc["network_groups"]
    assert g["outputs"][0]["qp_zp"] == 128 and g["outputs"][0]["original_names"] == ["logits"]
    assert doc["checksums"][0] == {**doc["checksums"][0], "kind": "crc32", "valid": True}
    assert "device_check" not in doc


def test_device_arch_ok_and_refused(tmp_path, toy_h8, capsys):
    assert main(["inspect", str(toy_h8), "--device-arch", "hailo8"]) == 0
    assert "OK: runs on hailo8" in capsys.readouterr().out
    assert main(["inspect", str(toy_h8), "--device-arch", "hailo8l"]) == 1
    err = capsys.readouterr().err
    assert "cannot run on a HAILO8L device" in err and "hw_arch='hailo8l'" in err
    h8l = tmp_path / "toy_h8l.hef"
    h8l.write_bytes(synthetic_hef(arch=3, version=0))
    assert main(["inspect", str(h8l), "--device-arch", "hailo8"]) == 0
    assert main(["inspect", str(h8l), "--device-arch", "hailo8l"]) == 0


def test_device_arch_refusal_in_json(toy_h8, capsys):
    assert main(["inspect", str(toy_h8), "--json", "--device-arch", "hailo8l"]) == 1
    captured = capsys.readouterr()
    check = json.loads(captured.out)["device_check"]
    assert check["runs"] is False and "HAILO8P" in check["reason"]
    assert "cannot run" in captured.err


@pytest.mark.parametrize("content, message", [
    (b"", "is empty"), (b"\x89PNG\r\n\x1a\n" + bytes(40), "PNG"), (b"\x01HEF\x00\x00\x00\x01", "truncated"),
])
def test_bad_files_exit_2_with_note_and_hint(tmp_path, capsys, content, message):
    p = tmp_path / "bad.hef"
    p.write_bytes(content)
    assert main(["inspect", str(p)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Note:" in err and "Hint:" in err


def test_missing_file_and_directory(tmp_path, capsys):
    assert main(["inspect", str(tmp_path / "missing.hef")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["inspect", str(tmp_path)]) == 2
    assert "is a directory" in capsys.readouterr().err


def test_unknown_device_arch_is_an_argparse_error(toy_h8, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["inspect", str(toy_h8), "--device-arch", "hailo9"])
    assert exc.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


@needs_shared
def test_real_hailo10h_refused_on_hailo8(capsys):
    assert main(["inspect", str(H10), "--device-arch", "hailo8"]) == 1
    captured = capsys.readouterr()
    assert "HAILO15H" in captured.out and "5.1.0" in captured.out
    assert "not verified (install xxhash)" in captured.out or "xxh3_64 valid" in captured.out
    assert "cannot run on a HAILO8 device" in captured.err


@needs_shared
def test_real_hailo8_accepted(capsys):
    assert main(["inspect", str(H8), "--device-arch", "hailo8"]) == 0
    out = capsys.readouterr().out
    assert "arcface_mobilefacenet/fc1" in out and "MatMul_95, BatchNormalization_96" in out
    assert "crc32 valid" in out
