"""Knobs of the contract fake (not part of HailoRT): devices, registered HEFs, injected failures, counters."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class FakeDevice:
    device_id: str = "0000:01:00.0"
    arch: str = "HAILO8"
    fw: str = "4.23.0"
    serial: bytes = b"FAKE-SERIAL-0001\x00\x00"
    board: bytes = b"Hailo-8 FAKE\x00"
    product: bytes = b"FAKE M.2\x00"


@dataclass
class FakeStream:
    name: str
    shape: tuple[int, ...]          # without batch, HWC (or (F,))
    qp_scale: float = 1.0
    qp_zp: float = 0.0


@dataclass
class FakeNet:
    inputs: list[FakeStream]
    outputs: list[FakeStream]
    name: str = "fake_net"


@dataclass
class FakeState:
    devices: list[FakeDevice] = field(default_factory=lambda: [FakeDevice()])
    hefs: dict[str, FakeNet] = field(default_factory=dict)
    timeout_on_run: bool = False
    vanish_after_runs: int | None = None   # runs that succeed before the device disappears
    nondeterministic_every: int | None = None  # every k-th run flips one output LSB (to test determinism checks)
    runs: int = 0
    open_vdevices: int = 0
    open_configured: int = 0
    open_devices: int = 0
    scan_error: Exception | None = None


STATE = FakeState()


def reset() -> FakeState:
    global STATE
    STATE.__dict__.update(FakeState().__dict__)
    return STATE
