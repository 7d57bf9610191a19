"""``hailo-qa`` command line. Subcommands live in :mod:`hailo_qa.commands` (one module each).

Every :class:`~hailo_qa.errors.QAError` is printed as ``error: <what>\\nNote: ...\\nHint: ...`` with exit code 2;
no user mistake ends in a traceback. ``--debug`` shows the traceback anyway.
"""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

import hailo_qa.commands as _commands
from hailo_qa.errors import QAError


def command_modules() -> dict[str, object]:
    mods = {}
    for info in sorted(pkgutil.iter_modules(_commands.__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        mods[info.name.replace("_", "-")] = importlib.import_module(f"hailo_qa.commands.{info.name}")
    return mods


def build_parser() -> argparse.ArgumentParser:
    from hailo_qa import __version__

    parser = argparse.ArgumentParser(
        prog="hailo-qa", description="Validate ONNX models for the Hailo-8: lint, split, emulate, compile, "
                                     "inspect HEFs, report.")
    parser.add_argument("--version", action="version", version=f"hailo-qa {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, mod in command_modules().items():
        p = sub.add_parser(name, help=mod.HELP, description=mod.HELP)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except QAError as err:
        if args.debug:
            raise
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
