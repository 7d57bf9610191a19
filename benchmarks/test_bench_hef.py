"""HEF reader cost against its floor (reading the file and checksumming it), measured in one run.

Run with ``python -m pytest benchmarks/test_bench_hef.py --benchmark-enable``. The ratio ``read_hef`` /
``read+crc32`` says how much the protobuf decoding adds on top of I/O and checksum.
"""
from __future__ import annotations

import zlib

import pytest

from hailo_qa.config import SHARED_DIR
from hailo_qa.hw.hef import read_hef

HEF = SHARED_DIR / "hef" / "arcface_mobilefacenet_hailo8_fmt1.hef"
pytestmark = pytest.mark.skipif(not HEF.is_file(), reason=f"shared HEF {HEF} not found (set HAILO_QA_SHARED)")


def test_bench_read_and_crc_floor(benchmark):
    result = benchmark(lambda: zlib.crc32(memoryview(HEF.read_bytes())[28:]))
    assert result == int(read_hef(HEF).checksums[0].expected, 16)


def test_bench_read_hef(benchmark):
    info = benchmark(read_hef, HEF)
    assert info.network_groups[0].outputs[0].shape == (1, 1, 512)
