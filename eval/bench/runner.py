"""The one benchmark runner: sections run in the order they print, each timed, each returning a
:class:`SectionResult`; a failing section is recorded and the run goes on."""
from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field
from typing import Callable

from eval.bench.procstats import cpu_sample, loadavg, others_cpu_share
from eval.progress import Log


@dataclass
class SectionResult:
    name: str  # key in the JSON results
    data: dict  # every number, JSON-able
    table: str  # what is printed


@dataclass
class BenchRun:
    """What a suite measured: its sections in run (= print) order, plus run-wide facts."""

    suite: str
    sections: list[SectionResult] = field(default_factory=list)
    meta: dict = field(default_factory=dict)
    targets: list[dict] = field(default_factory=list)  # each: target, status, value, reason

    def section(self, name: str) -> SectionResult | None:
        return next((s for s in self.sections if s.name == name), None)

    def data(self, name: str) -> dict:
        s = self.section(name)
        return s.data if s else {}

    def results(self) -> dict:
        """Everything as one JSON-able dict: meta, each section by name, the targets."""
        return {"meta": self.meta, **{s.name: s.data for s in self.sections}, "targets": self.targets}

    def render(self) -> str:
        return "\n\n".join(s.table for s in self.sections)


class Runner:
    """Runs sections into a :class:`BenchRun`; a section is a function returning a SectionResult."""

    def __init__(self, suite: str, log: Log):
        self.run = BenchRun(suite)
        self.log = log

    def section(self, name: str, title: str, fn: Callable[..., SectionResult], *args) -> SectionResult:
        """Run ``fn(*args)``; on an exception, a SectionResult saying it failed (``title`` names it)."""
        self.log(f"section {name}: start (load average {loadavg()})")
        started, cpu0 = time.perf_counter(), cpu_sample()
        try:
            result = fn(*args)
        except Exception as exc:  # one failing section must not hide the others
            detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            self.log(f"section {name}: FAILED: {detail}")
            self.log(traceback.format_exc().rstrip())
            result = SectionResult(name, {"error": detail}, f"{title}: FAILED ({detail})")
        share = others_cpu_share(cpu0, cpu_sample())
        seconds = time.perf_counter() - started
        result.data["section_seconds"] = round(seconds, 2)
        result.data["others_cpu_share"] = share
        self.log(f"section {name}: done in {seconds:.1f}s"
                 + (f" (other processes used {share:.0%} of the CPUs meanwhile)" if share is not None else ""))
        self.run.sections.append(result)
        return result

