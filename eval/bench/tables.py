"""Plain-text tables and JSON-safe values for benchmark output."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np


def fmt(value, digits: int | None = None) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    if isinstance(value, (float, np.floating)):
        value = float(value)
        if math.isnan(value):
            return "n/a"
        if digits is None:
            a = abs(value)
            digits = 0 if a >= 100 else 1 if a >= 10 else 2 if a >= 1 else 3
        return f"{value:,.{digits}f}"
    return str(value)


def table(title: str, headers: list[str], rows: list[list], notes: list[str] | None = None) -> str:
    """Plain-text table: text columns left-aligned, numeric columns right-aligned."""
    ncol = len(headers)
    def looks_numeric(c) -> bool:
        if not isinstance(c, str):
            return True
        c = c.strip().replace(",", "").rstrip("%").lstrip("+")
        if c in ("", "-", "n/a"):
            return True
        try:
            float(c)
            return True
        except ValueError:
            return False

    numeric = [all(looks_numeric(r[i]) for r in rows) if rows else False for i in range(ncol)]
    cells = [[c if isinstance(c, str) else fmt(c) for c in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, c in enumerate(row):
            widths[i] = max(widths[i], len(c))

    def line(row):
        return "  ".join(c.rjust(widths[i]) if numeric[i] else c.ljust(widths[i]) for i, c in enumerate(row)).rstrip()

    out = [title, "=" * len(title), line(headers), line(["-" * w for w in widths])]
    out += [line(r) for r in cells]
    for note in notes or []:
        out.append(f"  note: {note}")
    return "\n".join(out)


def mib(value) -> str:
    return "-" if value is None else f"{value:,.1f}"


def jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return None if math.isnan(float(obj)) else float(obj)
    if isinstance(obj, float) and math.isnan(obj):
        return None
    if isinstance(obj, Path):
        return str(obj)
    return obj
