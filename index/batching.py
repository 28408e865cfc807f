"""Micro-batching of concurrent questions into one encoder call.

A transformer encodes 16 short questions in about the time of 3 single
calls on two cores, so under concurrency the service queues questions and a
single worker thread encodes whatever is waiting as one batch. A lone
question is encoded at once (no waiting window), so single-client latency
does not change.
"""
from __future__ import annotations

import queue
import threading
from concurrent.futures import Future

import numpy as np

from index.embedder import Embedder


class BatchingEncoder:
    def __init__(self, embedder: Embedder, max_batch: int = 32):
        self.embedder = embedder
        self.max_batch = max_batch
        self._queue: queue.Queue[tuple[str, Future]] = queue.Queue()
        self._stopped = threading.Event()
        self.batches = 0
        self.encoded = 0
        self._worker = threading.Thread(target=self._run, name="reportqa-encoder", daemon=True)
        self._worker.start()

    def encode(self, text: str, timeout: float | None = None) -> np.ndarray:
        """The question's vector; blocks the calling (pool) thread, never the event loop."""
        if self._stopped.is_set():
            raise RuntimeError("encoder stopped")
        future: Future = Future()
        self._queue.put((text, future))
        return future.result(timeout=timeout)

    def _run(self) -> None:
        while not self._stopped.is_set():
            try:
                first = self._queue.get(timeout=0.5)
            except queue.Empty:
                continue
            batch = [first]
            while len(batch) < self.max_batch:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            pending = [(t, f) for t, f in batch if f.set_running_or_notify_cancel()]
            if not pending:
                continue
            try:
                vectors = self.embedder.encode([t for t, _ in pending], batch_size=len(pending))
            except Exception as exc:  # hand the failure to every waiting request
                for _, f in pending:
                    f.set_exception(exc)
                continue
            self.batches += 1
            self.encoded += len(pending)
            for (_, f), v in zip(pending, vectors):
                f.set_result(v)

    def close(self) -> None:
        self._stopped.set()
        self._worker.join(timeout=5)
