"""Retrieval over a loaded index: dense, BM25, or both fused by weighted reciprocal rank.

One public method, :meth:`Retriever.search`, turns a :class:`Query` into a
:class:`SearchResult` of :class:`Hit` records, each with its highlights (the
sentences that best answer) and an explanation of its score.
"""
from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from index.answerability import (DEFAULT_ANSWERABILITY, FAR_FROM_QUESTION, AnswerabilityModel, ConstraintCheck,
                                 check_constraints, evidence_features, missing_share, shape_features)
from index.analysis import AcronymTable, normalise
from index.backends import ChunkFilter
from index.catalog import UnknownDocument, current_ids, editions_by_key, resolve
from index.embed import Embedder
from index.fusion import CONVEX, FusionWeights, convex_combination, fused_order, ranks_of, weighted_rrf
from index.question_map import QuestionMap
from index.store import LoadedIndex
from ingest import Chunk
from settings import RetrievalMode, Settings

MODES: tuple[RetrievalMode, ...] = tuple(RetrievalMode)
EVIDENCE_CHUNKS = 5  # best fused chunks whose sentences the no-answer signal reads


@dataclass(frozen=True)
class Query:
    question: str
    k: int = 5
    mode: str = RetrievalMode.HYBRID
    section: str | None = None  # a part or section id: restricts results to it and its subsections
    document: str | None = None  # a document key (its current edition), a document id or key@edition
    group_by_section: bool = False
    edition: str | None = None  # one edition of ``document`` (or of whichever document has it); default current


@dataclass(frozen=True)
class Highlight:
    text: str
    text_start: int  # offsets into the chunk text
    text_end: int
    char_start: int  # offsets into the original file
    char_end: int
    score: float


@dataclass(frozen=True)
class Explanation:
    dense_score: float | None
    dense_rank: int | None
    bm25_score: float | None
    bm25_rank: int | None
    fused_score: float | None


@dataclass(frozen=True)
class Hit:
    chunk: Chunk
    score: float
    explanation: Explanation
    highlights: tuple[Highlight, ...] = ()


@dataclass(frozen=True)
class SearchResult:
    hits: list[Hit]
    answerable: bool
    confidence: float
    expanded_question: str
    features: dict = field(default_factory=dict)
    # When not answerable: the question's constraints the best passages do not meet, in words.
    reasons: tuple[str, ...] = ()


class UnknownSection(ValueError):
    pass


SENTENCE_FLOAT32_MAX_MB = Settings.model_fields["sentence_float32_max_mb"].default


