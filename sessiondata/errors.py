"""Errors raised for bad input data: each names the file, the line and the field at fault.

Callers (the CLI, the harness) print ``str(error)`` and exit; a user should never see a deep traceback
because a CSV had a typo.
"""

from __future__ import annotations

from pathlib import Path


class DataError(ValueError):
    """Input data that cannot be used as it is.

    The message always says where (file, line), what (field, value) and why, so that a user can fix the
    file without reading our code.
    """

    def __init__(
        self,
        reason: str,
        *,
        file: str | Path | None = None,
        line: int | None = None,
        field: str | None = None,
        value: object = None,
    ) -> None:
        self.reason = reason
        self.file = str(file) if file is not None else None
        self.line = line
        self.field = field
        self.value = value
        super().__init__(self._render())

    def _render(self) -> str:
        where = []
        if self.file is not None:
            where.append(self.file)
        if self.line is not None:
            where.append(f"line {self.line}")
        if self.field is not None:
            where.append(f"field {short_repr(self.field)}")
        prefix = ", ".join(where)
        value = f" (value: {short_repr(self.value)})" if self.value is not None else ""
        return f"{prefix}: {self.reason}{value}" if prefix else f"{self.reason}{value}"


VALUE_CHARS = 60  # values are shortened in messages: a 5,000-digit id must not become a 5,000-character line


def short_repr(value: object, limit: int = VALUE_CHARS) -> str:
    """``repr(value)`` cut to ``limit`` characters (with the length said), on one line."""
    try:
        text = repr(value)
    except Exception:  # an int past Python's digit limit, an object whose __repr__ fails
        text = f"<{type(value).__name__} that cannot be shown>"
    text = text.replace("\n", " ").replace("\r", " ")  # reprs of odd objects may span lines
    if len(text) <= limit:
        return text
    return f"{text[: limit - 1]}… ({len(text)} chars)"


class ConfigError(ValueError):
    """A setting or argument out of its allowed range; names the setting, the (shortened) value and why."""

    def __init__(self, name: str, value: object, reason: str) -> None:
        self.name = name
        self.value = value
        self.reason = reason
        super().__init__(f"{name}={short_repr(value)}: {reason}")


class InvalidRequest(ConfigError):
    """A request that cannot be served as it is (bad ids, an empty session, k out of range, a bad thread id).

    The one error type every entry point (Python API, CLI, server, tool) raises for bad input, always
    before any state is written: the field, the value (shortened) and what is allowed, on one line.
    """
