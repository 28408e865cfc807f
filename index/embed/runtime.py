"""Process-wide switches for the model libraries, set by an entry point before they are imported.

Hugging Face libraries read these environment variables when they are imported, so they are set by
the program's entry point (the CLI's ``main``, a server worker's app factory, the test session, a
benchmark's ``main``) by calling :func:`configure_runtime`, never as a side effect of importing this
package.
"""
from __future__ import annotations

import os

RUNTIME_ENVIRONMENT = {
    "HF_HUB_OFFLINE": "1",  # the model is a local folder: a missing file fails at once, no network
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "TOKENIZERS_PARALLELISM": "false",  # tokenizers' own threads fight the encoder's (and fork badly)
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TRANSFORMERS_VERBOSITY": "error",
    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
}


def configure_runtime(environ=None) -> dict[str, str]:
    """Set the variables above where they are not already set (an explicit value wins); returns them."""
    environ = os.environ if environ is None else environ
    for name, value in RUNTIME_ENVIRONMENT.items():
        environ.setdefault(name, value)
    return {name: environ[name] for name in RUNTIME_ENVIRONMENT}
