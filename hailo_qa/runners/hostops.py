"""Named host operations: steps cut off the device stage and applied on the CPU.

Each is a pure NumPy function with the exact semantics of the ONNX op it replaces, so a host pipeline built from
them is bit-identical to ONNX Runtime running that op (tested in ``tests/test_hostops.py``).
"""
from __future__ import annotations

import numpy as np


def fsq_round(x: np.ndarray) -> np.ndarray:
    """FSQ rounding, as ONNX ``Round``: round half to even, dtype preserved.

    The finite scalar quantization (FSQ) bottleneck of the behaviour classifier ends in ``Round``, which Hailo-8
    cannot run; the split cuts before it and this op finishes the job on the host.
    """
    return np.round(x).astype(x.dtype, copy=False)


HOST_OPS = {"fsq_round": fsq_round}
"""Host ops by name (for manifests and reports)."""
