"""``hailo-qa history push|pull|merge``: copy runs between histories (SQLite files and PostgreSQL servers).

A Pi without network records into its local SQLite file during a session and pushes later. Copies are idempotent:
every row carries a ``uid``, so a run pushed twice is stored once.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "copy runs between histories: push a local file to a server, pull a server or file into a local file, merge"


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    push = sub.add_parser("push", help="copy the local history (or --history) into another one (--to)")
    push.add_argument("--to", metavar="URL|PATH", required=True, help="the receiving history, e.g. postgresql://...")
    push.add_argument("--history", metavar="PATH|URL", default=None,
                      help="the history to send. Default: HAILO_QA_HISTORY, else .hailo_qa/history.sqlite")
    pull = sub.add_parser("pull", help="copy another history (--from) into the local one (or --history)")
    pull.add_argument("--from", dest="source", metavar="URL|PATH", required=True, help="the history to copy")
    pull.add_argument("--history", metavar="PATH|URL", default=None,
                      help="the receiving history. Default: HAILO_QA_HISTORY, else .hailo_qa/history.sqlite")
    merge = sub.add_parser("merge", help="copy several histories into one (--into)")
    merge.add_argument("sources", metavar="SOURCE", nargs="+", help="histories to copy (files or URLs)")
    merge.add_argument("--into", metavar="PATH|URL", required=True, help="the receiving history (created if absent)")
    for q in (push, pull, merge):
        q.add_argument("--run", metavar="RUN_ID", action="append", default=None,
                       help="copy only this run (repeatable). Default: every run")


def _copy(src: str, dst: str, runs) -> None:
    from hailo_qa.store.history import (
        History,
        HistoryError,
        copy_history,
        display,
        is_url,
    )

    if not is_url(src):
        from hailo_qa.store.history import require_history_file

        require_history_file(src, note="expected an SQLite history file",
                             hint="pass the file a run recorded into (--history / --from)")
    with History(src, readonly=True) as s:
        if runs:
            known = {r.run_id for r in s.runs()}
            missing = [r for r in runs if r not in known]
            if missing:
                from hailo_qa.errors import did_you_mean

                raise HistoryError(f"run '{missing[0]}' has no rows in history '{s.location}'",
                                   note=f"latest runs: {', '.join(sorted(known)[-5:]) or 'none'}",
                                   hint=did_you_mean(missing[0], sorted(known)) or "list runs with "
                                   "'hailo-qa baseline show --history ...'")
        with History(dst, spill=None) as d:
            given, new = copy_history(s, d, runs=runs)
    print(f"{display(src)} -> {display(dst)}: {given} row(s), {new} new, {given - new} already there",
          file=sys.stdout)


def run(args: argparse.Namespace) -> int:
    from hailo_qa import config

    from hailo_qa.store.history import HistoryError, display

    local = args.history if getattr(args, "history", None) else config.HISTORY
    pairs = {"push": lambda: [(local, args.to)], "pull": lambda: [(args.source, local)],
             "merge": lambda: [(src, args.into) for src in args.sources]}[args.action]()
    for src, dst in pairs:  # all checked before anything is copied
        if str(src) == str(dst) or ("://" not in str(src) + str(dst) and Path(src).resolve() == Path(dst).resolve()):
            raise HistoryError(f"history {args.action}: '{display(src)}' would be copied into itself",
                               note="expected two different histories (copying a history into itself adds nothing)",
                               hint="check --history / --to / --from / --into")
    for src, dst in pairs:
        _copy(src, dst, args.run)
    return 0
