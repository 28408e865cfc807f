"""The ONNX Runtime encoder against the torch one, on the real bundled model (no mocks).

Both encoders are session fixtures (tests/conftest.py); the ONNX export is made
once in the settings' cache folder and reused by later runs.
"""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from index.embed import Embedder, ModelUnavailable
from index.embed.cache import export_problem
from index.embed.export import ONNX_EXPORT_VERSION, ONNX_OPSET, onnx_export_path

QUESTIONS = [
    "Which new global initiative did Xi Jinping put forward after the development, security and civilization initiatives?",
    "What are the four principles for reforming global Internet governance?",
    "internet penetraton rate in chnia",
    "AI ethics standards",
    "Wuzhen",
    "",
    "Qu'est-ce que la souveraineté numérique ? 网络主权 🌐",
]
MIN_COSINE = 0.9999  # torch vs fp32 ONNX


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_same_model_identity_for_both_backends(torch_embedder, onnx_embedder):
    assert onnx_embedder.backend == "onnx" and torch_embedder.backend == "torch"
    # One fingerprint: an index built with either backend is valid for the other.
    assert onnx_embedder.fingerprint == torch_embedder.fingerprint
    assert onnx_embedder.name == torch_embedder.name
    assert onnx_embedder.dimension == torch_embedder.dimension == 384
    assert onnx_embedder.max_seq_length == torch_embedder.max_seq_length == 256


def test_question_vectors_equal_torch(torch_embedder, onnx_embedder):
    got = onnx_embedder.encode(QUESTIONS)
    want = torch_embedder.encode(QUESTIONS)
    assert got.dtype == np.float32 and got.shape == (len(QUESTIONS), 384)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    assert cosines(got, want).min() >= MIN_COSINE
    single = onnx_embedder.encode_query(QUESTIONS[0])
    assert single.shape == (384,) and float(single @ want[0]) >= MIN_COSINE


def test_long_passages_are_truncated_like_torch(torch_embedder, onnx_embedder, ingested):
    chunks = [c.embed_text for c in ingested.chunks]
    passages = [" ".join(chunks[i:i + 4]) for i in range(0, 24, 4)]
    assert min(onnx_embedder.count_pieces(passages)) > onnx_embedder.max_seq_length  # all get cut
    assert onnx_embedder.count_pieces(passages) == torch_embedder.count_pieces(passages)
    got = onnx_embedder.encode(passages, batch_size=4)
    assert cosines(got, torch_embedder.encode(passages, batch_size=4)).min() >= MIN_COSINE
    # Past the window nothing counts: appending text to a cut passage does not move its vector.
    longer = onnx_embedder.encode([p + " Completely unrelated trailing words about bananas." for p in passages])
    assert cosines(got, longer).min() >= 0.99999


def test_padded_batch_equals_one_by_one(onnx_embedder, ingested):
    texts = QUESTIONS + [c.embed_text for c in ingested.chunks[:5]]  # 1 to ~140 word pieces in one batch
    batched = onnx_embedder.encode(texts, batch_size=len(texts))
    alone = np.vstack([onnx_embedder.encode([t]) for t in texts])
    np.testing.assert_allclose(batched, alone, atol=2e-5)
    # Batching in smaller pieces keeps the input order.
    np.testing.assert_allclose(onnx_embedder.encode(texts, batch_size=3), alone, atol=2e-5)


def test_empty_input(onnx_embedder, torch_embedder):
    for embedder in (onnx_embedder, torch_embedder):
        out = embedder.encode([])
        assert out.shape == (0, 384) and out.dtype == np.float32
        assert embedder.count_pieces([]) == []


def test_export_cache_is_reused(settings, onnx_embedder):
    path = onnx_embedder.encoder.onnx_path
    assert path == onnx_export_path(settings.cache_dir, onnx_embedder.fingerprint)
    assert export_problem(path, onnx_embedder.fingerprint) is None
    before = path.stat()
    again = Embedder(settings.resolved_model_path, 1, "onnx", settings.cache_dir)
    assert again.encoder.exported is False
    after = path.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    np.testing.assert_allclose(again.encode(QUESTIONS[:2]), onnx_embedder.encode(QUESTIONS[:2]), atol=2e-5)


def _copy_export(onnx_embedder, cache_dir):
    """The session's good export copied into another cache folder (no second export needed)."""
    source = onnx_embedder.encoder.onnx_path
    target = onnx_export_path(cache_dir, onnx_embedder.fingerprint)
    target.parent.mkdir(parents=True)
    for name in (source.name, source.name + ".json"):
        shutil.copyfile(source.with_name(name), target.with_name(name))
    assert export_problem(target, onnx_embedder.fingerprint) is None
    return target


def test_damaged_export_is_detected(onnx_embedder, tmp_path):
    target = _copy_export(onnx_embedder, tmp_path)
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, one weight byte flipped: ONNX Runtime would load it happily
    target.write_bytes(bytes(data))
    assert "checksum" in export_problem(target, onnx_embedder.fingerprint)
    target.with_name(target.name + ".json").unlink()
    assert "checksum record" in export_problem(target, onnx_embedder.fingerprint)


