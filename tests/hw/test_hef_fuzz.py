"""Fuzzing the HEF reader with Hypothesis: whatever the bytes, :func:`read_hef_bytes` returns a ``HefInfo`` or raises
the suite's own :class:`~hailo_qa.hw.hef.HefError` (a QAError) — never another exception, never a hang.

Inputs: arbitrary bytes; a valid header magic followed by arbitrary bytes; and real HEFs (``../shared/hef``, header
and protobuf region) truncated and with bytes overwritten. The ``slow`` test runs 10 000 examples (CI runs it:
about a minute on a shared 2-core runner); the quick one runs 300 with every run.
"""
from __future__ import annotations

import functools
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hailo_qa.config import SHARED_DIR
from hailo_qa.errors import QAError
from hailo_qa.hw.hef import read_hef_bytes

HEF_FILES = sorted((SHARED_DIR / "hef").glob("*.hef")) if (SHARED_DIR / "hef").is_dir() else []
PREFIX = 16 * 1024  # the header and the start of the protobuf: where the reader decides; keeps each example cheap


@functools.cache
def _seeds() -> tuple[bytes, ...]:
    return tuple(p.read_bytes()[:PREFIX] for p in HEF_FILES)


@st.composite
def mutated_hef(draw) -> bytes:
    seeds = _seeds()
    if not seeds:
        base = bytearray(b"\x01HEF" + struct.pack("<I", draw(st.integers(0, 5))) + draw(st.binary(max_size=200)))
    else:
        base = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(0, 8))):
        if not base:
            break
        pos = draw(st.integers(0, min(len(base) - 1, 4096 if draw(st.booleans()) else len(base) - 1)))
        base[pos] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        base = base[: draw(st.integers(0, len(base)))]
    return bytes(base)


HEF_BYTES = st.one_of(st.binary(max_size=512),
                      st.binary(max_size=512).map(lambda b: b"\x01HEF" + b),
                      mutated_hef())


def _read(data: bytes) -> None:
    try:
        read_hef_bytes(data)
    except QAError as err:
        assert str(err).strip(), "an error without a message"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(HEF_BYTES)
def test_hef_reader_raises_only_its_own_error(data):
    _read(data)


@pytest.mark.slow
@settings(max_examples=10_000, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(HEF_BYTES)
def test_hef_reader_fuzz_10000(data):
    _read(data)
