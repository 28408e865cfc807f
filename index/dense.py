"""Dense retrieval: normalised vectors in a FAISS inner-product index.

The index type follows corpus size: exact (``IndexFlatIP``) while exact search
is fast enough, above ``exact_search_max`` vectors HNSW over 8-bit scalar-
quantised vectors (a quarter of float32's memory: ~0.6 GiB at 1M x 384, where
HNSW over float32 takes 1.7 GiB; recall@10 0.99 against exact search at 100k,
see ``reportqa bench``). FAISS writes its own binary format (no pickle);
``mmap=True`` maps the stored vectors read-only (``IO_FLAG_MMAP_IFC``), so
several server workers share one copy in the page cache.
"""
from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np

HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 96
SQ_TRAIN_SAMPLE = 50_000  # vectors used to fit the 8-bit quantiser's ranges


class DenseIndex:
    def __init__(self, index: faiss.Index, kind: str):
        self.index = index
        self.kind = kind

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

    def save(self, path: Path) -> None:
        faiss.write_index(self.index, str(path))

    @classmethod
    def load(cls, path: Path, kind: str, mmap: bool = False) -> "DenseIndex":
        # IO_FLAG_MMAP is ignored for flat/HNSW storage (the whole file is read into RAM); the
        # "in-place" variant really maps it.
        flags = faiss.IO_FLAG_MMAP_IFC if mmap else 0
        return cls(faiss.read_index(str(path), flags), kind)
