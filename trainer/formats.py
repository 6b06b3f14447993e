"""Small, pure text formatters shared by the state classes and the widgets.

Kept apart from the widgets so the table, the run bar and the unit tests agree on how a
number looks (accuracies as percentages, durations as m:ss, rates with thousands separators).
"""

from __future__ import annotations

import math


def pct(x: float | None, digits: int = 1) -> str:
    """0.7123 → '71.2%'; unknown → '–'."""
    if x is None or not math.isfinite(x):
        return "–"
    return f"{100 * x:.{digits}f}%"


def num(x: float | None, digits: int = 3) -> str:
    """A loss or similar: 3 significant decimals; unknown → '–'."""
    if x is None:
        return "–"
    if not math.isfinite(x):
        return "nan" if math.isnan(x) else ("∞" if x > 0 else "-∞")
    return f"{x:.{digits}f}"


def rate(x: float | None) -> str:
    """Images per second: '4,210'."""
    if x is None or not math.isfinite(x) or x <= 0:
        return "–"
    return f"{x:,.0f}"


def duration(seconds: float | None) -> str:
    """'0:42', '12:05', '2h03m'; unknown → '–'."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "–"
    s = round(seconds)
    if s >= 3600:
        return f"{s // 3600}h{(s % 3600) // 60:02d}m"
    return f"{s // 60}:{s % 60:02d}"


def params(n: int | None) -> str:
    """Parameter count: '0.29M', '912k', '850'."""
    if not n:
        return "–"
    if n >= 1_000_000:
        return f"{n / 1e6:.2f}M"
    if n >= 10_000:
        return f"{n / 1e3:.0f}k"
    return str(n)


def short_float(x: float | None) -> str:
    """lr / L2 in a narrow column: '0.001', '1e-05', '0'."""
    if x is None:
        return "–"
    if x == 0:
        return "0"
    if abs(x) < 1e-3 or abs(x) >= 1e4:
        return f"{x:.0e}".replace("e-0", "e-").replace("e+0", "e")
    return f"{x:g}"
