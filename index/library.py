"""A library of reports over one index folder: list, add, replace and remove one report without a rebuild.

Each change is one new build through the store's build folder and ``CURRENT`` switch (:mod:`index.store`),
so a crash or kill -9 at any point leaves the previous build served and intact, and a running service
picks the new one up through its reload path. Writers (``add``, ``remove``, ``ingest``) are serialised by
a lock file in the index folder; one that has to wait is told who holds it, and gives up after
``library_lock_timeout_s`` with :class:`LibraryBusy`.

What a change costs: the documents it does not touch keep their records exactly (chunks, sections,
texts, chunk ids) and their vectors bit for bit: vectors come from the embedding cache
(:mod:`index.vector_cache`), seeded from the previous build, so only new texts are embedded; FAISS and
BM25 are rebuilt from those vectors and texts (cheap), Milvus upserts what changed.

Editions (:mod:`index.catalog`): adding a file whose key is already in the library makes it that key's
current edition; earlier editions stay searchable by edition. A file whose content is already in the
library is a no-op. :meth:`Library.diff` compares two editions section by section (:mod:`index.diff`).
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np

from index.backends import backend_options
from index.catalog import (DocumentRecord, LibraryError, UnknownDocument, check_key, default_key, edition_id,
                           edition_of, editions_by_key, key_from_name, key_of, new_document_id, records, resolve, split_reference)
from index.diff import EditionDiff, diff_editions
from index.embed import model_fingerprint
from index.files import LockBusy, writer_lock
from index.store import BuildSettings, IndexUnavailable, current_build, load_index, read_records, write_index
from index.vector_cache import EmbeddingCache, cached_vectors
from ingest import Chunk, Document, IngestFailure, IngestResult, IngestWarning, Section
from settings import engine_precision

LOCK_NAME = ".writer.lock"

__all__ = ["Library", "LibraryChange", "DocumentDetail", "DocumentRecord", "EditionDiff", "LibraryBusy",
           "LibraryError", "UnknownDocument", "writer_lock_for"]


class LibraryBusy(RuntimeError):
    """Another writer held the index's lock for longer than ``library_lock_timeout_s``; the message names it."""


@dataclass(frozen=True)
class LibraryChange:
    """What one ``add`` or ``remove`` did. ``build`` is None when nothing changed (no new build)."""

    build: str | None
    added: tuple[DocumentRecord, ...] = ()  # new documents and new editions, as now listed
    unchanged: tuple[tuple[str, DocumentRecord], ...] = ()  # (path given, the record already holding its content)
    removed: tuple[DocumentRecord, ...] = ()
    failures: tuple[IngestFailure, ...] = ()
    warnings: tuple[IngestWarning, ...] = ()
    embedded: dict[str, int] = field(default_factory=dict)  # kind -> texts embedded (not found in the cache)
    reused: dict[str, int] = field(default_factory=dict)  # kind -> texts whose vectors came from the cache
    seconds: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class DocumentDetail:
    """One document: the edition asked for (default current), all its editions, that edition's sections."""

    record: DocumentRecord
    editions: tuple[DocumentRecord, ...]
    sections: tuple[Section, ...]


@dataclass
class _State:
    """The library as the current build holds it (records only; vectors are read when a change needs them)."""

    documents: list[Document]
    sections: list[Section]
    chunks: list[Chunk]

    @property
    def by_id(self) -> dict[str, Document]:
        return {d.id: d for d in self.documents}


def writer_lock_for(settings, what: str, on_wait: Callable[[str], None] | None = None):
    """The index's writer lock (what ``add``/``remove`` hold; ``ingest`` holds it too). LibraryBusy on timeout."""
    return _Lock(Path(settings.index_dir), settings.library_lock_timeout_s, what, on_wait)


class _Lock:
    def __init__(self, index_dir: Path, timeout_s: float, what: str, on_wait):
        self._cm = writer_lock(index_dir / LOCK_NAME, timeout_s, what, on_wait)

    def __enter__(self):
        try:
            return self._cm.__enter__()
        except LockBusy as exc:
            raise LibraryBusy(str(exc)) from None

    def __exit__(self, *exc):
        return self._cm.__exit__(*exc)


