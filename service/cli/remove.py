"""``reportqa remove``: take documents (or one edition of one) out of the library, as one new build."""
from __future__ import annotations

import json
from dataclasses import asdict

from service.cli.library_common import change_summary, open_library, record_line

EXAMPLES = "examples:\n  reportqa remove annual-review\n  reportqa remove annual-review@3f2a9c0d41be old-note"


def register(add) -> None:
    p = add("remove", "Remove documents from the library without rebuilding it: KEY removes every edition, "
                      "KEY@EDITION one edition.", run, EXAMPLES)
    p.add_argument("documents", nargs="+", metavar="DOC", help="document key, or KEY@EDITION (see `reportqa documents`)")
    p.add_argument("--json", action="store_true", help="print what was done as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress output")


def run(args) -> int:
    _, library = open_library(args, args.quiet or args.json)
    change = library.remove(args.documents)
    if args.json:
        print(json.dumps({"build": change.build, "removed": [asdict(r) for r in change.removed],
                          "embedded": change.embedded, "seconds": change.seconds}, ensure_ascii=False))
        return 0
    for r in change.removed:
        print(f"removed {record_line(r)}")
    print(change_summary(change))
    return 0
