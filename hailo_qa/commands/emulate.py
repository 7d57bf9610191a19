"""``hailo-qa emulate MODEL``: quantize a model's Stage 1 once and compare it with the float Stage 1."""
from __future__ import annotations

import argparse

from hailo_qa.options import calib_size, eval_count, positive_int, seed

HELP = ("quantize a model's Stage 1 on an emulator (DFC or the built-in ORT approximation); print float-vs-quantized "
        "metrics")


def add_arguments(p: argparse.ArgumentParser) -> None:
    from hailo_qa.quant.emulator import BACKENDS

    p.add_argument("model", metavar="MODEL", help="model name in the manifest")
    p.add_argument("--manifest", metavar="PATH", default=None, help="model manifest. Default: fixtures/models.toml")
    p.add_argument("--config", choices=("int8", "int16_selective", "int16"), default="int8",
                   help="precision config (default int8)")
    p.add_argument("--calib-size", metavar="N", type=calib_size, default=None,
                   help="calibration samples. Default: the first of the manifest's calibration.sizes")
    p.add_argument("--backend", choices=BACKENDS, default="auto",
                   help="auto (DFC if installed, else ort), ort (hailo-qa's approximation) or dfc (Hailo's)")
    p.add_argument("--n-eval", metavar="N", type=eval_count, default=4,
                   help="held-out evaluation inputs (see hailo_qa.quant.evaluation; default 4)")
    p.add_argument("--seed", metavar="S", type=seed, default=0,
                   help="seed of random evaluation feeds, for models without samples (default 0)")
    p.add_argument("--work-dir", metavar="DIR", default=None,
                   help="cache folder for splits and quantized models. Default: $HAILO_QA_STATE_DIR/work")
    p.add_argument("--suggest-int16", metavar="K", type=positive_int, nargs="?", const=0, default=None,
                   help="also find the K noisiest layers (default: quantization.suggest_k) with the noise analysis "
                        "and measure each alone and together in 16-bit on the held-out inputs; only a set that "
                        "raised SNR is called a suggestion (HAR layer names on the DFC)")
    p.add_argument("--resize-study", action="store_true",
                   help="calibrate with stretch and with letterbox resizing and evaluate each both ways (matched "
                        "and mismatched preprocessing, per-output SNR/cosine, detection agreement)")
    p.add_argument("--calib-source", metavar="SRC", default=None,
                   help="calibration source instead of the manifest's (folder, glob, .npz; 'shared:x' allowed)")
    p.add_argument("--eval-samples", metavar="GLOB", default=None,
                   help="evaluation photos instead of the manifest's samples (calibration photos are left out)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args: argparse.Namespace) -> int:
    """Print the metric table (or JSON). Exit 1 when a manifest gate fails (the same gates as the pytest suite)."""
    import json

    from hailo_qa import config
    from hailo_qa.manifest import load_manifest
    from hailo_qa.quant.evaluation import evaluate_quantization

    spec = load_manifest(args.manifest).get(args.model)
    from hailo_qa.toolchain import require_emulator

    require_emulator(args.backend)  # one refusal before any work
    size = args.calib_size or spec.calibration.sizes[0]
    from hailo_qa.fsutil import check_out_dir, state_subdir

    work = check_out_dir(args.work_dir, "--work-dir") if args.work_dir else state_subdir("work", "--work-dir")
    spec = _with_sources(spec, args)
    if getattr(args, "resize_study", False):
        from hailo_qa.quant.resize import resize_study

        study = resize_study(spec, calib_size=size, config=args.config, backend=args.backend, work_dir=work,
                             n_eval=args.n_eval)
        print(json.dumps(study.to_dict(), indent=2) if args.json else study.table())
        return 1 if study.cell(study.declared, study.declared).failed else 0
    result = evaluate_quantization(spec, config=args.config, calib_size=size, backend=args.backend, work_dir=work,
                                   n_eval=args.n_eval, seed=args.seed)
    suggestion = None
    k = getattr(args, "suggest_int16", None)
    if k is not None:
        from hailo_qa.quant.suggest import measure_int16_suggestion

        suggestion = measure_int16_suggestion(spec, calib_size=size, backend=args.backend, work_dir=work,
                                              k=k or None, n_eval=args.n_eval, seed=args.seed)
    if args.json:
        out = result.to_dict()
        if suggestion is not None:
            out["int16_suggestion"] = suggestion.to_dict()
        print(json.dumps(out, indent=2))
    else:
        print(result.table())
        if suggestion is not None:
            print()
            print(suggestion.table())
    return 1 if result.failed else 0


def _with_sources(spec, args: argparse.Namespace):
    """``spec`` with ``--calib-source`` / ``--eval-samples`` applied (paths resolve against the current folder)."""
    import dataclasses
    import glob
    from pathlib import Path

    from hailo_qa.errors import InputFileError
    from hailo_qa.manifest import resolve_path

    src, pattern = getattr(args, "calib_source", None), getattr(args, "eval_samples", None)
    if src:
        spec = dataclasses.replace(spec, calibration=dataclasses.replace(spec.calibration, source=str(
            resolve_path(src, Path.cwd()))))
    if pattern:
        hits = sorted(Path(h) for h in glob.glob(str(resolve_path(pattern, Path.cwd())), recursive=True))
        files = [h for h in hits if h.is_file()]
        if not files:
            raise InputFileError(f"--eval-samples '{pattern}' matches no file", note="expected image files (a glob)",
                                 hint="quote the glob so the shell does not expand it, e.g. 'photos/*.jpg'")
        spec = dataclasses.replace(spec, samples=tuple(files))
    return spec
