"""The Milvus backend: the same retrieval, with vectors and BM25 in a Milvus collection.

``REPORTQA_BACKEND=milvus`` plus ``REPORTQA_MILVUS_URI``: a local path ending in ``.db`` runs
Milvus Lite in-process (PyPI ``milvus-lite``; what the tests use), ``http://host:19530`` talks to a
Milvus server or cluster (optionally with ``REPORTQA_MILVUS_TOKEN``). Both go through
``pymilvus.MilvusClient``; nothing here is specific to Lite.

One collection per index. A row per chunk::

    id            VARCHAR primary key   the chunk id (content hash of document, section and text)
    document_id, section_id, section_title, section_path (ARRAY), ordinal, char_start, char_end, page
                  the chunk's citation, as scalar fields (filters run on section_id / document_id)
    text          VARCHAR               the chunk's clean text (for humans and other clients)
    bm25_text     VARCHAR + analyzer    the chunk's BM25 terms (see below); input of the BM25 function
    sparse        SPARSE_FLOAT_VECTOR   output of Milvus's own BM25 function (index: SPARSE_INVERTED_INDEX,
                                        metric BM25, k1/b from the settings)
    vector        FLOAT_VECTOR          the normalised embedding (index FLAT up to ``flat_max`` rows, HNSW above;
                                        metric IP, i.e. cosine)
    row_hash      VARCHAR               hash of everything above except the vector's floats (model fingerprint
                                        instead), so a re-ingest upserts only rows that changed

BM25 analysis. ``bm25_text`` holds the chunk text already run through the product's own normaliser
(:func:`index.analysis.normalise`: NFKD accent folding, lowercase, ``[a-z0-9]+`` words, the project's
stop list, Snowball English stemming), space-joined; queries get the same treatment plus typo
correction against the index vocabulary. Milvus's analyzer (``standard``: split + lowercase) then
finds exactly those terms, and the engine's BM25 function, IDF and scoring do the rest. Milvus's
built-in ``english`` analyzer (standard + lowercase + stemmer + ``_english_`` stop list) exists on a
Milvus server but not in Milvus Lite 3.2 (``\\w+`` + lowercase + optional stop list, no stemmer), so
letting Milvus analyse raw text would make Lite, server and FAISS disagree with each other.

Positions: Milvus returns chunk ids; :class:`MilvusBackend` maps them to positions in the build's
``chunks.jsonl`` (ids the build does not know are dropped), so the retriever is unchanged.

Modules: :mod:`~index.backends.milvus.client` (URIs, target, client cache), :mod:`~.schema` (fields and
indexes), :mod:`~.sync` (row hashes, upserts and deletes), :mod:`~.search` (searching) and
:mod:`~.backend` (the :class:`MilvusBackend`: build, open, convert to, verify).
"""
from index.backends.milvus.client import (MilvusTarget, MilvusUnavailable, connect, engine_errors, is_server_uri,
                                          resolve_uri, sanitise_uri)
from index.backends.milvus.schema import SCHEMA_VERSION, choose_index_type, count_rows
from index.backends.milvus.backend import MilvusBackend
from index.backends.milvus.search import filter_expression
from index.backends.milvus.sync import SyncResult, chunk_row, sync_collection

__all__ = [
    "SCHEMA_VERSION", "MilvusBackend", "MilvusTarget", "MilvusUnavailable", "SyncResult", "choose_index_type",
    "chunk_row", "connect", "count_rows", "engine_errors", "filter_expression", "is_server_uri", "resolve_uri",
    "sanitise_uri", "sync_collection",
]
