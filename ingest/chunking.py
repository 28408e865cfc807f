"""Cut sections into token-bounded chunks of whole sentences that map back to the source.

A chunk never crosses a section boundary. Its budget counts the *embedded*
text (section context + chunk) in tiktoken tokens, and the same text must also
fit the embedding model's own window counted with its own tokenizer, so the
embedder never truncates a chunk silently.
"""
from __future__ import annotations

import hashlib
import re
from bisect import bisect_right
from dataclasses import dataclass
from itertools import groupby
from typing import Callable

from ingest.records import Chunk, Document, Section, Sentence
from ingest.lines import ParsedReport, clean_with_map

Counter = Callable[[str], int]

_ABBREVIATIONS = {
    "e.g", "i.e", "etc", "vs", "mr", "mrs", "ms", "dr", "prof", "no", "nos", "art", "arts", "fig", "figs", "vol",
    "p", "pp", "para", "sec", "ch", "inc", "ltd", "co", "corp", "st", "jr", "sr", "u.s", "u.k", "u.n", "e.u", "jan",
    "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "approx", "est", "op", "cf",
}
# A boundary: terminal punctuation, optional closing quotes/brackets, space, then something that starts a sentence.
_BOUNDARY = re.compile(r"(?<=[.!?])[\"'”’)\]]*\s+(?=[\"'“‘(\[]?[A-Z0-9])")


