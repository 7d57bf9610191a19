"""Option value parsers shared by the pytest plugin (``--hqa-*``) and the ``hailo-qa`` commands.

Each is an ``argparse`` type: it returns the value or raises ``ArgumentTypeError`` with "Could not parse value:
… Expected …". Import-light (stdlib only), so ``pytest --help`` and ``hailo-qa --help`` stay fast.
"""
from __future__ import annotations

import argparse
import math

MAX_DIM = 2**31 - 1
"""Largest size of one tensor dim (ONNX Runtime and HailoRT index with int32 in places)."""
MAX_INPUT_ELEMENTS = 2**28
"""Largest input tensor accepted (elements; 1 GiB as float32). Larger shapes are refused before anything is
allocated: a Hailo-8 input is one frame of a few MB, so this is a typo, not a model."""
MAX_BATCH = 4096
"""Largest ``--batch`` accepted."""
MAX_CALIB_SIZE = 65536
"""Largest calibration set accepted (samples). Hailo recommends 1024 and the Model Zoo uses 64-1024; 10**8 is a typo
that would otherwise run for days."""


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


def _int_between(value: str, low: int, high: int, expected: str) -> int:
    n = _int_at_least(value, low, expected)
    if n > high:
        raise argparse.ArgumentTypeError(f"Could not parse value: {value!r}. Expected {expected}")
    return n


def calib_size(value: str) -> int:
    """A calibration set size: an integer in 1..MAX_CALIB_SIZE."""
    return _int_between(value, 1, MAX_CALIB_SIZE, f"a number of samples from 1 to {MAX_CALIB_SIZE}, e.g. 64")


def eval_count(value: str) -> int:
    """How many held-out evaluation inputs: an integer in 1..MAX_CALIB_SIZE (10**8 is a typo that would allocate
    10**8 inputs before the first is used)."""
    return _int_between(value, 1, MAX_CALIB_SIZE, f"a number of inputs from 1 to {MAX_CALIB_SIZE}, e.g. 4")


def non_negative_int(value: str) -> int:
    """An integer >= 0 (row limits)."""
    return _int_at_least(value, 0, "a non-negative integer")


MAX_SEED = 2**32 - 1
"""Largest seed accepted (NumPy's legacy seeding and ONNX Runtime take 32-bit seeds)."""


def seed(value: str) -> int:
    """A random seed: an integer in 0..MAX_SEED."""
    return _int_between(value, 0, MAX_SEED, f"a seed from 0 to {MAX_SEED}")


def sizes_or_none(text: str) -> tuple[int, ...] | None:
    """``"16,64,256"`` → ``(16, 64, 256)`` (sorted, duplicates dropped), or None when any entry is not an int >= 1."""
    parts = [p.strip() for p in str(text).split(",")]
    if not parts or any(not p.isdigit() or not 1 <= int(p) <= MAX_CALIB_SIZE for p in parts):
        return None
    return tuple(sorted({int(p) for p in parts}))


def sizes(value: str) -> tuple[int, ...]:
    """Comma-separated calibration sizes, e.g. ``16,64,256``."""
    out = sizes_or_none(value)
    if out is None:
        raise argparse.ArgumentTypeError(f"Could not parse value: {value!r}. Expected e.g. '16,64,256'")
    return out


def size_problem(shape) -> str:
    """Why ``shape`` is not a usable input shape (non-positive, int32-overflowing or huge), or ``''``."""
    dims = [int(d) for d in shape]
    if any(d < 1 for d in dims):
        return "every dim must be >= 1"
    if any(d > MAX_DIM for d in dims):
        return f"a dim exceeds 2**31 - 1 ({MAX_DIM})"
    n = math.prod(dims)
    if n > MAX_INPUT_ELEMENTS:
        return f"{n:,} elements is more than {MAX_INPUT_ELEMENTS:,}"
    return ""


def batch_size(value: str) -> int:
    """A batch size: an integer in 1..MAX_BATCH."""
    n = _int_at_least(value, 1, f"a batch size from 1 to {MAX_BATCH}, e.g. 1")
    if n > MAX_BATCH:
        raise argparse.ArgumentTypeError(f"Could not parse value: {value!r}. Expected a batch size from 1 to "
                                         f"{MAX_BATCH}, e.g. 1")
    return n


def input_shape(value: str) -> tuple[str, list[int]]:
    """``NAME=1,3,48,320`` → ``(name, dims)``; dims positive, below 2**31 and at most MAX_INPUT_ELEMENTS in all."""
    name, _, dims = str(value).partition("=")
    try:
        shape = [int(d) for d in dims.split(",")]
    except ValueError:
        shape = []
    if not name.strip() or not shape or size_problem(shape):
        why = f" ({size_problem(shape)})" if shape and size_problem(shape) else ""
        raise argparse.ArgumentTypeError(f"Could not parse value: {value!r}{why}. Expected NAME=d0,d1,... e.g. "
                                         f"x=1,3,48,320")
    return name.strip(), shape


def shape_map(pairs: list[tuple[str, list[int]]], option: str = "--shape") -> dict[str, list[int]] | None:
    """The ``--shape`` values as ``{input: dims}`` (None when none); an input given twice is a QAError (the second
    would silently win)."""
    out: dict[str, list[int]] = {}
    for name, dims in pairs:
        if name in out:
            from hailo_qa.errors import QAError

            raise QAError(f"{option} is given twice for input '{name}' ({out[name]} and {dims})",
                          note="expected one shape per input", hint=f"keep one {option} {name}=...")
        out[name] = dims
    return out or None


def verify_count(value: str) -> int:
    """How many random inputs to verify a split on: an integer in 0..1000."""
    n = _int_at_least(value, 0, "a number of inputs from 0 to 1000 (0 skips the check)")
    if n > 1000:
        raise argparse.ArgumentTypeError(f"Could not parse value: {value!r}. Expected a number of inputs from 0 to "
                                         "1000 (0 skips the check)")
    return n
