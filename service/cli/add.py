"""``reportqa add``: add reports to the library (a new document, or a new edition of one), as one new build."""
from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path

from service.cli.common import EXIT_INPUT, CliError
from service.cli.library_common import change_summary, open_library, record_line

EXAMPLES = ("examples:\n  reportqa add reports/annual-2025.pdf --key annual-review\n  reportqa add new-papers/\n"
            "  reportqa add report.md --json")


def register(add) -> None:
    p = add("add", "Add report files or folders to the library without rebuilding it (a file already in the "
                   "library is skipped; a new version of a document becomes its current edition).", run, EXAMPLES)
    p.add_argument("paths", nargs="+", help="files or folders (.md, .txt, .pdf)")
    p.add_argument("--key", help="the document's key (default: from the file name, or its title); one file only")
    p.add_argument("--json", action="store_true", help="print what was done as JSON")
    p.add_argument("--strict", action="store_true", help="exit 1 when any file was skipped as unreadable")
    p.add_argument("--quiet", action="store_true", help="no progress output")


def run(args) -> int:
    _, library = open_library(args, args.quiet or args.json)
    change = library.add([Path(p) for p in args.paths], key=args.key)
    if args.json:
        print(json.dumps({"build": change.build, "added": [asdict(r) for r in change.added],
                          "unchanged": [{"path": p, **asdict(r)} for p, r in change.unchanged],
                          "skipped": [asdict(f) for f in change.failures], "warnings": [asdict(w) for w in change.warnings],
                          "embedded": change.embedded,
                          "reused": change.reused, "seconds": change.seconds}, ensure_ascii=False))
    else:
        for failure in change.failures:
            print(f"skipped {failure.path}: {failure.reason}", file=sys.stderr)
        for warning in change.warnings:
            print(f"warning {warning.path}: {warning.message}", file=sys.stderr)
        for path, r in change.unchanged:
            print(f"unchanged {path}: already in the library as {r.key}@{r.edition}")
        for r in change.added:
            print(f"added {record_line(r)}")
        print(change_summary(change) if change.build else "nothing to add: the library is unchanged")
    if change.build is None and change.failures and not change.unchanged:
        raise CliError("no report could be added; the library is unchanged", EXIT_INPUT)
    return 1 if change.failures and args.strict else 0
