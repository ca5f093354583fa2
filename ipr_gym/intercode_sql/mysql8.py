"""MariaDB made to answer as MySQL 8, the server InterCode and IPR ran on.

Measured by replaying InterCode's GPT-4 episodes (``bench-sql``): MariaDB's answers differ
from the recorded MySQL 8 ones in systematic ways, undone here when the server is MariaDB (a
MySQL 8 server already answers so):

* Error texts: MariaDB names the clause (``Unknown column 'x' in 'SELECT'``, ``Column 'x'
  in WHERE is ambiguous``) where MySQL says ``'field list'``, ``where clause``...; it says
  ``MariaDB`` for ``MySQL``; and it cuts the ``near '...'`` excerpt of a syntax error at 77
  characters plus ``...`` where MySQL shows 80 characters of the statement.
* ``DESCRIBE``/``SHOW COLUMNS``: MySQL 8 types carry no integer display width (``int``,
  not ``int(11)``), and types and defaults come back as bytes (binary columns there).

Not undone: MySQL 8's ``ONLY_FULL_GROUP_BY`` accepts a bare column that the GROUP BY
determines (functional dependence) and rejects the others; MariaDB's mode of that name
knows no functional dependence and rejects 107 valid Spider gold queries, so it stays off
and a bare-column aggregate answers with a value here where MySQL 8 gives an error. Row
order without ORDER BY (joins, information_schema) also differs.
"""

from __future__ import annotations

import re

CLAUSES = {
    "SELECT": "field list",
    "WHERE": "where clause",
    "ON": "on clause",
    "ORDER BY": "order clause",
    "GROUP BY": "group statement",
    "HAVING": "having clause",
    "IN/ALL/ANY": "IN/ALL/ANY subquery",
}
_UNKNOWN = re.compile(r"^(Unknown column '.*' in ')([^']*)'$", re.DOTALL)
_AMBIGUOUS = re.compile(r"^(Column '.*' in )(.+?)( is ambiguous)$", re.DOTALL)
_NEAR = re.compile(r"near '(.*)' at line (\d+)$", re.DOTALL)
_DESCRIBE = re.compile(
    r"^\s*(?:describe|desc|explain|show\s+(?:full\s+)?(?:columns|fields)\s+(?:from|in))\s+[`\w.]+"
    r"(?:\s+(?:from|in)\s+[`\w]+)?\s*;?\s*$",
    re.IGNORECASE,
)
_WIDTH = re.compile(r"\b(tinyint|smallint|mediumint|int|integer|bigint)\(\d+\)")


def error_text(message: str, statement: str) -> str:
    """A MariaDB error message as MySQL 8 words it."""
    found = _UNKNOWN.match(message)
    if found and found.group(2) in CLAUSES:
        return f"{found.group(1)}{CLAUSES[found.group(2)]}'"
    found = _AMBIGUOUS.match(message)
    if found and found.group(2) in CLAUSES:
        return f"{found.group(1)}{CLAUSES[found.group(2)]}{found.group(3)}"
    message = message.replace("MariaDB server version", "MySQL server version")
    message = message.replace("This version of MariaDB", "This version of MySQL")
    near = _NEAR.search(message)
    if near and near.group(1).endswith("..."):
        start = statement.find(near.group(1)[:-3])
        if start >= 0:
            excerpt = statement[start : start + 80]
            message = f"{message[: near.start()]}near '{excerpt}' at line {near.group(2)}"
    return message


def describe_rows(statement: str, rows: tuple[tuple, ...]) -> tuple[tuple, ...]:
    """``DESCRIBE`` rows with MySQL 8's ``Type``: bytes, no integer display width."""
    if not _DESCRIBE.match(statement) or not rows or len(rows[0]) < 2:
        return rows
    out = []
    for row in rows:
        values = list(row)
        if isinstance(values[1], str):
            values[1] = _mysql8_type(values[1])
        if len(values) > 4 and isinstance(values[4], str):  # Default: binary there too
            values[4] = values[4].encode()
        out.append(tuple(values))
    return tuple(out)


def _mysql8_type(kind: str) -> bytes:
    if kind != "tinyint(1)":  # MySQL 8 keeps the width of tinyint(1), its boolean
        kind = _WIDTH.sub(r"\1", kind)
    return kind.encode()
