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
(:func:`index.lexical.normalise`: NFKD accent folding, lowercase, ``[a-z0-9]+`` words, the project's
stop list, Snowball English stemming), space-joined; queries get the same treatment plus typo
correction against the index vocabulary. Milvus's analyzer (``standard``: split + lowercase) then
finds exactly those terms, and the engine's BM25 function, IDF and scoring do the rest. Milvus's
built-in ``english`` analyzer (standard + lowercase + stemmer + ``_english_`` stop list) exists on a
Milvus server but not in Milvus Lite 3.2 (``\\w+`` + lowercase + optional stop list, no stemmer), so
letting Milvus analyse raw text would make Lite, server and FAISS disagree with each other.

Positions: Milvus returns chunk ids; :class:`MilvusBackend` maps them to positions in the build's
``chunks.jsonl`` (ids the build does not know are dropped), so the retriever is unchanged.
"""
from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import OrderedDict
from contextlib import contextmanager
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable
from urllib.parse import urlsplit, urlunsplit

import numpy as np

from index.backends import ChunkFilter, Ranking
from index.lexical import TypoCorrector, normalise
from ingest import Chunk

SCHEMA_VERSION = 1
HNSW_M = 32  # same graph parameters as the FAISS HNSW index (index/dense.py)
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 96
BATCH_ROWS = 500  # rows per upsert request (~2.5 MB at 384 dimensions: far below gRPC's 64 MB)
MAX_VARCHAR = 65_535  # Milvus's VARCHAR limit (bytes)
MAX_PATH_DEPTH = 64
MAX_TITLE = 2_048
FIELDS = ("id", "document_id", "section_id", "section_title", "section_path", "ordinal", "char_start",
          "char_end", "page", "text", "bm25_text", "row_hash", "vector", "sparse")



class MilvusUnavailable(RuntimeError):
    """The collection cannot be reached or used; the message says why."""


# ------------------------------------------------------------------ where


def is_server_uri(uri: str) -> bool:
    return uri.startswith(("http://", "https://", "tcp://", "grpc://", "unix:"))


def resolve_uri(uri: str, index_dir: Path) -> str:
    """The URI to connect to: server URIs as given; local paths absolute (relative ones against ``index_dir``,
    the empty string = ``<index_dir>/milvus.db``)."""
    if not uri:
        return str((Path(index_dir) / "milvus.db").resolve())
    if is_server_uri(uri):
        return uri
    path = Path(uri).expanduser()
    if not path.is_absolute():
        path = Path(index_dir) / path
    return str(path.resolve())


def sanitise_uri(uri: str, index_dir: Path | None = None) -> str:
    """What the manifest records: no user:password, no query string (tokens), no fragment; a Milvus Lite
    path inside ``index_dir`` is stored relative to it, so the index folder can move."""
    if is_server_uri(uri):
        parts = urlsplit(uri)
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        netloc = host + (f":{parts.port}" if parts.port else "")
        return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
    if index_dir is not None:
        try:
            return str(Path(uri).resolve().relative_to(Path(index_dir).resolve()))
        except ValueError:
            pass
    return str(Path(uri).resolve())


@dataclass(frozen=True)
class MilvusTarget:
    """Where a collection lives, how to reach it and how to search it."""

    uri: str  # resolved: server URI (may carry credentials: never written anywhere) or absolute .db path
    collection: str
    token: str | None = field(default=None, repr=False)
    rrf_k: int = 60
    engine_fusion: bool = True  # False when dense/BM25 weights differ: RRFRanker takes no weights
    parallel: bool | None = None  # run a query's dense, BM25 and hybrid requests concurrently (None: servers only;
    # Milvus Lite runs in this process, where threads only contend for the GIL: measured slower)

    @property
    def concurrent(self) -> bool:
        return (not self.is_lite) if self.parallel is None else self.parallel

    @classmethod
    def from_settings(cls, settings, uri: str | None = None, collection: str | None = None) -> "MilvusTarget":
        token = settings.milvus_token.get_secret_value() if settings.milvus_token else None
        return cls(
            resolve_uri(settings.milvus_uri if uri is None else uri, Path(settings.index_dir)),
            collection or settings.milvus_collection, token, settings.rrf_k,
            engine_fusion=settings.weight_dense == settings.weight_bm25,
        )

    @property
    def is_lite(self) -> bool:
        return not is_server_uri(self.uri)

    def describe(self) -> str:
        return f"collection {self.collection!r} at {sanitise_uri(self.uri)}"


_clients: dict[tuple[str, str | None], object] = {}
_clients_lock = threading.Lock()


def connect(target: MilvusTarget):
    """A ``MilvusClient`` for ``target`` (one per URI and token per process)."""
    key = (target.uri, target.token)
    with _clients_lock:
        client = _clients.get(key)
        if client is not None:
            return client
        try:
            from pymilvus import MilvusClient
        except ImportError as exc:  # pragma: no cover - pinned in requirements.txt
            raise MilvusUnavailable("the milvus backend needs pymilvus and milvus-lite (pip install -r requirements.txt)") from exc
        if target.is_lite:
            if not target.uri.endswith(".db"):
                raise MilvusUnavailable(f"a Milvus Lite path must end in .db, not {target.uri}")
            Path(target.uri).parent.mkdir(parents=True, exist_ok=True)
        # Milvus Lite's in-process gRPC server allows a keepalive ping every 5 minutes; pymilvus pings every 10 s,
        # gets GOAWAY "too_many_pings" and reconnects (logged to stderr). On loopback keepalive is pointless.
        options = {"grpc_options": {"grpc.keepalive_time_ms": 2**31 - 1,
                                    "grpc.keepalive_permit_without_calls": 0}} if target.is_lite else {}
        try:
            client = MilvusClient(uri=target.uri, token=target.token or "", **options)
        except Exception as exc:
            hint = (" (Milvus Lite allows one process per database: stop the other `reportqa` process or use a "
                    "Milvus server)" if target.is_lite else "")
            raise MilvusUnavailable(f"cannot connect to Milvus at {sanitise_uri(target.uri)}: "
                                    f"{_short(exc)}{hint}") from None
        _clients[key] = client
        return client


@contextmanager
def engine_errors(target: MilvusTarget):
    """Milvus's own errors (server gone, collection locked, bad request) as MilvusUnavailable, one line."""
    from pymilvus.exceptions import MilvusException

    try:
        yield
    except MilvusException as exc:
        raise MilvusUnavailable(f"{target.describe()}: {_short(exc)}") from None


