"""A synthetic history shaped like a team's: a build host (emulator, INT8/INT16, calibration sweeps, variants) and
a Pi (device latency), over many runs. Used by the report tests and the report benchmark."""
from __future__ import annotations

import datetime as dt
import math
import random

from hailo_qa.store import history as H

MODELS = ("yunet", "mobilefacenet", "deimv2_atto", "pp_ocr_cls", "mtcnn_onet")


def fill(h: H.History, runs: int, *, seed: int = 0, accept_every: int = 50) -> int:
    """Write ``runs`` runs (alternating build host and Pi, like two CI jobs) into ``h``; returns rows written."""
    rng = random.Random(seed)
    t0 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    total = 0
    for k in range(runs):
        run = f"2026{k:06d}-{rng.randrange(16**6):06x}"
        when = (t0 + dt.timedelta(hours=6 * k)).isoformat(timespec="microseconds")
        rows = []

        def add(model, metric, value, **kw):
            rows.append(H.MetricRow(run_id=run, model=model, metric=metric, value=float(value), time=when,
                                    git_commit=f"{k:040x}"[:40], toolchain={"onnxruntime": "1.32"},
                                    nodeid=f"tests/test_x.py::{model}-{metric}", **kw))
        if k % 2 == 0:  # build host: emulator figures
            for i, m in enumerate(MODELS):
                drift = 0.002 * k * (1 if i % 2 else -1)
                for cfg, base in (("int8", 28 + i), ("int16", 44 + i)):
                    for calib in (16, 64, 256):
                        snr = base - 6 * math.exp(-calib / 48) + drift + rng.gauss(0, 0.15)
                        add(m, "snr_db", snr, target="emulator", config=cfg, calib_size=calib, host="build-host",
                            backend="ort-emulator", backend_version="0.1", stage="stage1")
                    add(m, "cosine_p5", min(1.0, 0.97 + 0.002 * i + rng.gauss(0, 0.001)), target="emulator",
                        config=cfg, calib_size=64, host="build-host", backend="ort-emulator", backend_version="0.1")
                add(m, "node_count", 120 + i, target="float", host="build-host", backend="onnxruntime",
                    backend_version="1.32")  # constant bookkeeping: listed, never plotted as a trend
                if m == "mobilefacenet":
                    for variant, tar in (("v1", 0.962), ("v2", 0.975)):
                        add(m, "tar_at_far1e-3", tar + rng.gauss(0, 0.002), variant=variant, target="emulator",
                            config="int8", calib_size=64, host="build-host", backend="ort-emulator",
                            backend_version="0.1")
        else:  # the Pi: device latency
            for i, m in enumerate(MODELS):
                add(m, "latency_p95_ms", 3 + i + rng.gauss(0, 0.05), target="hailo8", config="int8", host="pi-5",
                    backend="hailort", backend_version="4.23", hailo=True, device="0000:01:00.0")
        h.record_many(rows)
        total += len(rows)
        if accept_every and k % accept_every == 0:
            h.accept(run)
    return total
