"""The Milvus backend's life cycle: options from the settings, the build (vocabulary file, collection sync),
opening a build, serving another backend's build, verifying that the collection holds the build."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from index.analysis import normalise
from index.backends.base import BackendBuild, BuildInput, Progress, SearchBackend
from index.backends.milvus.client import MilvusTarget, MilvusUnavailable, engine_errors, resolve_uri, sanitise_uri
from index.backends.milvus.schema import SCHEMA_VERSION, check_ours, count_rows, vector_dimension
from index.backends.milvus.search import MilvusSearch
from index.backends.milvus.sync import sync_collection
from index.files import write_json
from ingest import Chunk


class MilvusBackend(MilvusSearch, SearchBackend):
    """A build's vectors and BM25 in a Milvus collection (Milvus Lite file or server)."""

    kind = "milvus"

    # ------------------------------------------------------------ building, opening
    @classmethod
    def options(cls, settings, for_loading: bool = False, mmap: bool = False) -> MilvusTarget:
        """The collection the settings name (``for_loading``: an unset URI means "the one the build recorded")."""
        target = MilvusTarget.from_settings(settings)
        return replace(target, uri="") if for_loading and not settings.milvus_uri else target

    @classmethod
    def write(cls, work: Path, data: BuildInput, options: MilvusTarget) -> BackendBuild:
        """The local part: the vocabulary (for typo correction); the collection is synced by ``publish``."""
        vocabulary = _vocabulary(data.terms)
        write_json(work / "vocabulary.json", vocabulary)
        return BackendBuild({}, {}, {"library": "milvus", "function": "BM25", "vocabulary": len(vocabulary),
                                     "analyzer": "reportqa normaliser (index.analysis.normalise), then Milvus "
                                                 "standard tokenizer"})

    @classmethod
    def publish(cls, data: BuildInput, options: MilvusTarget, built: BackendBuild) -> BackendBuild:
        sync = sync_collection(options, data.chunks, data.vectors, data.terms, data.model_fingerprint,
                               data.bm25_k1, data.bm25_b, data.exact_search_max, data.progress)
        identity = {"backend": cls.kind, "collection": options.collection,
                    "uri": sanitise_uri(options.uri, data.index_dir),
                    "milvus": sync.as_dict() | {"schema": SCHEMA_VERSION}}
        dense = {"kind": sync.index_type.lower(), "count": sync.rows, "metric": "inner_product", "engine": "milvus"}
        return BackendBuild(identity, dense, built.bm25, built.timings | {"milvus": sync.seconds})

    @classmethod
    def open(cls, build_dir: Path, index_dir: Path, manifest: dict, chunks: list[Chunk],
             options: MilvusTarget | None = None, mmap: bool = False) -> "MilvusBackend":
        """Connects (lazily) to the collection the manifest names: at ``options.uri`` if set, else the recorded
        URI (which never holds credentials); ``options`` supply the token and search options."""
        recorded = resolve_uri(manifest.get("uri", ""), index_dir)
        if options is None:
            target = MilvusTarget(recorded, manifest["collection"])
        else:
            target = replace(options, uri=options.uri or recorded, collection=manifest["collection"])
        return cls(target, [c.id for c in chunks], json.loads((build_dir / "vocabulary.json").read_text()),
                   manifest["build_settings"]["bm25_k1"], manifest["milvus"]["index_type"])

    @classmethod
    def from_vectors(cls, chunks: list[Chunk], vectors: np.ndarray, manifest: dict, options: MilvusTarget,
                     exact_search_max: int, progress: Progress | None = None):
        """Another backend's build served from the collection ``options``: synced from the same chunks and
        vectors (a no-op when the collection already holds them)."""
        terms = _terms([c.embed_text for c in chunks])
        build = manifest["build_settings"]
        result = sync_collection(options, chunks, vectors, terms, manifest["model"]["fingerprint"],
                                 build["bm25_k1"], build["bm25_b"], exact_search_max, progress)
        backend = cls(options, [c.id for c in chunks], _vocabulary(terms), build["bm25_k1"], result.index_type)
        changes = {"backend": cls.kind, "collection": options.collection, "uri": sanitise_uri(options.uri)}
        return backend, changes, result

    def same_place(self, options: MilvusTarget) -> bool:
        return self.target.collection == options.collection and self.target.uri == options.uri

    def verify(self, manifest: dict, chunk_count: int, deep: bool = True) -> None:
        """Refuse a collection that does not hold this build: wrong schema, dimension or row count."""
        if deep:
            with engine_errors(self.target):
                self._verify(manifest["model"]["dimension"])

    def _verify(self, dimension: int | None) -> None:
        description = check_ours(self.client, self.target.collection)
        if dimension is not None and vector_dimension(description) != dimension:
            raise MilvusUnavailable(f"{self.target.describe()} holds {vector_dimension(description)}-dimensional "
                                    f"vectors, the build {dimension}: re-run `reportqa ingest`")
        rows = count_rows(self.client, self.target.collection)
        if rows != len(self._position):
            raise MilvusUnavailable(f"{self.target.describe()} holds {rows} rows, the build {len(self._position)} "
                                    f"chunks: it was changed by another ingest; re-run `reportqa ingest`")


def _terms(texts: list[str]) -> list[list[str]]:
    return [normalise(t) for t in texts]


def _vocabulary(terms: list[list[str]]) -> list[str]:
    return sorted({t for ts in terms for t in ts})
