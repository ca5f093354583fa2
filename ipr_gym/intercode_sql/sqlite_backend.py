"""The embedded backend: the Spider databases in SQLite, made to answer like MySQL.

Databases open read-only, an authorizer allows reads only, a progress handler stops a
statement past the time limit and results are cut at ``max_rows``: the same containment as
the MySQL backend. One value is at most 1 MB (SQLite's length limit: ``randomblob(1e9)``
fails at once) and a result at most 5 M characters. The gold query is answered like an
agent's statement, so submitting it scores 1.0. ``SHOW TABLES``, ``DESCRIBE``/``DESC``
and ``USE`` are answered as MySQL would. ``SUM``/``AVG`` of integers return ``Decimal``
as MySQL's do (``AVG`` at 4 decimals), aliased or not; decimal/date/datetime columns come
back as ``Decimal``/``date``/``datetime``.

What cannot match MySQL: integer division (``7/2`` is 3 here, 3.5000 there), MySQL-only
functions and syntax, error texts, and ordering by those ``Decimal`` aggregates (they are
carried as text inside SQLite). The gold-set agreement is measured in ``bench-sql``.
"""

from __future__ import annotations

import datetime
import re
import sqlite3
import time
from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from ipr_gym.intercode_sql.result import MAX_OBSERVATION_CHARS, Result, bounded, read_rows
from ipr_gym.intercode_sql.sandbox import refusal
from ipr_gym.intercode_sql.sqlite_convert import COLLATION, mysql_ci


def _decimal_converter(scale: int) -> Any:
    return lambda raw: Decimal(raw.decode()).quantize(Decimal(1).scaleb(-scale))


for _scale in range(0, 31):
    sqlite3.register_converter(f"DECIMAL_{_scale}", _decimal_converter(_scale))
sqlite3.register_converter("MYSQLDATE", lambda raw: datetime.date.fromisoformat(raw.decode()))
sqlite3.register_converter(
    "MYSQLDATETIME", lambda raw: datetime.datetime.fromisoformat(raw.decode())
)


class _Sum:
    """MySQL's SUM: exact Decimal over integers, float as soon as a float comes in."""

    def __init__(self) -> None:
        self.total: Any = None
        self.floating = False

    def step(self, value: Any) -> None:
        if value is None:
            return
        if isinstance(value, (str, bytes)):  # MySQL sums strings as doubles
            value = float(_as_number(value))
        self.floating |= isinstance(value, float)
        self.total = value if self.total is None else self.total + value

    scale: int | None = None  # set by the FLOAT(M,D) variant

    def finalize(self) -> Any:
        if self.total is None or self.floating:
            return (
                self.total
                if self.scale is None or self.total is None
                else round(self.total, self.scale)
            )
        return self.total


class _Avg(_Sum):
    """MySQL's AVG: integers average to a Decimal with 4 decimals."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def step(self, value: Any) -> None:
        if value is not None:
            self.count += 1
        super().step(value)

    def _float_mean(self) -> float:
        mean = self.total / self.count
        return mean if self.scale is None else round(mean, self.scale + 4)

    def finalize(self) -> Any:
        if self.total is None:
            return None
        if self.floating:
            return self._float_mean()
        return self.total / self.count


def _as_number(value: Any) -> Any:
    if value is None:
        return None
    try:
        text = value.decode() if isinstance(value, bytes) else value
        return float(text) if "." in text or "e" in text.lower() else int(text)
    except ValueError:
        return 0  # MySQL reads a non-numeric string as 0


_AGGREGATE_NAME = re.compile(
    r"^\s*(sum|avg|max|min)\s*\(\s*(?:distinct\s+)?(?:`?\w+`?\.)?`?(\w+)`?\s*\)\s*$",
    re.IGNORECASE,
)


def _as_mysql(function: str, column_type: str | None, value: Any) -> Any:
    """An unaliased aggregate's value as MySQL types it, from the column it aggregates."""
    if value is None or column_type is None or not isinstance(value, (int, float)):
        return value
    kind = column_type.split("(")[0].lower()
    if kind == "decimal":
        found = re.search(r",\s*(\d+)\)", column_type)
        scale = int(found.group(1)) if found else 0
        scale += 4 if function == "avg" else 0
        return Decimal(repr(value)).quantize(Decimal(1).scaleb(-scale), ROUND_HALF_UP)
    if kind in ("int", "integer", "bigint", "smallint", "tinyint", "mediumint"):
        if function == "sum":
            return Decimal(int(value))
        if function == "avg":
            return Decimal(repr(value)).quantize(Decimal("0.0001"), ROUND_HALF_UP)
    return value