@dataclass(frozen=True)
class ChunkingConfig:
    max_tokens: int
    overlap_tokens: int
    embed_context: str  # "none" | "section" | "path"


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Sentence spans in ``text`` (a paragraph's clean text)."""
    spans, start = [], 0
    for m in _BOUNDARY.finditer(text):
        before = text[start:m.start()].rstrip("\"'”’)]")
        last_word = before.rsplit(" ", 1)[-1].rstrip(".!?").lower()
        if last_word in _ABBREVIATIONS or (len(last_word) == 1 and last_word.isalpha()):
            continue
        spans.append((start, m.start() + len(text[m.start():m.end()].rstrip())))
        start = m.end()
    if start < len(text):
        spans.append((start, len(text)))
    # strip trailing whitespace inside spans
    return [(a, b) for a, b in ((a, a + len(text[a:b].rstrip())) for a, b in spans) if b > a]


def context_for(section: Section, mode: str) -> str:
    if mode == "none" or not section.path:
        return ""
    if mode == "path":
        return " > ".join(section.path)
    return section.title


def _bounded_context(context: str, max_tokens: int, count: Counter, count_model: Counter, max_model: int) -> str:
    """The section context, cut at a word boundary if it would take more than half the budget
    (a pathological heading must not leave no room for the text)."""
    if not context or (count(context) <= max_tokens and count_model(context) <= max_model):
        return context
    words = context.split()
    while words and (count(" ".join(words)) > max_tokens or count_model(" ".join(words)) > max_model):
        words = words[: len(words) * 3 // 4] if len(words) > 4 else words[:-1]
    return " ".join(words) if words else ""


def embed_text_for(context: str, text: str) -> str:
    return f"{context}\n{text}" if context else text


def chunk_id(document_id: str, section_id: str, text: str) -> str:
    return hashlib.sha256(f"{document_id}\x1f{section_id}\x1f{text}".encode()).hexdigest()[:20]


@dataclass
class _Sent:
    char_start: int
    char_end: int
    text: str
    tokens: int
    table: int | None = None  # index into ParsedReport.tables when the sentence is a table row


def _table_at(parsed: ParsedReport, offset: int) -> int | None:
    starts = [t[0] for t in parsed.tables]
    i = bisect_right(starts, offset) - 1
    return i if i >= 0 and parsed.tables[i][0] <= offset < parsed.tables[i][2] else None


def _section_sentences(doc: Document, parsed: ParsedReport, section: Section, count: Counter) -> list[_Sent]:
    out: list[_Sent] = []
    for start, end in parsed.paragraphs.get(section.id, []):
        clean, pos = clean_with_map(doc.text, parsed.mask, start, end)
        table = _table_at(parsed, start) if parsed.tables else None
        # A table row is one unit: never split at a full stop inside a cell.
        spans = [(0, len(clean))] if table is not None and clean else split_sentences(clean)
        for a, b in spans:
            out.append(_Sent(pos[a], pos[b - 1] + 1, clean[a:b], count(clean[a:b]), table))
    return out


def _split_long(sent: _Sent, doc: Document, parsed: ParsedReport, budget: int, fits: Callable[[str], bool]) -> list[_Sent]:
    """A sentence over budget is cut at word boundaries (rare: tables, run-on lists)."""
    clean, pos = clean_with_map(doc.text, parsed.mask, sent.char_start, sent.char_end)
    words = [(m.start(), m.end()) for m in re.finditer(r"\S+", clean)]
    pieces: list[_Sent] = []
    i = 0
    while i < len(words):
        j = i + 1
        while j < len(words) and fits(clean[words[i][0]:words[j][1]]):
            j += 1
        if j == i + 1 and not fits(clean[words[i][0]:words[i][1]]):
            # A single "word" over budget (a URL, a hash): cut by characters.
            a, b = words[i]
            step = max(1, (b - a) // 2)
            while step > 1 and not fits(clean[a:a + step]):
                step //= 2
            if not fits(clean[a:a + step]):
                raise ValueError("chunk budget leaves no room for text; raise chunk_tokens")
            words[i:i + 1] = [(x, min(x + step, b)) for x in range(a, b, step)]
            continue
        a, b = words[i][0], words[j - 1][1]
        pieces.append(_Sent(pos[a], pos[b - 1] + 1, clean[a:b], 0))
        i = j
    return pieces


def chunk_document(
    doc: Document,
    parsed: ParsedReport,
    sections: list[Section],
    config: ChunkingConfig,
    count_tokens: Counter,
    count_model_tokens: Counter,
    model_max_tokens: int,
) -> list[Chunk]:
    """All chunks of one document, in reading order."""
    chunks: list[Chunk] = []
    for section in sections:
        base = context_for(section, config.embed_context)
        ordinal = 0
        for table, run in groupby(_section_sentences(doc, parsed, section, count_tokens), key=lambda s: s.table):
            # Rows of a table are embedded with the table's header row, so every chunk of it carries the header.
            header = "" if table is None else clean_with_map(doc.text, parsed.mask, parsed.tables[table][0],
                                                             parsed.tables[table][1])[0]
            context = _bounded_context(" ".join(p for p in (base, header) if p), config.max_tokens // 2,
                                       count_tokens, count_model_tokens, model_max_tokens // 2)
            fits = _fits_with(context, config, count_tokens, count_model_tokens, model_max_tokens)
            sentences: list[_Sent] = []
            for sent in run:
                sentences.extend([sent] if fits(sent.text) else _split_long(sent, doc, parsed, config.max_tokens, fits))
            for group in _pack(sentences, fits, config.overlap_tokens if table is None else 0, count_tokens):
                chunks.append(_make_chunk(doc, parsed, section, context, ordinal, group, count_tokens,
                                          count_model_tokens))
                ordinal += 1
    return chunks


def _fits_with(context: str, config: ChunkingConfig, count_tokens: Counter, count_model_tokens: Counter,
               model_max_tokens: int) -> Callable[[str], bool]:
    def fits(text: str) -> bool:
        full = embed_text_for(context, text)
        return count_tokens(full) <= config.max_tokens and count_model_tokens(full) <= model_max_tokens
    return fits


def _pack(sentences: list[_Sent], fits: Callable[[str], bool], overlap: int, count: Counter) -> list[list[_Sent]]:
    """Greedy packing of whole sentences; optional overlap repeats trailing sentences."""
    groups: list[list[_Sent]] = []
    current: list[_Sent] = []
    i = 0
    while i < len(sentences):
        candidate = current + [sentences[i]]
        if fits(" ".join(s.text for s in candidate)):
            current = candidate
            i += 1
            continue
        groups.append(current)
        carry: list[_Sent] = []
        if overlap:
            for s in reversed(current):
                if sum(x.tokens for x in carry) + s.tokens > overlap:
                    break
                carry.insert(0, s)
            # Overlap must never stop progress: the next sentence has to fit after the carry.
            while carry and not fits(" ".join(s.text for s in carry + [sentences[i]])):
                carry.pop(0)
        current = carry
        if not current and not fits(sentences[i].text):  # cannot happen after _split_long; guard anyway
            raise ValueError("sentence exceeds chunk budget after splitting")
    if current:
        groups.append(current)
    return groups


def _make_chunk(
    doc: Document, parsed: ParsedReport, section: Section, context: str, ordinal: int,
    group: list[_Sent], count_tokens: Counter, count_model_tokens: Counter,
) -> Chunk:
    start, end = group[0].char_start, group[-1].char_end
    text, pos = clean_with_map(doc.text, parsed.mask, start, end)
    sentences, cursor = [], 0
    for s in group:
        at = text.find(s.text, cursor)
        sentences.append(Sentence(at, at + len(s.text), s.char_start, s.char_end))
        cursor = at + len(s.text)
    embed = embed_text_for(context, text)
    return Chunk(
        id=chunk_id(doc.id, section.id, text),
        document_id=doc.id,
        section_id=section.id,
        section_title=section.title,
        section_path=section.path,
        ordinal=ordinal,
        text=text,
        embed_text=embed,
        char_start=start,
        char_end=end,
        tokens=count_tokens(embed),
        model_tokens=count_model_tokens(embed),
        page=doc.page_at(start),
        page_label=doc.page_label_at(start),
        sentences=tuple(sentences),
        document_key=doc.key,
        edition=doc.edition,
    )
