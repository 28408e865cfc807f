"""``reportqa config``: the effective settings, secrets masked."""
from __future__ import annotations

import json

from service.cli.common import settings_from

EXAMPLES = "examples:\n  reportqa config\n  REPORTQA_CHUNK_TOKENS=200 reportqa config"


def register(add) -> None:
    add("config", "Print the effective settings.", run, EXAMPLES)


def run(args) -> int:
    print(json.dumps(settings_from(args).public_dict(), indent=2, default=str))
    return 0
