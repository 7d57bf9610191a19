"""``hailo-qa sweep-calib MODEL --sizes 16,64,256,1024``: quantization metrics versus calibration size.

Writes ``sweep.json``, ``sweep.md`` (the table) and ``sweep.png`` (SNR and worst cosine versus size) to ``--out``,
each atomically. The **knee** is the smallest calibration size whose SNR is within ``--knee-tol`` dB (default 0.5)
of the best SNR of the sweep: beyond it more calibration data buys less than the tolerance. Progress goes to stderr,
one line per size with the elapsed time.
"""
from __future__ import annotations

import argparse

HELP = ("quantize a model's Stage 1 at several calibration sizes; table, plot and the knee (where more data stops "
        "helping)")


def _tolerance(value: str) -> float:
    try:
        x = float(value)
    except ValueError:
        x = -1.0
    if not 0 <= x < float("inf"):  # NaN and inf too: an infinite tolerance makes every size the knee
        raise argparse.ArgumentTypeError(f"Could not parse value: {value!r}. Expected a finite number of dB >= 0, "
                                         "e.g. 0.5")
    return x


def add_arguments(p: argparse.ArgumentParser) -> None:
    from hailo_qa.options import eval_count, seed
    from hailo_qa.quant.emulator import BACKENDS
    from hailo_qa.quant.evaluation import DEFAULT_KNEE_TOL_DB

    p.add_argument("model", metavar="MODEL", help="model name in the manifest")
    p.add_argument("--sizes", metavar="N,N,...", default="16,64,256,1024",
                   help="comma-separated calibration sizes (default 16,64,256,1024)")
    p.add_argument("--config", choices=("int8", "int16_selective", "int16"), default="int8",
                   help="precision config (default int8)")
    p.add_argument("--out", metavar="DIR", default=None,
                   help="folder for sweep.json, sweep.md, sweep.png. Default: $HAILO_QA_STATE_DIR/sweeps/MODEL-CONFIG")
    p.add_argument("--manifest", metavar="PATH", default=None, help="model manifest. Default: fixtures/models.toml")
    p.add_argument("--backend", choices=BACKENDS, default="auto",
                   help="auto (DFC if installed, else ort), ort (hailo-qa's approximation) or dfc (Hailo's)")
    p.add_argument("--knee-tol", metavar="DB", type=_tolerance, default=DEFAULT_KNEE_TOL_DB,
                   help=f"knee = smallest size whose SNR is within this many dB of the best (default "
                        f"{DEFAULT_KNEE_TOL_DB})")
    p.add_argument("--n-eval", metavar="N", type=eval_count, default=4,
                   help="evaluation inputs at least: held-out manifest samples, then random in-range feeds (default 4)")
    p.add_argument("--seed", metavar="S", type=seed, default=0, help="seed of the random evaluation feeds (default 0)")
    p.add_argument("--work-dir", metavar="DIR", default=None,
                   help="cache folder for splits and quantized models. Default: $HAILO_QA_STATE_DIR/work")


def run(args: argparse.Namespace) -> int:
    import sys
    from pathlib import Path

    from hailo_qa import config
    from hailo_qa.manifest import load_manifest
    from hailo_qa.quant.evaluation import parse_sizes, sweep_calibration, write_sweep

    sizes = parse_sizes(args.sizes)  # before loading anything: a typo fails fast
    from hailo_qa.toolchain import require_emulator

    require_emulator(args.backend)  # one refusal before any work
    spec = load_manifest(args.manifest).get(args.model)
    from hailo_qa.fsutil import check_out_dir, state_subdir

    out = (check_out_dir(args.out, "--out") if args.out else
           state_subdir(f"sweeps/{spec.name}-{args.config}", "--out"))
    work = check_out_dir(args.work_dir, "--work-dir") if args.work_dir else state_subdir("work", "--work-dir")
    print(f"sweep-calib {spec.name} [{args.config}]: sizes {', '.join(map(str, sizes))}", file=sys.stderr, flush=True)

    def progress(k: int, total: int, r, elapsed: float) -> None:
        print(f"[{k}/{total}] calib {r.calib_size}: SNR {r.snr_db:.2f} dB, cosine {r.cosine_min:.5f} "
              f"({r.backend_name}; elapsed {elapsed:.1f} s)", file=sys.stderr, flush=True)

    sweep = sweep_calibration(spec, sizes, config=args.config, backend=args.backend, work_dir=work, n_eval=args.n_eval,
                              seed=args.seed, knee_tol_db=args.knee_tol, progress=progress)
    paths = write_sweep(sweep, out)
    print(sweep.table())
    print(f"\nwrote {', '.join(str(p) for p in paths.values())}")
    return 0
