"""Converting InterCode's MySQL dump into one SQLite database per Spider database.

The dump's ``CREATE TABLE`` and ``INSERT`` statements are read directly (no MySQL needed).
Column types keep what MySQL would return: text columns get the ``MYSQL_CI`` collation
(case-insensitive, trailing spaces ignored, like ``utf8mb4_general_ci``), and decimal,
date and datetime columns are declared with types whose converters give back ``Decimal``
(at the column's scale), ``date`` and ``datetime`` objects. The original MySQL column
definitions are kept in a ``_mysql_columns`` table for ``DESCRIBE``.
"""

from __future__ import annotations

import hashlib
import os
import re
import sqlite3
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ipr_gym.intercode_sql.server import dump_statements

COLLATION = "MYSQL_CI"


def mysql_ci(a: str, b: str) -> int:
    x, y = a.rstrip(" ").casefold(), b.rstrip(" ").casefold()
    return (x > y) - (x < y)


@dataclass
class Column:
    name: str
    mysql_type: str
    nullable: bool
    key: str = ""
    default: str | None = None
    extra: str = ""


@dataclass
class Table:
    name: str
    columns: list[Column] = field(default_factory=list)
    primary: list[str] = field(default_factory=list)
    rows: list[tuple] = field(default_factory=list)


def sqlite_type(mysql_type: str) -> str:
    base = mysql_type.split("(")[0].lower()
    if base in ("int", "integer", "bigint", "smallint", "tinyint", "mediumint"):
        return "INTEGER"
    if base in ("double", "float", "real"):
        return "REAL"
    if base == "decimal":
        scale = re.search(r",\s*(\d+)\)", mysql_type)
        return f"DECIMAL_{scale.group(1) if scale else 0}"
    if base == "date":
        return "MYSQLDATE"
    if base in ("datetime", "timestamp"):
        return "MYSQLDATETIME"
    return f"TEXT COLLATE {COLLATION}"


_COLUMN = re.compile(r"^\s*`([^`]+)`\s+(\S+(?:\s+unsigned)?)(.*?),?$")


def parse_dump(sql: str) -> dict[str, dict[str, Table]]:
    """Databases -> tables (columns, primary key, rows) from a mysqldump file's text."""
    databases: dict[str, dict[str, Table]] = {}
    current: dict[str, Table] | None = None
    lines = iter(sql.split("\n"))
    for line in lines:
        if line.startswith("USE `"):
            current = databases.setdefault(line.split("`")[1], {})
        elif line.startswith("CREATE TABLE `"):
            assert current is not None
            table = Table(line.split("`")[1].lower())
            for body in lines:
                if body.startswith(")"):
                    break
                found = _COLUMN.match(body)
                if found:
                    name, kind, rest = found.groups()
                    default = re.search(r"DEFAULT ('(?:[^']|'')*'|\S+)", rest)
                    table.columns.append(
                        Column(
                            name,
                            kind,
                            "NOT NULL" not in rest,
                            default=None if not default or default.group(1) == "NULL"
                            else default.group(1).strip("'"),
                            extra="auto_increment" if "AUTO_INCREMENT" in rest else "",
                        )
                    )  # fmt: skip
                elif body.strip().startswith("PRIMARY KEY"):
                    table.primary = re.findall(r"`([^`]+)`", body)
            for column in table.columns:
                if column.name in table.primary:
                    column.key = "PRI"
            current[table.name] = table
        elif line.startswith("INSERT INTO `"):
            assert current is not None
            name = line.split("`")[1].lower()
            current[name].rows.extend(parse_values(line[line.index(" VALUES ") + 8 :]))
    return databases


_ESCAPES = {"0": "\0", "b": "\b", "n": "\n", "r": "\r", "t": "\t", "Z": "\x1a"}


def parse_values(text: str) -> list[tuple]:
    """``(1,'a\\'b',NULL),(2,...)`` -> Python tuples (MySQL string escapes undone)."""
    rows: list[tuple] = []
    row: list = []
    i = 0
    while i < len(text):
        char = text[i]
        if char == "(":
            row = []
            i += 1
        elif char == ")":
            rows.append(tuple(row))
            i += 1
        elif char in ",; \n":
            i += 1
        elif char == "'":
            out = []
            i += 1
            while True:
                char = text[i]
                if char == "\\":
                    nxt = text[i + 1]
                    out.append(_ESCAPES.get(nxt, nxt))
                    i += 2
                elif char == "'" and text.startswith("''", i):
                    out.append("'")
                    i += 2
                elif char == "'":
                    i += 1
                    break
                else:
                    out.append(char)
                    i += 1
            row.append("".join(out))
        else:
            end = i
            while end < len(text) and text[end] not in ",)":
                end += 1
            token = text[i:end]
            row.append(None if token == "NULL" else _number(token))
            i = end
    return rows


def _number(token: str) -> int | float | str:
    try:
        return int(token)
    except ValueError:
        try:
            return float(token)
        except ValueError:
            return token


def write_database(path: Path, tables: dict[str, Table]) -> None:
    conn = sqlite3.connect(path)
    conn.create_collation(COLLATION, mysql_ci)
    conn.execute(
        "CREATE TABLE _mysql_columns (tbl TEXT, pos INTEGER, field TEXT, type TEXT, "
        "nullable TEXT, key TEXT, dflt TEXT, extra TEXT)"
    )
    for table in tables.values():
        columns = ", ".join(f"`{c.name}` {sqlite_type(c.mysql_type)}" for c in table.columns)
        if table.primary:
            columns += ", PRIMARY KEY (" + ", ".join(f"`{c}`" for c in table.primary) + ")"
        conn.execute(f"CREATE TABLE `{table.name}` ({columns})")
        marks = ", ".join("?" for _ in table.columns)
        conn.executemany(f"INSERT INTO `{table.name}` VALUES ({marks})", table.rows)
        conn.executemany(
            "INSERT INTO _mysql_columns VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (table.name, i, c.name, c.mysql_type, "YES" if c.nullable else "NO", c.key,
                 c.default, c.extra)
                for i, c in enumerate(table.columns)
            ],
        )  # fmt: skip
    conn.commit()
    conn.close()


def convert(dump: Path, cache: Path) -> Path:
    """The folder of SQLite databases made from ``dump``, converting once per dump (atomic)."""
    digest = hashlib.sha256(dump.read_bytes()).hexdigest()[:16]
    target = cache / f"spider-sqlite-{digest}"
    if (target / ".complete").exists():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-sqlite-", dir=cache))
    for name, tables in parse_dump(dump_statements(dump)).items():
        write_database(staging / f"{name}.sqlite", tables)
    (staging / ".complete").write_text(digest)
    try:
        os.rename(staging, target)
    except OSError:  # another process finished first
        import shutil

        shutil.rmtree(staging, ignore_errors=True)
    return target
