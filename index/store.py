"""An index on disk: one folder per build, a manifest, and an atomic switch between builds.

Layout::

    <index_dir>/CURRENT              name of the build being served (replaced atomically)
    <index_dir>/builds/<build>/      manifest.json, chunks.jsonl, sections.json, documents.json,
                                     texts/<doc>.txt, dense.faiss, sentences.npy, bm25/, acronyms.json

``dense.faiss`` and ``bm25/`` are the FAISS backend's files; with ``backend=milvus`` the build folder has
``vocabulary.json`` instead (for typo correction), the vectors and BM25 live in a Milvus collection
(:mod:`index.backends.milvus`), and the manifest names the backend, the collection and its URI (no
credentials). This module writes the common files and leaves the rest to the backend
(:mod:`index.backends`): its files are written with the others, anything outside the folder (a
collection) is synced last, just before ``CURRENT`` switches.

A build is written completely into a fresh folder, its files checksummed into
the manifest, and only then named in ``CURRENT``; a crash at any point leaves
the previous build intact and served. Loading verifies format version,
checksums, model and chunking settings; nothing is loaded with pickle.
"""
from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from index.analysis import find_acronyms
from index.backends import BackendUnavailable, BuildInput, SearchBackend, backend_class
from index.embed import Embedder
from index.catalog import stamped
from index.embed.sentences import embed_chunks
from index.files import atomic_write_text, failpoint, file_sha256, fsync_tree, write_json
from ingest import Chunk, Document, IngestResult, Section, Sentence
from settings import BackendName, engine_precision, engines_of_precision

FORMAT_VERSION = 1
KEEP_BUILDS = 2
# Vectors for (kind, texts, progress): kind is "chunks" or "sentences". The default embeds every text;
# a library change passes the embedding cache (index.vector_cache.cached_vectors).
VectorsFor = Callable[[str, list[str], Callable[[int, int], None] | None], np.ndarray]


class IndexUnavailable(RuntimeError):
    """The index cannot be used; the message says why and what to do."""


@dataclass(frozen=True)
class BuildSettings:
    """The settings an index is built with; a service must run with the same ones."""

    tiktoken_encoding: str
    chunk_tokens: int
    chunk_overlap_tokens: int
    embed_context: str
    bm25_k1: float
    bm25_b: float
    sentence_vectors: str  # how the highlight/sentence-fusion vectors were made (index.embed.sentences)
    # fp32 or int8 (settings.engine_precision of ingest_encoder_backend): a question searches vectors of one
    # precision, and a library change must not add int8 vectors to an fp32 build or the other way round.
    passage_precision: str = "fp32"

    @classmethod
    def from_settings(cls, s) -> "BuildSettings":
        return cls(s.tiktoken_encoding, s.chunk_tokens, s.chunk_overlap_tokens, s.embed_context, s.bm25_k1, s.bm25_b,
                   str(s.sentence_vectors), engine_precision(s.ingest_encoder_backend))


def recorded_build_settings(manifest: dict) -> dict:
    """A manifest's build settings; a build from before the precision was recorded had fp32 passages (int8
    passages were refused then)."""
    return {"passage_precision": "fp32", **manifest.get("build_settings", {})}


def _chunk_to_json(chunk: Chunk) -> dict:
    data = asdict(chunk)
    data["sentences"] = [[s.text_start, s.text_end, s.char_start, s.char_end] for s in chunk.sentences]
    return data


def _chunk_from_json(data: dict) -> Chunk:
    data = dict(data)
    data["section_path"] = tuple(data["section_path"])
    data["sentences"] = tuple(Sentence(*s) for s in data["sentences"])
    return Chunk(**data)


def _section_from_json(data: dict) -> Section:
    data = dict(data)
    data["path"] = tuple(data["path"])
    data["body_spans"] = tuple(tuple(s) for s in data["body_spans"])
    return Section(**data)


def current_build(index_dir: Path) -> Path | None:
    pointer = index_dir / "CURRENT"
    if not pointer.is_file():
        return None
    name = pointer.read_text().strip()
    build = index_dir / "builds" / name
    return build if name and "/" not in name and build.is_dir() else None


def read_manifest(index_dir: Path) -> dict | None:
    build = current_build(index_dir)
    if build is None or not (build / "manifest.json").is_file():
        return None
    try:
        return json.loads((build / "manifest.json").read_text())
    except ValueError:
        return None


