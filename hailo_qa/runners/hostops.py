"""Named host operations: steps cut off the device stage and applied on the CPU.

Each is a pure NumPy function with the exact semantics of the ONNX op it replaces, so a host pipeline built from
them is bit-identical to ONNX Runtime running that op (tested in ``tests/test_hostops.py``).
"""
from __future__ import annotations

import numpy as np

from hailo_qa.errors import InputDataError
from hailo_qa.runners.base import BackendInfo, BaseRunner, TensorMeta


def fsq_round(x: np.ndarray) -> np.ndarray:
    """FSQ rounding, as ONNX ``Round``: round half to even, dtype preserved.

    The finite scalar quantization (FSQ) bottleneck of the behaviour classifier ends in ``Round``, which Hailo-8
    cannot run; the split cuts before it and this op finishes the job on the host.
    """
    return np.round(x).astype(x.dtype, copy=False)


HOST_OPS = {"fsq_round": fsq_round}
"""Host ops by name (for manifests and reports)."""


def fsq_quantize(bounded: np.ndarray, levels) -> np.ndarray:
    """FSQ on the host: ``round(x) / ((L − 1) / 2)`` per last-axis dimension, dtype preserved.

    ``bounded`` is the tensor feeding the model's ``Round`` (``tanh(z) · (L − 1) / 2``); ``levels`` holds one odd
    level count per dimension of its last axis. Rounding is ONNX ``Round`` (half to even) and the division is one
    IEEE division in the input dtype, as the exported ``Round → Div`` computes it — so the result is bit-identical
    to the model's own quantizer (checked by :func:`hailo_qa.graph.hoststep.verify_fsq_step`).

    Raises:
        InputDataError: the level count does not match the last axis (e.g. 5 levels for an 8-wide projection).
    """
    lv = np.asarray(levels)
    if lv.ndim != 1 or bounded.shape[-1:] != lv.shape:
        raise InputDataError(f"FSQ host step: {lv.size} levels for a tensor {tuple(bounded.shape)} "
                             f"({bounded.shape[-1] if bounded.ndim else 0} wide)",
                             note="expected one level count per projection dimension (the last axis)",
                             hint="fix [models.<name>.host_step] levels to list one count per dimension")
    half = ((lv - 1) / 2).astype(bounded.dtype)
    return (np.round(bounded) / half).astype(bounded.dtype, copy=False)


HOST_OPS["fsq"] = fsq_quantize


class HostStepRunner(BaseRunner):
    """A Stage-1 runner followed by a named host step: output ``source`` becomes output ``target = fn(source)``.

    The host step runs in NumPy between the device stage and the rest of the host stage (e.g. FSQ rounding between
    the Hailo's projection and the classifier head). Provenance stays the Stage-1 runner's, with the step named.
    """

    def __init__(self, stage1, source: str, target: str, fn, *, step: str) -> None:
        super().__init__(f"{stage1.name}+{step}")
        self.stage1, self.source, self.target, self.fn, self.step = stage1, source, target, fn, step

    @property
    def backend(self) -> BackendInfo:
        s1 = self.stage1.backend
        return BackendInfo(s1.name, s1.version, s1.target, s1.hailo, s1.config,
                           {**dict(s1.details), "host_step": self.step})

    def _activate(self) -> None:
        self.stage1.__enter__()

    def _deactivate(self) -> None:
        self.stage1.__exit__(None, None, None)

    def input_metadata(self) -> dict[str, TensorMeta]:
        return self.stage1.input_metadata()

    def output_metadata(self) -> dict[str, TensorMeta]:
        out = {}
        for n, m in self.stage1.output_metadata().items():
            out[self.target if n == self.source else n] = TensorMeta(self.target, m.shape, m.dtype, m.layout) \
                if n == self.source else m
        return out

    def infer(self, feeds, *, check: bool = False) -> dict[str, np.ndarray]:
        return super().infer(feeds, check=False)  # the Stage-1 runner checks its own feeds

    def _infer(self, feeds) -> dict[str, np.ndarray]:
        out = dict(self.stage1.infer(feeds))
        if self.source not in out:
            raise InputDataError(f"host step '{self.step}': Stage 1 has no output '{self.source}'",
                                 note=f"Stage-1 outputs: {list(out)}", context=self.name)
        out[self.target] = self.fn(out.pop(self.source))
        return out
