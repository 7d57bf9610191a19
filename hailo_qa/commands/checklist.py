"""hailo-qa checklist MODEL [--target float|split|emulator|hailo8 …] [--md FILE] [--json]"""
from __future__ import annotations

HELP = ("the classifier deployment checklist (before export, after export, deployment: accuracy, ECE with "
        "temperature scaling, conformal coverage, HEF size, latency) on float, split, emulator and hailo8")


def add_arguments(p) -> None:
    p.add_argument("model", metavar="MODEL", help="a classification model of the manifest (with a [deploy] section)")
    p.add_argument("--target", action="append", choices=("float", "split", "emulator", "hailo8"), default=None,
                   help="target(s) to measure on (repeatable). Default: all four (hailo8 lines say why they are "
                        "skipped when there is no device)")
    p.add_argument("--manifest", metavar="PATH", default=None, help="model manifest. Default: fixtures/models.toml")
    p.add_argument("--config", choices=("int8", "int16_selective", "int16"), default="int8",
                   help="precision config of the emulator / model script (default int8)")
    p.add_argument("--calib-size", type=int, default=None, metavar="N",
                   help="calibration samples. Default: the model's first calibration.sizes entry")
    p.add_argument("--calib-source", metavar="SOURCE", default=None,
                   help="override calibration.source ('random' for uniform random in-range data, as the DFC's "
                        "--use-random-calib-set). Default: the manifest's")
    p.add_argument("--compare-random-calib", action="store_true",
                   help="also run the emulator calibrated on random data and show it beside the real set")
    p.add_argument("--backend", choices=("auto", "ort", "dfc"), default="auto",
                   help="emulator: auto (the DFC if installed, else hailo-qa's built-in ORT approximation)")
    p.add_argument("--device", metavar="ID", default=None, help="HailoRT device id. Default: the first one scanned")
    p.add_argument("--work-dir", metavar="DIR", default=None, help="cache for splits and quantized models")
    p.add_argument("--history", metavar="PATH", default=None,
                   help="history database, or 'off'. Default: .hailo_qa/history.sqlite")
    p.add_argument("--md", metavar="FILE", default=None, help="also write the checklist as Markdown to FILE")
    p.add_argument("--json", action="store_true", help="print the checklist as JSON")


def run(args) -> int:
    import json
    import sys
    from pathlib import Path

    from hailo_qa import config
    from hailo_qa.errors import ManifestError
    from hailo_qa.fsutil import atomic_write
    from hailo_qa.jobs.checklist import TARGETS, record, run_checklist
    from hailo_qa.manifest import load_manifest

    if args.md:  # a bad --md fails now, not after the whole checklist has run
        from hailo_qa.errors import InputFileError
        from hailo_qa.fsutil import check_out_dir

        if Path(args.md).is_dir():
            raise InputFileError(f"--md '{args.md}' is a folder", note="expected a Markdown file path",
                                 hint="name a file, e.g. --md checklist.md")
        check_out_dir(Path(args.md).parent, "--md's folder")
    spec = load_manifest(args.manifest).get(args.model)
    if args.calib_size is not None and args.calib_size < 1:
        raise ManifestError(f"--calib-size {args.calib_size} is not positive", note="expected e.g. 64")
    from hailo_qa.fsutil import check_out_dir, state_subdir

    work = check_out_dir(args.work_dir, "--work-dir") if args.work_dir else state_subdir("work", "--work-dir")
    if args.history != "off" and not args.history and config.HISTORY_DB.parent == config.STATE_DIR:
        state_subdir("", "--history PATH (or --history off)")  # the history file's folder, before the work
    targets = tuple(dict.fromkeys(args.target)) if args.target else TARGETS
    cl = run_checklist(spec, targets=targets, work_dir=work, config=args.config, backend=args.backend,
                       calib_size=args.calib_size, calib_source=args.calib_source, device=args.device,
                       compare_random_calib=args.compare_random_calib,
                       progress=lambda m: print(f"{spec.name}: {m}", file=sys.stderr, flush=True))
    print(json.dumps(cl.to_dict(), indent=2, ensure_ascii=False) if args.json else cl.render())
    if args.md:
        atomic_write(Path(args.md), cl.to_markdown().encode())
        print(f"wrote {args.md}", file=sys.stderr)
    if args.history != "off" and cl.reports:
        path = Path(args.history) if args.history else config.HISTORY_DB
        run_id = record(cl, path, config=args.config, calib_source=args.calib_source or "")
        print(f"recorded in {path} as run {run_id}", file=sys.stderr)
    return 1 if cl.failed else 0