def stale_reasons(index_dir: Path, sources: list[Document] | list[tuple[str, str]], build: BuildSettings,
                  model_fingerprint: str, backend: str | None = None, collection: str | None = None) -> list[str]:
    """Why the index in ``index_dir`` does not match these sources and settings ([] = up to date)."""
    manifest = read_manifest(index_dir)
    if manifest is None:
        return ["no index built yet"]
    reasons = []
    if manifest.get("format_version") != FORMAT_VERSION:
        reasons.append("index format changed")
    recorded = recorded_build_settings(manifest)
    if recorded != asdict(build):
        changed = sorted(k for k in asdict(build).keys() | recorded.keys() if recorded.get(k) != asdict(build).get(k))
        reasons.append(f"chunking/BM25/sentence-vector/passage-precision settings changed ({', '.join(changed)})")
    if manifest.get("model", {}).get("fingerprint") != model_fingerprint:
        reasons.append("embedding model changed")
    built = {d["sha256"] for d in manifest.get("documents", [])}
    wanted = {d.sha256 if isinstance(d, Document) else d[1] for d in sources}
    if built != wanted:
        reasons.append("report files changed")
    if backend is not None and manifest.get("backend", BackendName.FAISS) != backend:
        reasons.append(f"backend changed to {backend}")
    elif collection is not None and manifest.get("collection", collection) != collection:
        reasons.append(f"{backend} collection changed to {collection}")
    return reasons


