"""The FAISS backend: vectors in a FAISS inner-product index and BM25 in bm25s, both files of the build folder.

The dense index type follows corpus size: exact (``IndexFlatIP``) while exact search is fast enough,
above ``exact_search_max`` vectors HNSW over 8-bit scalar-quantised vectors (a quarter of float32's
memory: ~0.6 GiB at 1M x 384, where HNSW over float32 takes 1.7 GiB; recall@10 0.99 against exact
search at 100k, see ``reportqa bench``). FAISS writes its own binary format and bm25s numpy + json (no
pickle); ``mmap=True`` maps the stored vectors read-only (``IO_FLAG_MMAP_IFC``), so several server
workers share one copy in the page cache. BM25 runs over exactly the embedded text, analysed by
:mod:`index.analysis` (the same analyzer the Milvus backend uses).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import bm25s
import faiss
import numpy as np

from index.analysis import QueryAnalyzer, count_known, normalise
from index.backends.base import (HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH, HNSW_M, BackendBuild, BackendUnavailable,
                                 BuildInput, ChunkFilter, Progress, Ranks, SearchBackend)
from ingest import Chunk

SQ_TRAIN_SAMPLE = 50_000  # vectors used to fit the 8-bit quantiser's ranges
# A float16 scan keeps the best k + max(k, RESCORE_MARGIN) for the exact rescoring: a true top-k vector would
# have to fall behind that many others by float16 rounding (|error| < 5e-4 for unit vectors) to be lost.
RESCORE_MARGIN = 32
GATHER_MAX = 4096  # a filter this small is scored row by row (no scan of the whole index)


class DenseIndex:
    """A FAISS index; for the exact (flat) kind also a view of its float32 vectors, so a small filter is
    scored directly and, from ``fp16_scan_min`` vectors, a float16 copy is scanned first and its best
    candidates rescored exactly: the same top k as the flat scan at half its memory traffic (the scan of
    22k x 384 float32 vectors is memory-bound: 1.7 ms against 1.0 ms for float16, measured here)."""

    def __init__(self, index: faiss.Index, kind: str, fp16_scan_min: int = 0):
        self.index = index
        self.kind = kind
        self._exact = self._coarse = None
        if kind == "flat" and self.size:
            self._exact = faiss.rev_swig_ptr(index.get_xb(), self.size * self.dimension).reshape(
                self.size, self.dimension)  # a view: the index owns the memory
            if fp16_scan_min and self.size >= fp16_scan_min:
                self._coarse = faiss.IndexScalarQuantizer(self.dimension, faiss.ScalarQuantizer.QT_fp16,
                                                          faiss.METRIC_INNER_PRODUCT)
                self._coarse.add(self._exact)

    @property
    def scans_fp16(self) -> bool:
        return self._coarse is not None

    @classmethod
    def build(cls, vectors: np.ndarray, exact_search_max: int) -> "DenseIndex":
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        dim = vectors.shape[1]
        if len(vectors) <= exact_search_max:
            index, kind = faiss.IndexFlatIP(dim), "flat"
        else:
            index = faiss.IndexHNSWSQ(dim, faiss.ScalarQuantizer.QT_8bit, HNSW_M, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
            sample = np.random.default_rng(0).choice(len(vectors), min(len(vectors), SQ_TRAIN_SAMPLE), replace=False)
            index.train(vectors[np.sort(sample)])
            kind = "hnsw"
        index.add(vectors)
        return cls(index, kind)

    @property
    def size(self) -> int:
        return int(self.index.ntotal)

    @property
    def dimension(self) -> int:
        return int(self.index.d)

    def search(self, query: np.ndarray, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids) of the ``k`` nearest vectors, optionally only among ``allowed`` ids."""
        k = max(1, min(k, self.size))
        if self._exact is not None and allowed is not None and len(allowed) <= GATHER_MAX:
            return self._rescored(np.asarray(allowed, dtype=np.int64), query, k)
        if self._coarse is not None:
            params = None if allowed is None else faiss.SearchParameters(
                sel=faiss.IDSelectorBatch(np.ascontiguousarray(allowed, dtype=np.int64)))
            wanted = min(self.size, k + max(k, RESCORE_MARGIN))
            _, ids = self._coarse.search(np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32), wanted,
                                         params=params)
            return self._rescored(ids[0][ids[0] >= 0], query, k)
        params = None
        if allowed is not None:
            selector = faiss.IDSelectorBatch(np.ascontiguousarray(allowed, dtype=np.int64))
            params = (faiss.SearchParametersHNSW(sel=selector, efSearch=max(HNSW_EF_SEARCH, k))
                      if self.kind == "hnsw" else faiss.SearchParameters(sel=selector))
        elif self.kind == "hnsw":
            params = faiss.SearchParametersHNSW(efSearch=max(HNSW_EF_SEARCH, k))
        scores, ids = self.index.search(np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32), k, params=params)
        keep = ids[0] >= 0
        return scores[0][keep], ids[0][keep]

    def _rescored(self, ids: np.ndarray, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The best ``k`` of ``ids`` by their exact float32 cosine; ties: the lower id first."""
        scores = self._exact[ids] @ np.asarray(query, dtype=np.float32).reshape(-1)
        order = np.lexsort((ids, -scores))[:k]
        return scores[order], ids[order]

    def save(self, path: Path) -> None:
        faiss.write_index(self.index, str(path))

    @classmethod
    def load(cls, path: Path, kind: str, mmap: bool = False, fp16_scan_min: int = 0) -> "DenseIndex":
        # IO_FLAG_MMAP is ignored for flat/HNSW storage (the whole file is read into RAM); the
        # "in-place" variant really maps it.
        flags = faiss.IO_FLAG_MMAP_IFC if mmap else 0
        return cls(faiss.read_index(str(path), flags), kind, fp16_scan_min)


class LexicalIndex:
    """BM25 over tokenised chunk texts. Files: bm25s's own (numpy + json, no pickle)."""

    def __init__(self, model: bm25s.BM25, vocabulary: list[str]):
        self.model = model
        self.vocabulary = vocabulary
        self._analyzer = QueryAnalyzer(vocabulary)  # the vocabulary is bm25s's own (sorted vocab_dict)

    @classmethod
    def build(cls, texts: list[str], k1: float, b: float) -> "LexicalIndex":
        tokens = [normalise(t) for t in texts]
        model = bm25s.BM25(k1=k1, b=b, method="lucene")
        # bm25s needs every document non-empty to keep ids aligned; an empty one gets a placeholder.
        model.index([t or ["\u2205"] for t in tokens], show_progress=False)
        vocabulary = sorted(model.vocab_dict)
        return cls(model, vocabulary)

    def query_terms(self, question: str) -> list[str]:
        return self._analyzer.terms(question)

    def scores(self, question: str) -> np.ndarray:
        terms = self.query_terms(question)
        if not terms:
            return np.zeros(self.size, dtype=np.float32)
        return np.asarray(self.model.get_scores(terms), dtype=np.float32)

    @property
    def size(self) -> int:
        return int(self.model.scores["num_docs"])

    def save(self, folder: Path) -> None:
        self.model.save(str(folder), allow_pickle=False)
        (folder / "vocabulary.json").write_text(json.dumps(self.vocabulary))

    @classmethod
    def load(cls, folder: Path, mmap: bool = False) -> "LexicalIndex":
        model = bm25s.BM25.load(str(folder), mmap=mmap, allow_pickle=False, load_corpus=False)
        vocabulary = json.loads((folder / "vocabulary.json").read_text())
        return cls(model, vocabulary)


class FieldedLexicalIndex:
    """BM25 over documents with several fields (e.g. title and body), one index per field, scores summed.

    This is the "multifield" scheme of Pyserini's BEIR baselines (Lucene sums a term's per-field BM25
    scores); each field keeps its own length normalisation, so a short title is not diluted by its body."""

    def __init__(self, fields: list[LexicalIndex]):
        self.fields = fields

    @classmethod
    def build(cls, fields: list[list[str]], k1: float, b: float) -> "FieldedLexicalIndex":
        return cls([LexicalIndex.build(texts, k1, b) for texts in fields])

    def query_terms(self, question: str) -> list[str]:
        terms: list[str] = []
        for field in self.fields:
            terms.extend(t for t in field.query_terms(question) if t not in terms)
        return terms

    def scores(self, question: str) -> np.ndarray:
        return np.sum([field.scores(question) for field in self.fields], axis=0, dtype=np.float32)

    @property
    def size(self) -> int:
        return self.fields[0].size


@dataclass(frozen=True)
class FaissOptions:
    mmap: bool = False
    fp16_scan_min: int = 0  # see DenseIndex (settings.fp16_scan_min)


class FaissBackend(SearchBackend):
    """Dense FAISS index and bm25s index, both loaded from the build folder (or built in memory)."""

    kind = "faiss"

    def __init__(self, dense: DenseIndex, lexical: LexicalIndex | FieldedLexicalIndex):
        self.dense = dense
        self.lexical = lexical

    # ------------------------------------------------------------------ building, opening
    @classmethod
    def options(cls, settings, for_loading: bool = False, mmap: bool = False) -> FaissOptions:
        return FaissOptions(mmap=mmap, fp16_scan_min=settings.fp16_scan_min)

    @classmethod
    def write(cls, work: Path, data: BuildInput, options=None) -> BackendBuild:
        dense = DenseIndex.build(data.vectors, data.exact_search_max)
        dense.save(work / "dense.faiss")
        lexical = LexicalIndex.build(data.texts, data.bm25_k1, data.bm25_b)
        (work / "bm25").mkdir()
        lexical.save(work / "bm25")
        return BackendBuild({"backend": cls.kind}, {"kind": dense.kind, "count": dense.size, "metric": "inner_product"},
                            {"library": "bm25s", "method": "lucene", "vocabulary": len(lexical.vocabulary)})

    @classmethod
    def open(cls, build_dir: Path, index_dir: Path, manifest: dict, chunks: list[Chunk], options=None,
             mmap: bool = False) -> "FaissBackend":
        mmap = mmap or bool(options and options.mmap)
        return cls(DenseIndex.load(build_dir / "dense.faiss", manifest["dense"]["kind"], mmap=mmap,
                                   fp16_scan_min=options.fp16_scan_min if options else 0),
                   LexicalIndex.load(build_dir / "bm25", mmap=mmap))

    @classmethod
    def from_vectors(cls, chunks: list[Chunk], vectors: np.ndarray, manifest: dict, options, exact_search_max: int,
                     progress: Progress | None = None) -> tuple["FaissBackend", dict, None]:
        """An in-memory FAISS + bm25s index of another backend's build (same chunks, same vectors)."""
        build = manifest["build_settings"]
        backend = cls(DenseIndex.build(vectors, exact_search_max),
                      LexicalIndex.build([c.embed_text for c in chunks], build["bm25_k1"], build["bm25_b"]))
        return backend, {"backend": cls.kind}, None

    def same_place(self, options) -> bool:
        return True  # in process: any FAISS view of a build is as good as another

    def verify(self, manifest: dict, chunk_count: int, deep: bool = True) -> None:
        if self.size != chunk_count or self.lexical.size != chunk_count:
            raise BackendUnavailable("index parts disagree on the number of chunks: re-run `reportqa ingest`")

    # ------------------------------------------------------------------ search
    @property
    def size(self) -> int:
        return self.dense.size

    def search_dense(self, query_vector: np.ndarray, where: ChunkFilter, depth: int) -> Ranks:
        scores, ids = self.dense.search(query_vector, depth, where.allowed)
        return {int(i): (r, float(s)) for r, (s, i) in enumerate(zip(scores, ids), 1)}

    def search_lexical(self, question: str, where: ChunkFilter, depth: int) -> tuple[Ranks, np.ndarray]:
        bm25_all = self.lexical.scores(question)
        # Only the allowed chunks are ranked (a paper's few dozen, not the library's every chunk).
        positions = np.arange(len(bm25_all)) if where.allowed is None else np.asarray(where.allowed, dtype=np.int64)
        candidates = bm25_all[positions]
        if len(candidates) > depth:
            keep = np.argpartition(-candidates, depth - 1)[:depth]
        else:
            keep = np.arange(len(candidates))
        keep = keep[np.lexsort((positions[keep], -candidates[keep]))]  # ties: the earlier chunk first
        return {int(positions[j]): (r, float(candidates[j])) for r, j in enumerate(keep, 1) if candidates[j] > 0}, \
            bm25_all

    def dense_score(self, position: int, query_vector: np.ndarray) -> float | None:
        if self.dense.kind != "flat":
            return None
        return float(self.dense.index.reconstruct(position) @ query_vector)

    def known_terms(self, question: str) -> tuple[int, int]:
        return count_known(question, self.lexical.query_terms)

    @property
    def exact_vectors(self) -> bool:
        return self.dense.kind == "flat"  # the 8-bit HNSW index keeps quantised vectors only

    def vectors(self) -> np.ndarray:
        """The stored vectors: exact for a flat index; for the 8-bit HNSW index FAISS builds above
        ``exact_search_max``, the dequantised ones."""
        index = self.dense.index
        return np.asarray(index.reconstruct_n(0, index.ntotal), dtype=np.float32)