def _short(exc: Exception) -> str:
    text = getattr(exc, "message", None) or str(exc)
    return text.splitlines()[0][:300] if text else type(exc).__name__


# ------------------------------------------------------------------- rows


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


def choose_index_type(rows: int, flat_max: int) -> str:
    return "FLAT" if rows <= flat_max else "HNSW"


def _nested(params: dict) -> dict:
    """Build parameters in the wire form ``params = "<json>"`` (what pymilvus's ORM sends; every Milvus server
    reads it). MilvusClient would otherwise flatten them into separate keys, which Milvus Lite 3.2 ignores:
    it then builds BM25 with k1=1.5, b=0.75 and HNSW with its own M."""
    return {"params": params} if params else {}


def _index_params(client, index_type: str, k1: float, b: float, vector: bool = True, sparse: bool = True,
                  scalars: bool = True):
    params = client.prepare_index_params()
    if vector:
        extra = {"M": HNSW_M, "efConstruction": HNSW_EF_CONSTRUCTION} if index_type == "HNSW" else {}
        params.add_index(field_name="vector", index_name="vector_idx", index_type=index_type, metric_type="IP",
                         params=_nested(extra))
    if sparse:
        params.add_index(field_name="sparse", index_name="sparse_idx", index_type="SPARSE_INVERTED_INDEX",
                         metric_type="BM25", params=_nested({"bm25_k1": float(k1), "bm25_b": float(b)}))
    if scalars:
        for name in ("section_id", "document_id"):
            params.add_index(field_name=name, index_name=f"{name}_idx", index_type="INVERTED")
    return params