_ALIASED_AGGREGATE = re.compile(
    r"\b(sum|avg|max|min)\s*\(\s*(?:distinct\s+)?(?:`?\w+`?\.)?`?(\w+)`?\s*\)"
    r"\s+(?:as\s+)?[`'\"]?(\w+)[`'\"]?",
    re.IGNORECASE,
)


def _aliases(statement: str) -> dict[str, tuple[str, str]]:
    """``SUM(t.x) AS total`` -> {"total": ("sum", "x")}, for every aliased aggregate."""
    return {
        m.group(3).lower(): (m.group(1).lower(), m.group(2).lower())
        for m in _ALIASED_AGGREGATE.finditer(statement)
    }


_ALLOWED_ACTIONS = {
    sqlite3.SQLITE_SELECT,
    sqlite3.SQLITE_READ,
    sqlite3.SQLITE_FUNCTION,
    getattr(sqlite3, "SQLITE_RECURSIVE", 33),
}


def _authorize(action: int, *_: Any) -> int:
    return sqlite3.SQLITE_OK if action in _ALLOWED_ACTIONS else sqlite3.SQLITE_DENY


_REINDEX = re.compile(r"^\s*reindex\b", re.IGNORECASE)
_SHOW_TABLES = re.compile(r"^\s*show\s+(full\s+)?tables\s*;?\s*$", re.IGNORECASE)
_DESCRIBE = re.compile(
    r"^\s*(?:describe|desc|show\s+columns\s+from)\s+`?(\w+)`?\s*;?\s*$", re.IGNORECASE
)
_AGGREGATE_OF_COLUMN = re.compile(
    r"\b(sum|avg)\s*\(\s*((?:`?\w+`?\.)?`?(\w+)`?)\s*\)", re.IGNORECASE
)
_USE = re.compile(r"^\s*use\s+`?(\w+)`?\s*;?\s*$", re.IGNORECASE)


_SET_OPERATOR = re.compile(r"\b(union|except|intersect)\b(\s+all\b)?", re.IGNORECASE)
_DISTINCT = re.compile(r"^\s*select\s+distinct\b", re.IGNORECASE)


def _top_level_split(statement: str) -> list[str] | None:
    """The operands of a top-level set operation, or a DISTINCT query without DISTINCT,
    when the statement has no ORDER BY/LIMIT of its own; else None."""
    depth, quote, cuts = 0, None, []
    masked = []
    for char in statement:
        if quote:
            quote = None if char == quote else quote
            masked.append(" ")
            continue
        if char in "'\"`":
            quote = char
        depth += (char == "(") - (char == ")")
        masked.append(char if depth == 0 and char not in "()" else " ")
    top = "".join(masked)
    if re.search(r"\b(order\s+by|limit)\b", top, re.IGNORECASE):
        return None
    for found in _SET_OPERATOR.finditer(top):
        if found.group(2):  # UNION ALL keeps order in SQLite too
            return None
        cuts.append((found.start(), found.end()))
    if cuts:
        parts, start = [], 0
        for begin, end in cuts:
            parts.append(statement[start:begin])
            start = end
        parts.append(statement[start:].rstrip().rstrip(";"))
        return parts
    distinct = _DISTINCT.match(statement)
    if distinct:
        return ["SELECT" + statement[distinct.end() :].rstrip().rstrip(";")]
    return None


