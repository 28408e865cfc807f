"""What every command shares: exit codes, the one-line error, progress on stderr, settings from flags."""
from __future__ import annotations

import sys
import time

EXIT_USAGE, EXIT_INPUT, EXIT_INDEX = 2, 3, 4
EXIT_BUSY = 5  # another writer held the index's lock for longer than library_lock_timeout_s
EXIT_INTERRUPTED = 130  # 128 + SIGINT
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: what a shell reports for a tool whose reader went away


class CliError(Exception):
    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.code = code


class Progress:
    """Progress on stderr: a rewritten line on a terminal, a line per 10% otherwise."""

    def __init__(self, quiet: bool = False):
        self.quiet = quiet
        self.tty = sys.stderr.isatty()
        self._last: dict[str, int] = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        if self.quiet or total <= 0:
            return
        pct = int(100 * done / total)
        if self.tty:
            end = "\n" if done >= total else ""
            print(f"\r{stage}: {done}/{total} ({pct}%)", end=end, file=sys.stderr, flush=True)
        elif pct // 10 != self._last.get(stage, -1) // 10 or done >= total:
            self._last[stage] = pct
            print(f"{stage}: {done}/{total} ({pct}%)", file=sys.stderr, flush=True)


class StderrLog:
    """A benchmark's running commentary on stderr, each line stamped with the seconds since the start."""

    def __init__(self, prefix: str = "bench"):
        self.prefix, self.started = prefix, time.perf_counter()

    def __call__(self, message: str) -> None:
        print(f"[{self.prefix} {time.perf_counter() - self.started:7.1f}s] {message}", file=sys.stderr, flush=True)


# flag name on the command line -> Settings field
FLAG_SETTINGS = (("index", "index_dir"), ("model", "model_path"), ("host", "host"), ("port", "port"),
                 ("chunk_tokens", "chunk_tokens"), ("overlap", "chunk_overlap_tokens"),
                 ("embed_context", "embed_context"),
                 ("backend", "backend"), ("milvus_uri", "milvus_uri"), ("milvus_collection", "milvus_collection"),
                 ("workers", "workers"), ("threads", "question_threads"))


def settings_from(args):
    """The settings with this command's flags applied (flags > REPORTQA_* variables > defaults)."""
    from pydantic import ValidationError

    from settings import Settings

    overrides = {}
    for flag, name in FLAG_SETTINGS:
        value = getattr(args, flag, None)
        if value is not None:
            overrides[name] = value
    if getattr(args, "encoder", None) is not None:
        overrides["ingest_encoder_backend" if args.command == "ingest" else "encoder_backend"] = args.encoder
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise CliError(f"bad setting {'.'.join(map(str, first['loc']))}: {first['msg']}", EXIT_USAGE) from None
