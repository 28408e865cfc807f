"""Chunk and sentence vectors for a build, in one of two ways (``Settings.sentence_vectors``):

- ``separate``: every chunk is encoded, then every sentence again on its own (one encoder pass per
  chunk plus one per sentence, each with its own [CLS]/[SEP]);
- ``pooled``: one pass per chunk; a sentence's vector is the mean of the chunk's token states over the
  sentence's span (the tokenizer's offset mapping), L2-normalised. The sentence is read in its chunk's
  context (the section title and neighbouring sentences), which is also what the retriever compares a
  question with. A sentence the window cut off (or one with no token of its own) is encoded on its own.

Why separate is the default: pooled halves an ingest's encoder time (the sentence passes are most of
it) and scored better on the report's eval set, but lost QASPER dev hit@5 0.719 -> 0.623 (first 40
papers): there a sentence's pooled vector mostly follows its paragraph's (median cosine to its
separate vector 0.78 against 0.88 on the report). ``reportqa bench --suite encoders`` measures both.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np

from index.embed.base import TokenStates
from settings import SentenceVectorMode

if TYPE_CHECKING:
    from index.embed.embedder import Embedder
    from ingest.records import Chunk

Span = tuple[int, int]
Progress = Callable[[str, int, int], None]
EncodeTexts = Callable[[str, list[str], "Callable[[int, int], None] | None"], np.ndarray]


@dataclass(frozen=True)
class PassageVectors:
    """Vectors of the passages and of their sentences (rows in passage order, then span order)."""

    passages: np.ndarray  # (n_passages, dimension) float32, unit rows
    sentences: np.ndarray  # (n_sentences, dimension) float32, unit rows
    mode: SentenceVectorMode
    encoded_alone: int  # sentences encoded on their own (every distinct one in ``separate`` mode)


def span_vector(states: TokenStates, text: str, span: Span) -> np.ndarray | None:
    """Mean of the token states covering ``text[span[0]:span[1]]``, L2-normalised; None when the window
    cut the span off (its last character lies past the last encoded token) or no token falls in it."""
    start, end = span
    if not 0 <= start <= end <= len(text):  # not a span of this text: let the caller encode it alone
        return None
    end = start + len(text[start:end].rstrip())
    offsets = states.offsets
    if not len(offsets) or end <= start or offsets[-1, 1] < end:
        return None
    inside = (offsets[:, 0] < end) & (offsets[:, 1] > start)
    if not inside.any():
        return None
    vector = states.hidden[inside].mean(axis=0)
    norm = float(np.linalg.norm(vector))
    return (vector / norm).astype(np.float32) if norm > 0 else None


def encode_pooled(embedder: "Embedder", texts: Sequence[str], spans: Sequence[Sequence[Span | None]],
                  sentence_texts: Sequence[str], batch_size: int,
                  progress: Callable[[int, int], None] | None = None) -> PassageVectors:
    """One encoder pass per text; each span's vector pooled from that pass (see the module docstring).
    ``sentence_texts`` (one per span, in row order) is what a span that cannot be pooled (cut off by the
    window, or None) is encoded as on its own."""
    if len(texts) != len(spans):
        raise ValueError(f"{len(texts)} texts but spans for {len(spans)}")
    starts = np.zeros(len(texts) + 1, dtype=np.int64)
    np.cumsum([len(s) for s in spans], out=starts[1:])
    passages = np.empty((len(texts), embedder.dimension), dtype=np.float32)
    sentences = np.empty((int(starts[-1]), embedder.dimension), dtype=np.float32)
    if len(sentence_texts) != starts[-1]:
        raise ValueError(f"{starts[-1]} spans but {len(sentence_texts)} sentence texts")
    alone: list[int] = []  # rows of the sentences to encode on their own
    for done, rows, vectors, states in embedder.encode_tokens(list(texts), batch_size):
        passages[rows] = vectors
        for i, state in zip(rows, states):
            for j, span in enumerate(spans[i]):
                vector = None if span is None else span_vector(state, texts[i], span)
                if vector is None:
                    alone.append(int(starts[i]) + j)
                else:
                    sentences[starts[i] + j] = vector
        if progress:
            progress(done, len(texts))
    if alone:
        sentences[alone] = embedder.encode([sentence_texts[r] for r in alone], batch_size)
    return PassageVectors(passages, sentences, SentenceVectorMode.POOLED, len(alone))


def sentence_spans(chunk: "Chunk") -> list[Span | None]:
    """Each sentence's span in the text the chunk is embedded as (``embed_text`` ends with ``text``,
    after the section context); sentences are stored as offsets into ``text``."""
    if not chunk.embed_text.endswith(chunk.text):  # not built the usual way: encode its sentences alone
        return [None for _ in chunk.sentences]
    shift = len(chunk.embed_text) - len(chunk.text)
    return [(shift + s.text_start, shift + s.text_end) for s in chunk.sentences]


def embed_chunks(embedder: "Embedder", chunks: Sequence["Chunk"], batch_size: int, mode: str,
                 progress: Progress | None = None, encode: EncodeTexts | None = None) -> PassageVectors:
    """The vectors a build stores for ``chunks``: one per chunk (of ``embed_text``) and one per sentence.

    ``encode(kind, texts, report)`` (kind ``chunks`` or ``sentences``) is how ``separate`` mode gets vectors
    for texts, e.g. through the library's embedding cache; by default the embedder encodes them. ``pooled``
    mode always runs the encoder: a pooled sentence vector depends on its chunk, not on its text alone."""
    mode = SentenceVectorMode(mode)
    if encode is None:
        encode = lambda kind, texts, report: embedder.encode(texts, batch_size, report)  # noqa: E731
    texts = [c.embed_text for c in chunks]
    sentences = [c.text[s.text_start:s.text_end] for c in chunks for s in c.sentences]
    if mode == SentenceVectorMode.POOLED:
        return encode_pooled(embedder, texts, [sentence_spans(c) for c in chunks], sentences, batch_size,
                             (lambda d, n: progress("embed chunks + sentences", d, n)) if progress else None)
    vectors = encode("chunks", texts, (lambda d, n: progress("embed chunks", d, n)) if progress else None)
    # A sentence repeated in the library (boilerplate, a repeated caption) is encoded once: the same vector.
    distinct = list(dict.fromkeys(sentences))
    encoded = encode("sentences", distinct, (lambda d, n: progress("embed sentences", d, n)) if progress else None)
    row = {t: i for i, t in enumerate(distinct)}
    sentence_vectors = encoded[[row[t] for t in sentences]] if sentences else encoded
    return PassageVectors(vectors, sentence_vectors, mode, len(distinct))
