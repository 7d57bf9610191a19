"""``hailo-qa compile MODEL``: ONNX → HAR → quantized HAR → HEF through the Hailo Dataflow Compiler."""
from __future__ import annotations

import argparse

HELP = "compile a manifest model (or each variant of a family) to a HEF with the Hailo DFC"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", metavar="MODEL",
                   help="manifest model name, or a family prefix (deimv2 → every deimv2_* variant)")
    p.add_argument("--manifest", metavar="PATH", default=None, help="model manifest. Default: fixtures/models.toml")
    p.add_argument("--out", metavar="DIR", default=None,
                   help="output folder (HARs, HEF, .alls, logs, compile_summary.json). Default: "
                        "<state dir>/compile")
    p.add_argument("--from-har", metavar="QUANTIZED.har", default=None,
                   help="resume from this quantized HAR: skip parse and optimize (one variant only)")
    p.add_argument("--variant", metavar="NAME", action="append", default=[],
                   help="compile only this variant of the family (repeatable), e.g. --variant atto")
    p.add_argument("--config", choices=("int8", "int16_selective", "int16"), default="int8",
                   help="precision config of the model script. Default: %(default)r")
    p.add_argument("--no-split", action="store_true",
                   help="parse the model's ONNX file as it is instead of the split's Stage 1")
    p.add_argument("--no-resume", action="store_true",
                   help="re-run parse and optimize even where a quantized HAR from an earlier run exists")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from hailo_qa import config
    from hailo_qa.hw.compile import compile_specs, select_variants
    from hailo_qa.manifest import load_manifest
    from hailo_qa.runners.dfc import import_dfc

    from hailo_qa.fsutil import check_out_dir, state_subdir

    # a bad --out (a file, read-only) is refused first: it needs no toolchain to be seen
    out = check_out_dir(args.out, "--out") if args.out else state_subdir("compile", "--out")
    import_dfc()  # EnvironmentProblem (exit 2) saying what to install, before any model work
    manifest = load_manifest(args.manifest)
    names = select_variants(manifest.names(), args.model, args.variant)
    specs = [manifest.get(n) for n in names]
    summary = compile_specs(specs, out_dir=out, config=args.config, from_har=args.from_har,
                            resume=not args.no_resume, use_split=not args.no_split)
    print(summary.table())
    print(f"summary: {summary.path} (this run: {summary.run_path})")
    for r in summary.results:
        if not r.ok:
            print(f"\n{r.variant} failed at {r.failed_step}:\n{r.error}")
    return 0 if summary else 1
