"""The progress callback every long eval and bench step takes: ``progress(stage, done, total)``.

Eval code never prints progress itself; the caller (the command line, a test) decides where it goes."""
from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def __call__(self, stage: str, done: int, total: int) -> None: ...


class Log(Protocol):
    """A line of progress in words (a benchmark's running commentary)."""

    def __call__(self, message: str) -> None: ...

