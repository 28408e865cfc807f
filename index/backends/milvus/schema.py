"""The collection's schema and indexes: one row per chunk, Milvus's BM25 function, FLAT or HNSW vectors.

A collection with any other field set is refused, never changed: it is not a ReportQA index of this
version. Index parameters are sent in the wire form every Milvus (Lite and server) reads.
"""
from __future__ import annotations

from index.backends.base import HNSW_EF_CONSTRUCTION, HNSW_M
from index.backends.milvus.client import MilvusUnavailable

SCHEMA_VERSION = 1
MAX_VARCHAR = 65_535  # Milvus's VARCHAR limit (bytes)
MAX_PATH_DEPTH = 64
MAX_TITLE = 2_048
FIELDS = ("id", "document_id", "section_id", "section_title", "section_path", "ordinal", "char_start",
          "char_end", "page", "text", "bm25_text", "row_hash", "vector", "sparse")


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


def vector_dimension(description: dict) -> int | None:
    for f in description.get("fields", []):
        if f.get("name") == "vector":
            return int(f.get("params", {}).get("dim", 0)) or None
    return None


def check_ours(client, name: str) -> dict:
    """The collection's description, if it has this module's schema; refuses anyone else's collection."""
    description = client.describe_collection(name)
    names = {f.get("name") for f in description.get("fields", [])}
    if names != set(FIELDS):
        raise MilvusUnavailable(
            f"collection {name!r} exists with another schema (fields {sorted(names)}); it is not a ReportQA "
            f"index of this version: choose another REPORTQA_MILVUS_COLLECTION or drop it"
        )
    return description


def ensure_collection(client, name: str, dimension: int, index_type: str, k1: float, b: float,
                       progress) -> bool:
    """Create the collection, or bring an existing one's indexes in line. True if it was created."""
    if client.has_collection(name):
        description = check_ours(client, name)
        if vector_dimension(description) != dimension:
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



def ensure_loaded(client, name: str) -> None:
    state = client.get_load_state(name).get("state")
    if "Loaded" not in str(state) or "NotLoad" in str(state):
        client.load_collection(name)


def count_rows(client, name: str) -> int:
    result = client.query(name, filter="", output_fields=["count(*)"])
    return int(result[0]["count(*)"])

