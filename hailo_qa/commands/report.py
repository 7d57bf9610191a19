"""``hailo-qa report``: Markdown inventory + self-contained HTML page with trend plots, from the history."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "write a Markdown inventory and an HTML page with trend plots from the metric history"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--history", metavar="PATH|URL", default=None,
                   help="the history: an SQLite file or a postgresql://user:password@host/db URL (read only). "
                        "Default: HAILO_QA_HISTORY, else .hailo_qa/history.sqlite")
    p.add_argument("--out", metavar="DIR", default=None,
                   help="output directory for report.md, report.html and plots/. Default: .hailo_qa/report")
    p.add_argument("--run", metavar="RUN_ID", default=None, help="run to report on. Default: the latest")
    p.add_argument("--manifest", metavar="PATH", default=None,
                   help="manifest listing models/configs/calib sizes (untested combinations show as 'not tested'). "
                        "Default: the project manifest when it loads, else none")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")


def run(args: argparse.Namespace) -> int:
    from hailo_qa import config
    from hailo_qa.errors import ManifestError
    from hailo_qa.store.history import History
    from hailo_qa.store.report import write_report

    target = args.history or config.HISTORY
    manifest = None
    if args.manifest or config.MANIFEST.is_file():
        from hailo_qa.manifest import load_manifest

        try:
            manifest = load_manifest(args.manifest or config.MANIFEST)
        except ManifestError:
            if args.manifest:
                raise
    from hailo_qa.fsutil import check_out_dir, state_subdir

    out = check_out_dir(args.out, "--out") if args.out else state_subdir("report", "--out")
    with History(target, readonly=True) as h:
        files = write_report(h, out, manifest=manifest, run_id=args.run, progress=None if args.quiet else sys.stderr)
    print(f"{files.markdown}\n{files.html}")
    return 0
