"""Knobs of the contract fake (not part of HailoRT): devices, registered HEFs, injected failures, counters."""
from __future__ import annotations

import threading
from dataclasses import dataclass, field


@dataclass
class FakeDevice:
    device_id: str = "0000:01:00.0"
    arch: str = "HAILO8"
    fw: str = "4.23.0"     # printed by HailoRT as '4.23.0 (release,app,extended context switch buffer)'
    serial: bytes = b"FAKE-SERIAL-0001\x00\x00"
    board: bytes = b"Hailo-8 FAKE\x00"
    product: bytes = b"FAKE M.2\x00"


@dataclass
class FakeStream:
    name: str
    shape: tuple[int, ...]          # vstream shape without batch: HWC, (F,) for NC
    qp_scale: float = 1.0
    qp_zp: float = 0.0
    order: str = ""                 # FormatOrder name; defaults to NHWC (rank 3) or NC (rank 1)
    data_bytes: int = 1
    nms: tuple[int, int] | None = None   # (number_of_classes, max_bboxes_per_class) for an NMS output
    qp_zps: tuple[float, ...] = ()       # per-feature encodings (OUTPUT_SCALE_PER_FEATURE)
    qp_scales: tuple[float, ...] = ()

    def __post_init__(self):
        if not self.order:
            self.order = "NC" if len(self.shape) == 1 else "NHWC"


@dataclass
class FakeNet:
    """One network group (a HEF with one group when registered directly)."""

    inputs: list[FakeStream]
    outputs: list[FakeStream]
    name: str = "fake_net"
    bottleneck_fps: float = 1000.0
    # optional stand-in computation: {input name: array (shape of the stream)} -> {output name: float array}; replaces
    # the synthetic formula (tests run a float model "on the device" with it, and inject session drift into it)
    compute: object = None

    @property
    def groups(self) -> dict[str, "FakeNet"]:
        return {self.name: self}


@dataclass
class FakeHef:
    """A HEF with several network groups."""

    nets: list[FakeNet]

    @property
    def groups(self) -> dict[str, FakeNet]:
        return {n.name: n for n in self.nets}


@dataclass
class FakeState:
    devices: list[FakeDevice] = field(default_factory=lambda: [FakeDevice()])
    hefs: dict[str, FakeNet | FakeHef] = field(default_factory=dict)
    timeout_on_run: bool = False
    vanish_after_runs: int | None = None   # runs that succeed before the device disappears
    hang_on_run: threading.Event | None = None  # run() blocks until this is set (a driver call that never returns)
    nondeterministic_every: int | None = None  # every k-th run flips one output LSB (to test determinism checks)
    session_drift: float = 0.0  # each configure() after the first shifts compute() outputs by this × session index
    configures: int = 0
    runs: int = 0
    frames_seen: list[float] = field(default_factory=list)
    open_vdevices: int = 0
    open_configured: int = 0
    open_devices: int = 0
    last_scheduler: object = None
    scan_error: Exception | None = None


STATE = FakeState()


def reset() -> FakeState:
    global STATE
    STATE.__dict__.update(FakeState().__dict__)
    return STATE
