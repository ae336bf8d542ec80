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
            where.append(f"field {self.field!r}")
        prefix = ", ".join(where)
        value = f" (value: {self.value!r})" if self.value is not None else ""
        return f"{prefix}: {self.reason}{value}" if prefix else f"{self.reason}{value}"


class ConfigError(ValueError):
    """A setting or argument out of its allowed range; names the setting and the value."""

    def __init__(self, name: str, value: object, reason: str) -> None:
        self.name = name
        self.value = value
        super().__init__(f"{name}={value!r}: {reason}")
