"""``HostPipeline``: Stage 1 on any runner (ORT, emulator, Hailo-8) feeding Stage 2 on the host CPU.

The pipeline takes the ORIGINAL model's feeds and returns the original outputs. Layout is converted here and only
here: a Stage-1 runner that declares NHWC outputs (what HailoRT emits) gets them transposed back to the NCHW that
Stage 2 (an ONNX graph) expects; a Stage-1 runner that declares an NHWC input gets NCHW images transposed for it.
"""
from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import onnx  # noqa: F401  (type of a Stage-2 model)

from hailo_qa.errors import InputDataError
from hailo_qa.runners.base import BackendInfo, BaseRunner, Runner, TensorMeta, nchw_to_nhwc, nhwc_to_nchw
from hailo_qa.runners.onnxrt import OnnxrtRunner


def _to_stage2(name: str, arr: np.ndarray, src: TensorMeta | None, dst: TensorMeta) -> np.ndarray:
    if src is not None and src.layout == "NHWC" and arr.ndim == 4 and dst.layout != "NHWC":
        arr = nhwc_to_nchw(arr)
    if isinstance(dst.shape, tuple) and len(dst.shape) == arr.ndim and any(
            isinstance(d, int) and d > 0 and d != a for d, a in zip(dst.shape, arr.shape)):
        raise InputDataError(f"Stage-1 output '{name}' has shape {arr.shape}",
                             note=f"Stage 2 expects {dst.shape}",
                             hint="the Stage-1 runner's output layout (NHWC vs NCHW) or shape does not match the "
                                  "split; check the runner's output metadata")
    if arr.dtype != dst.dtype:
        arr = arr.astype(dst.dtype)
    return arr


class HostPipeline(BaseRunner):
    """Stage 1 (any runner) → Stage 2 (ONNX Runtime on the host).

    Args:
        stage1: the device-stage runner (not yet activated; the pipeline activates it).
        stage2: Stage-2 ONNX path, or a runner.
        host_feeds: constant feeds for host-only inputs (e.g. DEIMv2's ``orig_target_sizes``), used when the
            caller's feeds lack them. Defaults to none.
        name: defaults to ``pipeline(<stage1 name>)``.

    Attributes:
        last_timings: ``stage1_s``, ``stage2_s``, ``convert_s`` and ``total_s`` of the last inference.
        last_boundary: the Stage-1 outputs of the last inference (in Stage-2 layout).
    """

    def __init__(self, stage1: Runner, stage2: "str | Path | onnx.ModelProto | Runner", *,
                 host_feeds: Mapping[str, np.ndarray] | None = None, name: str | None = None) -> None:
        super().__init__(name or f"pipeline({stage1.name})")
        self.stage1 = stage1
        self.stage2 = stage2 if hasattr(stage2, "infer") else OnnxrtRunner(stage2, name="stage2")
        self.host_feeds = dict(host_feeds or {})
        self.last_timings: dict[str, float] = {}
        self.last_boundary: dict[str, np.ndarray] = {}

    @property
    def backend(self) -> BackendInfo:  # read live: a device runner learns its identity only in __enter__
        s1 = self.stage1.backend
        return BackendInfo(s1.name, s1.version, s1.target, s1.hailo, s1.config,
                           {**dict(s1.details), "host_stage": f"onnxruntime {self.stage2.backend.version}"})

    def _activate(self) -> None:
        self.stage1.__enter__()
        try:
            self.stage2.__enter__()
        except BaseException:
            self.stage1.__exit__(None, None, None)
            raise
        self._s1_in = self.stage1.input_metadata()
        self._s1_out = self.stage1.output_metadata()
        self._s2_in = self.stage2.input_metadata()

    def _deactivate(self) -> None:
        try:
            self.stage2.__exit__(None, None, None)
        finally:
            self.stage1.__exit__(None, None, None)

    def input_metadata(self) -> dict[str, TensorMeta]:
        meta = {}
        for n, m in self._s1_in.items():  # report the stage-1 input in NCHW, as the original model takes it
            meta[n] = TensorMeta(n, m.shape, m.dtype, m.layout)
        for n, m in self._s2_in.items():
            if n not in self._s1_out and n not in meta and n not in self.host_feeds:
                meta[n] = m
        return meta

    def output_metadata(self) -> dict[str, TensorMeta]:
        return self.stage2.output_metadata()

    def infer(self, feeds: Mapping[str, np.ndarray], *, check: bool = False) -> dict[str, np.ndarray]:
        # inputs are checked by the stage runners themselves
        return super().infer(feeds, check=False)

    def _infer(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        t0 = time.perf_counter()
        s1_feeds = {}
        for n, m in self._s1_in.items():
            if n not in feeds:
                raise InputDataError(f"feeds lack the image input '{n}'", note=f"expected {list(self._s1_in)}",
                                     context=self.name)
            x = feeds[n]
            s1_feeds[n] = nchw_to_nhwc(x) if (m.layout == "NHWC" and x.ndim == 4 and x.shape[1] in (1, 3)
                                              and m.shape[-1] in (1, 3) and x.shape[-1] != m.shape[-1]) else x
        t1 = time.perf_counter()
        boundary = self.stage1.infer(s1_feeds)
        t2 = time.perf_counter()
        s2_feeds = {}
        for n, m in self._s2_in.items():
            if n in boundary:
                s2_feeds[n] = _to_stage2(n, boundary[n], self._s1_out.get(n), m)
            elif n in feeds:
                s2_feeds[n] = feeds[n]
            elif n in self.host_feeds:
                s2_feeds[n] = self.host_feeds[n]
            else:
                raise InputDataError(f"Stage 2 needs '{n}', which neither Stage 1 nor the feeds provide",
                                     note=f"Stage-1 outputs: {list(boundary)}; feeds: {list(feeds)}",
                                     hint="pass the host input in the feeds or as host_feeds", context=self.name)
        t3 = time.perf_counter()
        out = self.stage2.infer(s2_feeds)
        t4 = time.perf_counter()
        self.last_boundary = {n: s2_feeds[n] for n in boundary if n in s2_feeds}
        self.last_timings = {"convert_s": (t1 - t0) + (t3 - t2), "stage1_s": t2 - t1, "stage2_s": t4 - t3,
                             "total_s": t4 - t0}
        return out
