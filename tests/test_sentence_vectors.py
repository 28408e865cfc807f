"""Sentence vectors pooled from the chunk's own encoder pass against encoding every sentence again
(index.embed.sentences), on the real model and the bundled report; the setting, and a build records it.

Thresholds were measured on the bundled report (117 chunks, 288 sentences, 2026-12-02): pooled vs
separate sentence cosine median 0.876, 5th percentile 0.667, min 0.486 (a sentence that means little
without its neighbours: "This statement carries rich and important meanings."); a pooled vector's
nearest separate vector among its own chunk's sentences is its own sentence's for 0.877 of the
sentences in chunks with several; chunk vectors from the pooled pass equal the plain encode's.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from index import IndexUnavailable, build_index, load_current_index, stale_reasons
from index.embed.sentences import embed_chunks, sentence_spans, span_vector
from index.store import BuildSettings
from ingest import Sentence
from settings import Settings, SentenceVectorMode

MEDIAN_COSINE = 0.85
P5_COSINE = 0.62
SELF_MATCH = 0.80
SAME = 0.9999  # the same vectors up to float noise (another batch, another engine)


def _rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1)


@pytest.fixture(scope="module")
def both_modes(ingested, onnx_embedder):
    chunks = ingested.chunks
    return (embed_chunks(onnx_embedder, chunks, 32, SentenceVectorMode.SEPARATE),
            embed_chunks(onnx_embedder, chunks, 32, SentenceVectorMode.POOLED))


def test_pooled_sentence_vectors_are_close_to_separate_ones(ingested, both_modes):
    separate, pooled = both_modes
    assert pooled.encoded_alone == 0  # every chunk fits the window, so nothing is encoded twice
    assert len(separate.sentences) == sum(len(c.sentences) for c in ingested.chunks)
    assert separate.encoded_alone == len({c.text[s.text_start:s.text_end] for c in ingested.chunks for s in c.sentences})
    assert pooled.sentences.shape == separate.sentences.shape
    assert np.allclose(np.linalg.norm(pooled.sentences, axis=1), 1.0, atol=1e-4)
    assert _rows(pooled.passages, separate.passages).min() >= SAME  # the chunk vectors are the same pass's
    cos = _rows(pooled.sentences, separate.sentences)
    assert np.median(cos) >= MEDIAN_COSINE, np.median(cos)
    assert np.percentile(cos, 5) >= P5_COSINE, np.percentile(cos, 5)
    hits = total = offset = 0
    for chunk in ingested.chunks:
        k = len(chunk.sentences)
        if k > 1:
            sims = pooled.sentences[offset:offset + k] @ separate.sentences[offset:offset + k].T
            hits += int((sims.argmax(axis=1) == np.arange(k)).sum())
            total += k
        offset += k
    assert hits / total >= SELF_MATCH, hits / total


def test_torch_and_onnx_pool_the_same_vectors(ingested, torch_embedder, both_modes):
    chunks = ingested.chunks[:40]
    torch_pooled = embed_chunks(torch_embedder, chunks, 16, SentenceVectorMode.POOLED)
    onnx_pooled = both_modes[1]
    n = len(torch_pooled.sentences)
    assert _rows(torch_pooled.passages, onnx_pooled.passages[:len(chunks)]).min() >= SAME
    assert _rows(torch_pooled.sentences, onnx_pooled.sentences[:n]).min() >= SAME


def _long_chunk(base, sentences: list[str]):
    """A chunk longer than the model's window (chunking never makes one; other callers might)."""
    text = " ".join(sentences)
    spans, pos = [], 0
    for s in sentences:
        spans.append(Sentence(pos, pos + len(s), pos, pos + len(s)))
        pos += len(s) + 1
    context = base.section_title
    return dataclasses.replace(base, text=text, embed_text=f"{context}\n{text}", sentences=tuple(spans))


