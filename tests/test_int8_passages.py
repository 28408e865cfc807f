"""int8 passages (``REPORTQA_INGEST_ENCODER_BACKEND=onnx-int8``): a build records its passages' precision,
a build of the other precision is stale for ``ingest --if-stale`` and refused by a service and a library
change configured for the other one, and fp32 and int8 vectors never share an embedding cache.

Real model (the ONNX fp32 and int8 engines), real FAISS, a real uvicorn server for the service refusal."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import httpx
import numpy as np
import pytest
from pydantic import SecretStr

from index import IndexUnavailable, Query, build_index, load_current_index, open_retriever, stale_reasons
from index.store import BuildSettings
from index.vector_cache import EmbeddingCache, cached_vectors
from library_samples import check_precision_build, serve
from settings import EncoderEngine, Settings, engine_precision

TOKEN = "int8-token-7f3a"


def _with(settings, tmp_path: Path, name: str, **update):
    return settings.model_copy(update={"index_dir": tmp_path / name, **update})


@pytest.fixture(scope="module")
def int8_build(settings, ingested, onnx_int8_embedder, tmp_path_factory):
    """The bundled report built with int8 passages, in an index of its own."""
    int8 = _with(settings, tmp_path_factory.mktemp("int8-build"), "index",
                 ingest_encoder_backend=EncoderEngine.ONNX_INT8)
    build_dir, _ = build_index(int8, ingested, onnx_int8_embedder)
    return int8, build_dir


def test_the_setting_accepts_int8_and_names_the_precision(monkeypatch):
    monkeypatch.setenv("REPORTQA_INGEST_ENCODER_BACKEND", "onnx-int8")
    s = Settings()
    assert s.ingest_encoder_backend == EncoderEngine.ONNX_INT8
    assert BuildSettings.from_settings(s).passage_precision == "int8"
    # torch and onnx give the same vectors: one precision, so switching between them rebuilds nothing
    assert {engine_precision(e) for e in (EncoderEngine.TORCH, EncoderEngine.ONNX)} == {"fp32"}
    monkeypatch.setenv("REPORTQA_INGEST_ENCODER_BACKEND", "onnx-int4")
    with pytest.raises(ValueError, match="ingest_encoder_backend"):
        Settings()


def test_int8_vectors_are_close_to_fp32_but_not_the_same(onnx_embedder, onnx_int8_embedder, ingested):
    texts = [c.embed_text for c in ingested.chunks]
    fp32, int8 = onnx_embedder.encode(texts), onnx_int8_embedder.encode(texts)
    cos = np.sum(fp32 * int8, axis=1)
    assert cos.min() >= 0.97, cos.min()  # measured 2026-12-02: min 0.990, median 0.994 on the report's chunks
    assert cos.max() < 0.99999  # really another precision, not the fp32 model under another name
    # Dynamic quantization scales activations per batch: an int8 passage vector depends on its batch
    # (measured: cosine 0.991 alone vs in its batch of 32), an fp32 one does not (1.0000).
    alone = np.vstack([onnx_int8_embedder.encode([t], 1) for t in texts[:4]])
    fp32_alone = np.vstack([onnx_embedder.encode([t], 1) for t in texts[:4]])
    assert np.sum(fp32_alone * fp32[:4], axis=1).min() >= 0.99999
    assert np.sum(alone * int8[:4], axis=1).min() >= 0.97
    assert onnx_int8_embedder.precision == "int8" and onnx_embedder.precision == "fp32"
    assert onnx_int8_embedder.for_passages(EncoderEngine.ONNX_INT8) is onnx_int8_embedder
    assert onnx_embedder.for_passages(EncoderEngine.TORCH) is onnx_embedder  # fp32 either way


def test_a_build_records_int8_and_the_other_precision_is_stale_and_refused(int8_build, ingested,
                                                                            onnx_int8_embedder):
    int8, build_dir = int8_build
    fp32, manifest = check_precision_build(int8, build_dir, ingested.documents, onnx_int8_embedder.fingerprint, "int8")
    assert manifest["model"]["encoder_backend"] == "onnx-int8"
    with pytest.raises(IndexUnavailable, match="passage_precision"):
        load_current_index(fp32)
    loaded = load_current_index(int8)
    try:  # the int8 build holds int8 vectors: the same batches (longest first, 32) give the same numbers
        vectors = loaded.backend.vectors()
        expected = onnx_int8_embedder.encode([c.embed_text for c in loaded.chunks], 32)
        assert np.allclose(vectors, expected, atol=1e-5)
    finally:
        loaded.close()


def test_a_build_from_before_the_precision_was_recorded_counts_as_fp32(settings, built_index, ingested,
                                                                     passage_embedder, tmp_path):
    index_dir = tmp_path / "index"
    shutil.copytree(settings.index_dir, index_dir)
    build = next(p for p in (index_dir / "builds").iterdir() if p.name == built_index.name)
    manifest = json.loads((build / "manifest.json").read_text())
    del manifest["build_settings"]["passage_precision"]
    (build / "manifest.json").write_text(json.dumps(manifest))
    old = settings.model_copy(update={"index_dir": index_dir})
    fingerprint = passage_embedder.fingerprint
    assert stale_reasons(index_dir, ingested.documents, BuildSettings.from_settings(old), fingerprint) == []
    load_current_index(old).close()
    int8 = old.model_copy(update={"ingest_encoder_backend": EncoderEngine.ONNX_INT8})
    assert stale_reasons(index_dir, ingested.documents, BuildSettings.from_settings(int8), fingerprint)


def test_an_encoder_of_the_other_precision_cannot_write_a_build(settings, ingested, onnx_int8_embedder, tmp_path):
    fp32 = _with(settings, tmp_path, "index", ingest_encoder_backend=EncoderEngine.ONNX)
    with pytest.raises(IndexUnavailable, match="int8 vectors but the build settings say fp32"):
        build_index(fp32, ingested, onnx_int8_embedder)
    assert not (tmp_path / "index" / "CURRENT").exists()


def test_a_service_configured_for_fp32_refuses_an_int8_build_and_keeps_serving(
        settings, built_index, int8_build, embedder, passage_embedder, tmp_path):
    """Another writer switches CURRENT to an int8 build: the fp32 service keeps its build, says why."""
    index_dir = tmp_path / "index"
    shutil.copytree(settings.index_dir, index_dir, ignore=shutil.ignore_patterns(".writer.lock", "embeddings"))
    live = serve(settings, embedder, passage_embedder, index_dir=index_dir, api_token=SecretStr(TOKEN),
                 reload_poll_s=0.0)
    try:
        served = live.state.build_name
        int8_dir = int8_build[1]
        shutil.copytree(int8_dir, index_dir / "builds" / int8_dir.name)
        (index_dir / "CURRENT").write_text(int8_dir.name + "\n")
        headers = {"authorization": f"Bearer {TOKEN}"}
        with httpx.Client(base_url=live.url, timeout=60, headers=headers) as c:
            reload = c.post("/admin/reload")
            assert reload.status_code == 409, reload.text
            assert "passage_precision" in reload.json()["error"], reload.json()
            answer = c.post("/query", json={"question": "How is critical information infrastructure protected?"})
            assert answer.status_code == 200 and answer.json()["passages"], answer.text
        assert live.state.build_name == served
    finally:
        live.stop()


def test_a_library_change_refuses_to_mix_precisions(int8_build, settings, built_index, onnx_int8_embedder,
                                                    tmp_path):
    """An int8-configured add to an fp32 library (and the other way) is refused before anything is embedded."""
    from index.library import Library

    doc = tmp_path / "docs" / "canal-note.md"
    doc.parent.mkdir()
    doc.write_text("# Canal Note\n\n## 1 Locks\n\nThe canal has fourteen locks between the two towns.\n")
    fp32_index = tmp_path / "fp32"
    shutil.copytree(settings.index_dir, fp32_index, ignore=shutil.ignore_patterns(".writer.lock", "embeddings"))
    int8_on_fp32 = settings.model_copy(update={"index_dir": fp32_index,
                                               "ingest_encoder_backend": EncoderEngine.ONNX_INT8})
    before = (fp32_index / "CURRENT").read_text()
    with pytest.raises(IndexUnavailable, match="passage_precision"):
        Library(int8_on_fp32, embedder=onnx_int8_embedder).add([doc])
    assert (fp32_index / "CURRENT").read_text() == before
    assert not (fp32_index / "embeddings").exists() or not any((fp32_index / "embeddings").rglob("seg-*"))


def test_an_int8_library_adds_with_int8_vectors_in_a_cache_of_its_own(int8_build, onnx_int8_embedder, tmp_path):
    from index.library import Library

    int8, _ = int8_build
    index_dir = tmp_path / "index"
    shutil.copytree(int8.index_dir, index_dir, ignore=shutil.ignore_patterns(".writer.lock", "embeddings"))
    lib_settings = int8.model_copy(update={"index_dir": index_dir})
    doc = tmp_path / "canal-note.md"
    doc.write_text("# Canal Note\n\n## 1 Locks\n\nThe canal has fourteen locks between the two towns.\n")
    change = Library(lib_settings, embedder=onnx_int8_embedder).add([doc])
    assert change.embedded["chunks"] >= 1 and change.reused["chunks"] > 100
    folders = sorted(p.name for p in (index_dir / "embeddings").iterdir())
    assert folders == [f"{onnx_int8_embedder.fingerprint[:16]}-int8"], folders
    loaded = load_current_index(lib_settings)
    try:
        assert loaded.manifest["build_settings"]["passage_precision"] == "int8"
        added = [i for i, c in enumerate(loaded.chunks) if "fourteen locks" in c.text]
        vector = loaded.backend.vectors()[added[0]]
        assert np.allclose(vector, onnx_int8_embedder.encode([loaded.chunks[added[0]].embed_text])[0], atol=1e-5)
        retriever = open_retriever(lib_settings, onnx_int8_embedder, loaded)
        hits = retriever.search(Query("How many locks does the canal have?", k=1)).hits
        assert "fourteen locks" in hits[0].chunk.text
    finally:
        loaded.close()


class FixedEncoder:
    """A stand-in for the model in the cache's own test only: vectors that depend on the text and precision."""

    fingerprint, dimension = "c" * 64, 4

    def __init__(self, precision: str):
        self.precision, self.encoded = precision, []

    def encode(self, texts, batch_size=32, progress=None):
        self.encoded += texts
        scale = 1.0 if self.precision == "fp32" else 2.0
        return np.array([[len(t) * scale, 1.0, 0.0, 0.5] for t in texts], dtype=np.float32)


