"""``hailo-qa`` command line. Subcommands live in :mod:`hailo_qa.commands` (one module each).

Exit codes: 0 success, 1 a gate failed (the command says which), 2 bad input or environment — every
:class:`~hailo_qa.errors.QAError` and every argparse usage error, printed as ``error: <what>\\nNote: ...\\nHint: ...``
— 3 an internal error (an exception that is not a QAError: a bug in hailo-qa, printed as one ``internal error`` message
asking for ``--debug`` and a report), 130 interrupted. No input ends in a traceback; ``--debug`` shows it anyway.

Output works on any terminal encoding: symbols the stream cannot encode (``✔``, ``→``, ``≥`` ...) are written as ASCII
(``OK``, ``->``, ``>=``; see :data:`ASCII_FALLBACKS`).
"""
from __future__ import annotations

import argparse
import codecs
import importlib
import pkgutil
import sys

import hailo_qa.commands as _commands
from hailo_qa.errors import QAError

EXIT_INTERNAL = 3
"""Exit code of an internal error (a bug in hailo-qa, not the user's input, which exits 2)."""

ASCII_FALLBACKS = {
    "✔": "OK", "✓": "OK", "✘": "X", "✗": "X", "→": "->", "←": "<-", "↔": "<->", "⇔": "<=>", "≥": ">=", "≤": "<=",
    "≈": "~", "≠": "!=", "×": "x", "·": "*", "—": "-", "–": "-", "−": "-", "…": "...", "•": "*", "§": "S",
    "±": "+/-", "µ": "u", "°": "deg", "²": "^2", "³": "^3", "⌈": "ceil(", "⌉": ")", "α": "alpha", "q̂": "q",
    "̂": "", "“": '"', "”": '"', "‘": "'", "’": "'",
}
"""ASCII spellings of the symbols hailo-qa prints, used when the terminal encoding cannot show them."""


def _ascii_fallback(err: UnicodeError):
    if not isinstance(err, UnicodeEncodeError):
        raise err
    text = err.object[err.start:err.end]
    return "".join(ASCII_FALLBACKS.get(c, "?") for c in text), err.end


codecs.register_error("hailo_qa_ascii", _ascii_fallback)


def _safe_streams() -> None:
    """Make stdout/stderr write what their encoding cannot show as ASCII instead of raising UnicodeEncodeError."""
    for stream in (sys.stdout, sys.stderr):
        enc = getattr(stream, "encoding", None) or "ascii"
        try:
            "✔→≥".encode(enc)
            continue
        except (UnicodeEncodeError, LookupError):
            pass
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            try:
                reconfigure(errors="hailo_qa_ascii")
            except (ValueError, OSError):  # pragma: no cover - a closed or exotic stream
                pass


def command_names() -> list[str]:
    """The subcommands (``hailo_qa/commands/<name>.py``), found without importing any of them."""
    return sorted(i.name.replace("_", "-") for i in pkgutil.iter_modules(_commands.__path__)
                  if not i.name.startswith("_"))


def command_module(name: str):
    return importlib.import_module(f"hailo_qa.commands.{name.replace('-', '_')}")


def command_modules() -> dict[str, object]:
    return {name: command_module(name) for name in command_names()}


def _chosen(argv: list[str]) -> str | None:
    """The subcommand named on the command line (the first word that is not an option), if any."""
    return next((a for a in argv if not a.startswith("-")), None)


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is printed in the suite's form (what / Note / Hint) instead of the usage block."""

    def error(self, message: str):  # noqa: D102 - argparse API; exits 2 (SystemExit) like argparse
        what, _, expected = message.partition(". Expected ")
        note = f"\nNote: expected {expected.rstrip('.')}" if expected else ""
        self.exit(2, f"error: {what}{note}\nHint: see '{self.prog} --help'\n")


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The command-line parser. Only the subcommand named in ``argv`` gets its options (and imports what they need);
    the others are listed with their one-line help, so ``hailo-qa --help`` and ``hailo-qa lint`` start at once.

    Args:
        argv: the arguments about to be parsed. Defaults to building every subcommand's options.
    """
    from hailo_qa import __version__

    parser = Parser(
        prog="hailo-qa", description="Validate ONNX models for the Hailo-8: lint, split, emulate, compile, "
                                     "inspect HEFs, report.")
    parser.add_argument("--version", action="version", version=f"hailo-qa {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    chosen = _chosen(argv) if argv is not None else None
    for name in command_names():
        mod = command_module(name)  # a command module's top level is its HELP line and option builders: cheap
        p = sub.add_parser(name, help=mod.HELP, description=mod.HELP)
        if argv is None or name == chosen:
            mod.add_arguments(p)
            p.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``hailo-qa`` with ``argv`` (default ``sys.argv[1:]``) and return the exit code (see the module doc)."""
    _safe_streams()
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)  # a usage error prints its message and exits 2 (SystemExit), --help exits 0
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    from hailo_qa import config

    notice = config.state_dir_notice()
    if notice:  # a read-only checkout: the per-user state folder in use, said once
        print(notice, file=sys.stderr)
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
    except Exception as err:  # noqa: BLE001 - a bug in hailo-qa: one message, not a traceback
        if args.debug:
            raise
        where = _where(err)
        print(f"internal error: {type(err).__name__}: {err}{where}\n"
              "Note: this is a bug in hailo-qa, not in your input (bad input gets an error with a Hint).\n"
              f"Hint: rerun with --debug (hailo-qa --debug {args.command} ...) and report the traceback.",
              file=sys.stderr)
        return EXIT_INTERNAL


def _where(err: BaseException) -> str:
    """`` (at file:line in function)`` of the innermost hailo_qa frame of ``err``'s traceback, or ``''``."""
    import traceback

    frames = [f for f in traceback.extract_tb(err.__traceback__) if "hailo_qa" in f.filename.replace("\\", "/")]
    if not frames:
        return ""
    f = frames[-1]
    return f" (at {f.filename.rsplit('hailo_qa', 1)[-1].lstrip('/')}:{f.lineno} in {f.name})"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
