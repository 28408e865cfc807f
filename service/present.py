"""One presenter: a question is checked, and a SearchResult becomes the response body, the same for
``POST/GET /query`` and ``reportqa ask --json``."""
from __future__ import annotations

from index import SearchResult
from ingest import Chunk
from service import schemas


class InvalidQuestion(ValueError):
    """A question the service will not search (blank, too long); the message says why in words."""


def clean_question(question: str, max_chars: int) -> str:
    """The question without surrounding whitespace; InvalidQuestion when blank or longer than ``max_chars``."""
    question = question.strip()
    if not question:
        raise InvalidQuestion("question is empty: type a question")
    if len(question) > max_chars:
        raise InvalidQuestion(f"question is longer than {max_chars} characters")
    return question


def citation(chunk: Chunk, documents: dict) -> schemas.Citation:
    doc = documents.get(chunk.document_id)
    return schemas.Citation(
        document=chunk.document_id, document_title=doc.title if doc else "", section_id=chunk.section_id,
        section_title=chunk.section_title, section_path=list(chunk.section_path),
        char_start=chunk.char_start, char_end=chunk.char_end, page=chunk.page, page_label=chunk.page_label,
        document_key=chunk.document_key or (doc.key if doc else "") or chunk.document_id,
        edition=chunk.edition or (doc.edition if doc else ""),
    )


def span(chunk: Chunk) -> schemas.ChunkSpan:
    return schemas.ChunkSpan(chunk_id=chunk.id, ordinal=chunk.ordinal, char_start=chunk.char_start,
                             char_end=chunk.char_end, text=chunk.text)


def passage(hit, documents: dict) -> schemas.Passage:
    c = hit.chunk
    e = hit.explanation
    return schemas.Passage(
        chunk_id=c.id, text=c.text, score=round(hit.score, 6), citation=citation(c, documents),
        highlights=[schemas.Highlight(text=h.text, start=h.text_start, end=h.text_end, char_start=h.char_start,
                                      char_end=h.char_end, score=round(h.score, 4)) for h in hit.highlights],
        explanation=schemas.Explanation(dense_score=e.dense_score, dense_rank=e.dense_rank, bm25_score=e.bm25_score,
                                        bm25_rank=e.bm25_rank, fused_score=e.fused_score),
    )


def query_response(question: str, mode: str, result: SearchResult, documents: dict,
                   took_ms: float) -> schemas.QueryResponse:
    return schemas.QueryResponse(
        question=question, mode=mode, answerable=result.answerable, confidence=round(result.confidence, 4),
        reasons=list(result.reasons), passages=[passage(hit, documents) for hit in result.hits],
        took_ms=round(took_ms, 2),
    )