def _schema(client, dimension: int):
    from pymilvus import DataType, Function, FunctionType

    schema = client.create_schema(auto_id=False, enable_dynamic_field=False,
                                  description=f"reportqa chunks, schema {SCHEMA_VERSION}")
    schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=64)
    schema.add_field("document_id", DataType.VARCHAR, max_length=1024)
    schema.add_field("section_id", DataType.VARCHAR, max_length=1024)
    schema.add_field("section_title", DataType.VARCHAR, max_length=MAX_TITLE)
    schema.add_field("section_path", DataType.ARRAY, element_type=DataType.VARCHAR, max_capacity=MAX_PATH_DEPTH,
                     max_length=MAX_TITLE)
    schema.add_field("ordinal", DataType.INT32)
    schema.add_field("char_start", DataType.INT64)
    schema.add_field("char_end", DataType.INT64)
    schema.add_field("page", DataType.INT32, nullable=True)
    schema.add_field("text", DataType.VARCHAR, max_length=MAX_VARCHAR)
    schema.add_field("bm25_text", DataType.VARCHAR, max_length=MAX_VARCHAR, enable_analyzer=True,
                     analyzer_params={"tokenizer": "standard"})
    schema.add_field("row_hash", DataType.VARCHAR, max_length=64)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=int(dimension))
    schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    schema.add_function(Function(name="bm25", function_type=FunctionType.BM25,
                                 input_field_names=["bm25_text"], output_field_names=["sparse"]))
    return schema


def _vector_dimension(description: dict) -> int | None:
    for f in description.get("fields", []):
        if f.get("name") == "vector":
            return int(f.get("params", {}).get("dim", 0)) or None
    return None


def _check_ours(client, name: str) -> dict:
    """The collection's description, if it has this module's schema; refuses anyone else's collection."""
    description = client.describe_collection(name)
    names = {f.get("name") for f in description.get("fields", [])}
    if names != set(FIELDS):
        raise MilvusUnavailable(
            f"collection {name!r} exists with another schema (fields {sorted(names)}); it is not a ReportQA "
            f"index of this version: choose another REPORTQA_MILVUS_COLLECTION or drop it"
        )
    return description


def _ensure_collection(client, name: str, dimension: int, index_type: str, k1: float, b: float,
                       progress) -> bool:
    """Create the collection, or bring an existing one's indexes in line. True if it was created."""
    if client.has_collection(name):
        description = _check_ours(client, name)
        if _vector_dimension(description) != dimension:
            # Another embedding model: every row changes anyway, so start over.
            if progress:
                progress("milvus recreate (dimension changed)", 0, 1)
            client.drop_collection(name)
        else:
            _ensure_indexes(client, name, index_type, k1, b)
            return False
    client.create_collection(name, schema=_schema(client, dimension),
                             index_params=_index_params(client, index_type, k1, b), consistency_level="Strong")
    return True


def _ensure_indexes(client, name: str, index_type: str, k1: float, b: float) -> None:
    """Rebuild an index whose type (FLAT/HNSW: the collection grew past ``flat_max``) or BM25 k1/b changed.
    Milvus Lite's describe_index does not report k1/b; then they are taken as the recorded ones."""
    # Index names are "<field>_idx": Milvus Lite resolves only that form (any other name drops every index).
    vector = client.describe_index(name, "vector_idx") or {}
    sparse = client.describe_index(name, "sparse_idx") or {}
    wrong_vector = vector.get("index_type") != index_type
    k1_now, b_now = _sparse_params(sparse)
    wrong_sparse = not sparse or (k1_now is not None and (abs(k1_now - k1) > 1e-9 or abs(b_now - b) > 1e-9))
    if not (wrong_vector or wrong_sparse):
        return
    client.release_collection(name)
    if wrong_vector and vector:
        client.drop_index(name, "vector_idx")
    if wrong_sparse and sparse:
        client.drop_index(name, "sparse_idx")
    client.create_index(name, _index_params(client, index_type, k1, b, vector=wrong_vector, sparse=wrong_sparse,
                                            scalars=False))
    client.load_collection(name)