# One value may be this long (SQLite's own limit, checked as the value is made:
# ``randomblob(1e9)`` fails at once instead of running inside one VM step past any time
# limit); a whole result is bounded by its observation's length (``result.read_rows``).
MAX_VALUE_BYTES = 1_000_000


class SQLiteBackend:
    def __init__(self, folder: Path, *, timeout_s: float = 5.0, max_rows: int = 10_000,
                 max_observation_chars: int = MAX_OBSERVATION_CHARS):  # fmt: skip
        self.folder = folder
        self.timeout_s = timeout_s
        self.max_rows = max_rows
        self.max_observation_chars = max_observation_chars
        self.database: str | None = None
        self._conn: sqlite3.Connection | None = None
        self._deadline = 0.0
        self._scales: dict[str, int] = {}
        self._types: dict[str, str] = {}

    def _open(self, database: str) -> sqlite3.Connection:
        path = self.folder / f"{database}.sqlite"
        if not path.is_file():
            raise FileNotFoundError(database)
        # an env is used by one thread at a time, not always the one that built it (an env
        # server runs a request's reset and close on different threads)
        conn = sqlite3.connect(
            f"file:{path}?mode=ro", uri=True, detect_types=sqlite3.PARSE_DECLTYPES,
            check_same_thread=False,
        )  # fmt: skip
        conn.create_collation(COLLATION, mysql_ci)
        conn.create_aggregate("sum", 1, _Sum)  # type: ignore[arg-type]
        conn.create_aggregate("avg", 1, _Avg)  # type: ignore[arg-type]
        # MySQL gives SUM/AVG of a FLOAT(M,D) column D and D+4 decimals: such calls are
        # rewritten to scaled variants (see ``_rewrite``)
        self._scales = {}
        self._types = {}
        for field, kind in conn.execute("SELECT field, type FROM _mysql_columns"):
            self._types.setdefault(field.lower(), kind)
            found = re.fullmatch(r"float\(\d+,(\d+)\)", kind)
            if found:
                self._scales[field.lower()] = int(found.group(1))
        for scale in set(self._scales.values()):
            for name, base in (("sum", _Sum), ("avg", _Avg)):
                scaled = type(f"_{name}{scale}", (base,), {"scale": scale})
                conn.create_aggregate(f"_ipr_{name}_{scale}", 1, scaled)  # type: ignore[arg-type]
        conn.set_authorizer(_authorize)
        conn.set_progress_handler(self._over_time, 1000)
        conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, MAX_VALUE_BYTES)
        return conn

    def _over_time(self) -> int:
        return 1 if time.monotonic() > self._deadline else 0

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def start_episode(self, database: str) -> None:
        """Switch to ``database``; an unknown one raises FileNotFoundError and leaves the
        current database in use (as MySQL's ``USE`` does)."""
        if self.database != database or self._conn is None:
            conn = self._open(database)
            self.close()
            self._conn, self.database = conn, database

    def run(self, statement: str) -> Result:
        why = refusal(statement)
        if why is not None:
            return Result(None, why)
        if not statement.strip().strip(";").strip():
            return Result(None, "Query was empty")  # as MySQL answers it
        if _REINDEX.match(statement):  # SQLite's own write (MySQL has none: a syntax error)
            return Result(None, "REINDEX statements are not allowed: this database is read-only")
        return self.answer(statement)

    def gold(self, statement: str) -> Result:
        """The gold query, answered as an agent's statement is (the same rewriting and
        MySQL row order), so submitting the gold scores 1.0."""
        return self.answer(statement)

    def answer(self, statement: str) -> Result:
        """A statement answered as MySQL would, past the read-only filter."""
        use = _USE.match(statement)
        if use:
            try:
                self.start_episode(use.group(1).lower())
            except FileNotFoundError:
                return Result(None, f"Unknown database '{use.group(1)}'")
            return Result(None)
        if _SHOW_TABLES.match(statement):
            return self.query(
                "SELECT name FROM sqlite_master WHERE type = 'table' "
                "AND name != '_mysql_columns' ORDER BY name"
            )
        describe = _DESCRIBE.match(statement)
        if describe:
            table = describe.group(1).lower()
            result = self.query(
                "SELECT field, type, nullable, key, dflt, extra FROM _mysql_columns "
                f"WHERE tbl = '{table}' ORDER BY pos"
            )
            if result.rows == ():
                return Result(None, f"Table '{self.database}.{table}' doesn't exist")
            return result
        statement = self._rewrite(statement)
        result = self.query(statement)
        if result.rows and len(result.rows) > 1:
            order = self._mysql_order(statement)
            if order is not None:
                rank = {row: i for i, row in reversed(list(enumerate(order)))}
                result = Result(tuple(sorted(result.rows, key=lambda r: rank.get(r, len(rank)))))
        return result

    def _mysql_order(self, statement: str) -> list[tuple] | None:
        """The row order MySQL gives where SQLite sorts instead: set operations and
        DISTINCT without ORDER BY come out in the order rows first appear in the operands
        (SQLite returns them sorted)."""
        parts = _top_level_split(statement)
        if parts is None:
            return None
        rows: list[tuple] = []
        for part in parts:
            found = self.query(part)
            if found.rows is None:
                return None
            rows.extend(found.rows)
        return rows

    def _rewrite(self, statement: str) -> str:
        """``avg(t.LifeExpectancy)`` -> ``_ipr_avg_1(t.LifeExpectancy)`` for FLOAT(M,D) columns."""
        if not self._scales:
            return statement

        def scaled(found: re.Match[str]) -> str:
            scale = self._scales.get(found.group(3).lower())
            if scale is None:
                return found.group(0)
            return f"_ipr_{found.group(1).lower()}_{scale}({found.group(2)})"

        return _AGGREGATE_OF_COLUMN.sub(scaled, statement)

    def _typed_rows(
        self, description: Any, rows: Sequence[tuple], aliases: dict[str, tuple[str, str]]
    ) -> tuple[tuple, ...]:
        """Give SUM/AVG/MAX/MIN columns, aliased or not, MySQL's result types (Decimal for
        integer sums and averages and for decimal columns)."""
        plans: list[tuple[str, str] | None] = []
        for column in description:
            found = _AGGREGATE_NAME.match(column[0])
            if found:
                function, field = found.group(1).lower(), found.group(2).lower()
            else:  # ``SUM(x) AS total``: typed as SUM(x) is
                function, field = aliases.get(column[0].lower(), (None, None))
            column_type = self._types.get(field) if field else None
            if function and column_type:
                plans.append((function, column_type))
            else:
                plans.append(None)
        if not any(plans):
            return tuple(rows)
        return tuple(
            tuple(
                v if p is None else _as_mysql(p[0], p[1], v)
                for v, p in zip(row, plans, strict=True)
            )
            for row in rows
        )

    def query(self, statement: str) -> Result:
        assert self._conn is not None, "start_episode() first"
        self._deadline = time.monotonic() + self.timeout_s
        cursor = self._conn.cursor()
        try:
            cursor.execute(statement)
            if cursor.description is None:
                return Result(None)
            rows, error = read_rows(cursor.fetchmany, self.max_rows, self.max_observation_chars)
            if rows is None:
                return Result(None, error)
            typed = Result(self._typed_rows(cursor.description, rows, _aliases(statement)))
            return bounded(typed, self.max_observation_chars)
        except sqlite3.Error as error:
            message = str(error)
            if message == "interrupted":
                message = "Query execution was interrupted"
            return Result(None, message)
        except (ValueError, ArithmeticError) as error:  # a converter met odd stored text
            return Result(None, str(error))
        finally:
            cursor.close()
