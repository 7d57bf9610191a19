"""``hailo-qa baseline accept|show``: promote a run of the history to an accepted baseline; list runs."""
from __future__ import annotations

import argparse
from pathlib import Path

HELP = "accept a run as the regression baseline (accept --run ID | --latest), or list runs and baselines (show)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    acc = sub.add_parser("accept", help="promote a run to an accepted baseline")
    which = acc.add_mutually_exclusive_group(required=True)
    which.add_argument("--run", metavar="RUN_ID", help="the run id to accept")
    which.add_argument("--latest", action="store_true", help="accept the most recent run")
    acc.add_argument("--note", default="", help="why this run is accepted (stored with it)")
    show = sub.add_parser("show", help="list runs, marking accepted baselines")
    for q in (acc, show):
        q.add_argument("--history", metavar="PATH|URL", default=None,
                       help="the history: an SQLite file or a postgresql://... URL. Default: HAILO_QA_HISTORY, "
                            "else .hailo_qa/history.sqlite")


def run(args: argparse.Namespace) -> int:
    from hailo_qa import config
    from hailo_qa.store.history import History, HistoryError, is_url, require_history_file

    path = args.history or config.HISTORY
    if not is_url(path):
        require_history_file(path, note="expected the SQLite file written by a test run",
                             hint="run the tests first, or pass --history PATH")
    with History(path, readonly=args.action == "show") as h:
        if args.action == "accept":
            run_id = h.latest_run() if args.latest else args.run
            if run_id is None:
                raise HistoryError(f"history '{path}' has no runs", note="expected at least one recorded run",
                                   hint="run the tests first")
            h.accept(run_id, note=args.note)
            n = sum(r.rows for r in h.runs() if r.run_id == run_id)
            print(f"accepted run {run_id} ({n} metric rows) as baseline in {path}")
            return 0
        runs = h.runs()
        if not runs:
            print(f"{path}: no runs recorded")
            return 0
        print(f"{'run':<26} {'started':<33} {'rows':>6}  {'git':<10}  baseline")
        for r in runs:
            print(f"{r.run_id:<26} {r.started:<33} {r.rows:>6}  {r.git_commit[:10]:<10}  "
                  f"{'ACCEPTED' if r.accepted else ''}")
    return 0