class _LazyEmbedder:
    """The passage embedder, loaded only when a text really has to be embedded (a remove or a no-op add never
    loads the model); the manifest's model fields come from the previous build until then."""

    def __init__(self, settings, model: dict | None, make: Callable[[], object] | None):
        self._settings, self._model, self._make, self._real = settings, model or {}, make, None
        self.fingerprint = model_fingerprint(settings.resolved_model_path)
        self.precision = engine_precision(settings.ingest_encoder_backend)  # known without loading the model

    def _get(self):
        if self._real is None:
            if self._make is not None:
                self._real = self._make()
            else:
                from index import load_embedder

                self._real = load_embedder(self._settings, ingest=True)
        return self._real

    @property
    def loaded(self) -> bool:
        return self._real is not None

    def __getattr__(self, name):
        known = {"name": "name", "dimension": "dimension", "max_seq_length": "max_seq_length",
                 "backend": "encoder_backend"}
        if self._real is None and name in known and known[name] in self._model:
            return self._model[known[name]]
        return getattr(self._get(), name)

    def encode(self, texts, batch_size=32, progress=None):
        return self._get().encode(texts, batch_size, progress)


class Library:
    """The documents of the index in ``settings.index_dir``, and the changes to them.

    ``embedder`` (an :class:`~index.embed.Embedder` for passages) and ``chunker`` are made when first needed
    unless given; ``progress(stage, done, total)`` reports long steps; ``on_wait(message)`` is told when
    another writer holds the lock."""

    def __init__(self, settings, embedder=None, chunker=None,
                 progress: Callable[[str, int, int], None] | None = None,
                 on_wait: Callable[[str], None] | None = None):
        self.settings = settings
        self.index_dir = Path(settings.index_dir)
        self._embedder, self._chunker = embedder, chunker
        self.progress, self.on_wait = progress, on_wait

    # ------------------------------------------------------------------ reading
    def _state(self) -> _State | None:
        build = current_build(self.index_dir)
        if build is None:
            return None
        documents, sections, chunks = read_records(build)
        return _State(list(documents.values()), sections, chunks)

    def _require(self) -> _State:
        state = self._state()
        if state is None:
            raise IndexUnavailable(f"no index found in {self.index_dir}: run `reportqa add` or `reportqa ingest` first")
        return state

    def documents(self) -> list[DocumentRecord]:
        """Every edition of every document, in the order they were added (no model, no backend needed)."""
        build = current_build(self.index_dir)
        if build is None:
            return []
        return _records_from_manifest(build)

    def document(self, key: str, edition: str | None = None) -> DocumentDetail:
        """One document (a key, ``key@edition`` or a document id): that edition (default current), all its
        editions and that edition's sections. UnknownDocument if the library does not hold it."""
        state = self._require()
        doc = resolve(state.by_id, key, edition)
        listed = records(state.documents, state.sections, state.chunks)
        editions = tuple(r for r in listed if r.key == key_of(doc))
        record = next(r for r in editions if r.document_id == doc.id)
        return DocumentDetail(record, editions, tuple(s for s in state.sections if s.document_id == doc.id))

    def diff(self, key: str, from_edition: str | None = None, to_edition: str | None = None) -> EditionDiff:
        """Sections added, removed, moved and changed from one edition of ``key`` to another (default: the
        current edition against the one added before it)."""
        state = self._require()
        base_key, inline = split_reference(key)
        editions = editions_by_key(state.documents).get(base_key)
        if not editions:
            resolve(state.by_id, base_key)  # raises UnknownDocument with the list of keys
        to_doc = resolve(state.by_id, base_key, to_edition or inline)
        if from_edition is None:
            earlier = [d for d in editions[:editions.index(to_doc)]]
            if not earlier:
                raise LibraryError(f"{base_key} has no edition before {edition_id(to_doc)} to compare with; "
                                   f"its editions: {', '.join(edition_id(d) for d in editions)}")
            from_doc = earlier[-1]
        else:
            from_doc = resolve(state.by_id, base_key, from_edition)

        def of(doc: Document):
            return ([s for s in state.sections if s.document_id == doc.id],
                    [c for c in state.chunks if c.document_id == doc.id])

        return diff_editions(base_key, edition_id(from_doc), edition_id(to_doc), *of(from_doc), *of(to_doc))

    # ------------------------------------------------------------------ changing
    def add(self, paths: list[Path | str], key: str | None = None) -> LibraryChange:
        """Add files and folders as one new build. A file whose content the library already holds is a no-op;
        one whose key it holds becomes that key's current edition. ``key`` (one file only) overrides the
        key taken from the file name. Unreadable files are reported in ``failures``, not raised."""
        from ingest.readers import find_report_files

        if key is not None:
            check_key(key)
        files, problems = find_report_files([Path(p) for p in paths])
        if key is not None and len(files) > 1:
            raise LibraryError(f"--key names one document, but {len(files)} files were given")
        with writer_lock_for(self.settings, "add", self.on_wait):
            started = time.perf_counter()
            state = self._state() or _State([], [], [])
            failures = [IngestFailure(str(p), why) for p, why in problems]
            warnings: list[IngestWarning] = []
            new, unchanged = self._read_new(files, key, state, failures, warnings)
            parse_seconds = time.perf_counter() - started
            if not new:
                return LibraryChange(None, unchanged=tuple(unchanged), failures=tuple(failures),
                                     seconds={"parse_chunk": round(parse_seconds, 2)})
            documents = list(state.documents)
            for doc, _, _ in new:  # a new edition of a key makes the earlier ones non-current
                documents = [replace(d, current=False) if key_of(d) == doc.key and d.current else d
                             for d in documents]
            documents += [d for d, _, _ in new]
            sections = state.sections + [s for _, ss, _ in new for s in ss]
            chunks = state.chunks + [c for _, _, cs in new for c in cs]
            change = self._build(IngestResult(documents, sections, chunks, []), state)
            added_ids = {d.id for d, _, _ in new}
            listed = records(documents, sections, chunks)
            return replace(change, added=tuple(r for r in listed if r.document_id in added_ids),
                           unchanged=tuple(unchanged), failures=tuple(failures), warnings=tuple(warnings),
                           seconds={"parse_chunk": round(parse_seconds, 2), **change.seconds})

    def remove(self, references: list[str]) -> LibraryChange:
        """Remove documents as one new build: a key removes every edition, ``key@edition`` one edition (the
        newest remaining edition becomes current). Nothing is removed if any reference is unknown."""
        if not references:
            raise LibraryError("name at least one document to remove")
        with writer_lock_for(self.settings, "remove", self.on_wait):
            state = self._require()
            by_key = editions_by_key(state.documents)
            gone: dict[str, Document] = {}
            for ref in references:
                base, edition = split_reference(ref)
                if edition is None and base in by_key:
                    gone.update((d.id, d) for d in by_key[base])
                else:
                    doc = resolve(state.by_id, base, edition)
                    gone[doc.id] = doc
            kept = [d for d in state.documents if d.id not in gone]
            if not kept:
                raise LibraryError("that would remove every document and leave an empty library; "
                                   "build a new one with `reportqa ingest` instead")
            kept = _with_current(kept)
            removed = records(list(gone.values()), state.sections, state.chunks)
            result = IngestResult(kept, [s for s in state.sections if s.document_id not in gone],
                                  [c for c in state.chunks if c.document_id not in gone], [])
            return replace(self._build(result, state), removed=tuple(removed))

    # ------------------------------------------------------------------ internals
    def _chunker_obj(self):
        if self._chunker is None:
            from ingest import Chunker

            self._chunker = Chunker.from_settings(self.settings)
        return self._chunker

    def _read_new(self, files: list[Path], key: str | None, state: _State, failures: list[IngestFailure],
                  warnings: list[IngestWarning]) -> tuple[list[tuple[Document, list[Section], list[Chunk]]], list[tuple[str, DocumentRecord]]]:
        """Read and chunk the files the library does not hold yet; (new ones, (path, record) of known ones)."""
        from ingest import parse_document
        from ingest.readers import UnreadableReport, read_report

        listed = {r.sha256: r for r in records(state.documents, state.sections, state.chunks)}
        taken = {d.id for d in state.documents}
        keys_now: dict[str, str] = {}
        new, unchanged = [], []
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        for n, path in enumerate(files, 1):
            if self.progress:
                self.progress("read", n, len(files))
            try:
                doc = read_report(path, self.settings.max_file_mb)
            except UnreadableReport as exc:
                failures.append(IngestFailure(str(path), str(exc)))
                continue
            except OSError as exc:
                failures.append(IngestFailure(str(path), f"cannot read file: {exc.strerror or exc}"))
                continue
            if doc.sha256 in listed:
                unchanged.append((str(path), listed[doc.sha256]))
                continue
            doc_key = key or key_from_name(str(path)) or default_key(str(path), parse_document(doc).title or "")
            if doc_key in keys_now:
                failures.append(IngestFailure(str(path), f"same document key {doc_key!r} as {keys_now[doc_key]} in "
                                                         "this add; add it on its own (a new edition) or use --key"))
                continue
            keys_now[doc_key] = str(path)
            edition = edition_of(doc.sha256)
            doc_id = new_document_id(doc_key, edition, taken)
            taken.add(doc_id)
            doc = replace(doc, id=doc_id, key=doc_key, edition=edition, added_at=now, current=True)
            doc, sections, chunks = self._chunker_obj().parse(doc)
            if not chunks:
                failures.append(IngestFailure(str(path), "no body text found after removing artifacts"))
                continue
            if warning := doc.missing_text_warning(self.settings.warn_pages_without_text):
                warnings.append(IngestWarning(str(path), warning))
            listed[doc.sha256] = records([doc], sections, chunks)[0]
            new.append((doc, sections, chunks))
        return new, unchanged

    def _build(self, result: IngestResult, previous: _State) -> LibraryChange:
        """One new build of ``result``, vectors from the cache (seeded from the previous build)."""
        started = time.perf_counter()
        settings = self.settings
        previous_model = _previous_model(self.index_dir)
        embedder = _LazyEmbedder(settings, previous_model, (lambda: self._embedder) if self._embedder else None)
        caches = self._caches(embedder, previous_model)
        self._seed(caches, previous)
        seed_seconds = time.perf_counter() - started

        def vectors_for(kind: str, texts: list[str], report) -> np.ndarray:
            cache = caches[kind]
            vectors = cached_vectors(texts, embedder, cache, settings.embed_batch_size, report)
            if settings.embed_cache:
                cache.save()  # before the build is switched in: a crash later only leaves the cache ahead
            return vectors

        build_dir, timings = write_index(
            self.index_dir, result, embedder, BuildSettings.from_settings(settings), settings.embed_batch_size,
            settings.exact_search_max, self.progress, backend=settings.backend,
            options=backend_options(settings.backend, settings), vectors_for=vectors_for, clean_partials=True)
        return LibraryChange(
            build_dir.name,
            embedded={k: c.misses for k, c in caches.items()}, reused={k: c.hits for k, c in caches.items()},
            seconds={"reuse_previous": round(seed_seconds, 2), **{k: round(v, 2) for k, v in timings.items()},
                     "total": round(time.perf_counter() - started, 2)})

    def _caches(self, embedder, previous_model: dict | None) -> dict[str, EmbeddingCache]:
        dimension = int((previous_model or {}).get("dimension") or embedder.dimension)
        persistent = self.settings.embed_cache
        return {kind: EmbeddingCache(self.index_dir, embedder.fingerprint, kind, dimension, dtype,
                                     self.settings.embed_cache_max_segments, load=persistent,
                                     precision=embedder.precision)
                for kind, dtype in (("chunks", "float32"), ("sentences", "float16"))}

    def _seed(self, caches: dict[str, EmbeddingCache], previous: _State) -> None:
        """Put the previous build's vectors for texts the cache lacks (a build made by ``ingest``, or a cache
        that was deleted): untouched documents then keep their vectors exactly and nothing is embedded again."""
        chunks = previous.chunks
        if not chunks:
            return
        texts = [c.embed_text for c in chunks]
        sentences = [c.text[s.text_start:s.text_end] for c in chunks for s in c.sentences]
        if all(t in caches["chunks"] for t in texts) and all(t in caches["sentences"] for t in sentences):
            return
        s = self.settings
        loaded = load_index(self.index_dir, caches["chunks"].fingerprint, BuildSettings.from_settings(s),
                            verify=True, options_for=lambda name: backend_options(name, s, for_loading=True))
        try:
            if loaded.backend.exact_vectors:  # not FAISS's 8-bit HNSW: those vectors are quantised
                caches["chunks"].put(texts, loaded.backend.vectors())
            caches["sentences"].put(sentences, np.asarray(loaded.sentence_vectors))
        finally:
            loaded.close()


