"""Where a Milvus collection lives and how to reach it: URIs (resolved, sanitised for the manifest), the
target (collection, token, search options), one client per URI and token per process, engine errors."""
from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from index.backends.base import BackendUnavailable
from index.fusion import RRF


class MilvusUnavailable(BackendUnavailable):
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
            engine_fusion=settings.weight_dense == settings.weight_bm25 and settings.fusion == RRF,
        )

    @property
    def is_lite(self) -> bool:
        return not is_server_uri(self.uri)

    def describe(self) -> str:
        return f"collection {self.collection!r} at {sanitise_uri(self.uri)}"


_clients: dict[tuple[str, str | None], object] = {}
_users: dict[tuple[str, str | None], int] = {}  # open backends per client key (they connect lazily)
_clients_lock = threading.Lock()


def register(target: MilvusTarget) -> None:
    """Count an open backend of ``target``: its client stays open until the last such backend is released."""
    key = (target.uri, target.token)
    with _clients_lock:
        _users[key] = _users.get(key, 0) + 1


def release(target: MilvusTarget) -> None:
    """Uncount a backend of ``target``; the last one out closes the shared client (a new one connects again)."""
    key = (target.uri, target.token)
    with _clients_lock:
        left = _users.get(key, 0) - 1
        if left > 0:
            _users[key] = left
            return
        _users.pop(key, None)
        client = _clients.pop(key, None)
    if client is not None:
        try:
            client.close()
        except Exception:  # closing a connection that is already gone: nothing left to release
            pass


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