def _sparse_params(description: dict) -> tuple[float | None, float | None]:
    params = dict(description)
    if isinstance(params.get("params"), dict):
        params |= params["params"]
    try:
        return float(params["bm25_k1"]), float(params["bm25_b"])
    except (KeyError, TypeError, ValueError):
        return None, None


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


def _batches(items: list, size: int) -> Iterable[list]:
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
    created = _ensure_collection(client, target.collection, dimension, index_type, k1, b, progress)
    if not created:
        _ensure_loaded(client, target.collection)
    have = {} if created else existing_rows(client, target.collection, target.is_lite)

    changed: list[tuple[int, dict]] = []  # (position, row without its vector: vectors are attached per batch)
    for cid, i in wanted.items():
        row = chunk_row(chunks[i], terms[i], model_fingerprint)
        if have.get(cid) != row["row_hash"]:
            changed.append((i, row))
    gone = [cid for cid in have if cid not in wanted]

    done = 0
    for batch in _batches(changed, batch_rows):
        client.upsert(target.collection, [row | {"vector": np.asarray(vectors[i], dtype=np.float32).tolist()}
                                          for i, row in batch])
        done += len(batch)
        if progress:
            progress("milvus upsert", done, len(changed))
    done = 0
    for batch in _batches(gone, batch_rows):
        client.delete(target.collection, ids=batch)
        done += len(batch)
        if progress:
            progress("milvus delete", done, len(gone))
    if changed or gone:
        client.flush(target.collection)  # seal the rows into indexed segments before anyone searches
    _ensure_loaded(client, target.collection)
    return SyncResult(len(wanted), len(changed), len(gone), len(wanted) - len(changed), index_type, created,
                      time.perf_counter() - started)


def _ensure_loaded(client, name: str) -> None:
    state = client.get_load_state(name).get("state")
    if "Loaded" not in str(state) or "NotLoad" in str(state):
        client.load_collection(name)


def count_rows(client, name: str) -> int:
    result = client.query(name, filter="", output_fields=["count(*)"])
    return int(result[0]["count(*)"])


# ------------------------------------------------------------------ search


