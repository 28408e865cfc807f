"""Pydantic schemas for every request and response of the HTTP API."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from settings import RetrievalMode as Mode

EDITION_PATTERN = r"^[0-9a-fA-F]{4,64}$"  # an edition id is a SHA-256 prefix; at least 4 digits to name one


class QueryRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: str = Field(..., description="The question in plain language.", examples=["How is critical information infrastructure protected?"])
    k: int = Field(5, ge=1, le=50, description="How many passages to return.")
    mode: Mode = Field(Mode.HYBRID, description="dense, bm25 or hybrid (both fused).")
    section: str | None = Field(None, max_length=200, description="Only passages in this part or section id (and its subsections).")
    document: str | None = Field(None, max_length=200, description=(
        "Only passages of this document: its key (the current edition), a document id or key@edition."))
    group_by_section: bool = Field(False, description="At most one passage per section.")
    edition: str | None = Field(None, pattern=EDITION_PATTERN, description=(
        "Only this edition (an edition id or a unique prefix of one) of `document`, or of whichever "
        "document has it; default: every document's current edition."))


def question_schema(max_chars: int) -> dict:
    """What the API documents about a question. Checked by the service itself, so the error says it in words."""
    return {"minLength": 1, "maxLength": max_chars, "pattern": r"\S"}


def query_request_model(max_chars: int) -> type[QueryRequest]:
    """QueryRequest whose documented question length follows the configured limit."""
    from pydantic import create_model

    return create_model(
        "QueryRequest", __base__=QueryRequest,
        question=(str, Field(..., description="The question in plain language (not blank).",
                             examples=["How is critical information infrastructure protected?"],
                             json_schema_extra=question_schema(max_chars))),
    )


class Citation(BaseModel):
    document: str
    document_title: str
    section_id: str
    section_title: str
    section_path: list[str]
    char_start: int
    char_end: int
    page: int | None = None
    page_label: str | None = Field(None, description="The page's printed label (e.g. 'iii', '12'), PDF only.")
    document_key: str = Field("", description="The document's library key (stable across editions).")
    edition: str = Field("", description="The edition cited: the first 12 hex digits of its file's SHA-256.")


class Highlight(BaseModel):
    text: str
    start: int = Field(description="Offset into the passage text.")
    end: int
    char_start: int = Field(description="Offset into the original file.")
    char_end: int
    score: float


class Explanation(BaseModel):
    dense_score: float | None
    dense_rank: int | None
    bm25_score: float | None
    bm25_rank: int | None
    fused_score: float | None


class Passage(BaseModel):
    chunk_id: str
    text: str
    score: float
    citation: Citation
    highlights: list[Highlight]
    explanation: Explanation


class QueryResponse(BaseModel):
    question: str
    mode: Mode
    answerable: bool
    confidence: float = Field(description="Probability that the report answers the question.")
    reasons: list[str] = Field(default_factory=list, description=(
        "When answerable is false: what the question asks for that the best passages lack, in words "
        "(e.g. 'no number of graduates in the best passages')."))
    passages: list[Passage]
    took_ms: float


class SectionNode(BaseModel):
    id: str
    document: str
    number: str
    title: str
    label: str = Field(description="Display name: the title, or a description for the untitled opening.")
    level: int
    children: list["SectionNode"] = []


class SectionsResponse(BaseModel):
    documents: list[dict[str, str]]
    sections: list[SectionNode]


class DocumentInfo(BaseModel):
    """One edition of one document."""

    id: str = Field(description="The document id in the index (the `document` of citations and filters).")
    key: str = Field(description="The document's library key, stable across editions.")
    edition: str = Field(description="This edition: the first 12 hex digits of its file's SHA-256.")
    current: bool = Field(description="Whether this is the key's current edition (searched by default).")
    title: str
    source: str = Field(description="The name of the file the document was read from (not its folder on the server).")
    format: str = Field(description="markdown, text or pdf.")
    sections: int
    chunks: int
    pages: int | None = Field(None, description="Pages of a PDF; null when the format has none.")
    sha256: str = Field(description="SHA-256 of the file as received.")
    added_at: str = Field(description="When this edition was added (UTC, ISO 8601); empty if not recorded.")


class DocumentsResponse(BaseModel):
    documents: list[DocumentInfo]


class DocumentDetail(BaseModel):
    key: str
    edition: DocumentInfo = Field(description="The edition asked for (default: the current one).")
    editions: list[DocumentInfo] = Field(description="Every edition of the document, in the order added.")
    sections: list[SectionNode] = Field(description="That edition's table of contents.")


class SectionRef(BaseModel):
    id: str
    number: str
    title: str
    path: list[str]


class SectionChange(BaseModel):
    kind: str = Field(description="added, removed, moved or changed.")
    old: SectionRef | None = Field(description="The section in the `from` edition (null when added).")
    new: SectionRef | None = Field(description="The section in the `to` edition (null when removed).")
    similarity: float | None = Field(None, description="moved / changed: how alike the two texts are "
                                                       "(word sequence ratio, 1.0 = the same).")


class DiffResponse(BaseModel):
    key: str
    from_edition: str
    to_edition: str
    added: list[SectionChange]
    removed: list[SectionChange]
    moved: list[SectionChange]
    changed: list[SectionChange]
    unchanged: int = Field(description="Matched sections neither moved nor changed.")


class UploadResponse(BaseModel):
    document: DocumentInfo = Field(description="The edition the upload is (new, or already in the library).")
    added: bool = Field(description="False when the same content was already in the library (nothing changed).")
    build: str = Field(description="The build being served once the answer is sent.")
    warnings: list[str] = Field(default_factory=list, description="What the reader should know about the "
                                "document as added, e.g. PDF pages without a text layer that cannot be searched.")


class RemoveResponse(BaseModel):
    key: str
    removed: list[str] = Field(description="The editions removed.")
    build: str = Field(description="The build being served once the answer is sent.")


class ChunkSpan(BaseModel):
    chunk_id: str
    ordinal: int
    char_start: int = Field(description="Offset into the original file.")
    char_end: int
    text: str


class SectionChunk(ChunkSpan):
    text_start: int = Field(description="Where this chunk starts in the section's `text`.")
    text_end: int


class SectionDetail(BaseModel):
    id: str
    document: str
    number: str
    title: str
    path: list[str]
    parent_id: str | None
    children: list[str]
    char_start: int
    char_end: int
    label: str = Field(description="Display name: the title, or a description for the untitled opening.")
    text: str = Field(description="The section's own text (artifacts and markup removed); paragraphs separated by a blank line.")
    chunks: list[SectionChunk]


class PassageDetail(BaseModel):
    chunk: ChunkSpan
    citation: Citation
    previous: ChunkSpan | None
    next: ChunkSpan | None


class Health(BaseModel):
    status: str


class Ready(BaseModel):
    ready: bool
    chunks: int
    model: str
    index_build: str


class ReloadResponse(BaseModel):
    previous_build: str
    build: str
    chunks: int
    reloads: int


class ErrorResponse(BaseModel):
    error: str = Field(description="What is wrong, in words a person can act on.")
    detail: list[str] = Field([], description="Every problem found, when there are several.")
