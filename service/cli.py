"""The ``reportqa`` command line: ingest, ask, serve, eval, sections, config, bench.

Every command reads the one settings object; flags override environment
variables, which override defaults. Errors are one line on stderr and a
non-zero exit code, never a traceback.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import textwrap
import time
from pathlib import Path

EXIT_USAGE, EXIT_INPUT, EXIT_INDEX = 2, 3, 4
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: what a shell reports for a tool whose reader went away


class CliError(Exception):
    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.code = code


class Progress:
    """Progress on stderr: a rewritten line on a terminal, a line per 10% otherwise."""

    def __init__(self, quiet: bool = False):
        self.quiet = quiet
        self.tty = sys.stderr.isatty()
        self._last: dict[str, int] = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        if self.quiet or total <= 0:
            return
        pct = int(100 * done / total)
        if self.tty:
            end = "\n" if done >= total else ""
            print(f"\r{stage}: {done}/{total} ({pct}%)", end=end, file=sys.stderr, flush=True)
        elif pct // 10 != self._last.get(stage, -1) // 10 or done >= total:
            self._last[stage] = pct
            print(f"{stage}: {done}/{total} ({pct}%)", file=sys.stderr, flush=True)


def _settings(args):
    from pydantic import ValidationError

    from settings import Settings

    overrides = {}
    for flag, field in (("index", "index_dir"), ("model", "model_path"), ("host", "host"), ("port", "port"),
                        ("chunk_tokens", "chunk_tokens"), ("overlap", "chunk_overlap_tokens"),
                        ("embed_context", "embed_context"),
                        ("backend", "backend"), ("milvus_uri", "milvus_uri"), ("milvus_collection", "milvus_collection"),
                        ("workers", "workers"), ("threads", "encoder_threads")):
        value = getattr(args, flag, None)
        if value is not None:
            overrides[field] = value
    if getattr(args, "encoder", None) is not None:
        overrides["ingest_encoder_backend" if args.command == "ingest" else "encoder_backend"] = args.encoder
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise CliError(f"bad setting {'.'.join(map(str, first['loc']))}: {first['msg']}", EXIT_USAGE) from None


# ------------------------------------------------------------------ commands


def cmd_ingest(args) -> int:
    from index import build_index, load_embedder, stale_reasons
    from index.embedder import model_fingerprint
    from index.store import BuildSettings
    from ingest import Chunker, ingest_paths
    from ingest.readers import find_report_files, read_report

    settings = _settings(args)
    paths = [Path(p) for p in args.paths] or list(settings.reports)
    progress = Progress(args.quiet)
    if args.if_stale:
        files, _ = find_report_files(paths)
        sources = []
        for f in files:
            try:
                sources.append(read_report(f))
            except Exception:  # unreadable files are reported by the real ingest below
                pass
        reasons = stale_reasons(Path(settings.index_dir), sources, BuildSettings.from_settings(settings),
                                model_fingerprint(settings.resolved_model_path),
                                backend=settings.backend, collection=settings.milvus_collection)
        if not reasons:
            print(f"index in {settings.index_dir} is up to date; nothing to do", file=sys.stderr)
            return 0
        print(f"rebuilding index: {'; '.join(reasons)}", file=sys.stderr)

    started = time.perf_counter()
    chunker = Chunker.from_settings(settings)
    result = ingest_paths(paths, chunker, lambda n, total, path: progress("read", n, total))
    parse_seconds = time.perf_counter() - started
    for failure in result.failures:
        print(f"skipped {failure.path}: {failure.reason}", file=sys.stderr)
    if not result.chunks:
        raise CliError("no report could be ingested; nothing was written", EXIT_INPUT)
    started = time.perf_counter()
    embedder = load_embedder(settings, ingest=True)
    load_seconds = time.perf_counter() - started
    build_dir, timings = build_index(settings, result, embedder, progress)
    summary = {
        "documents": len(result.documents), "sections": len(result.sections), "chunks": len(result.chunks),
        "skipped": len(result.failures), "index": str(build_dir),
        "seconds": {"parse_chunk": round(parse_seconds, 2), "model_load": round(load_seconds, 2),
                    **{k: round(v, 2) for k, v in timings.items()}},
    }
    print(json.dumps(summary) if args.json else
          f"indexed {summary['documents']} document(s), {summary['sections']} sections, {summary['chunks']} chunks "
          f"into {build_dir} (parse {parse_seconds:.1f}s, embed {timings['embed']:.1f}s)")
    return 0 if not result.failures else 1 if args.strict else 0


def _open_retriever(settings):
    from index import load_current_index, load_embedder, open_retriever

    loaded = load_current_index(settings)
    return open_retriever(settings, load_embedder(settings), loaded)


def cmd_ask(args) -> int:
    from index import Query, UnknownSection

    settings = _settings(args)
    question = args.question.strip()
    if not question:
        raise CliError("the question is empty", EXIT_USAGE)
    if len(question) > settings.max_question_chars:
        raise CliError(f"the question is longer than {settings.max_question_chars} characters", EXIT_USAGE)
    if not 1 <= args.k <= settings.max_k:
        raise CliError(f"--k must be between 1 and {settings.max_k}", EXIT_USAGE)
    retriever = _open_retriever(settings)
    try:
        result = retriever.search(Query(question, args.k, args.mode or settings.default_mode, args.section,
                                        None, args.group_by_section))
    except UnknownSection as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    if args.json:
        print(json.dumps(_result_json(question, result, retriever), ensure_ascii=False, indent=2))
        return 0
    verdict = "likely answered" if result.answerable else "probably NOT answered by the report"
    print(f"Q: {question}\n   ({verdict}, confidence {result.confidence:.2f})")
    for reason in result.reasons:
        print(f"   - {reason}")
    print()
    for rank, hit in enumerate(result.hits, 1):
        c = hit.chunk
        path = " › ".join(c.section_path) or "(opening)"
        print(f"{rank}. [{c.section_id}] {path}")
        print(f"   score {hit.score:.4f}  chars {c.char_start}-{c.char_end}" + (f"  page {c.page}" if c.page else ""))
        best = hit.highlights[0].text if hit.highlights else c.text[:300]
        for line in textwrap.wrap(f"» {best}", width=96):
            print(f"   {line}")
        print()
    return 0


def _result_json(question, result, retriever) -> dict:
    docs = retriever.index.documents
    return {
        "question": question, "answerable": result.answerable, "confidence": round(result.confidence, 4),
        "reasons": list(result.reasons), "passages": [{
            "chunk_id": h.chunk.id, "text": h.chunk.text, "score": h.score,
            "citation": {"document": h.chunk.document_id,
                         "document_title": docs[h.chunk.document_id].title if h.chunk.document_id in docs else "",
                         "section_id": h.chunk.section_id, "section_title": h.chunk.section_title,
                         "section_path": list(h.chunk.section_path), "char_start": h.chunk.char_start,
                         "char_end": h.chunk.char_end, "page": h.chunk.page},
            "highlights": [h2.text for h2 in h.highlights],
        } for h in result.hits],
    }


def cmd_serve(args) -> int:
    import uvicorn

    from service.app import create_app, load_state

    settings = _settings(args)
    if settings.host not in ("127.0.0.1", "localhost", "::1") and not args.allow_remote:
        raise CliError(f"refusing to bind {settings.host}: pass --allow-remote to serve beyond this machine", EXIT_USAGE)
    _require_free_port(settings.host, settings.port)  # before seconds of loading, not after
    if settings.workers > 1:
        # Worker processes build their own app from REPORTQA_* variables; uvicorn's supervisor restarts
        # them on SIGHUP, so each reloads the index's current build.
        os.environ.update(settings_environment(settings))
        probe = load_state(settings)  # fail here, with one message, if the index or model is unusable
        if probe.encoder:
            probe.encoder.close()
        del probe
        print(f"serving on http://{settings.host}:{settings.port} with {settings.workers} worker processes",
              file=sys.stderr)
        uvicorn.run("service.app:app_from_environment", factory=True, workers=settings.workers, host=settings.host,
                    port=settings.port, log_level=args.log_level, access_log=False)
        return 0
    state = load_state(settings)
    app = create_app(state)
    _reload_on_sighup(state)
    print(f"serving {len(state.retriever.index.chunks)} chunks on http://{settings.host}:{settings.port}", file=sys.stderr)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=args.log_level, access_log=False)
    return 0


def _require_free_port(host: str, port: int) -> None:
    import errno
    import socket

    probe = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds: TIME_WAIT is free
        probe.bind((host, port))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise CliError(f"port {port} on {host} is already in use: stop the other server or pick another --port",
                           EXIT_USAGE) from None
        raise CliError(f"cannot bind {host}:{port}: {exc.strerror or exc}", EXIT_USAGE) from None
    finally:
        probe.close()


def settings_environment(settings) -> dict[str, str]:
    """The settings as REPORTQA_* variables, so another process (a server worker) builds the same ones."""
    env = {}
    for name, value in settings.model_dump(mode="json").items():
        if value is None:
            continue
        if name in ("api_token", "milvus_token"):
            value = getattr(settings, name).get_secret_value()
        env[f"REPORTQA_{name.upper()}"] = json.dumps(value) if isinstance(value, (list, dict)) else str(value)
    return env


def _reload_on_sighup(state) -> None:
    """`kill -HUP <pid>` swaps in the index's current build without a restart (like POST /admin/reload)."""
    import signal
    import threading

    from index import IndexUnavailable

    def reload() -> None:
        try:
            previous, build = state.reload()
            print(f"reloaded index: {previous} -> {build}", file=sys.stderr)
        except IndexUnavailable as exc:
            print(f"reload refused, kept the current index: {exc}", file=sys.stderr)

    signal.signal(signal.SIGHUP, lambda *_: threading.Thread(target=reload, daemon=True).start())


