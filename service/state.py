"""What a running service holds: settings, model, the served retriever (swapped on reload), the cache.

A reload swaps the retriever for new requests while running ones keep theirs; the old retriever is
closed (its backend's connections and files released) once the last request using it has finished.
"""
from __future__ import annotations

import logging
import sys
import threading
from collections import OrderedDict
from pathlib import Path
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator

from prometheus_client import CollectorRegistry

from index import (
    Embedder, IndexUnavailable, Retriever, SearchResult, configure_runtime, load_current_index, load_embedder, open_retriever,
)
from index.batching import BatchingEncoder
from index.store import current_build
from settings import EncoderEngine, Settings

log = logging.getLogger("reportqa.service")


class QueryCache:
    """LRU of recent results: repeated questions (a linked GET /query, a refresh) skip the encoder."""

    def __init__(self, size: int):
        self.size = size
        self._data: OrderedDict[tuple, SearchResult] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple) -> SearchResult | None:
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                return self._data[key]
        return None

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def put(self, key: tuple, value: SearchResult) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.size:
                self._data.popitem(last=False)


def close_retriever(retriever: Retriever) -> None:
    """Release what a retriever holds (a Milvus client, mapped files), where it has anything to release."""
    close = getattr(retriever, "close", None)
    if callable(close):
        try:
            close()
        except Exception as exc:  # a failing close must not take the service down; the new index serves
            log.warning("closing the previous index failed: %s", exc)


@dataclass
class ServiceState:
    settings: Settings
    embedder: Embedder
    retriever: Retriever
    ready: bool = False
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    cache: QueryCache | None = None
    reloads: int = 0
    reload_lock: threading.Lock = field(default_factory=threading.Lock)
    encoder: BatchingEncoder | None = None
    # The full-precision passage encoder library writes embed with (ingest_encoder_backend), loaded on
    # the first upload: a service that only answers questions never pays for it.
    ingest_embedder: Embedder | None = None
    _ingest_lock: threading.Lock = field(default_factory=threading.Lock)
    # Requests running per retriever (by identity), and retrievers swapped out but still in use.
    _in_use: dict[int, int] = field(default_factory=dict)
    _retired: dict[int, Retriever] = field(default_factory=dict)
    _lease_lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.retriever.encode_fn = self.encoder.encode if self.encoder else None

    @contextmanager
    def lease(self) -> Iterator[Retriever]:
        """The current retriever, kept open until the block ends even if a reload swaps it meanwhile."""
        with self._lease_lock:
            retriever = self.retriever
            self._in_use[id(retriever)] = self._in_use.get(id(retriever), 0) + 1
        try:
            yield retriever
        finally:
            with self._lease_lock:
                left = self._in_use[id(retriever)] - 1
                if left:
                    self._in_use[id(retriever)] = left
                else:
                    del self._in_use[id(retriever)]
                done = self._retired.pop(id(retriever)) if not left and id(retriever) in self._retired else None
            if done is not None:
                close_retriever(done)

    def passage_embedder(self) -> Embedder:
        with self._ingest_lock:
            if self.ingest_embedder is None:
                self.ingest_embedder = load_embedder(self.settings, ingest=True)
            return self.ingest_embedder

    @property
    def build_name(self) -> str:
        """The name of the build being served (the folder ``CURRENT`` named when it was loaded)."""
        return self.retriever.index.build_dir.name

    def reload(self, only_if_changed: bool = False) -> tuple[str, str]:
        """Load the current build and swap it in. Requests already running keep the retriever they
        started with; new ones get the new one. Raises IndexUnavailable (old index stays) on a bad build.
        ``only_if_changed``: nothing is loaded when ``CURRENT`` still names the served build (a write
        route and the watcher may both ask for the same new build)."""
        with self.reload_lock:
            previous = self.retriever.index.manifest.get("build", "")
            if only_if_changed and current_pointer(self.settings) == self.build_name:
                return previous, previous
            loaded = load_served_index(self.settings)
            retriever = open_retriever(self.settings, self.embedder, loaded)
            retriever.encode_fn = self.encoder.encode if self.encoder else None
            with self._lease_lock:
                old, self.retriever = self.retriever, retriever
                idle = id(old) not in self._in_use
                if not idle:
                    self._retired[id(old)] = old
            if idle:
                close_retriever(old)
            if self.cache:
                self.cache.clear()
            self.reloads += 1
            return previous, loaded.manifest.get("build", "")


class CurrentWatcher:
    """Swaps in a new build when the index's ``CURRENT`` pointer names another one (written by
    `reportqa add/remove/ingest` or by this service's own upload and delete routes): every
    ``reload_poll_s`` the pointer is read (a few bytes) and, if it changed, :meth:`ServiceState.reload`
    runs; requests in flight finish on the build they started with. A build that cannot be loaded is
    logged once and the served index kept until the pointer changes again."""

    def __init__(self, state: "ServiceState", interval_s: float):
        self.state, self.interval_s = state, interval_s
        self._stop = threading.Event()
        self._refused: str | None = None
        self._thread = threading.Thread(target=self._run, daemon=True, name="reportqa-current-watcher")

    def start(self) -> "CurrentWatcher":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def check(self) -> bool:
        """Reload if ``CURRENT`` names a build other than the served one; True if a new build was swapped in."""
        pointer = current_pointer(self.state.settings)
        if not pointer or pointer == self.state.build_name or pointer == self._refused:
            return False
        try:
            previous, build = self.state.reload(only_if_changed=True)
        except IndexUnavailable as exc:
            self._refused = pointer
            log.warning("new build %s not served, kept %s: %s", pointer, self.state.build_name, exc)
            return False
        self._refused = None
        log.info("index reloaded: %s -> %s", previous, build)
        return True

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.check()
            except Exception as exc:  # the watcher must outlive any one failed look (a vanished folder)
                log.warning("checking the index for a new build failed: %s", exc)


def current_pointer(settings: Settings) -> str | None:
    """The build name ``CURRENT`` holds now (the store's reading of it), or None when there is none."""
    try:
        build = current_build(Path(settings.index_dir))
    except OSError:  # the pointer replaced or removed between looking and reading
        return None
    return build.name if build else None


def load_served_index(settings: Settings):
    """The current build, memory-mapped when asked or when worker processes should share one copy."""
    return load_current_index(settings, mmap=settings.index_mmap or settings.workers > 1)


def load_state(settings: Settings, embedder: Embedder | None = None) -> ServiceState:
    """Load model and index; raises IndexUnavailable / ModelUnavailable with a one-line reason."""
    configure_runtime()
    sys.setswitchinterval(settings.gil_switch_interval_ms / 1000)
    loaded = load_served_index(settings)
    embedder = embedder or load_embedder(settings)
    retriever = open_retriever(settings, embedder, loaded)
    encoder = BatchingEncoder(embedder, settings.encode_max_batch) if settings.encode_max_batch > 1 else None
    if encoder and embedder.backend == EncoderEngine.ONNX_INT8:
        log.warning("encode_max_batch > 1 with the onnx-int8 encoder: a batched question's vector depends on "
                    "its batch-mates (one activation scale per call); use --encoder onnx to batch exactly")
    return ServiceState(settings, embedder, retriever, cache=QueryCache(settings.query_cache_size), encoder=encoder)
