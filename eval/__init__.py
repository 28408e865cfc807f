"""Eval: the team's question set on the bundled report, the harness that scores retrieval per mode
(with a naive baseline and each miss), BEIR runs, no-answer calibration, and the benchmark.

Entry point: :func:`eval.harness.run_cli` (``reportqa eval``); ``eval.bench`` for ``reportqa bench``.
"""
