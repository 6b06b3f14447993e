"""One formatter per kind of number, shared by the CLI, the TUI and the config labels.

So the table, the run bar, the toggles and the CLI agree on how a number looks: accuracies as
percentages, losses to three decimals, durations as m:ss, rates with thousands separators,
parameter counts compact, settings such as lr as short as they are exact.
(Lesson statistics — means, differences, intervals — are formatted by unit in
`trainer.lessons.report`.)
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
    """A float setting (lr, L2, val split) as a user would type it, exactly and briefly:
    '0.001', '1e-5', '2.5e-5', '0.15', '0'; unknown → '–'."""
    if x is None:
        return "–"
    if x == 0:
        return "0"
    if not math.isfinite(x):
        return str(x)
    text = f"{x:.6g}"
    if "e" in text:
        mantissa, exponent = text.split("e")
        text = f"{mantissa}e{int(exponent)}"
    return text