def cmd_sections(args) -> int:
    from index.store import current_build, load_index

    settings = _settings(args)
    if current_build(Path(settings.index_dir)) is None:
        raise CliError(f"no index in {settings.index_dir}: run `reportqa ingest` first", EXIT_INDEX)
    loaded = load_index(Path(settings.index_dir), None, None, verify=False)
    print(format_section_tree(loaded))
    return 0


def format_section_tree(loaded) -> str:
    lines = []
    counts: dict[tuple[str, str], int] = {}
    for c in loaded.chunks:
        counts[(c.document_id, c.section_id)] = counts.get((c.document_id, c.section_id), 0) + 1
    for doc in loaded.documents.values():
        lines.append(f"{doc.id}: {doc.title}")
        for s in (s for s in loaded.sections if s.document_id == doc.id):
            title = s.title or "Opening (untitled)"
            n = counts.get((doc.id, s.id), 0)
            lines.append(f"{'  ' * (s.level + 1)}{s.id:<10} {title}  [{n} chunk{'s' if n != 1 else ''}]")
    return "\n".join(lines)


def cmd_config(args) -> int:
    settings = _settings(args)
    print(json.dumps(settings.public_dict(), indent=2, default=str))
    return 0


def cmd_eval(args) -> int:
    from eval.harness import run_cli

    if (args.papers or args.library) and not args.qasper:
        raise CliError("--papers and --library go with --qasper FILE", EXIT_USAGE)
    if args.qasper or args.compare:
        return _eval_qasper_or_compare(args, _settings(args))
    return run_cli(args, _settings(args))