def write_index(
    index_dir: Path,
    result: IngestResult,
    embedder: Embedder,
    build: BuildSettings,
    batch_size: int,
    exact_search_max: int,
    progress: Callable[[str, int, int], None] | None = None,
    backend: str = BackendName.FAISS,
    options: object = None,
    vectors_for: VectorsFor | None = None,
    clean_partials: bool = False,
) -> tuple[Path, dict]:
    """Embed and index ``result`` into a new build, then switch ``CURRENT`` to it. Returns (build dir, timings).
    ``backend`` (with its ``options``, see :func:`index.backends.backend_options`) holds vectors and BM25;
    ``vectors_for`` gives the vectors (default: ``embedder`` encodes every text). ``clean_partials``
    deletes unfinished build folders a killed writer left (only safe under the writer lock)."""
    if not result.chunks:
        raise IndexUnavailable("nothing to index: no chunks were produced")
    if getattr(embedder, "precision", "fp32") != build.passage_precision:
        raise IndexUnavailable(f"the passage encoder makes {embedder.precision} vectors but the build settings say "
                               f"{build.passage_precision}: load the embedder from the same settings")
    index_dir.mkdir(parents=True, exist_ok=True)
    builds = index_dir / "builds"
    builds.mkdir(exist_ok=True)
    if clean_partials:
        for stale in builds.glob(".partial-*"):
            shutil.rmtree(stale, ignore_errors=True)
    documents, chunks = stamped(result.documents, result.chunks, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    result = IngestResult(documents, result.sections, chunks, result.failures)
    name = time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
    work = builds / f".partial-{name}"
    work.mkdir()
    try:
        final, timings = _write_build(work, builds / name, name, result, embedder, build, batch_size, vectors_for,
                                      exact_search_max, progress, backend_class(backend), options)
        failpoint("before-current")
        atomic_write_text(index_dir / "CURRENT", name + "\n")
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    _prune_builds(index_dir, keep=name)
    return final, timings


def _write_build(work: Path, final: Path, name: str, result: IngestResult, embedder: Embedder, build: BuildSettings,
                 batch_size: int, vectors_for: VectorsFor | None, exact_search_max: int, progress, backend: type[SearchBackend], options
                 ) -> tuple[Path, dict]:
    timings: dict[str, float] = {}
    started = time.perf_counter()
    texts = [c.embed_text for c in result.chunks]
    embedded = embed_chunks(embedder, result.chunks, batch_size, build.sentence_vectors, progress, vectors_for)
    vectors, sentence_vectors = embedded.passages, embedded.sentences
    timings["embed"] = time.perf_counter() - started
    failpoint("after-vectors")

    started = time.perf_counter()
    np.save(work / "sentences.npy", sentence_vectors.astype(np.float16), allow_pickle=False)
    data = BuildInput(work.parent.parent, result.chunks, texts, vectors, embedder.fingerprint, build.bm25_k1,
                      build.bm25_b, exact_search_max, progress)
    built = backend.write(work, data, options)
    timings["index"] = time.perf_counter() - started
    failpoint("after-index")

    docs = _write_records(work, result)
    files = {str(p.relative_to(work)): file_sha256(p) for p in sorted(work.rglob("*")) if p.is_file()}
    try:
        built = backend.publish(data, options, built)  # outside the folder: last, just before the switch
    except BackendUnavailable as exc:
        raise IndexUnavailable(str(exc)) from None
    timings |= built.timings
    failpoint("after-publish")
    manifest = {
        "format_version": FORMAT_VERSION,
        "build": name,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "model": {
            "name": embedder.name,
            "fingerprint": embedder.fingerprint,
            "dimension": embedder.dimension,
            "max_seq_length": embedder.max_seq_length,
            "normalised": True,
            # informational: either backend reads the build (the fingerprint is the weights')
            "encoder_backend": getattr(embedder, "backend", "torch"),
        },
        # how the sentence vectors were made (the mode is also in build_settings, so a change rebuilds)
        "sentence_vectors": {"mode": embedded.mode, "encoded_alone": embedded.encoded_alone},
        "build_settings": asdict(build),
        **built.identity,
        "dense": built.dense,
        "bm25": built.bm25,
        "counts": {"documents": len(result.documents), "sections": len(result.sections),
                   "chunks": len(result.chunks), "sentences": len(sentence_vectors)},
        "documents": docs,
        "files": files,
    }
    write_json(work / "manifest.json", manifest)
    fsync_tree(work)
    os.rename(work, final)
    return final, timings


def _write_records(work: Path, result: IngestResult) -> list[dict]:
    """chunks.jsonl, sections.json, texts/, documents.json, acronyms.json; returns the documents' records."""
    with (work / "chunks.jsonl").open("w") as fh:
        for chunk in result.chunks:
            fh.write(json.dumps(_chunk_to_json(chunk), ensure_ascii=False) + "\n")
    write_json(work / "sections.json", [asdict(s) for s in result.sections])
    (work / "texts").mkdir()
    docs = []
    for doc in result.documents:
        (work / "texts" / f"{doc.id}.txt").write_text(doc.text)
        meta = {k: v for k, v in asdict(doc).items() if k != "text"}
        meta["chunks"] = sum(1 for c in result.chunks if c.document_id == doc.id)
        meta["sections"] = sum(1 for s in result.sections if s.document_id == doc.id)
        docs.append(meta)
    write_json(work / "documents.json", docs)
    write_json(work / "acronyms.json", {"documents": _acronyms_by_document(result)})
    return docs


def _acronyms_by_document(result: IngestResult) -> dict[str, dict[str, str]]:
    """Each document's own definitions: a question asked of one paper is expanded with that paper's
    acronyms only ("LM" may be a language model in one paper and a Levenberg-Marquardt step in another)."""
    texts: dict[str, list[str]] = {doc.id: [] for doc in result.documents}
    for chunk in result.chunks:
        texts.setdefault(chunk.document_id, []).append(chunk.text)
    return {doc_id: find_acronyms(doc_texts) for doc_id, doc_texts in texts.items()}


def _read_acronyms(build_dir: Path) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """(the library's table, each document's table). The library's is every document's merged in order,
    the first definition of an acronym winning, as one scan of all chunks gave it; a build from before
    per-document tables holds the library's only."""
    stored = json.loads((build_dir / "acronyms.json").read_text())
    if "documents" not in stored:  # an acronym starts with a capital, so this key is never one
        return stored, {}
    by_document = stored["documents"]
    library: dict[str, str] = {}
    for table in by_document.values():
        for acronym, expansion in table.items():
            library.setdefault(acronym, expansion)
    return library, by_document


def _prune_builds(index_dir: Path, keep: str) -> None:
    builds = sorted((p for p in (index_dir / "builds").iterdir() if p.is_dir()), key=lambda p: p.name)
    finished = [p for p in builds if not p.name.startswith(".partial-")]
    for old in finished[:-KEEP_BUILDS]:
        if old.name != keep:
            shutil.rmtree(old, ignore_errors=True)


@dataclass
class LoadedIndex:
    """Everything a retriever needs, read from one build."""

    build_dir: Path
    manifest: dict
    chunks: list[Chunk]
    sections: list[Section]
    documents: dict[str, Document]
    backend: SearchBackend
    sentence_vectors: np.ndarray
    sentence_offsets: np.ndarray  # chunk i's sentences are rows [offsets[i], offsets[i+1])
    acronyms: dict[str, str]  # the whole library's
    document_acronyms: dict[str, dict[str, str]] = field(default_factory=dict)  # by document id

    def close(self) -> None:
        """Close the backend (a Milvus client's share, search threads); the files need no closing."""
        self.backend.close()


def load_index(index_dir: Path, model_fingerprint: str | None, build: BuildSettings | None,
               verify: bool = True, mmap: bool = False,
               options_for: Callable[[str], object] | None = None) -> LoadedIndex:
    """Load the current build, refusing (with a reason) anything missing, damaged or mismatched.

    The manifest names the backend; ``options_for(name)`` gives its options (e.g. a Milvus token, search
    options and, if set, another URI than the recorded one). ``verify`` checks every file's checksum and
    that the backend holds this build (a Milvus collection's schema and row count)."""
    build_dir = current_build(index_dir)
    if build_dir is None:
        raise IndexUnavailable(f"no index found in {index_dir}: run `reportqa ingest` first")
    manifest = _checked_manifest(build_dir, model_fingerprint, build)
    if verify:
        _verify_files(build_dir, manifest)
    name = manifest.get("backend", BackendName.FAISS)
    try:
        chunks = [_chunk_from_json(json.loads(line)) for line in (build_dir / "chunks.jsonl").open()]
        sections = [_section_from_json(s) for s in json.loads((build_dir / "sections.json").read_text())]
        documents = _read_documents(build_dir)
        backend = backend_class(name).open(build_dir, index_dir, manifest, chunks,
                                           options_for(name) if options_for else None, mmap=mmap)
        sentence_vectors = np.load(build_dir / "sentences.npy", allow_pickle=False, mmap_mode="r" if mmap else None)
        acronyms, document_acronyms = _read_acronyms(build_dir)
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise IndexUnavailable(f"index in {build_dir.name} cannot be read ({type(exc).__name__}): re-run `reportqa ingest`") from None
    try:
        backend.verify(manifest, len(chunks), deep=verify)
    except BackendUnavailable as exc:
        backend.close()
        raise IndexUnavailable(str(exc)) from None
    offsets = np.zeros(len(chunks) + 1, dtype=np.int64)
    np.cumsum([len(c.sentences) for c in chunks], out=offsets[1:])
    if offsets[-1] != len(sentence_vectors):
        backend.close()
        raise IndexUnavailable("sentence vectors do not match the chunks: re-run `reportqa ingest`")
    return LoadedIndex(build_dir, manifest, chunks, sections, documents, backend, sentence_vectors, offsets, acronyms,
                       document_acronyms)


def read_records(build_dir: Path) -> tuple[dict[str, Document], list[Section], list[Chunk]]:
    """A build's documents, sections and chunks, without its vectors or search backend (no model, no
    connection): what listing the library and comparing editions need."""
    try:
        chunks = [_chunk_from_json(json.loads(line)) for line in (build_dir / "chunks.jsonl").open()]
        sections = [_section_from_json(s) for s in json.loads((build_dir / "sections.json").read_text())]
        return _read_documents(build_dir), sections, chunks
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise IndexUnavailable(f"index in {build_dir.name} cannot be read ({type(exc).__name__}): re-run `reportqa ingest`") from None


def _checked_manifest(build_dir: Path, model_fingerprint: str | None, build: BuildSettings | None) -> dict:
    try:
        manifest = json.loads((build_dir / "manifest.json").read_text())
    except (OSError, ValueError):
        raise IndexUnavailable(f"index manifest in {build_dir.name} is missing or unreadable: re-run `reportqa ingest`") from None
    if manifest.get("format_version") != FORMAT_VERSION:
        raise IndexUnavailable(f"index format {manifest.get('format_version')} is not {FORMAT_VERSION}: re-run `reportqa ingest`")
    if model_fingerprint is not None and manifest["model"]["fingerprint"] != model_fingerprint:
        raise IndexUnavailable(
            f"index was built with model {manifest['model']['name']} ({manifest['model']['fingerprint']}), "
            f"not the configured one ({model_fingerprint}): re-run `reportqa ingest` or change the model setting"
        )
    recorded = recorded_build_settings(manifest)
    if build is not None and recorded != asdict(build):
        diff = {k: v for k, v in recorded.items() if asdict(build).get(k) != v}
        hint = ""
        if "passage_precision" in diff:  # the one build setting another engine setting gives
            engines = engines_of_precision(diff["passage_precision"])
            hint = f" or set REPORTQA_INGEST_ENCODER_BACKEND to {engines}, as the build was made"
        raise IndexUnavailable(f"index was built with other chunking/build settings {diff}: re-run `reportqa ingest`"
                               + hint)
    return manifest


def _verify_files(build_dir: Path, manifest: dict) -> None:
    for rel, digest in manifest["files"].items():
        path = build_dir / rel
        if not path.is_file():
            raise IndexUnavailable(f"index file {rel} is missing: re-run `reportqa ingest`")
        if file_sha256(path) != digest:
            raise IndexUnavailable(f"index file {rel} is damaged or was modified (checksum mismatch): re-run `reportqa ingest`")


def _read_documents(build_dir: Path) -> dict[str, Document]:
    documents = {}
    for meta in json.loads((build_dir / "documents.json").read_text()):
        meta = {k: v for k, v in meta.items() if k not in ("chunks", "sections")}
        meta["page_starts"] = tuple(meta["page_starts"])
        meta["page_labels"] = tuple(meta.get("page_labels", ()))
        meta["pages_without_text"] = tuple(meta.get("pages_without_text", ()))
        for name in ("bookmarks", "font_headings"):
            meta[name] = tuple(tuple(b) for b in meta.get(name, ()))
        text = (build_dir / "texts" / f"{meta['id']}.txt").read_text()
        documents[meta["id"]] = Document(text=text, **meta)
    return documents
