"""What the library commands (add, remove, documents, diff) share: the Library from the flags, one-line records."""
from __future__ import annotations

import sys

from service.cli.common import Progress, settings_from


def open_library(args, quiet: bool = False):
    """The Library of the index the flags name; waiting for another writer is said on stderr."""
    from index.library import Library

    settings = settings_from(args)
    return settings, Library(settings, progress=Progress(quiet),
                             on_wait=lambda message: print(f"reportqa {args.command}: {message}", file=sys.stderr,
                                                           flush=True))


def record_line(r) -> str:
    """One edition as one line: key@edition, current mark, title, counts."""
    pages = f", {r.pages} pages" if r.pages else ""
    mark = "" if r.current else " (earlier edition)"
    return f"{r.key}@{r.edition}{mark}: {r.title} [{r.source}, {r.format}{pages}, {r.sections} sections, {r.chunks} chunks]"


def change_summary(change) -> str:
    embedded = ", ".join(f"{n} {kind}" for kind, n in change.embedded.items()) or "nothing"
    reused = ", ".join(f"{n} {kind}" for kind, n in change.reused.items())
    return (f"new build {change.build}: embedded {embedded}" + (f" (reused {reused} from the cache)" if reused else "")
            + f" in {change.seconds.get('total', 0):.1f}s")
