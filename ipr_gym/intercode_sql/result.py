"""What one statement gave, and the text InterCode shows for it (both backends)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

ERROR_PREFIX = "Error executing query: "


@dataclass(frozen=True)
class Result:
    """What a statement gave: rows (a result set), or neither rows nor error, or an error."""

    rows: tuple[tuple[Any, ...], ...] | None
    error: str | None = None

    @property
    def observation(self) -> str:
        """The text InterCode shows: the rows as a Python list, the error, or ``None`` for
        a statement without a result set (InterCode's observation is then ``None``)."""
        if self.error is not None:
            return ERROR_PREFIX + self.error
        return "None" if self.rows is None else str(list(self.rows))


MAX_OBSERVATION_CHARS = 5_000_000


def read_rows(
    fetch: Callable[[int], Sequence[tuple[Any, ...]]], max_rows: int, max_chars: int
) -> tuple[tuple[tuple[Any, ...], ...] | None, str | None]:
    """Rows from a cursor's ``fetchmany``, a chunk at a time, stopping at the first row past
    ``max_rows`` or past ``max_chars`` characters of the observation as rendered so far
    (``str(list(rows))``: rows x columns x characters, whatever the values' types), so
    memory stays near the limit however large the result. Returns (rows, None) or (None,
    the error). Backends then convert values (``Decimal``, dates, MySQL 8's ``DESCRIBE``);
    those render no shorter, so a result stopped here is over the limit after them too,
    and ``bounded`` checks the final text."""
    rows: list[tuple[Any, ...]] = []
    size = 2  # the brackets
    while chunk := fetch(16):  # few rows: one row can be a megabyte
        for row in chunk:
            size += len(str(row)) + (2 if rows else 0)  # ", " between rows
            rows.append(row)
            if len(rows) > max_rows:
                return None, f"the result has more than {max_rows} rows"
            if size > max_chars:
                return None, too_long(max_chars)
    return tuple(rows), None


def bounded(result: Result, max_chars: int) -> Result:
    """``result``, or the error naming the limit if its observation is longer."""
    if result.rows is not None and len(result.observation) > max_chars:
        return Result(None, too_long(max_chars))
    return result


def too_long(max_chars: int) -> str:
    return f"the result is longer than {max_chars} characters (the env's max_observation_chars)"
