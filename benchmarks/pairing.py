"""How both benchmark runs (``run.py``, ``postgres.py``) turn repeats into figures: ratios
paired repeat by repeat, pooled pickup percentiles, a repeat's one-line brief and a table cell.

Pairing: litequeue's repeat *i* ran minutes apart from a peer's repeat *i*, so a slow spell of
the shared machine hits both; each pair gives one ratio, and the report shows the median
(min–max) of those ratios rather than a ratio of medians.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from harness import percentile, summary


def paired(base: Sequence[dict[str, Any]], other: Sequence[dict[str, Any]], field: str,
           invert: bool = False) -> dict[str, float] | None:
    """Median (min–max) over paired repeats of mine ÷ theirs (``invert``: theirs ÷ mine).
    ``pickup_ms`` (a list of samples) is compared by each repeat's p50; a pair where either
    side has no figure is left out."""
    vals = []
    for mine, theirs in zip(base, other, strict=False):
        a, b = mine.get(field), theirs.get(field)
        if field == "pickup_ms":
            a = percentile(a, 50) if a else None
            b = percentile(b, 50) if b else None
        if a and b:
            vals.append(b / a if invert else a / b)
    return summary(vals)


def pooled_pickup(repeats: Sequence[dict[str, Any]]) -> dict[str, float] | None:
    """p50, p95 and p99 (ms) over every pickup sample of every repeat, and their number."""
    pooled = [x for r in repeats for x in r.get("pickup_ms", [])]
    if not pooled:
        return None
    return {f"p{p}": percentile(pooled, p) for p in (50, 95, 99)} | {"n": len(pooled)}


def brief(repeat: dict[str, Any]) -> dict[str, Any]:
    """One repeat's figures for the progress line: floats rounded, pickups as their p50."""
    out = {k: (round(v, 1) if isinstance(v, float) else v) for k, v in repeat.items() if k != "pickup_ms"}
    if repeat.get("pickup_ms"):
        out["pickup_p50_ms"] = round(percentile(repeat["pickup_ms"], 50), 2)
    return out


def cell(s: dict[str, float] | float | None, fmt: str = "{:,.0f}") -> str:
    """A table cell: ``median (min–max)``, the median alone for one repeat, ``–`` for none."""
    if not s:
        return "–"
    if isinstance(s, (int, float)):  # a single figure (earlier JSON)
        return fmt.format(s)
    if s["n"] == 1:
        return fmt.format(s["median"])
    return f"{fmt.format(s['median'])} ({fmt.format(s['min'])}–{fmt.format(s['max'])})"
