"""HTTP for the benchmarks: a minimal keep-alive client on a socket (sync and asyncio) with one
response parser, the load generator, and ``reportqa serve`` in a child process."""
from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from eval.bench.questions import QUESTIONS

ROOT = Path(__file__).resolve().parent.parent.parent
SERVER_START_TIMEOUT_S = 180


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post_request(path: str, body: dict) -> bytes:
    data = json.dumps(body).encode()
    return (f"POST {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\n\r\n").encode() + data


class ResponseHead:
    """The status line and headers of one HTTP/1.1 response, fed line by line (sans I/O, so the
    socket client and the asyncio client parse with the same code)."""

    def __init__(self):
        self.status_line = b""
        self.status = 0
        self.length = 0

    def feed(self, line: bytes) -> bool:
        """Take the next line; False once the head is complete (or the connection closed)."""
        if not self.status_line:
            self.status_line = line
            parts = line.split()
            self.status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
            return bool(line)
        if line in (b"\r\n", b""):
            return False
        if line.lower().startswith(b"content-length:"):
            self.length = int(line.split(b":")[1])
        return True


class RawClient:
    """A keep-alive client on a socket: what a load balancer or curl costs, so the measured time is the
    server's and not a Python client library's (httpx adds ~0.8 ms per request here)."""

    def __init__(self, host: str, port: int):
        self.sock = socket.create_connection((host, port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.reader = self.sock.makefile("rb")

    @classmethod
    def to(cls, url: str) -> "RawClient":
        host, port = url.rsplit("//", 1)[1].split(":")
        return cls(host, int(port))

    def post_json(self, path: str, body: dict) -> tuple[int, bytes]:
        self.sock.sendall(post_request(path, body))
        head = ResponseHead()
        while head.feed(self.reader.readline()):
            pass
        return head.status, self.reader.read(head.length)

    def close(self) -> None:
        self.reader.close()
        self.sock.close()


async def _client_loop(host: str, port: int, questions, deadline: float, cap, latencies: list,
                       errors: list) -> None:
    """One concurrent client (asyncio, keep-alive): POST /query with the next question until the deadline."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.perf_counter() < deadline and next(cap, None) is not None:
            request = post_request("/query", {"question": next(questions), "k": 5})
            started = time.perf_counter()
            writer.write(request)
            await writer.drain()
            head = ResponseHead()
            while head.feed(await reader.readline()):
                pass
            await reader.readexactly(head.length)
            latencies.append(time.perf_counter() - started)
            if head.status != 200:
                errors.append(head.status_line.decode(errors="replace").strip())
    except (OSError, asyncio.IncompleteReadError) as exc:
        errors.append(f"{type(exc).__name__}: {exc}")
    finally:
        writer.close()


def run_load(port: int, clients: int, seconds: float, max_requests: int, first_question: int) -> dict:
    """Concurrent keep-alive clients POSTing distinct questions to 127.0.0.1:port until the deadline or
    ``max_requests``; returns every latency (seconds), the errors and the wall time."""
    latencies: list[float] = []
    errors: list[str] = []
    cap = iter(range(max_requests))
    questions = (f"{QUESTIONS[n % len(QUESTIONS)]} #{n}" for n in itertools.count(first_question))

    async def run() -> float:
        started = time.perf_counter()
        await asyncio.gather(*(_client_loop("127.0.0.1", port, questions, started + seconds, cap,
                                            latencies, errors) for _ in range(clients)))
        return time.perf_counter() - started

    wall = asyncio.run(run())
    return {"latencies": latencies, "errors": errors, "seconds": wall}


def run_load_process(port: int, clients: int, seconds: float, max_requests: int, first_question: int) -> dict:
    """:func:`run_load` in a separate lean process (``python -m eval.bench load``): in a process full of
    an ingest's objects and models the clients themselves ran slower (measured one-client p50 8.9 ms
    vs 6.3 ms from a fresh process against the same server)."""
    out = subprocess.run(
        [sys.executable, "-m", "eval.bench", "load", str(port), str(clients), str(seconds), str(max_requests),
         str(first_question)], cwd=str(ROOT), capture_output=True, text=True, timeout=seconds + 300)
    if out.returncode != 0:
        raise RuntimeError(f"load client failed: {out.stderr[-500:]}")
    return json.loads(out.stdout)


class StartupCounter:
    """Counts uvicorn's "Application startup complete." lines on a server's stderr (one per worker
    process) in a thread, keeping the last lines for error messages."""

    def __init__(self, stream):
        self.count = 0
        self.tail: collections.deque[str] = collections.deque(maxlen=20)
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream) -> None:
        for line in stream:
            self.tail.append(line)
            if "Application startup complete" in line:
                self.count += 1


def _wait_until_ready(proc, started: StartupCounter, port: int, workers: int) -> None:
    import httpx

    deadline = time.perf_counter() + SERVER_START_TIMEOUT_S
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.perf_counter() > deadline:
            raise RuntimeError(f"server did not start: {''.join(started.tail)[-500:]}")
        time.sleep(0.2)
    # /readyz answers as soon as one worker is up; connections made before the others are
    # ready all go to it and stay there (keep-alive): measured, 16:0 splits and 124 req/s.
    while started.count < workers:
        if proc.poll() is not None or time.perf_counter() > deadline:
            raise RuntimeError(f"workers did not start: {''.join(started.tail)[-500:]}")
        time.sleep(0.2)
    for _ in range(3 * workers):  # warm each worker's first request
        httpx.post(f"http://127.0.0.1:{port}/query", json={"question": "warm-up question"}, timeout=60)


@contextlib.contextmanager
def server_process(settings, workers: int, threads: int):
    """`reportqa serve` on ``settings``' index in a child process; yields its port once every worker is ready."""
    port = free_port()
    env = {**os.environ, **settings.to_environment(), "REPORTQA_PORT": str(port),
           "REPORTQA_WORKERS": str(workers), "REPORTQA_QUESTION_THREADS": str(threads)}
    proc = subprocess.Popen([sys.executable, "-m", "service.cli", "serve", "--log-level", "info"], env=env,
                            cwd=str(ROOT), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True, text=True)
    started = StartupCounter(proc.stderr)
    try:
        _wait_until_ready(proc, started, port, workers)
        yield port
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
