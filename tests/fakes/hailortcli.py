"""A stand-in ``hailortcli`` program for tests (no device here): it records its arguments and writes a given CSV.

The CSV and help text it serves are HailoRT 4.23's formats (``infer_stats_printer.cpp``; ``hailortcli run --help``
of the real build in ``../shared/vendor/``). It is a test double for the *program*, never run outside tests.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

RUN_HELP_4_23 = ("  --csv TEXT  If set print the output as csv to the specified path\n"
                 "  --measure-latency  Measure network latency\n"
                 "  --measure-overall-latency Needs: --measure-latency\n"
                 "  --measure-power Excludes: --multi-process-service --measure-current\n"
                 "  --show-progress,--dont-show-progress{false} [true]\n")


def write_fake_hailortcli(folder: Path, csv_text: str, *, help_text: str = RUN_HELP_4_23,
                          fail_with_power: str | None = None, exit_code: int = 0) -> tuple[Path, Path]:
    """Write an executable ``hailortcli`` into ``folder``; returns (program, calls log: one JSON argv per line).

    Args:
        csv_text: what it writes to the ``--csv`` path.
        help_text: what ``hailortcli run --help`` prints.
        fail_with_power: when set, a run with ``--measure-power`` prints this to stderr and exits 1 (a board without
            a power sensor).
        exit_code: the exit code of a run otherwise.
    """
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / "calls.jsonl"
    exe = folder / "hailortcli"
    exe.write_text(f"""#!{sys.executable}
import json, sys
args = sys.argv[1:]
with open({str(log)!r}, "a") as f:
    f.write(json.dumps(args) + "\\n")
if args[:2] == ["run", "--help"]:
    sys.stdout.write({help_text!r})
    sys.exit(0)
if {fail_with_power!r} is not None and "--measure-power" in args:
    sys.stderr.write({fail_with_power!r} + "\\n")
    sys.exit(1)
if "--csv" in args:
    with open(args[args.index("--csv") + 1], "w") as f:
        f.write({csv_text!r})
sys.exit({exit_code})
""")
    exe.chmod(0o755)
    return exe, log


def calls(log: Path) -> list[list[str]]:
    """The argument lists the stand-in was called with, in order."""
    return [json.loads(line) for line in log.read_text().splitlines()] if log.is_file() else []
