"""Eval: the team's question set on the bundled report and the harness that scores retrieval per mode
(entry module :mod:`eval.harness`), with a naive baseline and each miss; BEIR runs, no-answer
calibration, one build on several backends; the benchmarks (:mod:`eval.bench`).

Functions here return dataclasses and raise :mod:`eval.errors`; progress goes through the
:mod:`eval.progress` callbacks. Printing and exit codes belong to the command line (``reportqa eval``,
``reportqa bench``), which eval never imports.
"""