def _with_current(documents: list[Document]) -> list[Document]:
    """Every key keeps one current edition: where the current one was removed, the newest remaining."""
    out = list(documents)
    for key, editions in editions_by_key(documents).items():
        if not any(d.current for d in editions):
            newest = editions[-1]
            out[out.index(newest)] = replace(newest, current=True)
    return out


def _previous_model(index_dir: Path) -> dict | None:
    build = current_build(index_dir)
    try:
        return json.loads((build / "manifest.json").read_text()).get("model") if build else None
    except (OSError, ValueError):
        return None


def _records_from_manifest(build: Path) -> list[DocumentRecord]:
    """The records from ``documents.json`` alone (fast: no texts, chunks or sections read)."""
    try:
        metas = json.loads((build / "documents.json").read_text())
    except (OSError, ValueError) as exc:
        raise IndexUnavailable(f"index in {build.name} cannot be read ({type(exc).__name__}): re-run `reportqa ingest`") from None
    counts: dict[str, int] | None = None
    out = []
    for m in metas:
        if "sections" not in m and counts is None:  # a build from before the library kept the count
            counts = {}
            for s in json.loads((build / "sections.json").read_text()):
                counts[s["document_id"]] = counts.get(s["document_id"], 0) + 1
        out.append(DocumentRecord(
            key=m.get("key") or m["id"], edition=m.get("edition") or edition_of(m["sha256"]), document_id=m["id"],
            title=m["title"], source=Path(m["path"]).name, format=m["format"],
            pages=len(m.get("page_starts") or ()) or None,
            sections=m["sections"] if "sections" in m else (counts or {}).get(m["id"], 0),
            chunks=m.get("chunks", 0), sha256=m["sha256"], added_at=m.get("added_at", ""),
            current=m.get("current", True)))
    return out
