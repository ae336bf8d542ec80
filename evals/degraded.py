"""How many cases of a run were answered degraded, by source and by reason (for metrics.json and reports).

A graph pipeline writes each case's ``degraded`` notes (``"intent: semantic index: connection refused"``,
``"llm-agent: LLM unavailable (TimeoutError: ...)"``) into cases.jsonl. A fault that lowers the numbers must
say so where the numbers are: :func:`count_degraded` turns those notes into counts, and
:func:`degraded_line` into the one line the CLI table and the report print. ``semsr eval --strict`` fails a
run whose count is not zero.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

REASON_CHARS = 60
_CUT = re.compile(r"[(:]")


def split_note(note: str) -> tuple[str, str]:
    """``"source: reason (detail)"`` -> ``("source", "reason")``: the reason without its changing details
    (hosts, error texts), so that 195 cases of one fault count as one reason."""
    source, sep, rest = note.partition(": ")
    if not sep:
        return "answer", note[:REASON_CHARS].strip()
    reason = _CUT.split(rest, maxsplit=1)[0].strip() or rest.strip()
    return source.strip(), reason[:REASON_CHARS]


def count_degraded(notes_per_case: Iterable[Sequence[str] | None]) -> dict[str, Any]:
    """``{"n_cases": cases with any note, "by_source": {source: cases}, "by_reason": {"source: reason": cases}}``."""
    n_cases = 0
    by_source: Counter[str] = Counter()
    by_reason: Counter[str] = Counter()
    for notes in notes_per_case:
        if not notes:
            continue
        n_cases += 1
        pairs = {split_note(str(note)) for note in notes}
        by_source.update({source for source, _ in pairs})
        by_reason.update({f"{source}: {reason}" for source, reason in pairs})
    return {
        "n_cases": n_cases,
        "by_source": dict(sorted(by_source.items())),
        "by_reason": dict(sorted(by_reason.items())),
    }


def degraded_line(metrics: dict[str, Any]) -> str | None:
    """One line saying how many cases ran degraded and why, or ``None`` for a clean run."""
    counts = metrics.get("degraded") or {}
    if not counts.get("n_cases"):
        return None
    reasons = ", ".join(f"{reason} ({n})" for reason, n in counts.get("by_reason", {}).items())
    return f"DEGRADED: {counts['n_cases']} of {metrics.get('n_cases', '?')} cases ({reasons})"
