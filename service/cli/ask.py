"""``reportqa ask`` (cited passages for a question) and ``reportqa sections`` (the table of contents)."""
from __future__ import annotations

import json
import textwrap
import time
from pathlib import Path

from service.cli.common import EXIT_INDEX, EXIT_USAGE, CliError, settings_from
from settings import RetrievalMode

ASK_EXAMPLES = ('examples:\n  reportqa ask "How is critical information infrastructure protected?"\n'
                '  reportqa ask "data flows" --k 3 --section p3 --json')
SECTIONS_EXAMPLES = "examples:\n  reportqa sections\n  reportqa sections --json --index /srv/reportqa/index"


def register(add) -> None:
    p = add("ask", "Print the passages that best answer a question, with citations.", run_ask, ASK_EXAMPLES)
    p.add_argument("question")
    p.add_argument("--k", type=int, default=5, help="passages to return (1-50, default 5)")
    p.add_argument("--mode", choices=list(RetrievalMode), help="retrieval mode (default hybrid)")
    p.add_argument("--section", help="only this part or section id (see `reportqa sections`)")
    p.add_argument("--group-by-section", action="store_true", help="at most one passage per section")
    p.add_argument("--document", help="only this document (a key from `reportqa documents`, or KEY@EDITION)")
    p.add_argument("--edition", help="only this edition (of --document, or of whichever document has it); "
                                     "default: every document's current edition")
    p.add_argument("--json", action="store_true", help="machine-readable output: the body POST /query answers")
    p = add("sections", "Print the recovered table of contents as a tree with ids.", run_sections, SECTIONS_EXAMPLES,
            model_flags=False)  # listing sections needs no model
    p.add_argument("--json", action="store_true", help="documents and sections as JSON")


def run_ask(args) -> int:
    from index import Query, UnknownSection, load_current_index, load_embedder, open_retriever
    from service.present import InvalidQuestion, clean_question, query_response

    settings = settings_from(args)
    try:
        question = clean_question(args.question, settings.max_question_chars)
    except InvalidQuestion as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    if not 1 <= args.k <= settings.max_k:
        raise CliError(f"--k must be between 1 and {settings.max_k}", EXIT_USAGE)
    retriever = open_retriever(settings, load_embedder(settings), load_current_index(settings))
    mode = args.mode or settings.default_mode
    started = time.perf_counter()
    try:
        result = retriever.search(Query(question, args.k, mode, args.section, args.document, args.group_by_section,
                                        args.edition))
    except UnknownSection as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    response = query_response(question, mode, result, retriever.index.documents,
                              (time.perf_counter() - started) * 1000)
    if args.json:
        print(response.model_dump_json(indent=2))
        return 0
    print(format_answer(response))
    return 0


def format_answer(response) -> str:
    """The response as text: the verdict and its reasons, then each passage with its citation."""
    verdict = "likely answered" if response.answerable else "probably NOT answered by the report"
    lines = [f"Q: {response.question}\n   ({verdict}, confidence {response.confidence:.2f})"]
    lines += [f"   - {reason}" for reason in response.reasons]
    lines.append("")
    for rank, p in enumerate(response.passages, 1):
        c = p.citation
        lines.append(f"{rank}. {c.document_key}@{c.edition} [{c.section_id}] {' › '.join(c.section_path) or '(opening)'}")
        printed = f" (printed {c.page_label})" if c.page_label and c.page_label != str(c.page) else ""
        page = f"  page {c.page}{printed}" if c.page else ""
        lines.append(f"   score {p.score:.4f}  chars {c.char_start}-{c.char_end}{page}")
        best = p.highlights[0].text if p.highlights else p.text[:300]
        lines += [f"   {line}" for line in textwrap.wrap(f"» {best}", width=96)]
        lines.append("")
    return "\n".join(lines)


def run_sections(args) -> int:
    from index.store import current_build, load_index

    settings = settings_from(args)
    if current_build(Path(settings.index_dir)) is None:
        raise CliError(f"no index in {settings.index_dir}: run `reportqa ingest` first", EXIT_INDEX)
    loaded = load_index(Path(settings.index_dir), None, None, verify=False)
    if args.json:
        from dataclasses import asdict

        print(json.dumps({"documents": [{"id": d.id, "title": d.title} for d in loaded.documents.values()],
                          "sections": [asdict(s) for s in loaded.sections]}, ensure_ascii=False, indent=2))
        return 0
    print(format_section_tree(loaded))
    return 0


def format_section_tree(loaded) -> str:
    """Each document, then its sections in document order, indented by level, with their chunk counts."""
    from index.outline import chunk_counts, section_label

    counts = chunk_counts(loaded.chunks)
    lines = []
    for doc in loaded.documents.values():
        lines.append(f"{doc.id}: {doc.title}")
        for s in (s for s in loaded.sections if s.document_id == doc.id):
            n = counts.get((doc.id, s.id), 0)
            lines.append(f"{'  ' * (s.level + 1)}{s.id:<10} {section_label(s)}  [{n} chunk{'s' if n != 1 else ''}]")
    return "\n".join(lines)
