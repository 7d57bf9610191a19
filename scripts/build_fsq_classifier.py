#!/usr/bin/env python
"""Build the FSQ behaviour-classifier fixture: a small trained IMU CNN with a finite-scalar-quantization bottleneck.

What it writes (under ``--out``, default ``fixtures/``)::

    models/fsq_behaviour_classifier.onnx   opset 17, input ``imu`` [1, 9, 2, 100] float32, output ``logits`` [1, 10]
    data/fsq_imu_eval.npz                  labelled held-out set: ``x`` float32 [N, 9, 2, 100], ``y`` int64 [N]
    data/fsq_imu_calib.npz                 calibration set: ``x`` float32 [M, 9, 2, 100] (``y`` too, for conformal use)
    data/fsq_imu_labelled.npz              the deployment checklist's labelled set: ``x`` float16 [K, 9, 2, 100]
                                           (exact: every value is on the 1/32 grid in [-4, 4]), ``y`` int64 [K]

The network (BatchNorm is folded into the convolutions at export)::

    Conv2d(9→32, 1×5)+BN+ReLU+MaxPool(1×2) → Conv2d(32→64, 1×5)+BN+ReLU+MaxPool(1×2)
    → Conv2d(64→128, 2×3)+BN+ReLU → GlobalAvgPool → Linear(128→8) "fsq/proj"
    → FSQ: (L−1)/2 · tanh(·) then Round "fsq/round" (straight-through estimator while training) → ÷ (L−1)/2
    → Linear(8→64)+ReLU → Linear(64→10)

The tensor feeding ``fsq/round`` is renamed ``fsq/bounded``: the manifest's explicit split cuts there (Stage 1, the
CNN and projection, goes to the Hailo; the Round and the small MLP head run on the host).

The data are synthetic IMU windows (9 channels: accelerometer, gyroscope, magnetometer × xyz; 2 rows: two sensor
placements; 100 samples at 50 Hz) for 10 behaviour classes that differ in dominant frequency, per-channel
amplitude, harmonic content, inter-placement phase and noise level, with per-window jitter so the task is
learnable but not trivial. Values are quantized to 1/32 (an ADC-like grid) and clipped to [-4, 4] so the npz
files compress below 1 MB.

Everything is seeded: the same torch/NumPy versions give the same files. Needs torch (build-time only; hailo_qa and
its tests never import it). Run::

    python scripts/build_fsq_classifier.py --out fixtures
"""
from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

N_CLASSES = 10
CHANNELS, ROWS, STEPS, RATE_HZ = 9, 2, 100, 50.0
FSQ_DIM, FSQ_LEVELS = 8, 5
QUANT_STEP, CLIP = 1.0 / 32.0, 4.0
CUT_TENSOR = "fsq/bounded"
"""The tensor feeding the Round node: the manifest's split cut."""

CLASS_NAMES = ("resting", "standing", "walking", "trotting", "running", "grazing", "scratching", "shaking",
               "lying_rolling", "jumping")


# ------------------------------------------------------------------------------------------------------------------
# synthetic data
# ------------------------------------------------------------------------------------------------------------------
def _class_table(seed: int = 7) -> dict[str, np.ndarray]:
    """Per-class generative parameters (fixed by ``seed``)."""
    rng = np.random.default_rng(seed)
    # Pairs of classes share most of their signature (walking/trotting, running/jumping, ...) so the task is not
    # trivial: they differ by ~15 % in tempo or by a few channels' amplitudes, under heavy noise and jitter.
    freq = np.array([0.5, 0.6, 1.8, 2.1, 3.0, 1.0, 3.4, 4.0, 0.8, 2.6])          # Hz, dominant rhythm
    amp = 0.8 + rng.uniform(-0.35, 0.35, (N_CLASSES, CHANNELS))                  # per-channel amplitude
    amp[0] *= 0.5                                                                 # resting: quieter
    harm = rng.uniform(0.0, 0.5, N_CLASSES)                                      # 2nd-harmonic weight
    phase = rng.uniform(0, np.pi, N_CLASSES)                                     # phase between placements
    noise = np.array([0.9, 0.9, 1.0, 1.0, 1.1, 1.0, 1.1, 1.2, 1.0, 1.1])        # white-noise std
    offset = rng.normal(0, 0.15, (N_CLASSES, CHANNELS))                          # posture (gravity) offset
    burst = np.array([0, 0, 0, 0, 0, 0.5, 0.3, 0, 0.6, 1.0])                     # random transient bursts
    return {"freq": freq, "amp": amp, "harm": harm, "phase": phase, "noise": noise, "offset": offset,
            "burst": burst}


