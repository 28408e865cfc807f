"""An index on disk: one folder per build, a manifest, and an atomic switch between builds.

Layout::

    <index_dir>/CURRENT              name of the build being served (replaced atomically)
    <index_dir>/builds/<build>/      manifest.json, chunks.jsonl, sections.json, documents.json,
                                     texts/<doc>.txt, dense.faiss, sentences.npy, bm25/, acronyms.json

With ``backend=milvus`` the build folder keeps everything but ``dense.faiss`` and ``bm25/`` (it has
``vocabulary.json`` instead, for typo correction), the vectors and BM25 live in a Milvus collection
(:mod:`index.milvus`), and the manifest names the backend, the collection and its URI (no credentials).
The collection is synced before ``CURRENT`` switches.

A build is written completely into a fresh folder, its files checksummed into
the manifest, and only then named in ``CURRENT``; a crash at any point leaves
the previous build intact and served. Loading verifies format version,
checksums, model and chunking settings; nothing is loaded with pickle.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from index.backends import FaissBackend, SearchBackend
from index.dense import DenseIndex
from index.embedder import Embedder, file_sha256
from index.lexical import LexicalIndex, find_acronyms
from ingest import Chunk, Document, IngestResult, Section, Sentence

if TYPE_CHECKING:
    from index.milvus import MilvusTarget

FORMAT_VERSION = 1
KEEP_BUILDS = 2


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

    @classmethod
    def from_settings(cls, s) -> "BuildSettings":
        return cls(s.tiktoken_encoding, s.chunk_tokens, s.chunk_overlap_tokens, s.embed_context, s.bm25_k1, s.bm25_b)


def _write_json(path: Path, data) -> None:
    path.write_text(json.dumps(data, ensure_ascii=False, indent=1))


def _atomic_write_text(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


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
    if manifest.get("build_settings") != asdict(build):
        reasons.append("chunking/BM25 settings changed")
    if manifest.get("model", {}).get("fingerprint") != model_fingerprint:
        reasons.append("embedding model changed")
    built = {d["sha256"] for d in manifest.get("documents", [])}
    wanted = {d.sha256 if isinstance(d, Document) else d[1] for d in sources}
    if built != wanted:
        reasons.append("report files changed")
    # --- milvus backend (issue 7) ---
    if backend is not None and manifest.get("backend", "faiss") != backend:
        reasons.append(f"backend changed to {backend}")
    elif backend == "milvus" and collection is not None and manifest.get("collection") != collection:
        reasons.append(f"milvus collection changed to {collection}")
    # --- end milvus backend ---
    return reasons


def write_index(
    index_dir: Path,
    result: IngestResult,
    embedder: Embedder,
    build: BuildSettings,
    batch_size: int,
    exact_search_max: int,
    progress: Callable[[str, int, int], None] | None = None,
    milvus: "MilvusTarget | None" = None,
) -> tuple[Path, dict]:
    """Embed and index ``result`` into a new build, then switch ``CURRENT`` to it. Returns (build dir, timings).
    With ``milvus`` the vectors and BM25 go to that collection instead of dense.faiss and bm25/."""
    if not result.chunks:
        raise IndexUnavailable("nothing to index: no chunks were produced")
    index_dir.mkdir(parents=True, exist_ok=True)
    builds = index_dir / "builds"
    builds.mkdir(exist_ok=True)
    name = time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
    work = builds / f".partial-{name}"
    work.mkdir()
    timings: dict[str, float] = {}
    try:
        started = time.perf_counter()
        texts = [c.embed_text for c in result.chunks]
        vectors = embedder.encode(texts, batch_size, (lambda d, n: progress("embed chunks", d, n)) if progress else None)
        sentences = [c.text[s.text_start:s.text_end] for c in result.chunks for s in c.sentences]
        sentence_vectors = embedder.encode(
            sentences, batch_size, (lambda d, n: progress("embed sentences", d, n)) if progress else None
        )
        timings["embed"] = time.perf_counter() - started

        started = time.perf_counter()
        np.save(work / "sentences.npy", sentence_vectors.astype(np.float16), allow_pickle=False)
        if milvus is None:
            dense = DenseIndex.build(vectors, exact_search_max)
            dense.save(work / "dense.faiss")
            lexical = LexicalIndex.build(texts, build.bm25_k1, build.bm25_b)
            (work / "bm25").mkdir()
            lexical.save(work / "bm25")
            dense_info = {"kind": dense.kind, "count": dense.size, "metric": "inner_product"}
            bm25_info = {"library": "bm25s", "method": "lucene", "vocabulary": len(lexical.vocabulary)}
        else:  # --- milvus backend (issue 7): the local part; the collection is synced below ---
            from index.lexical import normalise

            terms = [normalise(t) for t in texts]
            vocabulary = sorted({t for ts in terms for t in ts})
            _write_json(work / "vocabulary.json", vocabulary)
            bm25_info = {"library": "milvus", "function": "BM25", "vocabulary": len(vocabulary),
                         "analyzer": "reportqa normaliser (index.lexical.normalise), then Milvus standard tokenizer"}
        timings["index"] = time.perf_counter() - started

        with (work / "chunks.jsonl").open("w") as fh:
            for chunk in result.chunks:
                fh.write(json.dumps(_chunk_to_json(chunk), ensure_ascii=False) + "\n")
        _write_json(work / "sections.json", [asdict(s) for s in result.sections])
        (work / "texts").mkdir()
        docs = []
        for doc in result.documents:
            (work / "texts" / f"{doc.id}.txt").write_text(doc.text)
            meta = {k: v for k, v in asdict(doc).items() if k != "text"}
            meta["chunks"] = sum(1 for c in result.chunks if c.document_id == doc.id)
            docs.append(meta)
        _write_json(work / "documents.json", docs)
        _write_json(work / "acronyms.json", find_acronyms([c.text for c in result.chunks]))

        files = {
            str(p.relative_to(work)): file_sha256(p) for p in sorted(work.rglob("*")) if p.is_file()
        }
        backend_info: dict = {"backend": "faiss"}
        if milvus is not None:  # --- milvus backend (issue 7): sync last, just before the switch ---
            from index.milvus import MilvusUnavailable, SCHEMA_VERSION, sanitise_uri, sync_collection

            try:
                sync = sync_collection(milvus, result.chunks, vectors, terms, embedder.fingerprint, build.bm25_k1,
                                       build.bm25_b, exact_search_max, progress)
            except MilvusUnavailable as exc:
                raise IndexUnavailable(str(exc)) from None
            timings["milvus"] = sync.seconds
            dense_info = {"kind": sync.index_type.lower(), "count": sync.rows, "metric": "inner_product",
                          "engine": "milvus"}
            backend_info = {"backend": "milvus", "collection": milvus.collection,
                            "uri": sanitise_uri(milvus.uri, index_dir),
                            "milvus": sync.as_dict() | {"schema": SCHEMA_VERSION}}
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
            "build_settings": asdict(build),
            **backend_info,
            "dense": dense_info,
            "bm25": bm25_info,
            "counts": {"documents": len(result.documents), "sections": len(result.sections),
                       "chunks": len(result.chunks), "sentences": len(sentences)},
            "documents": docs,
            "files": files,
        }
        _write_json(work / "manifest.json", manifest)
        final = builds / name
        for path in work.rglob("*"):
            if path.is_file():
                with path.open("rb") as fh:
                    os.fsync(fh.fileno())
        os.rename(work, final)
        _atomic_write_text(index_dir / "CURRENT", name + "\n")
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    _prune_builds(index_dir, keep=name)
    return final, timings


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
    backend: "SearchBackend"
    sentence_vectors: np.ndarray
    sentence_offsets: np.ndarray  # chunk i's sentences are rows [offsets[i], offsets[i+1])
    acronyms: dict[str, str]


def load_index(index_dir: Path, model_fingerprint: str | None, build: BuildSettings | None,
               verify: bool = True, mmap: bool = False, milvus: "MilvusTarget | None" = None) -> LoadedIndex:
    """Load the current build, refusing (with a reason) anything missing, damaged or mismatched.
    A Milvus build connects to the collection its manifest names (``milvus`` supplies the token, search options
    and, if its ``uri`` is set, another URI); ``verify`` also checks the collection holds this build."""
    build_dir = current_build(index_dir)
    if build_dir is None:
        raise IndexUnavailable(f"no index found in {index_dir}: run `reportqa ingest` first")
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
    if build is not None and manifest["build_settings"] != asdict(build):
        diff = {k: v for k, v in manifest["build_settings"].items() if asdict(build).get(k) != v}
        raise IndexUnavailable(f"index was built with other chunking settings {diff}: re-run `reportqa ingest`")
    if verify:
        for rel, digest in manifest["files"].items():
            path = build_dir / rel
            if not path.is_file():
                raise IndexUnavailable(f"index file {rel} is missing: re-run `reportqa ingest`")
            if file_sha256(path) != digest:
                raise IndexUnavailable(f"index file {rel} is damaged or was modified (checksum mismatch): re-run `reportqa ingest`")
    try:
        chunks = [_chunk_from_json(json.loads(line)) for line in (build_dir / "chunks.jsonl").open()]
        sections = [_section_from_json(s) for s in json.loads((build_dir / "sections.json").read_text())]
        documents = {}
        for meta in json.loads((build_dir / "documents.json").read_text()):
            meta = {k: v for k, v in meta.items() if k != "chunks"}
            meta["page_starts"] = tuple(meta["page_starts"])
            text = (build_dir / "texts" / f"{meta['id']}.txt").read_text()
            documents[meta["id"]] = Document(text=text, **meta)
        if manifest.get("backend", "faiss") == "milvus":  # --- milvus backend (issue 7) ---
            from index.milvus import MilvusBackend

            backend = MilvusBackend(_milvus_target(manifest, index_dir, milvus), [c.id for c in chunks],
                                    json.loads((build_dir / "vocabulary.json").read_text()),
                                    manifest["build_settings"]["bm25_k1"], manifest["milvus"]["index_type"])
        else:
            backend = FaissBackend(DenseIndex.load(build_dir / "dense.faiss", manifest["dense"]["kind"], mmap=mmap),
                                   LexicalIndex.load(build_dir / "bm25", mmap=mmap))
        sentence_vectors = np.load(build_dir / "sentences.npy", allow_pickle=False, mmap_mode="r" if mmap else None)
        acronyms = json.loads((build_dir / "acronyms.json").read_text())
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise IndexUnavailable(f"index in {build_dir.name} cannot be read ({type(exc).__name__}): re-run `reportqa ingest`") from None
    if backend.kind == "faiss" and (backend.size != len(chunks) or backend.lexical.size != len(chunks)):
        raise IndexUnavailable("index parts disagree on the number of chunks: re-run `reportqa ingest`")
    if backend.kind == "milvus" and verify:
        from index.milvus import MilvusUnavailable

        try:
            backend.verify(manifest["model"]["dimension"])
        except MilvusUnavailable as exc:
            raise IndexUnavailable(str(exc)) from None
    offsets = np.zeros(len(chunks) + 1, dtype=np.int64)
    np.cumsum([len(c.sentences) for c in chunks], out=offsets[1:])
    if offsets[-1] != len(sentence_vectors):
        raise IndexUnavailable("sentence vectors do not match the chunks: re-run `reportqa ingest`")
    return LoadedIndex(build_dir, manifest, chunks, sections, documents, backend, sentence_vectors, offsets, acronyms)


def _milvus_target(manifest: dict, index_dir: Path, given: "MilvusTarget | None") -> "MilvusTarget":
    """The collection a Milvus build points to: the manifest's collection, at the given URI if one is set,
    else the recorded one (which never holds credentials)."""
    from dataclasses import replace

    from index.milvus import MilvusTarget, resolve_uri

    recorded = resolve_uri(manifest.get("uri", ""), index_dir)
    if given is None:
        return MilvusTarget(recorded, manifest["collection"])
    return replace(given, uri=given.uri or recorded, collection=manifest["collection"])