def test_the_embedding_cache_keeps_fp32_and_int8_apart(tmp_path):
    fp32, int8 = FixedEncoder("fp32"), FixedEncoder("int8")

    def cache(precision):
        return EmbeddingCache(tmp_path, FixedEncoder.fingerprint, "chunks", 4, precision=precision)

    first = cache("fp32")
    fp32_vectors = cached_vectors(["alpha", "beta"], fp32, first)
    first.save()
    assert first.folder != cache("int8").folder
    assert first.folder.parent.name == "c" * 16  # fp32 keeps the folder older caches used
    other = cache("int8")
    assert len(other) == 0 and "alpha" not in other
    int8_vectors = cached_vectors(["alpha", "beta"], int8, other)
    other.save()
    assert int8.encoded == ["alpha", "beta"] and not np.array_equal(int8_vectors, fp32_vectors)
    assert np.array_equal(cached_vectors(["alpha"], fp32, cache("fp32"))[0], fp32_vectors[0])
    assert fp32.encoded == ["alpha", "beta"]  # the fp32 cache answered from its own vectors
    with pytest.raises(ValueError, match="int8 encoder cannot fill the fp32"):
        cached_vectors(["gamma"], int8, cache("fp32"))
    # an index.json that says int8 in the fp32 folder (moved by hand) is not trusted as fp32
    meta_path = first.folder / "index.json"
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps(meta | {"precision": "int8"}))
    assert len(cache("fp32")) == 0


def test_the_qasper_vector_store_keeps_precisions_apart(onnx_embedder, onnx_int8_embedder, tmp_path):
    from eval.qasper import CachingEmbedder

    fp32 = CachingEmbedder(onnx_embedder, tmp_path)
    int8 = fp32.for_engine(EncoderEngine.ONNX_INT8)
    assert int8 is fp32.for_engine(EncoderEngine.ONNX_INT8) and int8.precision == "int8"
    assert fp32.for_engine(EncoderEngine.TORCH) is fp32 and int8.full_precision() is not int8
    texts = ["The canal has fourteen locks.", "Twelve cranes were installed on the quay."]
    a, b = fp32.encode(texts), int8.encode(texts)
    assert not np.allclose(a, b, atol=1e-6)
    names = sorted(p.name for p in tmp_path.glob("*.npy"))
    assert names == [f"{onnx_embedder.fingerprint}-int8.npy", f"{onnx_embedder.fingerprint}.npy"], names
    again = CachingEmbedder(onnx_int8_embedder, tmp_path)  # a later run reads int8 vectors back, not fp32
    assert np.array_equal(again.encode(texts), b)
