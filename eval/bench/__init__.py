"""Benchmarks: one runner (:mod:`eval.bench.runner`), three suites of sections, each section one module
returning a :class:`~eval.bench.runner.SectionResult`.

- ``service`` (:mod:`eval.bench.service_suite`): ingest, encode, end to end, throughput, embedding,
  scaling, then the targets;
- ``backends`` (:mod:`eval.bench.backends`): FAISS vs Milvus, ingest and query latency per size;
- ``encoders`` (:mod:`eval.bench.encoders`): torch vs ONNX Runtime fp32/int8, speed and eval quality;
- ``library`` (:mod:`eval.bench.library_suite`): adding/removing one QASPER paper against a scratch build.

Shared helpers: :mod:`~eval.bench.synthetic` (data), :mod:`~eval.bench.procstats` (memory, CPU,
latency stats), :mod:`~eval.bench.http` (socket client, load generator, server process),
:mod:`~eval.bench.tables`. ``reportqa bench --suite ...`` is the entry point.
"""

SUITES = ("service", "backends", "encoders", "library")
