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


def test_crash_mid_build_keeps_the_old_index(index_copy, ingested, embedder, monkeypatch):
    before = current_build(index_copy.index_dir)
    import index.store as store

    def boom(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(store.LexicalIndex, "build", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        build_index(index_copy, ingested, embedder)
    assert current_build(index_copy.index_dir) == before
    assert not list((index_copy.index_dir / "builds").glob(".partial-*"))
    assert load_current_index(index_copy).chunks


def test_product_code_never_uses_pickle():
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run(["grep", "-rnE", r"import pickle|pickle\.load|allow_pickle=True|joblib|torch\.load",
                          "ingest", "index", "service", "eval", "settings.py"], cwd=root, capture_output=True, text=True)
    assert out.stdout == ""
