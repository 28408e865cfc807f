"""bf16 passages (``REPORTQA_INGEST_ENCODER_BACKEND=torch-bf16``): torch with bfloat16 matrix products. Its
vectors are a precision of their own (``bf16``): close to fp32, recorded in the build, and a build of another
precision is stale for it and the other way round. Real model (torch and ONNX fp32), real FAISS."""
from __future__ import annotations

import numpy as np
import pytest

from index import Embedder, IndexUnavailable, build_index, load_current_index
from index.store import BuildSettings
from library_samples import check_precision_build
from settings import EncoderEngine, Settings, engine_precision


@pytest.fixture(scope="module")
def bf16_embedder(settings):
    return Embedder(settings.resolved_model_path, settings.encoder_threads, "torch-bf16", settings.cache_dir)


def test_the_setting_accepts_bf16_and_names_the_precision(monkeypatch):
    monkeypatch.setenv("REPORTQA_INGEST_ENCODER_BACKEND", "torch-bf16")
    s = Settings()
    assert s.ingest_encoder_backend == EncoderEngine.TORCH_BF16
    assert BuildSettings.from_settings(s).passage_precision == "bf16" == engine_precision("torch-bf16")
    assert engine_precision(EncoderEngine.TORCH) == "fp32"


def test_bf16_vectors_are_close_to_fp32_but_not_the_same(bf16_embedder, onnx_embedder, ingested):
    texts = [c.embed_text for c in ingested.chunks]
    bf16, fp32 = bf16_embedder.encode(texts), onnx_embedder.encode(texts)
    assert bf16.dtype == np.float32 and np.allclose(np.linalg.norm(bf16, axis=1), 1.0, atol=1e-5)
    cos = np.sum(bf16 * fp32, axis=1)
    assert cos.min() >= 0.999, cos.min()  # measured 2026-12-03: min 0.99993 on a 274-chunk sample
    assert cos.max() < 0.9999999  # really bf16 arithmetic, not the fp32 model under another name
    assert bf16_embedder.precision == "bf16" and bf16_embedder.backend == "torch-bf16"
    # the pooled-sentence path runs in bf16 too: its chunk vectors agree with the plain encode
    vectors, states = bf16_embedder.encoder.encode_batch_tokens(texts[:3])
    assert len(states) == 3 and np.sum(vectors * bf16[:3], axis=1).min() >= 0.999


def test_a_bf16_build_records_its_precision_and_the_fp32_settings_find_it_stale(settings, ingested, bf16_embedder,
                                                                               tmp_path):
    bf16 = settings.model_copy(update={"index_dir": tmp_path / "index",
                                       "ingest_encoder_backend": EncoderEngine.TORCH_BF16})
    build_dir, _ = build_index(bf16, ingested, bf16_embedder)
    fp32, manifest = check_precision_build(bf16, build_dir, ingested.documents, bf16_embedder.fingerprint, "bf16")
    assert manifest["model"]["encoder_backend"] == "torch-bf16"
    with pytest.raises(IndexUnavailable, match="torch-bf16"):  # the hint names the engine that made it
        load_current_index(fp32)
