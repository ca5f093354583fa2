"""What one statement gave, and the text InterCode shows for it (both backends)."""

from __future__ import annotations

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
        """The text InterCode shows: the rows as a Python list, or the error."""
        if self.error is not None:
            return ERROR_PREFIX + self.error
        return "" if self.rows is None else str(list(self.rows))
