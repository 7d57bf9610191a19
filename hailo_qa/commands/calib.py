"""``hailo-qa calib MODEL``: build and validate a model's calibration set and print its summary."""
from __future__ import annotations

import argparse

from hailo_qa.options import calib_size, seed

HELP = "build and validate a model's calibration set; print count, shape, per-channel stats, real vs augmented"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", metavar="MODEL", help="model name in the manifest")
    p.add_argument("--manifest", metavar="PATH", default=None, help="model manifest. Default: fixtures/models.toml")
    p.add_argument("--size", metavar="N", type=calib_size, default=None,
                   help="number of samples. Default: the first of the manifest's calibration.sizes")
    p.add_argument("--seed", metavar="S", type=seed, default=None,
                   help="sampling/augmentation seed. Default: the manifest's calibration.seed")
    p.add_argument("--source", metavar="PATH", default=None,
                   help="calibration source (npy folder, image folder/glob, .npz). Default: the manifest's")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")


def run(args: argparse.Namespace) -> int:
    import json

    from hailo_qa.manifest import load_manifest
    from hailo_qa.quant.calib import calib_set_for_model

    spec = load_manifest(args.manifest).get(args.model)
    size = args.size or spec.calibration.sizes[0]
    cs = calib_set_for_model(spec, size=size, seed=args.seed, source=args.source)
    summary = cs.summary()
    print(json.dumps(summary.to_dict(), indent=2) if args.json else str(summary))
    return 0
