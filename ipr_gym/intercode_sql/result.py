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
        """The text InterCode shows: the rows as a Python list, the error, or ``None`` for
        a statement without a result set (InterCode's observation is then ``None``)."""
        if self.error is not None:
            return ERROR_PREFIX + self.error
        return "None" if self.rows is None else str(list(self.rows))
