"""Micro-batching of concurrent questions into one encoder call.

On PyTorch a transformer encodes 16 short questions in about the time of 3
single calls on two cores, so under concurrency the service can queue
questions and let one worker thread encode whatever is waiting as one batch
(``encode_max_batch`` > 1). A lone question is encoded at once (no waiting
window). With ONNX Runtime (the default engine) a batch saves nothing per
question (3.37 vs 3.60 ms for 16 vs 1, measured by ``reportqa bench``) and the
hand-off to the worker thread costs a lone request ~0.5 ms, so it is off by
default. With ``onnx-int8`` it should stay off: activations are quantized
with one scale per call, so a batched question's vector depends on the
questions it was batched with (the same question would get slightly
different passages under load).
"""
from __future__ import annotations

import queue
import threading
from concurrent.futures import Future

import numpy as np

from index.embed import Embedder


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
