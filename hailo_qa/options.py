"""Option value parsers shared by the pytest plugin (``--hqa-*``) and the ``hailo-qa`` commands.

Each is an ``argparse`` type: it returns the value or raises ``ArgumentTypeError`` with "Could not parse value:
… Expected …". Import-light (stdlib only), so ``pytest --help`` and ``hailo-qa --help`` stay fast.
"""
from __future__ import annotations

import argparse


def _int_at_least(value: str, low: int, expected: str) -> int:
    try:
        n = int(value)
    except ValueError:
        n = low - 1
    if n < low:
        raise argparse.ArgumentTypeError(f"Could not parse value: {value!r}. Expected {expected}")
    return n


def positive_int(value: str) -> int:
    """An integer >= 1."""
    return _int_at_least(value, 1, "a positive integer, e.g. 64")


def non_negative_int(value: str) -> int:
    """An integer >= 0 (seeds)."""
    return _int_at_least(value, 0, "a non-negative integer")


def sizes_or_none(text: str) -> tuple[int, ...] | None:
    """``"16,64,256"`` → ``(16, 64, 256)`` (sorted, duplicates dropped), or None when any entry is not an int >= 1."""
    parts = [p.strip() for p in str(text).split(",")]
    if not parts or any(not p.isdigit() or int(p) < 1 for p in parts):
        return None
    return tuple(sorted({int(p) for p in parts}))


def sizes(value: str) -> tuple[int, ...]:
    """Comma-separated calibration sizes, e.g. ``16,64,256``."""
    out = sizes_or_none(value)
    if out is None:
        raise argparse.ArgumentTypeError(f"Could not parse value: {value!r}. Expected e.g. '16,64,256'")
    return out