def make_imu(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` synthetic IMU windows ``x`` float32 [n, 9, 2, 100] and labels ``y`` int64 [n] (balanced, shuffled)."""
    p = _class_table()
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.arange(n) % N_CLASSES).astype(np.int64)
    t = np.arange(STEPS) / RATE_HZ
    f = p["freq"][y] * rng.uniform(0.85, 1.18, n)                                   # tempo jitter
    a = p["amp"][y] * rng.uniform(0.6, 1.4, (n, CHANNELS))                        # intensity jitter
    ph0 = rng.uniform(0, 2 * np.pi, (n, CHANNELS))                                # random start phase
    dph = p["phase"][y] + rng.normal(0, 0.6, n)                                   # placement lag
    w = 2 * np.pi * f[:, None, None, None] * t[None, None, None, :]               # [n,1,1,T]
    row_ph = np.stack([np.zeros(n), dph], axis=1)[:, None, :, None]              # [n,1,2,1]
    base = w + ph0[:, :, None, None] + row_ph
    sig = np.sin(base) + p["harm"][y][:, None, None, None] * np.sin(2 * base + 0.7)
    x = a[:, :, None, None] * sig + p["offset"][y][:, :, None, None] + rng.normal(0, 0.3, (n, CHANNELS, 1, 1))
    # transient bursts (scratching, jumping, ...) at a random time
    center = rng.uniform(10, STEPS - 10, n)
    env = np.exp(-0.5 * ((np.arange(STEPS)[None, :] - center[:, None]) / 4.0) ** 2)  # [n,T]
    x += (p["burst"][y] * rng.uniform(0.5, 2.0, n))[:, None, None, None] * env[:, None, None, :] \
        * rng.choice([-1.0, 1.0], (n, CHANNELS, 1, 1))
    x += rng.normal(0, 1, x.shape) * (p["noise"][y] * rng.uniform(0.8, 1.5, n))[:, None, None, None]
    x = np.clip(np.round(x / QUANT_STEP) * QUANT_STEP, -CLIP, CLIP).astype(np.float32)
    return x, y


# ------------------------------------------------------------------------------------------------------------------
# model
# ------------------------------------------------------------------------------------------------------------------
def build_model():
    import torch
    from torch import nn

    class FSQ(nn.Module):
        """Finite scalar quantization (Mentzer et al., 2023): bound with tanh, round to L levels per dimension."""

        def __init__(self, levels: int) -> None:
            super().__init__()
            self.half = (levels - 1) / 2.0
            self.export = False

        def forward(self, z: torch.Tensor) -> torch.Tensor:
            bounded = torch.tanh(z) * self.half
            if self.export or not self.training:
                q = torch.round(bounded)
            else:  # straight-through estimator: round forward, identity backward
                q = bounded + (torch.round(bounded) - bounded).detach()
            return q / self.half

    class FsqBehaviourClassifier(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.features = nn.Sequential(
                nn.Conv2d(CHANNELS, 32, (1, 5), padding=(0, 2)), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d((1, 2)),
                nn.Conv2d(32, 64, (1, 5), padding=(0, 2)), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d((1, 2)),
                nn.Conv2d(64, 128, (2, 3), padding=(0, 1)), nn.BatchNorm2d(128), nn.ReLU(),
                nn.AdaptiveAvgPool2d(1), nn.Flatten(),
            )
            self.proj = nn.Linear(128, FSQ_DIM)
            self.fsq = FSQ(FSQ_LEVELS)
            self.head = nn.Sequential(nn.Linear(FSQ_DIM, 64), nn.ReLU(), nn.Linear(64, N_CLASSES))

        def forward(self, imu: torch.Tensor) -> torch.Tensor:
            return self.head(self.fsq(self.proj(self.features(imu))))

    return FsqBehaviourClassifier()


def train(model, x: np.ndarray, y: np.ndarray, *, epochs: int, seed: int, log=print) -> None:
    import torch

    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=epochs * ((len(x) + 63) // 64))
    lossf = torch.nn.CrossEntropyLoss()
    for ep in range(epochs):
        model.train()
        perm = torch.randperm(len(x), generator=g)
        total = 0.0
        for i in range(0, len(x), 64):
            idx = perm[i:i + 64]
            opt.zero_grad()
            loss = lossf(model(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        log(f"  epoch {ep + 1:2d}/{epochs}: loss {total / len(x):.4f}")


def predict(model, x: np.ndarray) -> np.ndarray:
    import torch

    model.eval()
    with torch.no_grad():
        return model(torch.from_numpy(x)).numpy()


# ------------------------------------------------------------------------------------------------------------------
# export
# ------------------------------------------------------------------------------------------------------------------
def export_onnx(model, path: Path) -> None:
    """Export (eval mode, constant folding: BN folds into Conv), then give the FSQ nodes/tensors clear names."""
    import onnx
    import torch

    model.eval()
    model.fsq.export = True
    with tempfile.TemporaryDirectory() as td:
        raw = Path(td) / "raw.onnx"
        torch.onnx.export(model, (torch.zeros(1, CHANNELS, ROWS, STEPS),), str(raw), dynamo=False,
                          input_names=["imu"], output_names=["logits"], opset_version=17,
                          do_constant_folding=True, training=torch.onnx.TrainingMode.EVAL)
        m = onnx.load(str(raw))
    g = m.graph
    bad = [n.op_type for n in g.node if n.op_type == "BatchNormalization"]
    if bad:
        raise SystemExit(f"export left {len(bad)} BatchNormalization node(s): BN was not folded")
    rounds = [n for n in g.node if n.op_type == "Round"]
    if len(rounds) != 1:
        raise SystemExit(f"expected exactly one Round node, found {len(rounds)}")
    rnd = rounds[0]
    old = rnd.input[0]
    for n in g.node:  # rename the tensor feeding Round everywhere it appears
        n.input[:] = [CUT_TENSOR if i == old else i for i in n.input]
        n.output[:] = [CUT_TENSOR if o == old else o for o in n.output]
    rnd.name = "fsq/round"
    # the projection: the Gemm (or MatMul) whose weight is [8, 128] / [128, 8]
    inits = {i.name: i for i in g.initializer}
    for n in g.node:
        if n.op_type in ("Gemm", "MatMul") and any(
                tuple(inits[i].dims) in ((FSQ_DIM, 128), (128, FSQ_DIM)) for i in n.input if i in inits):
            n.name = "fsq/proj"
        if n.op_type == "Tanh":
            n.name = "fsq/tanh"
        if n.op_type == "Mul" and CUT_TENSOR in n.output:
            n.name = "fsq/scale"
    m.producer_name = "hailo-qa scripts/build_fsq_classifier.py"
    m.doc_string = ("FSQ behaviour classifier (synthetic IMU, 10 classes). Built by hailo-qa; MIT. "
                    f"Split cut: tensor '{CUT_TENSOR}' (input of node 'fsq/round').")
    onnx.checker.check_model(m, full_check=True)
    _atomic_write(path, m.SerializeToString())


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _save_npz(path: Path, **arrays: np.ndarray) -> None:
    import io

    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    _atomic_write(path, buf.getvalue())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "fixtures",
                    help="fixtures root; writes models/ and data/ under it. Default: %(default)s")
    ap.add_argument("--epochs", type=int, default=20, help="training epochs. Default: %(default)s")
    ap.add_argument("--train-size", type=int, default=8000, help="synthetic training windows. Default: %(default)s")
    ap.add_argument("--labelled-size", type=int, default=2000,
                    help="labelled windows of the deployment checklist (calibration + evaluation splits). "
                         "Default: %(default)s")
    ap.add_argument("--eval-size", type=int, default=320, help="held-out eval windows. Default: %(default)s")
    ap.add_argument("--calib-size", type=int, default=256, help="calibration windows. Default: %(default)s")
    ap.add_argument("--seed", type=int, default=0, help="master seed. Default: %(default)s")
    args = ap.parse_args(argv)

    import onnxruntime as ort
    import torch

    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(2)
    t0 = time.time()
    x_tr, y_tr = make_imu(args.train_size, seed=args.seed + 1)
    x_ev, y_ev = make_imu(args.eval_size, seed=args.seed + 2)
    x_ca, y_ca = make_imu(args.calib_size, seed=args.seed + 3)
    x_lb, y_lb = make_imu(args.labelled_size, seed=args.seed + 4)
    torch.manual_seed(args.seed)
    model = build_model()
    print(f"training on {len(x_tr)} windows ...")
    train(model, x_tr, y_tr, epochs=args.epochs, seed=args.seed)
    train_acc = float(np.mean(predict(model, x_tr).argmax(1) == y_tr))
    torch_logits = predict(model, x_ev)
    torch_acc = float(np.mean(torch_logits.argmax(1) == y_ev))

    onnx_path = args.out / "models" / "fsq_behaviour_classifier.onnx"
    export_onnx(model, onnx_path)
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    ort_logits = np.concatenate([sess.run(["logits"], {"imu": x_ev[i:i + 1]})[0] for i in range(len(x_ev))])
    max_diff = float(np.max(np.abs(ort_logits - torch_logits)))
    ort_acc = float(np.mean(ort_logits.argmax(1) == y_ev))
    if max_diff > 1e-5:
        raise SystemExit(f"onnxruntime differs from torch by {max_diff:.3g} > 1e-5")

    _save_npz(args.out / "data" / "fsq_imu_eval.npz", x=x_ev, y=y_ev)
    _save_npz(args.out / "data" / "fsq_imu_calib.npz", x=x_ca, y=y_ca)
    x16 = x_lb.astype(np.float16)
    if not np.array_equal(x16.astype(np.float32), x_lb):
        raise SystemExit("the labelled set does not round-trip through float16")
    _save_npz(args.out / "data" / "fsq_imu_labelled.npz", x=x16, y=y_lb)
    limits = {"fsq_imu_labelled.npz": 5_000_000}  # 2000 noisy windows: ~7.5 bits/value, 4.4 MB
    for p in (onnx_path, args.out / "data" / "fsq_imu_eval.npz", args.out / "data" / "fsq_imu_calib.npz",
              args.out / "data" / "fsq_imu_labelled.npz"):
        size = p.stat().st_size
        print(f"{p}: {size / 1e6:.3f} MB sha256 {hashlib.sha256(p.read_bytes()).hexdigest()}")
        if size >= limits.get(p.name, 1_000_000):
            raise SystemExit(f"{p} is {size} bytes (>= {limits.get(p.name, 1_000_000)}): lower the set sizes")
    print(f"train accuracy {train_acc:.4f}; held-out accuracy torch {torch_acc:.4f}, onnxruntime {ort_acc:.4f} "
          f"(N={len(y_ev)}); max |ort - torch| = {max_diff:.3g}; data range [{x_ev.min()}, {x_ev.max()}]")
    lb_logits = np.concatenate([sess.run(["logits"], {"imu": x_lb[i:i + 1]})[0] for i in range(len(x_lb))])
    print(f"labelled set (N={len(y_lb)}): onnxruntime accuracy {float(np.mean(lb_logits.argmax(1) == y_lb)):.4f}")
    print(f"split cut tensor: {CUT_TENSOR!r}; done in {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