def test_truncated_export_is_exported_again(settings, onnx_embedder, torch_embedder, tmp_path):
    target = _copy_export(onnx_embedder, tmp_path)
    with target.open("r+b") as fh:  # an export cut short, e.g. by a full disk
        fh.truncate(target.stat().st_size // 3)
    assert "bytes" in export_problem(target, onnx_embedder.fingerprint)
    stale = target.parent.with_name(f"{onnx_embedder.fingerprint}-opset{ONNX_OPSET}-v{ONNX_EXPORT_VERSION - 1}")
    other_model = target.parent.with_name(f"{'0' * 16}-opset{ONNX_OPSET}-v{ONNX_EXPORT_VERSION - 1}")
    for folder in (stale, other_model):
        folder.mkdir()
        (folder / "model.onnx").write_bytes(b"an export by an older recipe")
    repaired = Embedder(settings.resolved_model_path, 1, "onnx", tmp_path)
    assert repaired.encoder.exported is True
    assert not stale.exists() and (other_model / "model.onnx").exists()  # only this model's old export goes
    assert export_problem(target, onnx_embedder.fingerprint) is None
    assert cosines(repaired.encode(QUESTIONS), torch_embedder.encode(QUESTIONS)).min() >= MIN_COSINE
    assert not [p for p in target.parent.iterdir() if p.name.endswith(".tmp")]  # no temp files left behind
    assert Embedder(settings.resolved_model_path, 1, "onnx", tmp_path).encoder.exported is False


def test_unusable_cache_folder_is_a_clear_error(settings, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    with pytest.raises(ModelUnavailable, match="ONNX export cache"):
        Embedder(settings.resolved_model_path, 1, "onnx", blocker)
    with pytest.raises(ValueError, match="unknown encoder backend"):
        Embedder(settings.resolved_model_path, 1, "tensorflow")


def test_index_built_by_one_backend_is_searched_by_the_other(settings, built_index, torch_embedder, onnx_embedder):
    from index import Query, load_current_index, open_retriever

    loaded = load_current_index(settings)  # checks the manifest's fingerprint against the model's
    by_backend = {}
    for embedder in (torch_embedder, onnx_embedder):
        retriever = open_retriever(settings, embedder, loaded)
        by_backend[embedder.backend] = [
            [h.chunk.id for h in retriever.search(Query(q, k=5, mode="dense")).hits] for q in QUESTIONS[:4]
        ]
    assert by_backend["onnx"] == by_backend["torch"]


# ------------------------------------------------------------------ int8 (questions)

INT8_MIN_COSINE = 0.98  # measured: min 0.991 over the eval set's questions


def test_int8_questions_stay_close_to_torch(torch_embedder, onnx_int8_embedder):
    assert onnx_int8_embedder.backend == "onnx-int8"
    assert onnx_int8_embedder.fingerprint == torch_embedder.fingerprint  # it searches the same fp32 index
    questions = [q for q in QUESTIONS if q]  # "" (never sent: the service refuses it) lands at 0.973
    got = onnx_int8_embedder.encode(questions)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    close = cosines(got, torch_embedder.encode(questions))
    assert close.min() >= INT8_MIN_COSINE
    assert close.min() < MIN_COSINE  # it really is the quantized model, not the fp32 one


def test_int8_model_beside_the_fp32_export_with_its_checksum(settings, onnx_embedder, onnx_int8_embedder):
    from index.embed.export import quantized_path

    path = onnx_int8_embedder.encoder.onnx_path
    assert path == quantized_path(onnx_export_path(settings.cache_dir, onnx_int8_embedder.fingerprint))
    assert export_problem(path, onnx_int8_embedder.fingerprint) is None
    assert path.stat().st_size < onnx_embedder.encoder.onnx_path.stat().st_size / 3  # int8 weights, not fp32
    # The fp32 reference (a what-if, the peer) beside an int8 embedder: the fp32 ONNX model next to it.
    full = onnx_int8_embedder.full_precision()
    assert full.backend == "onnx" and full.encoder.onnx_path == onnx_embedder.encoder.onnx_path
    assert onnx_embedder.full_precision() is onnx_embedder


def test_damaged_int8_model_is_quantized_again(settings, onnx_embedder, onnx_int8_embedder, tmp_path):
    from index.embed.export import quantized_path

    target = _copy_export(onnx_embedder, tmp_path)
    source = onnx_int8_embedder.encoder.onnx_path
    int8 = quantized_path(target)
    for name in (source.name, source.name + ".json"):
        shutil.copyfile(source.with_name(name), int8.with_name(name))
    data = bytearray(int8.read_bytes())
    data[len(data) // 2] ^= 0xFF
    int8.write_bytes(bytes(data))
    assert "checksum" in export_problem(int8, onnx_int8_embedder.fingerprint)
    repaired = Embedder(settings.resolved_model_path, 1, "onnx-int8", tmp_path)
    assert repaired.encoder.exported is False  # the fp32 export was intact; only the int8 file was redone
    assert export_problem(int8, onnx_int8_embedder.fingerprint) is None
    np.testing.assert_allclose(repaired.encode(QUESTIONS[:3]), onnx_int8_embedder.encode(QUESTIONS[:3]), atol=1e-5)


def test_questions_and_passages_get_their_own_thread_counts(settings, onnx_int8_embedder):
    """A question is encoded on ``question_threads`` (one by default), an ingest's passages on
    ``encoder_threads``; both reach ONNX Runtime's session, and one thread gives the same vector."""
    from index import load_embedder

    question = load_embedder(settings.model_copy(update={"question_threads": 1, "encoder_threads": 2}))
    passages = load_embedder(settings.model_copy(update={"question_threads": 1, "encoder_threads": 2}), ingest=True)
    assert question.threads == 1 and passages.threads == 2
    assert question.encoder.session.get_session_options().intra_op_num_threads == 1
    assert passages.encoder.session.get_session_options().intra_op_num_threads == 2
    for text in QUESTIONS[:4]:
        assert float(question.encode_query(text) @ onnx_int8_embedder.encode_query(text)) > 0.9999