def _literal(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def filter_expression(where: ChunkFilter) -> str:
    """The retriever's filter as a Milvus boolean expression ('' = none). A section filter keeps the section
    and its subsections: ids are dot-separated paths (``p2``, ``p2.iv``)."""
    parts = []
    if where.section is not None:
        s = where.section
        parts.append(f"(section_id == {_literal(s)} or section_id like {_literal(s + '.%')})")
    if where.document is not None:
        parts.append(f"document_id == {_literal(where.document)}")
    return " and ".join(parts)


class MilvusBackend:
    """Dense, BM25 and engine-fused hybrid search on a Milvus collection, in the build's chunk positions."""

    kind = "milvus"

    def __init__(self, target: MilvusTarget, chunk_ids: list[str], vocabulary: list[str], bm25_k1: float,
                 index_type: str = "FLAT"):
        self.target = target
        self.chunk_ids = list(chunk_ids)
        self._position: dict[str, int] = {}
        for i, cid in enumerate(self.chunk_ids):
            self._position.setdefault(cid, i)
        self.vocabulary = set(vocabulary)
        self._corrector = TypoCorrector(vocabulary)
        self.bm25_scale = 1.0 / (1.0 + bm25_k1)  # Milvus scores carry (k1 + 1); bm25s's lucene variant does not
        self.index_type = index_type
        self._client = None
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        # Per question vector: the positions ranked without a dense score, fetched in one request on demand.
        self._unscored: OrderedDict[bytes, set[int]] = OrderedDict()
        self._scored: OrderedDict[bytes, dict[int, float]] = OrderedDict()

    # ------------------------------------------------------------ set-up
    @property
    def client(self):
        if self._client is None:
            with self._lock:
                if self._client is None:
                    client = connect(self.target)
                    with engine_errors(self.target):
                        if not client.has_collection(self.target.collection):
                            raise MilvusUnavailable(f"{self.target.describe()} does not exist: re-run `reportqa ingest`")
                        _ensure_loaded(client, self.target.collection)
                    self._client = client
        return self._client

    def verify(self, dimension: int | None = None) -> None:
        """Refuse a collection that does not hold this build: wrong schema, dimension or row count."""
        with engine_errors(self.target):
            self._verify(dimension)

    def _verify(self, dimension: int | None) -> None:
        description = _check_ours(self.client, self.target.collection)
        if dimension is not None and _vector_dimension(description) != dimension:
            raise MilvusUnavailable(f"{self.target.describe()} holds {_vector_dimension(description)}-dimensional "
                                    f"vectors, the build {dimension}: re-run `reportqa ingest`")
        rows = count_rows(self.client, self.target.collection)
        if rows != len(self._position):
            raise MilvusUnavailable(f"{self.target.describe()} holds {rows} rows, the build {len(self._position)} "
                                    f"chunks: it was changed by another ingest; re-run `reportqa ingest`")

    @property
    def size(self) -> int:
        return len(self.chunk_ids)

    # ------------------------------------------------------------ lexical
    def query_terms(self, question: str) -> list[str]:
        terms: list[str] = []
        for term in normalise(question):
            terms.extend(self._corrector.correct(term))
        return [t for t in terms if t in self.vocabulary]

    def bm25_query(self, question: str) -> str:
        """The text sent to the BM25 function: the question's terms as the chunks' were analysed."""
        return " ".join(self.query_terms(question))

    def known_terms(self, question: str) -> tuple[int, int]:
        """(terms the index knows, all terms) after normalisation and typo correction (as FaissBackend)."""
        terms = normalise(question)
        return sum(1 for t in terms if self.query_terms(t)), len(terms)

    # ------------------------------------------------------------- search
    def _search_params(self, depth: int) -> dict:
        if self.index_type == "HNSW":
            return {"metric_type": "IP", "params": {"ef": max(HNSW_EF_SEARCH, depth)}}
        return {"metric_type": "IP", "params": {}}

    def _dense(self, query_vector: np.ndarray, expr: str, depth: int) -> list[tuple[str, float]]:
        hits = self.client.search(self.target.collection, data=[_as_list(query_vector)], anns_field="vector",
                                  limit=depth, filter=expr, output_fields=["id"],
                                  search_params=self._search_params(depth))
        return [(h["id"], float(h["distance"])) for h in hits[0]]

    def _bm25(self, text: str, expr: str, depth: int) -> list[tuple[str, float]]:
        hits = self.client.search(self.target.collection, data=[text], anns_field="sparse", limit=depth,
                                  filter=expr, output_fields=["id"], search_params={"metric_type": "BM25"})
        # BM25 scores are positive; Milvus Lite reports them as negative distances, a server as scores.
        return [(h["id"], abs(float(h["distance"])) * self.bm25_scale) for h in hits[0]]

    def _hybrid(self, query_vector: np.ndarray, text: str, expr: str, depth: int) -> list[tuple[str, float]]:
        from pymilvus import AnnSearchRequest, RRFRanker

        requests = [AnnSearchRequest(data=[_as_list(query_vector)], anns_field="vector",
                                     param=self._search_params(depth), limit=depth, expr=expr or None)]
        if text:
            requests.append(AnnSearchRequest(data=[text], anns_field="sparse", param={"metric_type": "BM25"},
                                             limit=depth, expr=expr or None))
        hits = self.client.hybrid_search(self.target.collection, reqs=requests, ranker=RRFRanker(self.target.rrf_k),
                                         limit=depth, output_fields=["id"])
        return [(h["id"], abs(float(h["distance"]))) for h in hits[0]]

    def _run(self, calls: list[Callable[[], list]]) -> list[list]:
        if not self.target.concurrent or len(calls) == 1:
            return [c() for c in calls]
        if self._pool is None:
            with self._lock:
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(max_workers=3, thread_name_prefix="milvus-search")
        return [f.result() for f in [self._pool.submit(c) for c in calls]]

    def rank(self, question: str, query_vector: np.ndarray, where: ChunkFilter, depth: int,
             hybrid: bool = False) -> Ranking:
        allowed = where.allowed
        if allowed is not None and not len(allowed):
            return Ranking({}, {}, None, [] if hybrid else None)
        keep = None
        if allowed is not None:
            keep = np.zeros(len(self.chunk_ids), dtype=bool)
            keep[allowed] = True
        expr = filter_expression(where)
        text = self.bm25_query(question)
        calls: list[Callable[[], list]] = [lambda: self._dense(query_vector, expr, depth)]
        calls.append((lambda: self._bm25(text, expr, depth)) if text else (lambda: []))
        fuse_here = hybrid and self.target.engine_fusion
        if fuse_here:
            calls.append(lambda: self._hybrid(query_vector, text, expr, depth))
        results = self._run(calls)
        dense = self._ranked(results[0], keep)
        bm25 = self._ranked([(cid, s) for cid, s in results[1] if s > 0], keep)
        fused = None
        if fuse_here:
            scored = [(self._position.get(cid), s) for cid, s in results[2]]
            scored = [(p, s) for p, s in scored if p is not None and (keep is None or keep[p])]
            # The engine's RRF order; exact ties (e.g. rank 1 in one list only, either list) go to the earlier
            # chunk, as the in-process fusion does, so results do not depend on the engine's tie order.
            scored.sort(key=lambda ps: (-round(ps[1], 9), ps[0]))
            fused = [p for p, _ in scored]
        unscored = (set(bm25) | set(fused or ())) - set(dense)
        if unscored:
            with self._lock:
                self._unscored[_key(query_vector)] = unscored
                while len(self._unscored) > 256:
                    self._unscored.popitem(last=False)
        return Ranking(dense, bm25, None, fused)

    def _ranked(self, hits: list[tuple[str, float]], keep: np.ndarray | None) -> dict[int, tuple[int, float]]:
        out: dict[int, tuple[int, float]] = {}
        for cid, score in hits:
            p = self._position.get(cid)
            if p is None or p in out or (keep is not None and not keep[p]):
                continue  # a row of another build (ingest in progress) or outside the filter
            out[p] = (len(out) + 1, score)
        return out

    def dense_score(self, position: int, query_vector: np.ndarray) -> float | None:
        """The chunk's cosine with the question (for hits only BM25 found): the vectors of every such hit of the
        last ranking for this question are read back from the collection in one request."""
        key = _key(query_vector)
        with self._lock:
            scored = self._scored.get(key, {})
            if position in scored:
                return scored[position]
            wanted = self._unscored.pop(key, set()) | {position}
        rows = self.client.get(self.target.collection, ids=[self.chunk_ids[p] for p in sorted(wanted)],
                               output_fields=["vector"])
        qv = np.asarray(query_vector, dtype=np.float32).reshape(-1)
        fresh = {self._position[r["id"]]: float(np.asarray(r["vector"], dtype=np.float32) @ qv)
                 for r in rows if r["id"] in self._position}
        with self._lock:
            self._scored.setdefault(key, {}).update(fresh)
            self._scored.move_to_end(key)
            while len(self._scored) > 64:
                self._scored.popitem(last=False)
        return fresh.get(position)

    def vectors(self, batch_size: int = 2_000) -> np.ndarray:
        """Every chunk's vector, in build order (to build a FAISS index from a Milvus build)."""
        out: list[np.ndarray | None] = [None] * len(self.chunk_ids)
        with engine_errors(self.target):
            for batch in _batches(self.chunk_ids, batch_size):
                for row in self.client.get(self.target.collection, ids=batch, output_fields=["vector"]):
                    p = self._position[row["id"]]
                    out[p] = np.asarray(row["vector"], dtype=np.float32)
        for i, cid in enumerate(self.chunk_ids):
            if out[i] is None:
                first = self._position[cid]
                if out[first] is None:
                    raise MilvusUnavailable(f"chunk {cid} is missing from {self.target.describe()}")
                out[i] = out[first]
        return np.vstack(out)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False)
            self._pool = None