class Retriever:
    def __init__(self, index: LoadedIndex, embedder: Embedder | None, weights: FusionWeights,
                 candidates: int = 50, answerability: AnswerabilityModel = DEFAULT_ANSWERABILITY,
                 sentence_float32_max_mb: float = SENTENCE_FLOAT32_MAX_MB, question_map: QuestionMap | None = None):
        self.index = index
        self.question_map = question_map
        self.embedder = embedder
        self.weights = weights
        self.candidates = candidates
        self.answerability = answerability
        self.encode_fn: Callable[[str], np.ndarray] | None = None
        self.all_features = False  # also the no-answer features the model does not use (to fit a new model)
        self.section_ids = {s.id for s in index.sections}
        self.chunk_position = {c.id: i for i, c in enumerate(index.chunks)}
        self._terms_cache: dict[int, list[frozenset[str]]] = {}  # chunk -> its sentences' BM25 terms
        # Chunk positions by document and by section id, so a filtered query gathers its chunks instead of
        # comparing every chunk's id (that took ~2.4 ms a query at 400 papers, more than the search).
        self._by_document = _positions_by(c.document_id for c in index.chunks)
        self._by_section = _positions_by(c.section_id for c in index.chunks)
        self._section_order = sorted(self._by_section)
        self._editions = editions_by_key(index.documents)
        self._base = self._current_editions()
        self.acronyms = AcronymTable(index.acronyms)  # the library's; a question about one document uses its own
        self._document_tables: dict[str, AcronymTable] = {}
        # Sentence vectors are stored as float16; numpy's float16 -> float32 cast of the gathered rows costs
        # more than the whole matrix product (0.33 of 0.42 ms for a whole-library question's 340 rows here),
        # so a retriever keeps a float32 copy up to a size (also of a memory-mapped index: 115 MB at 400
        # QASPER papers, 0.4 MiB for the bundled report, per worker). Above it, the rows a question gathers
        # are cast.
        vectors = index.sentence_vectors
        small = vectors.size * 4 <= sentence_float32_max_mb * 2**20
        self._sentences = np.array(vectors, dtype=np.float32) if small else vectors

    def close(self) -> None:
        """Close the index's backend (a Milvus client's share, its search threads). Call it once no request
        uses this retriever any more, e.g. after swapping in a new one; FAISS needs nothing closed."""
        self.index.close()

    # -------------------------------------------------------------- filters
    def _current_editions(self) -> ChunkFilter:
        """What a query searches by default: every chunk, or, where a library keeps older editions of a
        document, the current editions' chunks only (an inactive filter when there is nothing to leave out)."""
        current = current_ids(self.index.documents)
        if len(current) == len(self.index.documents):
            return ChunkFilter()
        allowed = np.sort(np.concatenate([self._by_document[d] for d in current if d in self._by_document]
                                         or [np.empty(0, dtype=np.int64)]))
        return ChunkFilter(allowed=allowed, documents=tuple(sorted(current)))

    def chunk_filter(self, query: Query) -> ChunkFilter:
        """The query's restriction; UnknownSection / UnknownDocument for a section, document or edition
        the index does not hold."""
        if query.section is None and not query.document and not query.edition:  # "" = not given
            return self._base
        document = None
        allowed = self._base.allowed
        if query.document or query.edition:
            document = resolve(self.index.documents, query.document or None, query.edition or None,
                               self._editions).id
            allowed = self._by_document.get(document, np.empty(0, dtype=np.int64))
        if query.section is not None:
            if query.section not in self.section_ids:
                raise UnknownSection(f"unknown section id {query.section!r}; GET /sections lists them")
            in_section = self._section_positions(query.section)
            allowed = in_section if allowed is None else np.intersect1d(allowed, in_section, assume_unique=True)
        if allowed is None:
            allowed = np.arange(len(self.index.chunks), dtype=np.int64)
        return ChunkFilter(query.section, document, allowed, None if document else self._base.documents)

    def _section_positions(self, section: str) -> np.ndarray:
        """Sorted positions of the chunks in ``section`` and its subsections (ids ``section.*``): in the
        sorted section ids those are one run, found by bisection."""
        ids = self._section_order
        start, end = bisect_left(ids, section + "."), bisect_left(ids, section + "/")  # "/" follows "."
        runs = [self._by_section[i] for i in ids[start:end]]
        if section in self._by_section:
            runs.append(self._by_section[section])
        return np.sort(np.concatenate(runs)) if runs else np.empty(0, dtype=np.int64)

    def _acronyms_for(self, where: ChunkFilter) -> tuple[dict[str, str], AcronymTable]:
        """The acronyms a question may be expanded with: its document's own when the query names one
        (another paper's "LM" is not this one's), else the library's."""
        own = self.index.document_acronyms.get(where.document) if where.document else None
        if own is None:
            return self.index.acronyms, self.acronyms
        table = self._document_tables.get(where.document)
        if table is None:  # built on first use: most documents of a large library are never asked alone
            table = self._document_tables[where.document] = AcronymTable(own)
        return own, table

    # --------------------------------------------------------------- search
    def encode(self, text: str) -> np.ndarray:
        """The vector a question is searched with: the model's, through the question map when one is set."""
        return self.mapped(self.model_vector(text))

    def model_vector(self, text: str) -> np.ndarray:
        """The model's own vector of ``text``; the service swaps in a micro-batching encoder (index.batching)."""
        if self.encode_fn is not None:
            return self.encode_fn(text)
        if self.embedder is None:
            raise RuntimeError("dense retrieval needs an embedder")
        return self.embedder.encode_query(text)

    def mapped(self, vector: np.ndarray) -> np.ndarray:
        return self.question_map.apply(vector) if self.question_map is not None else vector

    def expand(self, query: Query) -> str:
        """The question as searched: acronyms the document asked about (or the library) defines, expanded."""
        return self._acronyms_for(self.chunk_filter(query))[1].expand(query.question)

    def search(self, query: Query, query_vector: np.ndarray | None = None,
               judge_vector: np.ndarray | None = None) -> SearchResult:
        """``query_vector``: the vector to search with (default: the question's, mapped); ``judge_vector``: the
        one the no-answer signal reads (default: the model's own vector when it encodes, else ``query_vector``)."""
        if query.mode not in MODES:
            raise ValueError(f"unknown mode {query.mode!r}; use one of {', '.join(MODES)}")
        where = self.chunk_filter(query)
        acronyms, table = self._acronyms_for(where)
        expanded = table.expand(query.question)
        depth = max(self.candidates, query.k * (4 if query.group_by_section else 1))
        if query_vector is None:
            # Encoded in every mode: the no-answer signal needs both retrievers' views.
            own = self.model_vector(expanded)
            query_vector = self.mapped(own)
            judge_vector = own if judge_vector is None else judge_vector
        judge_vector = query_vector if judge_vector is None else judge_vector
        # The engine knows RRF over two lists only.
        engine_fusion = (query.mode == RetrievalMode.HYBRID and not self.weights.sentence
                         and self.weights.method != CONVEX)
        ranking = self.index.backend.rank(expanded, query_vector, where, depth, hybrid=engine_fusion)
        dense_rank, bm25_rank = ranking.dense, ranking.bm25

        best = self._best_sentences(dense_rank.keys() | bm25_rank.keys(), query_vector)
        fused = self._fuse(query.mode, dense_rank, bm25_rank, best)
        order = fused_order(fused)
        if engine_fusion and ranking.fused is not None:
            order = ranking.fused  # the engine fused the two lists itself
        if query.group_by_section:
            seen, grouped = set(), []
            for i in order:
                key = (self.index.chunks[i].document_id, self.index.chunks[i].section_id)
                if key not in seen:
                    seen.add(key)
                    grouped.append(i)
            order = grouped
        order = order[:query.k]

        hits = []
        terms = set(normalise(expanded))
        for i in order:
            d, b = dense_rank.get(i), bm25_rank.get(i)
            dense_score = d[1] if d else self.index.backend.dense_score(i, query_vector)
            explanation = Explanation(
                dense_score=dense_score, dense_rank=d[0] if d else None,
                bm25_score=b[1] if b else (float(ranking.bm25_scores[i]) if ranking.bm25_scores is not None else None),
                bm25_rank=b[0] if b else None,
                fused_score=fused[i] if query.mode == RetrievalMode.HYBRID else None,
            )
            hits.append(Hit(self.index.chunks[i], fused.get(i, 0.0), explanation,
                            self._highlights(i, terms, query_vector)))

        # Whether the *document* answers does not depend on a section filter or the mode: judge it on the hybrid
        # view of the library's current editions, or of the one document (edition) asked about (a library's
        # other documents do not answer a question about this one).
        # ... and with the question vectors it was fitted with: the model's own, not a question map's (the map
        # moves every cosine the model reads), so a map changes the ranking, not the verdict.
        same_vector = judge_vector is query_vector
        if query.section is not None:
            judged = self.chunk_filter(Query(query.question, document=query.document, edition=query.edition))
            unfiltered = self.index.backend.rank(expanded, judge_vector, judged, depth)
            dense_rank, bm25_rank = unfiltered.dense, unfiltered.bm25
            best = self._best_sentences(dense_rank.keys() | bm25_rank.keys(), judge_vector)
        elif not same_vector:
            dense_rank = self.index.backend.search_dense(judge_vector, where, depth)
            best = self._best_sentences(dense_rank.keys() | bm25_rank.keys(), judge_vector)
        # ... and with the fusion the no-answer model was fitted with: its features (the evidence chunks, the
        # fused shape) are read off that fusion's order, so re-weighting the ranking does not move them.
        judge = self.judge_weights
        reuse = query.mode == RetrievalMode.HYBRID and query.section is None and judge == self.weights and same_vector
        hybrid = fused if reuse else self._fuse(RetrievalMode.HYBRID, dense_rank, bm25_rank, best, judge)
        features, check = self._features(query.question, expanded, dense_rank, bm25_rank, hybrid, best, judge,
                                        acronyms)
        confidence = self.answerability.probability(features)
        answerable = confidence >= self.answerability.threshold
        reasons = () if answerable else tuple(check.reasons()) or (FAR_FROM_QUESTION,)
        return SearchResult(hits, answerable, confidence, expanded, features, reasons)

    @property
    def judge_weights(self) -> FusionWeights:
        """The fusion the no-answer signal reads: the one its model was fitted with, else the ranking's."""
        return self.answerability.fusion or self.weights

    def _fuse(self, mode: str, dense_rank: dict, bm25_rank: dict, best: dict[int, tuple[float, int]],
              weights: FusionWeights | None = None) -> dict[int, float]:
        if mode == RetrievalMode.DENSE:
            return {i: s for i, (_, s) in dense_rank.items()}
        if mode == RetrievalMode.BM25:
            return {i: s for i, (_, s) in bm25_rank.items()}
        w = weights or self.weights
        # A chunk vector averages several sentences; a paraphrased question often matches one of them
        # closely, so the candidates' best sentences are a third list that finds what the chunk vector missed.
        with_sentences = bool(w.sentence and best)
        if w.method == CONVEX:
            scores = [{i: s for i, (_, s) in dense_rank.items()}, {i: s for i, (_, s) in bm25_rank.items()}]
            if with_sentences:
                scores.append({i: s for i, (s, _) in best.items()})
            return convex_combination(scores, [w.dense, w.bm25, w.sentence][:len(scores)])
        rankings = [{i: r for i, (r, _) in dense_rank.items()}, {i: r for i, (r, _) in bm25_rank.items()}]
        if with_sentences:
            rankings.append(ranks_of(sorted(best, key=lambda i: (-best[i][0], i))))
        return weighted_rrf(rankings, [w.dense, w.bm25, w.sentence][:len(rankings)], w.rrf_k)

    def _best_sentences(self, candidates, query_vector: np.ndarray) -> dict[int, tuple[float, int]]:
        """Each candidate chunk's best sentence: (cosine to the question, its index in the chunk).

        Only the candidates' sentences are scored (one gather and one matrix product), so the cost
        does not grow with the index."""
        offsets = self.index.sentence_offsets
        chunks = np.fromiter(candidates, dtype=np.int64)
        if not len(chunks) or not len(self.index.sentence_vectors):
            return {}
        starts = offsets[chunks]
        lengths = offsets[chunks + 1] - starts
        keep = lengths > 0
        chunks, starts, lengths = chunks[keep], starts[keep], lengths[keep]
        if not len(chunks):
            return {}
        first = np.cumsum(lengths) - lengths  # where each chunk's run begins in the gathered rows
        rows = np.arange(int(lengths.sum())) - np.repeat(first - starts, lengths)
        scores = np.asarray(self._sentences[rows], dtype=np.float32) @ query_vector
        maxima = np.maximum.reduceat(scores, first)
        owner = np.repeat(np.arange(len(chunks)), lengths)
        at_max = np.flatnonzero(scores == maxima[owner])
        _, first_at_max = np.unique(owner[at_max], return_index=True)  # the first sentence reaching the maximum
        within = at_max[first_at_max] - first
        return dict(zip(chunks.tolist(), zip(maxima.tolist(), within.tolist())))

    # ----------------------------------------------------------- highlights
    def _highlights(self, i: int, terms: set[str], query_vector: np.ndarray | None) -> tuple[Highlight, ...]:
        chunk = self.index.chunks[i]
        if not chunk.sentences:
            return ()
        a, b = self.index.sentence_offsets[i], self.index.sentence_offsets[i + 1]
        lexical = np.array([len(terms & words) / (len(terms) or 1) for words in self._sentence_terms(i)],
                           dtype=np.float32)
        if query_vector is not None and b > a:
            scores = np.asarray(self._sentences[a:b], dtype=np.float32) @ query_vector + 0.1 * lexical
        else:
            scores = lexical
        best = int(np.argmax(scores))
        picked = [j for j in range(len(scores)) if scores[j] >= scores[best] - 0.02 and abs(j - best) <= 1]
        out = []
        for j in picked:
            s = chunk.sentences[j]
            out.append(Highlight(chunk.text[s.text_start:s.text_end], s.text_start, s.text_end,
                                 s.char_start, s.char_end, float(scores[j])))
        return tuple(out)

    def _sentence_terms(self, i: int) -> list[frozenset[str]]:
        cached = self._terms_cache.get(i)
        if cached is None:
            chunk = self.index.chunks[i]
            cached = [frozenset(normalise(chunk.text[s.text_start:s.text_end])) for s in chunk.sentences]
            self._terms_cache[i] = cached
        return cached

    # --------------------------------------------------------- answerability
    def _chunk_terms(self, i: int) -> frozenset[str]:
        return frozenset().union(*self._sentence_terms(i))

    def _features(self, question: str, expanded: str, dense_rank: dict, bm25_rank: dict, hybrid: dict[int, float],
                  best: dict[int, tuple[float, int]], fusion: FusionWeights,
                  acronyms: dict[str, str]) -> tuple[dict[str, float], ConstraintCheck]:
        top = sorted(hybrid, key=lambda i: (-hybrid[i], i))[:EVIDENCE_CHUNKS]
        scored = [i for i in top if i in best]
        best_text, best_score = "", 0.0
        if scored:
            i = max(scored, key=lambda c: best[c][0])
            best_score = best[i][0]
            s = self.index.chunks[i].sentences[best[i][1]]
            best_text = self.index.chunks[i].text[s.text_start:s.text_end]
        evidence = top[:3]
        known, total = self.index.backend.known_terms(question)  # as asked, before acronym expansion
        check = check_constraints(question, frozenset().union(*(self._chunk_terms(i) for i in evidence)),
                                  " ".join(self.index.chunks[i].text for i in evidence).lower(), best_text,
                                  acronyms)
        features = {
            **shape_features(dense_rank, bm25_rank, hybrid, best, best_score, fusion.top_score()),
            "missing_terms": float(total - known) / (total or 1),
            "sentence_overlap": 1.0 - missing_share(expanded, frozenset(normalise(best_text))),
            **evidence_features(check),
        }
        if self.all_features or "missing_in_candidates" in self.answerability.weights:
            # Reads every candidate's terms (up to 2 x candidates chunks, each analysed once): only when used.
            candidates = frozenset().union(*(self._chunk_terms(i) for i in dense_rank.keys() | bm25_rank.keys()))
            features["missing_in_candidates"] = missing_share(expanded, candidates)
        return features, check


def _positions_by(values: Iterable[str]) -> dict[str, np.ndarray]:
    """value -> the sorted positions where it occurs."""
    out: dict[str, list[int]] = {}
    for i, v in enumerate(values):
        out.setdefault(v, []).append(i)
    return {v: np.asarray(p, dtype=np.int64) for v, p in out.items()}
