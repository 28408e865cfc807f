"""Make a collection hold exactly one build's chunks: rows with a content hash, batched upserts of new and
changed rows, deletes of rows that are gone; unchanged input writes nothing."""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np

from index.backends.milvus.client import MilvusTarget, connect, engine_errors
from index.backends.milvus.schema import (MAX_PATH_DEPTH, MAX_TITLE, MAX_VARCHAR, SCHEMA_VERSION, choose_index_type,
                                          count_rows, ensure_collection, ensure_loaded)
from ingest import Chunk

BATCH_ROWS = 500  # rows per upsert request (~2.5 MB at 384 dimensions: far below gRPC's 64 MB)


def _clip(text: str, max_bytes: int) -> str:
    data = text.encode("utf-8")
    return text if len(data) <= max_bytes else data[:max_bytes].decode("utf-8", "ignore")


def bm25_text(terms: list[str]) -> str:
    return _clip(" ".join(terms), MAX_VARCHAR)


def chunk_row(chunk: Chunk, terms: list[str], model_fingerprint: str) -> dict:
    """A chunk's row without its vector; ``row_hash`` covers everything the row holds."""
    row = {
        "id": chunk.id,
        "document_id": _clip(chunk.document_id, 1024),
        "section_id": _clip(chunk.section_id, 1024),
        "section_title": _clip(chunk.section_title, MAX_TITLE),
        "section_path": [_clip(p, MAX_TITLE) for p in chunk.section_path[:MAX_PATH_DEPTH]],
        "ordinal": int(chunk.ordinal),
        "char_start": int(chunk.char_start),
        "char_end": int(chunk.char_end),
        "page": chunk.page,
        "text": _clip(chunk.text, MAX_VARCHAR),
        "bm25_text": bm25_text(terms),
    }
    digest = hashlib.sha256(json.dumps(
        [SCHEMA_VERSION, model_fingerprint, chunk.embed_text, row], ensure_ascii=False, sort_keys=True
    ).encode("utf-8"))
    row["row_hash"] = digest.hexdigest()[:32]
    return row


# ---------------------------------------------------------------- writing


@dataclass
class SyncResult:
    """What one ingest did to the collection."""

    rows: int  # rows the collection holds for this build
    upserted: int
    deleted: int
    unchanged: int
    index_type: str
    created: bool
    seconds: float

    def as_dict(self) -> dict:
        return {"rows": self.rows, "upserted": self.upserted, "deleted": self.deleted,
                "unchanged": self.unchanged, "index_type": self.index_type, "created": self.created,
                "seconds": round(self.seconds, 3)}



def existing_rows(client, name: str, lite: bool, batch_size: int = 5_000) -> dict[str, str]:
    """``{chunk id: row_hash}`` of every row in the collection. A server is paged with a query iterator;
    Milvus Lite implements no AllocTimestamp (its server thread logs a traceback per iterator) and has no
    16,384-row result cap, so it is read in one query."""
    if lite:
        total = count_rows(client, name)
        rows = client.query(name, filter="", output_fields=["row_hash"], limit=max(total, 1)) if total else []
        return {r["id"]: r["row_hash"] for r in rows}
    iterator = client.query_iterator(name, batch_size=batch_size, filter="", output_fields=["row_hash"])
    out: dict[str, str] = {}
    try:
        while True:
            batch = iterator.next()
            if not batch:
                break
            out.update((r["id"], r["row_hash"]) for r in batch)
    finally:
        iterator.close()
    return out


def batches(items: list, size: int) -> Iterable[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def sync_collection(
    target: MilvusTarget,
    chunks: list[Chunk],
    vectors: np.ndarray,
    terms: list[list[str]],
    model_fingerprint: str,
    k1: float,
    b: float,
    flat_max: int,
    progress: Callable[[str, int, int], None] | None = None,
    batch_rows: int = BATCH_ROWS,
    index_type: str | None = None,
) -> SyncResult:
    """Make the collection hold exactly these chunks: upsert new and changed rows (keyed by chunk id, in
    batches), delete rows of chunks that are gone, leave unchanged rows alone. Unchanged input = no writes."""
    if len(chunks) != len(vectors) or len(chunks) != len(terms):
        raise ValueError("chunks, vectors and terms must have the same length")
    with engine_errors(target):
        return _sync(target, chunks, vectors, terms, model_fingerprint, k1, b, flat_max, progress, batch_rows,
                     index_type)


def _sync(target, chunks, vectors, terms, model_fingerprint, k1, b, flat_max, progress, batch_rows,
          index_type) -> SyncResult:
    started = time.perf_counter()
    client = connect(target)
    wanted: dict[str, int] = {}
    for i, chunk in enumerate(chunks):
        wanted.setdefault(chunk.id, i)  # identical text in one section hashes to one id: the first copy is kept
    index_type = index_type or choose_index_type(len(wanted), flat_max)
    dimension = int(vectors.shape[1])
    created = ensure_collection(client, target.collection, dimension, index_type, k1, b, progress)
    if not created:
        ensure_loaded(client, target.collection)
    have = {} if created else existing_rows(client, target.collection, target.is_lite)

    changed: list[tuple[int, dict]] = []  # (position, row without its vector: vectors are attached per batch)
    for cid, i in wanted.items():
        row = chunk_row(chunks[i], terms[i], model_fingerprint)
        if have.get(cid) != row["row_hash"]:
            changed.append((i, row))
    gone = [cid for cid in have if cid not in wanted]

    done = 0
    for batch in batches(changed, batch_rows):
        client.upsert(target.collection, [row | {"vector": np.asarray(vectors[i], dtype=np.float32).tolist()}
                                          for i, row in batch])
        done += len(batch)
        if progress:
            progress("milvus upsert", done, len(changed))
    done = 0
    for batch in batches(gone, batch_rows):
        client.delete(target.collection, ids=batch)
        done += len(batch)
        if progress:
            progress("milvus delete", done, len(gone))
    if changed or gone:
        client.flush(target.collection)  # seal the rows into indexed segments before anyone searches
    ensure_loaded(client, target.collection)
    return SyncResult(len(wanted), len(changed), len(gone), len(wanted) - len(changed), index_type, created,
                      time.perf_counter() - started)

