"""The ``reportqa`` command line: ingest, add, remove, documents, diff, ask, sections, serve, eval, bench, config.

One module per command group; this one builds the parser and maps errors to exit codes. Every
command reads the one settings object; flags override environment variables, which override
defaults. Errors are one line on stderr and a non-zero exit code, never a traceback. Nothing
imports this package: it sits on top of service/ and eval/.
"""
from __future__ import annotations

import argparse
import os
import sys

from service.cli import add, ask, bench, config, documents, evaluate, ingest, remove, serve
from service.cli.common import (
    EXIT_BROKEN_PIPE, EXIT_BUSY, EXIT_INDEX, EXIT_INPUT, EXIT_INTERRUPTED, EXIT_USAGE, CliError,
)
from settings import EncoderEngine

COMMAND_GROUPS = (ingest, add, remove, documents, ask, serve, evaluate, config, bench)

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="reportqa",
        description="Ask long reports questions; get the passages that answer them, with section citations.",
        epilog="Settings come from flags, then REPORTQA_* environment variables, then defaults (`reportqa config`).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name, helptext, func, examples, model_flags=True):
        p = sub.add_parser(name, help=helptext, description=helptext, epilog=examples,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        p.add_argument("--index", metavar="DIR", help="index folder (default: var/index)")
        if model_flags:
            p.add_argument("--model", metavar="PATH", help="local sentence-transformers model folder")
            p.add_argument("--encoder", choices=list(EncoderEngine),
                           help="encoder engine (ingest: for passages, else: for questions; default from settings)")
        p.set_defaults(func=func)
        return p

    for group in COMMAND_GROUPS:
        group.register(add)
    return parser


def _exit_code(exc: Exception) -> int | None:
    """The exit code of a domain error the commands let through (None: not one of ours)."""
    from eval.errors import EvalError, EvalSetError
    from index import IndexUnavailable, LibraryError, ModelUnavailable, UnknownDocument
    from index.library import LibraryBusy

    if isinstance(exc, CliError):
        return exc.code
    if isinstance(exc, UnknownDocument):
        return EXIT_INPUT
    if isinstance(exc, LibraryError):
        return EXIT_USAGE
    if isinstance(exc, LibraryBusy):
        return EXIT_BUSY
    if isinstance(exc, (IndexUnavailable, ModelUnavailable)):
        return EXIT_INDEX
    if isinstance(exc, EvalSetError):
        return EXIT_INPUT
    if isinstance(exc, EvalError):
        return EXIT_USAGE
    return None


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from index import configure_runtime

    configure_runtime()  # the entry point sets the model libraries' switches, before any of them loads
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print(f"reportqa {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`reportqa ask … | head`): stop quietly, as Unix tools do. stdout goes to
        # /dev/null first, or Python reports the pipe again when it flushes at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except Exception as exc:
        code = _exit_code(exc)
        if code is not None:
            print(f"reportqa {args.command}: error: {exc}", file=sys.stderr)
            return code
        if isinstance(exc, OSError):
            print(f"reportqa {args.command}: error: {exc.strerror or exc}: {getattr(exc, 'filename', '') or ''}",
                  file=sys.stderr)
            return 1
        raise
