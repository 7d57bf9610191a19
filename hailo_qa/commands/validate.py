"""hailo-qa validate [--manifest PATH] [--models a,b] [--config int8] [--calib-size N] [--history PATH|off]"""
from __future__ import annotations

HELP = ("the main job: lint + split + bit-exact proof + quantization emulation of every manifest model, "
        "recorded in the history")


def add_arguments(p) -> None:
    from hailo_qa.options import calib_size

    p.add_argument("--manifest", metavar="PATH", default=None, help="model manifest. Default: fixtures/models.toml")
    p.add_argument("--models", metavar="NAMES", default=None, help="comma-separated subset of manifest models")
    p.add_argument("--config", choices=("int8", "int16_selective", "int16"), default="int8",
                   help="precision config to emulate (default int8)")
    p.add_argument("--calib-size", type=calib_size, default=None, metavar="N",
                   help="calibration samples. Default: each model's first calibration.sizes entry")
    p.add_argument("--backend", choices=("auto", "ort", "dfc"), default="auto",
                   help="emulator: auto (the DFC if installed, else hailo-qa's built-in ORT approximation)")
    p.add_argument("--history", metavar="PATH|URL", default=None,
                   help="history: an SQLite file, a postgresql://... URL, or 'off'. Default: HAILO_QA_HISTORY, "
                        "else .hailo_qa/history.sqlite")
    p.add_argument("--work-dir", metavar="DIR", default=None, help="cache for splits and quantized models")
    p.add_argument("--no-simplify", action="store_true",
                   help="split every model as given (dynamic dims pinned, no constant folding)")
    p.add_argument("--json", action="store_true", help="print the results as JSON (the only thing on stdout)")
    p.add_argument("--summary-dir", metavar="DIR", default=None,
                   help="where each run's summary (validate-<run>.json, never overwritten) goes. Default: "
                        ".hailo_qa/validate")


def run(args) -> int:
    import contextlib
    import json
    import sys
    from pathlib import Path

    from hailo_qa import config
    from hailo_qa.errors import ManifestError
    from hailo_qa.fsutil import check_out_dir
    from hailo_qa.jobs.validate import record, render, validate, write_summary
    from hailo_qa.manifest import load_manifest
    from hailo_qa.store.history import new_run_id

    manifest = load_manifest(args.manifest)
    from hailo_qa.toolchain import require_emulator

    require_emulator(args.backend)  # one refusal before any work
    specs = list(manifest)
    if args.models:
        names = [n.strip() for n in args.models.split(",") if n.strip()]
        if not names:
            raise ManifestError(f"--models {args.models!r} names no model", note="expected comma-separated manifest "
                                f"model names, e.g. {','.join(manifest.names()[:2])}", hint="or omit --models for all")
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ManifestError(f"--models {args.models!r} names {', '.join(repr(n) for n in twice)} more than once",
                                note="expected each model once (it would be validated and recorded twice)",
                                hint="drop the repeated name")
        specs = [manifest.get(n) for n in names]
    if args.calib_size is not None and args.calib_size < 1:
        raise ManifestError(f"--calib-size {args.calib_size} is not positive", note="expected e.g. 16")
    from hailo_qa.fsutil import state_subdir

    work = check_out_dir(args.work_dir, "--work-dir") if args.work_dir else state_subdir("work", "--work-dir")
    summary_dir = (check_out_dir(args.summary_dir, "--summary-dir") if args.summary_dir else
                   state_subdir("validate", "--summary-dir"))
    if args.history != "off" and not args.history and config.HISTORY_DB.parent == config.STATE_DIR:
        state_subdir("", "--history PATH (or --history off)")  # the history file's folder, before the work
    if args.history != "off" and "://" not in str(args.history or config.HISTORY):
        from hailo_qa.store.history import History

        # a history file that cannot be used (a folder, another application's database, corrupt) fails now, not
        # after every model has run; a server stays for the end (its rows are kept locally if it is down then)
        History(args.history or config.HISTORY, spill=None).close()
    # with --json, stdout carries one JSON document and nothing else: everything else goes to stderr
    out = sys.stdout
    with contextlib.redirect_stdout(sys.stderr) if args.json else contextlib.nullcontext():
        results = validate(specs, work_dir=work, config=args.config, calib_size=args.calib_size,
                           backend=args.backend, progress=lambda m: print(m, file=sys.stderr, flush=True),
                           reraise=args.debug, simplify=False if args.no_simplify else None)
        run_id = new_run_id()
        summary = write_summary(results, summary_dir,
                                run_id=run_id, config=args.config)
        print(f"\nsummary: {summary}", file=sys.stderr)
        if args.history != "off":
            from hailo_qa.store.history import display

            target = args.history or config.HISTORY
            record(results, target, config=args.config, run_id=run_id)
            path = display(target)
            print(f"recorded in {path} as run {run_id} (hailo-qa report --history {path})", file=sys.stderr)
    failed = [r.model for r in results if r.status == "fail"]
    passed = sum(r.status == "pass" for r in results)
    skipped = sum(r.status == "skip" for r in results)
    line = (f"validate: {passed} passed, {len(failed)} failed, {skipped} skipped"
            + (f" ({', '.join(failed)})" if failed else ""))
    if args.json:
        print(json.dumps([r.to_dict() for r in results], indent=2), file=out)
        print(line, file=sys.stderr)
    else:
        print(render(results, args.config), file=out)
        print("\n" + line, file=out)
    return 1 if failed else 0