def _eval_qasper_or_compare(args, settings) -> int:
    """`eval --qasper FILE` and `eval --compare A.json B.json` (issue 15): the runners live in eval/."""
    from dataclasses import asdict

    from eval.compare import (BadOverrides, apply_overrides, format_comparison, load_overrides, run_qasper_compare,
                              run_report_compare)
    from eval.qasper import QasperInputError, format_report, run_qasper
    from eval.splits import DEFAULT_SPLIT, SplitError
    from index import load_embedder

    progress, out = Progress(args.quiet), {}
    try:
        names = [Path(f).stem for f in args.compare or ()]
        names = names if len(set(names)) == 2 else ["A", "B"]
        configs = {n: apply_overrides(settings, load_overrides(Path(f)), f)
                   for n, f in zip(names, args.compare)} if args.compare else None
        passages, questions = load_embedder(settings, ingest=True), load_embedder(settings)
        if args.qasper and configs:
            report, comparison = run_qasper_compare(Path(args.qasper), configs, passages, questions, args.papers,
                                                    args.library, progress)
            print(format_report(report) + "\n\nA/B (filtered to the paper):\n" + format_comparison(comparison))
            out = {"qasper": report.to_json(), "compare": asdict(comparison)}
        elif args.qasper:
            report = run_qasper(Path(args.qasper), settings, passages, questions, args.papers, args.library,
                                progress=progress)
            print(format_report(report))
            out = report.to_json()
        else:
            split = args.split or DEFAULT_SPLIT
            comparison = run_report_compare(configs, passages, questions, split, progress)
            print(f"eval set, {split} split, section level\n" + format_comparison(comparison))
            out = asdict(comparison)
    except (QasperInputError, BadOverrides, SplitError) as exc:
        raise CliError(str(exc), EXIT_INPUT) from None
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1, default=str))
    return 0


