"""Index builds are atomic, checksummed and refused when damaged or mismatched; no pickle anywhere."""
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from index import IndexUnavailable, build_index, load_current_index
from index.store import current_build, load_index
from ingest import ingest_paths


@pytest.fixture()
def index_copy(tmp_path, settings, built_index):
    shutil.copytree(Path(settings.index_dir), tmp_path / "idx")
    return settings.model_copy(update={"index_dir": tmp_path / "idx"})


def test_manifest_records_model_settings_and_checksums(settings, built_index):
    manifest = json.loads((built_index / "manifest.json").read_text())
    assert manifest["model"]["dimension"] == 384 and manifest["model"]["normalised"] is True
    assert manifest["build_settings"]["chunk_tokens"] == settings.chunk_tokens
    assert manifest["dense"]["kind"] == "flat"
    assert set(manifest["files"]) >= {"dense.faiss", "chunks.jsonl", "sentences.npy", "sections.json"}
    assert manifest["documents"][0]["sha256"]


def test_tampered_file_is_refused(index_copy):
    build = current_build(index_copy.index_dir)
    with (build / "chunks.jsonl").open("a") as fh:
        fh.write("\n")
    with pytest.raises(IndexUnavailable, match="checksum"):
        load_current_index(index_copy)


def test_missing_and_truncated_files_are_refused(index_copy):
    build = current_build(index_copy.index_dir)
    data = (build / "dense.faiss").read_bytes()
    (build / "dense.faiss").write_bytes(data[: len(data) // 2])
    with pytest.raises(IndexUnavailable, match="dense.faiss"):
        load_current_index(index_copy)
    (build / "dense.faiss").unlink()
    with pytest.raises(IndexUnavailable, match="missing"):
        load_current_index(index_copy)


def test_other_model_or_chunking_settings_are_refused(index_copy):
    build = current_build(index_copy.index_dir)
    with pytest.raises(IndexUnavailable, match="model"):
        load_index(index_copy.index_dir, "0000000000000000", None)
    with pytest.raises(IndexUnavailable, match="chunking"):
        load_current_index(index_copy.model_copy(update={"chunk_tokens": 99}))


def test_no_index_gives_a_clear_message(tmp_path, settings):
    with pytest.raises(IndexUnavailable, match="reportqa ingest"):
        load_current_index(settings.model_copy(update={"index_dir": tmp_path / "none"}))


def test_crash_mid_build_keeps_the_old_index(index_copy, ingested, passage_embedder, monkeypatch):
    before = current_build(index_copy.index_dir)
    from index.backends.faiss import LexicalIndex

    def boom(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(LexicalIndex, "build", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        build_index(index_copy, ingested, passage_embedder)
    assert current_build(index_copy.index_dir) == before
    assert not list((index_copy.index_dir / "builds").glob(".partial-*"))
    assert load_current_index(index_copy).chunks


def test_product_code_never_uses_pickle():
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run(["grep", "-rnE", r"import pickle|pickle\.load|allow_pickle=True|joblib|torch\.load",
                          "ingest", "index", "service", "eval", "settings.py"], cwd=root, capture_output=True, text=True)
    assert out.stdout == ""


def test_large_collections_switch_to_quantised_hnsw_and_mmap(tmp_path):
    import numpy as np

    from index.backends.faiss import DenseIndex

    rng = np.random.default_rng(1)
    centres = rng.normal(size=(50, 384)).astype("float32")
    vectors = centres[rng.integers(0, 50, 4000)] + 0.5 * rng.normal(size=(4000, 384)).astype("float32")
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    exact = DenseIndex.build(vectors, exact_search_max=10_000)
    approx = DenseIndex.build(vectors, exact_search_max=1_000)
    assert (exact.kind, approx.kind) == ("flat", "hnsw")
    approx.save(tmp_path / "hnsw.faiss")
    mapped = DenseIndex.load(tmp_path / "hnsw.faiss", "hnsw", mmap=True)
    recall = []
    for q in vectors[:50]:
        _, truth = exact.search(q, 10)
        _, got = mapped.search(q, 10)
        recall.append(len(set(truth) & set(got)) / 10)
    assert np.mean(recall) >= 0.9
    allowed = np.arange(100, 200)
    _, ids = mapped.search(vectors[150], 5, allowed)
    assert len(ids) and set(ids) <= set(allowed.tolist())


def test_fp16_scan_and_small_filters_give_the_flat_index_results(tmp_path):
    """The float16 scan with exact rescoring, and a small filter scored row by row, against FAISS's own
    exact scan of the same vectors (clustered, some duplicated: ties keep the lower id)."""
    import faiss
    import numpy as np

    from index.backends.faiss import GATHER_MAX, DenseIndex

    rng = np.random.default_rng(7)
    centres = rng.normal(size=(40, 384)).astype("float32")
    vectors = centres[rng.integers(0, 40, 6000)] + 0.4 * rng.normal(size=(6000, 384)).astype("float32")
    vectors[3000:3020] = vectors[10]  # near-identical texts embed identically
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    reference = faiss.IndexFlatIP(384)
    reference.add(vectors)
    DenseIndex.build(vectors, exact_search_max=10_000).save(tmp_path / "flat.faiss")
    fast = DenseIndex.load(tmp_path / "flat.faiss", "flat", mmap=True, fp16_scan_min=5_000)
    plain = DenseIndex.load(tmp_path / "flat.faiss", "flat", fp16_scan_min=0)
    assert fast.scans_fp16 and not plain.scans_fp16
    allowed = np.sort(rng.choice(6000, 300, replace=False))
    wide = np.setdiff1d(np.arange(6000), np.arange(0, 6000, 7))  # above GATHER_MAX: the fp16 scan, filtered
    assert len(wide) > GATHER_MAX >= len(allowed)
    for q in np.vstack([vectors[[10, 11, 500]], rng.normal(size=(20, 384)).astype("float32")]):
        q = q / np.linalg.norm(q)
        want_scores, want_ids = reference.search(q.reshape(1, -1), 50)
        for index in (fast, plain):
            scores, ids = index.search(q, 50)
            assert np.allclose(scores, want_scores[0], atol=1e-5)
            assert set(ids.tolist()) == set(want_ids[0].tolist()) or np.isclose(scores[-1], scores[-2])
        _, got = fast.search(q, 50, allowed)
        exact = allowed[np.lexsort((allowed, -(vectors[allowed] @ q)))][:50]
        assert got.tolist() == exact.tolist()
        _, got = fast.search(q, 20, wide)
        assert set(got.tolist()) <= set(wide.tolist()) and len(got) == 20
        assert got.tolist() == wide[np.lexsort((wide, -(vectors[wide] @ q)))][:20].tolist()
    _, ids = fast.search(vectors[10], 25)
    assert ids[:21].tolist() == sorted(ids[:21].tolist())  # 21 identical vectors: the lower ids, in order
