"""``reportqa documents`` (what the library holds) and ``reportqa diff`` (what changed between two editions)."""
from __future__ import annotations

import json
from dataclasses import asdict

from service.cli.library_common import open_library

DOCUMENTS_EXAMPLES = "examples:\n  reportqa documents\n  reportqa documents --json --index /srv/reportqa/index"
DIFF_EXAMPLES = ("examples:\n  reportqa diff annual-review\n"
                 "  reportqa diff annual-review --from 3f2a9c0d41be --to 9b1e77a0c2d4 --json")
MARKS = {"added": "+", "removed": "-", "moved": ">", "changed": "~"}


def register(add) -> None:
    p = add("documents", "List the library's documents and their editions (no model needed).", run_documents,
            DOCUMENTS_EXAMPLES, model_flags=False)
    p.add_argument("--json", action="store_true", help="the records as JSON")
    p = add("diff", "Sections added, removed, moved and changed between two editions of a document.", run_diff,
            DIFF_EXAMPLES, model_flags=False)
    p.add_argument("key", help="the document's key (see `reportqa documents`)")
    p.add_argument("--from", dest="from_edition", metavar="E1", help="older edition (default: the one before --to)")
    p.add_argument("--to", dest="to_edition", metavar="E2", help="newer edition (default: the current one)")
    p.add_argument("--json", action="store_true", help="the diff as JSON")


def run_documents(args) -> int:
    settings, library = open_library(args, quiet=True)
    records = library.documents()
    if args.json:
        print(json.dumps([asdict(r) for r in records], ensure_ascii=False, indent=2))
        return 0
    if not records:
        print(f"the library in {settings.index_dir} is empty: `reportqa add PATH` adds a report")
        return 0
    header = ("key", "edition", "cur", "title", "source", "format", "pages", "sections", "chunks", "added at")
    rows = [(r.key, r.edition, "*" if r.current else "", r.title[:48], r.source, r.format, str(r.pages or "-"),
             str(r.sections), str(r.chunks), r.added_at or "-") for r in records]
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header)]
    for row in (header, *rows):
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    editions = sum(not r.current for r in records)
    print(f"\n{len(records) - editions} document(s)" + (f", {editions} earlier edition(s)" if editions else ""))
    return 0


def run_diff(args) -> int:
    _, library = open_library(args, quiet=True)
    diff = library.diff(args.key, args.from_edition, args.to_edition)
    if args.json:
        print(json.dumps(asdict(diff) | {"changes": len(diff.changes)}, ensure_ascii=False, indent=2))
        return 0
    print(f"{diff.key}: {diff.from_edition} -> {diff.to_edition}: {len(diff.added)} added, {len(diff.removed)} "
          f"removed, {len(diff.moved)} moved, {len(diff.changed)} changed, {diff.unchanged} unchanged")
    for change in diff.changes:
        ref = change.new or change.old
        label = ref.title or ref.number or "(opening)"
        extra = ""
        if change.kind == "moved" and change.old and change.new:
            extra = f"  (was [{change.old.id}] under {' › '.join(change.old.path[:-1]) or 'the top'})"
        elif change.kind == "changed" and change.similarity is not None:
            extra = f"  (similarity {change.similarity:.2f})"
            if change.old and change.new and change.old.title != change.new.title:
                extra += f", was titled {change.old.title!r}"
        print(f"{MARKS[change.kind]} {change.kind:<8} [{ref.id}] {label}{extra}")
    return 0
