"""Searching a Milvus collection: dense, BM25 and the engine's own RRF fusion, in the build's chunk positions,
the dense scores of BM25-only hits, the vectors read back; the shared client is released on close."""
from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

import numpy as np

from index.analysis import QueryAnalyzer
from index.backends.base import HNSW_EF_SEARCH, ChunkFilter, Ranking, Ranks
from index.backends.milvus.client import MilvusTarget, MilvusUnavailable, connect, engine_errors, register, release
from index.backends.milvus.schema import ensure_loaded
from index.backends.milvus.sync import batches

RANKED_MEMO = 256  # questions whose BM25-only hits are remembered for one batched dense-score fetch
SCORED_MEMO = 64  # questions whose fetched dense scores are kept


def _literal(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def filter_expression(where: ChunkFilter) -> str:
    """The retriever's filter as a Milvus boolean expression ('' = none). A section filter keeps the section
    and its subsections: ids are dot-separated paths (``p2``, ``p2.iv``)."""
    parts = []
    if where.section is not None:
        s = where.section
        parts.append(f"(section_id == {_literal(s)} or section_id like {_literal(s + '.%')})")
    if where.document is not None:
        parts.append(f"document_id == {_literal(where.document)}")
    elif where.documents is not None:
        parts.append(f"document_id in [{', '.join(_literal(d) for d in where.documents)}]")
    return " and ".join(parts)


class MilvusSearch:
    """Dense, BM25 and engine-fused hybrid search on a Milvus collection, in the build's chunk positions
    (the search half of :class:`~index.backends.milvus.backend.MilvusBackend`)."""

    def __init__(self, target: MilvusTarget, chunk_ids: list[str], vocabulary: list[str], bm25_k1: float,
                 index_type: str = "FLAT"):
        self.target = target
        self.chunk_ids = list(chunk_ids)
        self._position: dict[str, int] = {}
        for i, cid in enumerate(self.chunk_ids):
            self._position.setdefault(cid, i)
        self.analyzer = QueryAnalyzer(vocabulary)
        self.bm25_scale = 1.0 / (1.0 + bm25_k1)  # Milvus scores carry (k1 + 1); bm25s's lucene variant does not
        self.index_type = index_type
        self._client = None
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._closed = False
        # Per question vector: the positions ranked without a dense score, fetched in one request on demand.
        self._unscored: OrderedDict[bytes, set[int]] = OrderedDict()
        self._scored: OrderedDict[bytes, dict[int, float]] = OrderedDict()
        register(target)

    # ------------------------------------------------------------ set-up
    @property
    def client(self):
        if self._client is None:
            with self._lock:
                if self._client is None:
                    client = connect(self.target)
                    with engine_errors(self.target):
                        if not client.has_collection(self.target.collection):
                            raise MilvusUnavailable(f"{self.target.describe()} does not exist: re-run `reportqa ingest`")
                        ensure_loaded(client, self.target.collection)
                    self._client = client
        return self._client

    @property
    def size(self) -> int:
        return len(self.chunk_ids)

    # ------------------------------------------------------------ lexical
    def query_terms(self, question: str) -> list[str]:
        return self.analyzer.terms(question)

    def bm25_query(self, question: str) -> str:
        """The text sent to the BM25 function: the question's terms as the chunks' were analysed."""
        return " ".join(self.query_terms(question))

    def known_terms(self, question: str) -> tuple[int, int]:
        return self.analyzer.known_terms(question)

    # ------------------------------------------------------------- search
    def _search_params(self, depth: int) -> dict:
        if self.index_type == "HNSW":
            return {"metric_type": "IP", "params": {"ef": max(HNSW_EF_SEARCH, depth)}}
        return {"metric_type": "IP", "params": {}}

    def _dense(self, query_vector: np.ndarray, expr: str, depth: int) -> list[tuple[str, float]]:
        hits = self.client.search(self.target.collection, data=[_as_list(query_vector)], anns_field="vector",
                                  limit=depth, filter=expr, output_fields=["id"],
                                  search_params=self._search_params(depth))
        return [(h["id"], float(h["distance"])) for h in hits[0]]

    def _bm25(self, text: str, expr: str, depth: int) -> list[tuple[str, float]]:
        hits = self.client.search(self.target.collection, data=[text], anns_field="sparse", limit=depth,
                                  filter=expr, output_fields=["id"], search_params={"metric_type": "BM25"})
        # BM25 scores are positive; Milvus Lite reports them as negative distances, a server as scores.
        return [(h["id"], abs(float(h["distance"])) * self.bm25_scale) for h in hits[0]]

    def _hybrid(self, query_vector: np.ndarray, text: str, expr: str, depth: int) -> list[tuple[str, float]]:
        from pymilvus import AnnSearchRequest, RRFRanker

        requests = [AnnSearchRequest(data=[_as_list(query_vector)], anns_field="vector",
                                     param=self._search_params(depth), limit=depth, expr=expr or None)]
        if text:
            requests.append(AnnSearchRequest(data=[text], anns_field="sparse", param={"metric_type": "BM25"},
                                             limit=depth, expr=expr or None))
        hits = self.client.hybrid_search(self.target.collection, reqs=requests, ranker=RRFRanker(self.target.rrf_k),
                                         limit=depth, output_fields=["id"])
        return [(h["id"], abs(float(h["distance"]))) for h in hits[0]]

    def search_dense(self, query_vector: np.ndarray, where: ChunkFilter, depth: int) -> Ranks:
        return self._ranked(self._dense(query_vector, filter_expression(where), depth), _keep(where, self.size))

    def search_lexical(self, question: str, where: ChunkFilter, depth: int) -> tuple[Ranks, None]:
        text = self.bm25_query(question)
        hits = self._bm25(text, filter_expression(where), depth) if text else []
        return self._ranked([(cid, s) for cid, s in hits if s > 0], _keep(where, self.size)), None

    def search_fused(self, question: str, query_vector: np.ndarray, where: ChunkFilter, depth: int
                     ) -> list[int] | None:
        if not self.target.engine_fusion:
            return None
        hits = self._hybrid(query_vector, self.bm25_query(question), filter_expression(where), depth)
        return self._fused(hits, _keep(where, self.size))

    def _run(self, calls: list[Callable[[], list]]) -> list[list]:
        if not self.target.concurrent or len(calls) == 1 or self._closed:
            return [c() for c in calls]
        if self._pool is None:
            with self._lock:
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(max_workers=3, thread_name_prefix="milvus-search")
        return [f.result() for f in [self._pool.submit(c) for c in calls]]

    def rank(self, question: str, query_vector: np.ndarray, where: ChunkFilter, depth: int,
             hybrid: bool = False) -> Ranking:
        """The three searches of :class:`SearchBackend.rank` as concurrent requests (servers) or in turn (Lite)."""
        if where.allowed is not None and not len(where.allowed):
            return Ranking({}, {}, None, [] if hybrid else None)
        keep = _keep(where, self.size)
        expr = filter_expression(where)
        text = self.bm25_query(question)
        calls: list[Callable[[], list]] = [lambda: self._dense(query_vector, expr, depth)]
        calls.append((lambda: self._bm25(text, expr, depth)) if text else (lambda: []))
        fuse_here = hybrid and self.target.engine_fusion
        if fuse_here:
            calls.append(lambda: self._hybrid(query_vector, text, expr, depth))
        results = self._run(calls)
        dense = self._ranked(results[0], keep)
        bm25 = self._ranked([(cid, s) for cid, s in results[1] if s > 0], keep)
        fused = self._fused(results[2], keep) if fuse_here else None
        unscored = (set(bm25) | set(fused or ())) - set(dense)
        if unscored:
            with self._lock:
                self._unscored[_key(query_vector)] = unscored
                while len(self._unscored) > RANKED_MEMO:
                    self._unscored.popitem(last=False)
        return Ranking(dense, bm25, None, fused)

    def _fused(self, hits: list[tuple[str, float]], keep: np.ndarray | None) -> list[int]:
        scored = [(self._position.get(cid), s) for cid, s in hits]
        scored = [(p, s) for p, s in scored if p is not None and (keep is None or keep[p])]
        # The engine's RRF order; exact ties (e.g. rank 1 in one list only, either list) go to the earlier
        # chunk, as the in-process fusion does, so results do not depend on the engine's tie order.
        scored.sort(key=lambda ps: (-round(ps[1], 9), ps[0]))
        return [p for p, _ in scored]

    def _ranked(self, hits: list[tuple[str, float]], keep: np.ndarray | None) -> dict[int, tuple[int, float]]:
        out: dict[int, tuple[int, float]] = {}
        for cid, score in hits:
            p = self._position.get(cid)
            if p is None or p in out or (keep is not None and not keep[p]):
                continue  # a row of another build (ingest in progress) or outside the filter
            out[p] = (len(out) + 1, score)
        return out

    def dense_score(self, position: int, query_vector: np.ndarray) -> float | None:
        """The chunk's cosine with the question (for hits only BM25 found): the vectors of every such hit of the
        last ranking for this question are read back from the collection in one request."""
        key = _key(query_vector)
        with self._lock:
            scored = self._scored.get(key, {})
            if position in scored:
                return scored[position]
            wanted = self._unscored.pop(key, set()) | {position}
        rows = self.client.get(self.target.collection, ids=[self.chunk_ids[p] for p in sorted(wanted)],
                               output_fields=["vector"])
        qv = np.asarray(query_vector, dtype=np.float32).reshape(-1)
        fresh = {self._position[r["id"]]: float(np.asarray(r["vector"], dtype=np.float32) @ qv)
                 for r in rows if r["id"] in self._position}
        with self._lock:
            self._scored.setdefault(key, {}).update(fresh)
            self._scored.move_to_end(key)
            while len(self._scored) > SCORED_MEMO:
                self._scored.popitem(last=False)
        return fresh.get(position)

    def vectors(self, batch_size: int = 2_000) -> np.ndarray:
        """Every chunk's vector, in build order (to build a FAISS index from a Milvus build)."""
        out: list[np.ndarray | None] = [None] * len(self.chunk_ids)
        with engine_errors(self.target):
            for batch in batches(self.chunk_ids, batch_size):
                for row in self.client.get(self.target.collection, ids=batch, output_fields=["vector"]):
                    p = self._position[row["id"]]
                    out[p] = np.asarray(row["vector"], dtype=np.float32)
        for i, cid in enumerate(self.chunk_ids):
            if out[i] is None:
                first = self._position[cid]
                if out[first] is None:
                    raise MilvusUnavailable(f"chunk {cid} is missing from {self.target.describe()}")
                out[i] = out[first]
        return np.vstack(out)

    def close(self) -> None:
        """Stop the search threads and release this backend's share of the client (the last one closes it)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False)
        release(self.target)


def _keep(where: ChunkFilter, size: int) -> np.ndarray | None:
    if where.allowed is None:
        return None
    keep = np.zeros(size, dtype=bool)
    keep[where.allowed] = True
    return keep


def _key(vector: np.ndarray) -> bytes:
    return hashlib.blake2b(np.asarray(vector, dtype=np.float32).tobytes(), digest_size=16).digest()


def _as_list(vector: np.ndarray) -> list[float]:
    return np.asarray(vector, dtype=np.float32).reshape(-1).tolist()
