"""Which statements an agent may run: reads only, and nothing that changes the session.

The database account is read-only already; this filter also refuses what an unprivileged
account *can* do and would leak into later statements or other episodes: ``SET`` (e.g.
``SET SESSION max_statement_time=0``, ``SET PASSWORD``), transactions and locks, ``HANDLER``,
``DO``, and MySQL's executable comments (``/*! ... */``), which hide statements inside a
comment. Multi-statements are refused by the driver (and here).
"""

from __future__ import annotations

import re

ALLOWED = ("select", "show", "describe", "desc", "explain", "with", "use", "values", "table", "(")

_LEADING = re.compile(r"\A(?:\s+|--[^\n]*(?:\n|\Z)|#[^\n]*(?:\n|\Z)|/\*(?!!).*?\*/)*", re.DOTALL)
_WORD = re.compile(r"[A-Za-z]+|\(")


def refusal(statement: str) -> str | None:
    """Why ``statement`` may not run, or None if it may."""
    if "/*!" in statement or "/*M!" in statement:
        return "executable comments are not allowed"
    if _has_second_statement(statement):
        return "only one statement at a time is allowed"
    body = statement[_LEADING.match(statement).end() :]  # type: ignore[union-attr]
    word = _WORD.match(body)
    if word is None:
        return None  # empty or garbage: the server answers with its own error
    keyword = word.group().lower()
    if keyword not in ALLOWED:
        return f"{keyword.upper()} statements are not allowed: this database is read-only"
    if keyword == "select" and re.search(r"\binto\s+(outfile|dumpfile|@)", body, re.IGNORECASE):
        return "SELECT ... INTO is not allowed"
    return None


def _has_second_statement(statement: str) -> bool:
    """A ``;`` outside quotes and comments followed by anything but space and comments."""
    quote = None
    i = 0
    while i < len(statement):
        char = statement[i]
        if quote:
            if char == "\\":
                i += 2
                continue
            if char == quote:
                quote = None
        elif char in ("'", '"', "`"):
            quote = char
        elif statement.startswith("--", i) or char == "#":
            end = statement.find("\n", i)
            i = len(statement) if end < 0 else end
            continue
        elif statement.startswith("/*", i):
            end = statement.find("*/", i + 2)
            i = len(statement) if end < 0 else end + 2
            continue
        elif char == ";":
            rest = statement[i + 1 :]
            return bool(_LEADING.sub("", rest).strip(" ;\n\t"))
        i += 1
    return False
