"""Figures beside their bounds: the printed table and bench/results.json."""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

_OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
}


@dataclass(frozen=True)
class Bound:
    op: str  # one of _OPS
    limit: float

    def holds(self, value: float) -> bool:
        return _OPS[self.op](value, self.limit)

    def __str__(self) -> str:
        return f"{self.op} {fmt(self.limit)}"


def at_least(limit: float) -> Bound:
    return Bound(">=", limit)


def at_most(limit: float) -> Bound:
    return Bound("<=", limit)


def under(limit: float) -> Bound:
    return Bound("<", limit)


@dataclass(frozen=True)
class Figure:
    scenario: str
    name: str
    value: float
    unit: str = ""
    bound: Bound | None = None  # None: reported for context, nothing to meet

    @property
    def ok(self) -> bool | None:
        return None if self.bound is None else self.bound.holds(self.value)

    def as_json(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "figure": self.name,
            "value": self.value,
            "unit": self.unit,
            "bound": None
            if self.bound is None
            else {"op": self.bound.op, "value": self.bound.limit},
            "ok": self.ok,
        }


def fmt(value: float) -> str:
    size = abs(value)
    if float(value).is_integer() or size >= 100:
        return f"{value:,.0f}"
    if size >= 10:
        return f"{value:.1f}"
    if size >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def _mark(ok: bool | None) -> str:
    return {True: "pass", False: "FAIL", None: ""}[ok]


def table(figures: Sequence[Figure]) -> str:
    """A Markdown table (readable in a terminal, pasteable into the README)."""
    rows = [("Scenario", "Figure", "Value", "Bound", "")]
    for f in figures:
        value = f"{fmt(f.value)} {f.unit}".strip()
        bound = "" if f.bound is None else f"{f.bound} {f.unit}".strip()
        rows.append((f.scenario, f.name, value, bound, _mark(f.ok)))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = []
    for n, row in enumerate(rows):
        cells = [
            cell.rjust(width) if i in (2, 3) and n else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("| " + " | ".join(cells) + " |")
        if n == 0:
            lines.append(
                "|"
                + "|".join(
                    "-" * (w + 1) + ":" if i in (2, 3) else "-" * (w + 2)
                    for i, w in enumerate(widths)
                )
                + "|"
            )
    return "\n".join(lines)