def cmd_bench(args) -> int:
    from eval.bench import run_cli

    return run_cli(args, _settings(args))


# -------------------------------------------------------------------- parser

EXAMPLES = {
    "ingest": "examples:\n  reportqa ingest data/\n  reportqa ingest report.pdf notes/ --index /srv/reportqa/index\n  reportqa ingest --if-stale",
    "ask": 'examples:\n  reportqa ask "How is critical information infrastructure protected?"\n'
           '  reportqa ask "data flows" --k 3 --section p3 --json',
    "serve": "examples:\n  reportqa serve\n  reportqa serve --port 8080 --index /srv/reportqa/index",
    "eval": "examples:\n  reportqa eval\n  reportqa eval --mode hybrid --json out.json\n"
            "  reportqa eval --beir ../shared/benchmarks/scifact\n  reportqa eval --backends faiss,milvus\n"
            "  reportqa eval --qasper ../shared/benchmarks/qasper/qasper-dev-v0.3.json --papers 30 --library\n"
            "  reportqa eval --compare a.json b.json --qasper ../shared/benchmarks/qasper/qasper-train-v0.3.json",
    "sections": "examples:\n  reportqa sections\n  reportqa sections --index /srv/reportqa/index",
    "config": "examples:\n  reportqa config\n  REPORTQA_CHUNK_TOKENS=200 reportqa config",
    "bench": "examples:\n  reportqa bench\n  reportqa bench --quick --json bench.json\n  reportqa bench --scale 10000,100000",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="reportqa",
        description="Ask long reports questions; get the passages that answer them, with section citations.",
        epilog="Settings come from flags, then REPORTQA_* environment variables, then defaults (`reportqa config`).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name, helptext, func):
        p = sub.add_parser(name, help=helptext, description=helptext, epilog=EXAMPLES[name],
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        p.add_argument("--index", metavar="DIR", help="index folder (default: var/index)")
        p.add_argument("--model", metavar="PATH", help="local sentence-transformers model folder")
        p.add_argument("--encoder", choices=["torch", "onnx", "onnx-int8"],
                       help="encoder engine (ingest: for passages, else: for questions; default from settings)")
        p.set_defaults(func=func)
        return p

    p = command("ingest", "Build an index from report files and folders (.md, .txt, .pdf).", cmd_ingest)
    p.add_argument("paths", nargs="*", help="files or folders (default: the bundled report)")
    p.add_argument("--if-stale", action="store_true", help="only rebuild when reports, model or settings changed")
    p.add_argument("--chunk-tokens", type=int, help="max tiktoken tokens per chunk")
    p.add_argument("--overlap", type=int, help="tokens of trailing sentences repeated in the next chunk")
    p.add_argument("--embed-context", choices=["none", "section", "path"], help="section context embedded with chunks")
    p.add_argument("--json", action="store_true", help="print a JSON summary")
    p.add_argument("--strict", action="store_true", help="exit 1 when any file was skipped")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.add_argument("--backend", choices=["faiss", "milvus"], help="where vectors and BM25 live (default faiss)")
    p.add_argument("--milvus-uri", metavar="URI", help="Milvus Lite file (*.db) or http://host:19530 "
                   "(default <index>/milvus.db; token: REPORTQA_MILVUS_TOKEN)")
    p.add_argument("--milvus-collection", metavar="NAME", help="Milvus collection (default reportqa)")

    p = command("ask", "Print the passages that best answer a question, with citations.", cmd_ask)
    p.add_argument("question")
    p.add_argument("--k", type=int, default=5, help="passages to return (1-50, default 5)")
    p.add_argument("--mode", choices=["dense", "bm25", "hybrid"], help="retrieval mode (default hybrid)")
    p.add_argument("--section", help="only this part or section id (see `reportqa sections`)")
    p.add_argument("--group-by-section", action="store_true", help="at most one passage per section")
    p.add_argument("--json", action="store_true", help="machine-readable output")

    p = command("serve", "Serve the HTTP API and the search page.", cmd_serve)
    p.add_argument("--host", help="bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default 8000)")
    p.add_argument("--allow-remote", action="store_true", help="allow binding an address other than loopback")
    p.add_argument("--workers", type=int, help="server processes (default 1); with N cores, N workers and "
                   "--threads 1 give the most requests/s")
    p.add_argument("--threads", type=int, help="threads per encode (default: the engine's own, 2 here)")
    p.add_argument("--log-level", default="warning", choices=["critical", "error", "warning", "info", "debug"])

    p = command("eval", "Score retrieval on the eval set (or a BEIR dataset) and list the misses.", cmd_eval)
    p.add_argument("--mode", action="append", choices=["dense", "bm25", "hybrid"], help="mode(s) to score (default all)")
    p.add_argument("--json", metavar="FILE", help="also write the full results as JSON")
    p.add_argument("--beir", metavar="DIR", help="a BEIR-format dataset folder instead of the report eval set")
    p.add_argument("--split", help="eval set half: heldout (default), fit or all; BEIR: qrels split (default test)")
    p.add_argument("--qasper", metavar="FILE", help="a QASPER JSON file: ingest its papers as one library and "
                   "score evidence retrieval beside the paragraph-RRF peer")
    p.add_argument("--papers", type=int, metavar="N", help="--qasper: only the first N papers")
    p.add_argument("--library", action="store_true", help="--qasper: also ask every question over the whole library")
    p.add_argument("--compare", nargs=2, metavar=("A.json", "B.json"), help="A/B two settings-override files on "
                   "the same questions (with --qasper: its papers; else the eval set's --split)")
    p.add_argument("--beir-fields", choices=["multifield", "flat"], default="multifield",
                   help="BEIR BM25: title and body as separate fields, scores summed, as in the published "
                        "baselines (default), or one flat text")
    p.add_argument("--questions", metavar="FILE", help="eval set file (default eval/questions.jsonl)")
    p.add_argument("--check-baseline", action="store_true", help="exit 1 if a metric falls below eval/baseline.json")
    p.add_argument("--write-baseline", action="store_true", help="store these metrics as the new baseline")
    p.add_argument("--calibrate", action="store_true", help="fit the no-answer model on the eval set and save it")
    p.add_argument("--misses", type=int, default=20, help="misses to list per mode (default 20)")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.add_argument("--backends", metavar="LIST", help="score the current build on each backend side by side, "
                   "e.g. faiss,milvus (default: the one it was built for)")
    p.add_argument("--milvus-uri", metavar="URI", help="Milvus Lite file (*.db) or http://host:19530 for --backends")
    p.add_argument("--milvus-collection", metavar="NAME", help="Milvus collection for --backends")

    p = command("sections", "Print the recovered table of contents as a tree with ids.", cmd_sections)

    p = command("config", "Print the effective settings.", cmd_config)

    p = command("bench", "Benchmark encode, query latency, throughput, ingest and index scaling.", cmd_bench)
    p.add_argument("--quick", action="store_true", help="tiny sizes (what CI runs)")
    p.add_argument("--scale", help="comma-separated synthetic chunk counts (default 10000,100000)")
    p.add_argument("--million", action="store_true", help="add the 1M-chunk scaling case")
    p.add_argument("--json", metavar="FILE", help="write results as JSON")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from index import IndexUnavailable, ModelUnavailable

    try:
        return args.func(args)
    except CliError as exc:
        print(f"reportqa {args.command}: error: {exc}", file=sys.stderr)
        return exc.code
    except IndexUnavailable as exc:
        print(f"reportqa {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_INDEX
    except ModelUnavailable as exc:
        print(f"reportqa {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_INDEX
    except KeyboardInterrupt:
        print(f"reportqa {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`reportqa ask … | head`): stop quietly, as Unix tools do. stdout goes to
        # /dev/null first, or Python reports the pipe again when it flushes at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except OSError as exc:
        print(f"reportqa {args.command}: error: {exc.strerror or exc}: {getattr(exc, 'filename', '') or ''}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
