"""``hailo-qa report``: Markdown inventory + self-contained HTML page with trend plots, from the history."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "write a Markdown inventory and an HTML page with trend plots from the metric history"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--history", metavar="PATH", default=None,
                   help="SQLite history database. Default: hailo_qa.config.HISTORY_DB (.hailo_qa/history.sqlite)")
    p.add_argument("--out", metavar="DIR", default=None,
                   help="output directory for report.md, report.html and plots/. Default: .hailo_qa/report")
    p.add_argument("--run", metavar="RUN_ID", default=None, help="run to report on. Default: the latest")
    p.add_argument("--manifest", metavar="PATH", default=None,
                   help="manifest listing models/configs/calib sizes (untested combinations show as 'not tested'). "
                        "Default: the project manifest when it loads, else none")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")


def run(args: argparse.Namespace) -> int:
    from hailo_qa import config
    from hailo_qa.errors import InputFileError, ManifestError
    from hailo_qa.store.history import History
    from hailo_qa.store.report import write_report

    path = Path(args.history or config.HISTORY_DB)
    if not path.is_file():
        raise InputFileError(f"history '{path}' does not exist", note="expected the SQLite file a pytest run "
                             "with the hailo_qa plugin writes", hint="run the tests first, or pass --history PATH")
    manifest = None
    if args.manifest or config.MANIFEST.is_file():
        from hailo_qa.manifest import load_manifest

        try:
            manifest = load_manifest(args.manifest or config.MANIFEST)
        except ManifestError:
            if args.manifest:
                raise
    out = Path(args.out or config.STATE_DIR / "report")
    with History(path) as h:
        files = write_report(h, out, manifest=manifest, run_id=args.run, progress=None if args.quiet else sys.stderr)
    print(f"{files.markdown}\n{files.html}")
    return 0