@pytest.mark.parametrize("engine", ["onnx_embedder", "torch_embedder"])
def test_sentences_cut_off_by_the_window_are_encoded_alone(request, ingested, engine):
    embedder = request.getfixturevalue(engine)
    sentences = [f"Sentence number {i} talks about network security standards and data governance rules."
                 for i in range(40)]  # ~14 pieces each: the window (256) ends around sentence 17
    chunk = _long_chunk(ingested.chunks[0], sentences)
    assert embedder.count_pieces([chunk.embed_text])[0] > embedder.max_seq_length
    pooled = embed_chunks(embedder, [chunk], 8, SentenceVectorMode.POOLED)
    alone = embedder.encode(sentences)
    cos = _rows(pooled.sentences, alone)
    cut = cos >= SAME  # exactly the separate vectors: these were encoded on their own
    assert 15 <= pooled.encoded_alone <= 30 and cut.sum() == pooled.encoded_alone
    first_cut = int(np.argmax(cut))
    assert cut[first_cut:].all() and not cut[:first_cut].any()  # the tail of the chunk, from the cut on
    assert np.isfinite(pooled.sentences).all()


def test_span_vector_refuses_spans_it_cannot_pool(ingested, onnx_embedder):
    chunk = ingested.chunks[0]
    _, states = onnx_embedder.encoder.encode_batch_tokens([chunk.embed_text])
    spans = sentence_spans(chunk)
    assert span_vector(states[0], chunk.embed_text, spans[0]) is not None
    assert span_vector(states[0], chunk.embed_text, (3, 3)) is None  # empty
    assert span_vector(states[0], chunk.embed_text, (0, len(chunk.embed_text) + 50)) is None  # past the end
    odd = dataclasses.replace(chunk, embed_text="something else entirely")
    assert sentence_spans(odd) == [None] * len(chunk.sentences)  # pooled mode encodes these alone
    pooled = embed_chunks(onnx_embedder, [odd], 8, SentenceVectorMode.POOLED)
    assert pooled.encoded_alone == len(chunk.sentences)


def test_setting_is_validated(monkeypatch):
    monkeypatch.delenv("REPORTQA_SENTENCE_VECTORS", raising=False)
    assert Settings().sentence_vectors == SentenceVectorMode.SEPARATE
    with pytest.raises(ValidationError, match="sentence_vectors"):
        Settings(sentence_vectors="averaged")
    monkeypatch.setenv("REPORTQA_SENTENCE_VECTORS", "pooled")
    assert Settings().sentence_vectors == SentenceVectorMode.POOLED
    monkeypatch.setenv("REPORTQA_SENTENCE_VECTORS", "both")
    with pytest.raises(ValidationError):
        Settings()


def test_build_records_the_mode_and_a_change_is_stale(tmp_path, settings, ingested, passage_embedder):
    pooled_settings = settings.model_copy(update={"index_dir": tmp_path / "idx",
                                                  "sentence_vectors": SentenceVectorMode.POOLED})
    build_dir, _ = build_index(pooled_settings, ingested, passage_embedder)
    manifest = json.loads((build_dir / "manifest.json").read_text())
    assert manifest["build_settings"]["sentence_vectors"] == "pooled"
    assert manifest["sentence_vectors"] == {"mode": "pooled", "encoded_alone": 0}
    fingerprint = passage_embedder.fingerprint
    index_dir = Path(pooled_settings.index_dir)
    assert stale_reasons(index_dir, ingested.documents, BuildSettings.from_settings(pooled_settings), fingerprint) == []
    separate_settings = pooled_settings.model_copy(update={"sentence_vectors": SentenceVectorMode.SEPARATE})
    reasons = stale_reasons(index_dir, ingested.documents, BuildSettings.from_settings(separate_settings), fingerprint)
    assert len(reasons) == 1 and "sentence_vectors" in reasons[0]
    with pytest.raises(IndexUnavailable, match="sentence_vectors"):
        load_current_index(separate_settings)
    load_current_index(pooled_settings).close()
