"""Row-level reading of delimited text files with errors that name file, line and field.

Every loader reads through here, so "missing column", "not a number", "empty file" and "not UTF-8"
read the same whatever the format.
"""

from __future__ import annotations

import csv
import gzip
import io
import zlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from sessiondata.errors import DataError, short_repr

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1  # ids and times are stored in int64 arrays


def _in_int64(number: int, *, file: Path, line: int, field: str, value: str) -> int:
    if not INT64_MIN <= number <= INT64_MAX:
        raise DataError("out of the 64-bit integer range", file=file, line=line, field=field, value=value[:40])
    return number


def open_text(path: Path) -> io.TextIOBase:
    """Open plain or gzipped text strictly as UTF-8 (a BOM is accepted and dropped)."""
    if not path.exists():
        raise DataError("file not found", file=path)
    if not path.is_file():
        raise DataError("not a regular file", file=path)
    raw = gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb")  # noqa: SIM115 - wrapped, closed by caller
    return io.TextIOWrapper(raw, encoding="utf-8-sig", errors="strict", newline="")


class _Lines:
    """A text handle's lines, remembering whether the last one ended with a line break: a file that stops
    mid-line was most likely cut while written or copied, and its last value may be a prefix of the real one
    (a timestamp ``1365206400`` read as ``13652064``), which no field check can tell from a real value."""

    def __init__(self, handle: io.TextIOBase) -> None:
        self.handle = handle
        self.ended = True

    def __iter__(self) -> Iterator[str]:
        for text in self.handle:
            self.ended = text.endswith(("\n", "\r"))
            yield text


def read_rows(
    path: Path,
    required: Sequence[str],
    *,
    delimiter: str = ",",
    header_transform: Callable[[str], str] | None = None,
) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield ``(line number, row)`` for each data row, after checking the header has ``required``.

    ``header_transform`` maps raw header cells to column names (RecBole's ``name:type`` headers).
    Raises :class:`DataError` for an empty file, a missing column, a short or long row, invalid UTF-8, or a
    file whose last row has no line break (cut mid-row: see :class:`_Lines`).
    """
    handle = open_text(path)
    lines = _Lines(handle)
    try:
        reader = csv.reader(lines, delimiter=delimiter)
        try:
            header = next(reader)
        except StopIteration:
            raise DataError("file is empty (no header row)", file=path) from None
        if header_transform is not None:
            header = [header_transform(cell) for cell in header]
        header = [cell.strip() for cell in header]
        if not any(header):
            raise DataError("the header row (line 1) is empty", file=path, line=1)
        for column in required:
            if column not in header:
                raise DataError(
                    f"missing column; the header has {short_repr(header, 120)}", file=path, line=1, field=column
                )
        positions = {name: header.index(name) for name in header}
        any_row = False
        while True:
            line = reader.line_num + 1  # first physical line of the record (a quoted cell may span lines)
            row = next(reader, None)
            if row is None:
                break
            if not row or all(not cell.strip() for cell in row):
                continue
            if len(row) < len(header):
                missing = header[len(row)]
                raise DataError(
                    f"row has {len(row)} fields, the header has {len(header)}", file=path, line=line, field=missing
                )
            if len(row) > len(header):  # a cut-and-joined line, or an unquoted delimiter inside a value
                raise DataError(
                    f"row has {len(row)} fields, the header has {len(header)} (quote values holding {delimiter!r})",
                    file=path,
                    line=line,
                    field=header[-1],
                    value=row[len(header)],
                )
            if not lines.ended:  # only the last line of a file can lack a line break
                raise DataError(
                    "the file ends in the middle of this row (no line break after it), so it may be cut; "
                    "if the row is complete, end the file with a line break",
                    file=path,
                    line=line,
                    field=header[-1],
                    value=row[-1],
                )
            any_row = True
            yield line, {name: row[pos] for name, pos in positions.items()}
        if not any_row:
            raise DataError("file has a header but no data rows", file=path)
    except UnicodeDecodeError as error:
        raise DataError(f"file is not valid UTF-8 ({error.reason} at byte {error.start})", file=path) from None
    except csv.Error as error:
        raise DataError(f"malformed CSV: {error}", file=path) from None
    except (OSError, EOFError, zlib.error) as error:
        raise DataError(f"cannot read file: {error}", file=path) from None
    finally:
        handle.close()


def parse_int(value: str, *, file: Path, line: int, field: str) -> int:
    """An integer cell, or a :class:`DataError` naming where it is."""
    text = value.strip()
    try:
        return _in_int64(int(text), file=file, line=line, field=field, value=value)
    except DataError:
        raise
    except ValueError:
        try:
            as_float = float(text)
        except ValueError:
            raise DataError("not a number", file=file, line=line, field=field, value=value) from None
        if as_float != as_float or as_float in (float("inf"), float("-inf")):
            raise DataError("not a finite number", file=file, line=line, field=field, value=value) from None
        if not as_float.is_integer():
            raise DataError("not an integer", file=file, line=line, field=field, value=value) from None
        return _in_int64(int(as_float), file=file, line=line, field=field, value=value)


def parse_time(value: str, *, file: Path, line: int, field: str) -> int:
    """A timestamp cell: unix seconds (int or float) or an ISO-8601 date/time, returned as unix seconds."""
    text = value.strip()
    try:
        as_float = float(text)
    except ValueError:
        pass
    else:
        if as_float != as_float or as_float in (float("inf"), float("-inf")):
            raise DataError("not a finite time", file=file, line=line, field=field, value=value)
        return _in_int64(int(as_float), file=file, line=line, field=field, value=value)
    from datetime import UTC, datetime

    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise DataError(
            "time is neither unix seconds nor an ISO-8601 date", file=file, line=line, field=field, value=value
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return _in_int64(int(moment.timestamp()), file=file, line=line, field=field, value=value)
