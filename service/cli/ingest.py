"""``reportqa ingest``: read reports, cut chunks, build a new index."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from service.cli.common import EXIT_INPUT, CliError, Progress, settings_from
from settings import BackendName

EXAMPLES = ("examples:\n  reportqa ingest data/\n  reportqa ingest report.pdf notes/ --index /srv/reportqa/index\n"
            "  reportqa ingest --if-stale")


def register(add) -> None:
    p = add("ingest", "Build an index from report files and folders (.md, .txt, .pdf).", run, EXAMPLES)
    p.add_argument("paths", nargs="*", help="files or folders (default: the bundled report)")
    p.add_argument("--if-stale", action="store_true", help="only rebuild when reports, model or settings changed")
    p.add_argument("--chunk-tokens", type=int, help="max tiktoken tokens per chunk")
    p.add_argument("--overlap", type=int, help="tokens of trailing sentences repeated in the next chunk")
    p.add_argument("--embed-context", choices=["none", "section", "path"], help="section context embedded with chunks")
    p.add_argument("--json", action="store_true", help="print a JSON summary")
    p.add_argument("--strict", action="store_true", help="exit 1 when any file was skipped")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.add_argument("--backend", choices=list(BackendName), help="where vectors and BM25 live (default faiss)")
    p.add_argument("--milvus-uri", metavar="URI", help="Milvus Lite file (*.db) or http://host:19530 "
                   "(default <index>/milvus.db; token: REPORTQA_MILVUS_TOKEN)")
    p.add_argument("--milvus-collection", metavar="NAME", help="Milvus collection (default reportqa)")


def _stale_reasons(settings, paths: list[Path]) -> list[str]:
    from index import stale_reasons
    from index.embed import model_fingerprint
    from index.store import BuildSettings
    from ingest.readers import find_report_files, read_report

    files, _ = find_report_files(paths)
    sources = []
    for f in files:
        try:
            sources.append(read_report(f))
        except Exception:  # unreadable files are reported by the real ingest below
            pass
    return stale_reasons(Path(settings.index_dir), sources, BuildSettings.from_settings(settings),
                         model_fingerprint(settings.resolved_model_path),
                         backend=settings.backend, collection=settings.milvus_collection)


def run(args) -> int:
    from index import build_index, load_embedder
    from ingest import Chunker, ingest_paths

    settings = settings_from(args)
    paths = [Path(p) for p in args.paths] or list(settings.reports)
    progress = Progress(args.quiet)
    if args.if_stale:
        reasons = _stale_reasons(settings, paths)
        if not reasons:
            print(f"index in {settings.index_dir} is up to date; nothing to do", file=sys.stderr)
            return 0
        print(f"rebuilding index: {'; '.join(reasons)}", file=sys.stderr)

    started = time.perf_counter()
    chunker = Chunker.from_settings(settings)
    result = ingest_paths(paths, chunker, lambda n, total, path: progress("read", n, total), settings.max_file_mb)
    parse_seconds = time.perf_counter() - started
    for failure in result.failures:
        print(f"skipped {failure.path}: {failure.reason}", file=sys.stderr)
    for doc in result.documents:
        if warning := doc.missing_text_warning(settings.warn_pages_without_text):
            print(f"warning {doc.path}: {warning}", file=sys.stderr)
    if not result.chunks:
        raise CliError("no report could be ingested; nothing was written", EXIT_INPUT)
    started = time.perf_counter()
    embedder = load_embedder(settings, ingest=True)
    load_seconds = time.perf_counter() - started
    from index.library import writer_lock_for

    with writer_lock_for(settings, "ingest", lambda message: print(f"reportqa ingest: {message}", file=sys.stderr)):
        build_dir, timings = build_index(settings, result, embedder, progress)
    summary = {
        "documents": len(result.documents), "sections": len(result.sections), "chunks": len(result.chunks),
        "skipped": len(result.failures), "index": str(build_dir),
        "per_document": [document_summary(d, result) for d in result.documents],
        "seconds": {"parse_chunk": round(parse_seconds, 2), "model_load": round(load_seconds, 2),
                    **{k: round(v, 2) for k, v in timings.items()}},
    }
    print(json.dumps(summary) if args.json else
          f"indexed {summary['documents']} document(s), {summary['sections']} sections, {summary['chunks']} chunks "
          f"into {build_dir} (parse {parse_seconds:.1f}s, embed {timings['embed']:.1f}s)")
    return 0 if not result.failures else 1 if args.strict else 0


def document_summary(doc, result) -> dict:
    """What ingest made of one document, and what artifact removal took out of it."""
    return {"document": doc.id, "sections": sum(s.document_id == doc.id for s in result.sections),
            "chunks": sum(c.document_id == doc.id for c in result.chunks),
            "removed": {"toc_lines": doc.toc_lines_removed, "headers": doc.headers_removed,
                        "footers": doc.footers_removed, "page_numbers": doc.page_numbers_removed},
            "pages_without_text": list(doc.pages_without_text)}