def _key(vector: np.ndarray) -> bytes:
    return hashlib.blake2b(np.asarray(vector, dtype=np.float32).tobytes(), digest_size=16).digest()


def _as_list(vector: np.ndarray) -> list[float]:
    return np.asarray(vector, dtype=np.float32).reshape(-1).tolist()


# -------------------------------------------------- one build, both backends


def milvus_from_loaded(loaded, target: MilvusTarget, flat_max: int, progress=None) -> tuple["object", SyncResult]:
    """``loaded`` (any backend) served from the Milvus collection ``target``: synced from the build's own
    chunks and vectors (FAISS: read back from dense.faiss), so both backends answer over the same data."""
    from dataclasses import replace

    if loaded.backend.kind == "milvus" and loaded.backend.target.collection == target.collection \
            and loaded.backend.target.uri == target.uri:
        return loaded, SyncResult(loaded.backend.size, 0, 0, loaded.backend.size, loaded.backend.index_type,
                                  False, 0.0)
    vectors = _build_vectors(loaded)
    terms = [normalise(c.embed_text) for c in loaded.chunks]
    build = loaded.manifest["build_settings"]
    result = sync_collection(target, loaded.chunks, vectors, terms, loaded.manifest["model"]["fingerprint"],
                             build["bm25_k1"], build["bm25_b"], flat_max, progress)
    vocabulary = sorted({t for ts in terms for t in ts})
    backend = MilvusBackend(target, [c.id for c in loaded.chunks], vocabulary, build["bm25_k1"], result.index_type)
    manifest = dict(loaded.manifest, backend="milvus", collection=target.collection, uri=sanitise_uri(target.uri))
    return replace(loaded, backend=backend, manifest=manifest), result


def faiss_from_loaded(loaded, exact_search_max: int):
    """``loaded`` (a Milvus build) served from an in-memory FAISS + bm25s index built from the same rows."""
    from dataclasses import replace

    from index.backends import FaissBackend
    from index.dense import DenseIndex
    from index.lexical import LexicalIndex

    if loaded.backend.kind == "faiss":
        return loaded
    build = loaded.manifest["build_settings"]
    vectors = loaded.backend.vectors()
    backend = FaissBackend(DenseIndex.build(vectors, exact_search_max),
                           LexicalIndex.build([c.embed_text for c in loaded.chunks], build["bm25_k1"], build["bm25_b"]))
    return replace(loaded, backend=backend, manifest=dict(loaded.manifest, backend="faiss"))


def _build_vectors(loaded) -> np.ndarray:
    """The build's chunk vectors: read back from Milvus, or reconstructed from dense.faiss (exact for a flat
    index; for the 8-bit HNSW index FAISS builds above ``exact_search_max``, the dequantised vectors)."""
    backend = loaded.backend
    if backend.kind == "milvus":
        return backend.vectors()
    index = backend.dense.index
    return np.asarray(index.reconstruct_n(0, index.ntotal), dtype=np.float32)
