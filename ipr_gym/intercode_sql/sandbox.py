"""Which statements an agent may run: reads only, and nothing that changes the session.

The database account is read-only already; this filter also refuses what an unprivileged
account *can* do and would leak into later statements, other episodes or other envs:
``SET`` (e.g. ``SET SESSION max_statement_time=0``, ``SET PASSWORD``), transactions and
locks, ``HANDLER``, ``DO``, compound statements, MySQL's executable comments
(``/*! ... */``, statements hidden inside a comment), ``SELECT ... INTO``, user-variable
assignment (``@x := 1``), ``LAST_INSERT_ID(expr)`` and named locks (``GET_LOCK``: one env
would block another). With those gone, a session holds nothing a restore could miss.
Multi-statements are refused by the driver (and here).

What a statement can read of the session's past is refused too, since a restored episode
has a fresh session where a continued one has the history (restore must equal replay):
``FOUND_ROWS()``, ``ROW_COUNT()``, ``SHOW WARNINGS``/``ERRORS`` (and their ``COUNT(*)``),
``@@warning_count``/``@@error_count``, ``SHOW [SESSION|GLOBAL] STATUS`` and the
``*_STATUS`` tables. So is what one env could see of another's (every env uses the same
account): ``SHOW [FULL] PROCESSLIST`` and the ``PROCESSLIST`` table (other envs' running
statements), ``SHOW GRANTS`` and ``SHOW CREATE USER`` (the account's password hash).
Spatial functions are refused as well: the server cannot interrupt them (a ``ST_Buffer`` of
a long line string ran on for minutes after ``KILL QUERY`` and ``KILL CONNECTION``), and no
Spider gold query nor any of InterCode's 5,867 recorded GPT-4 actions uses one. Built-ins
are judged as the server parses them: any case, backtick-quoted (`` `GET_LOCK` `` runs the
built-in), with spaces or comments before the parenthesis.

Input that is not SQL at all reaches the server, which answers it with its own syntax
error, as InterCode's MySQL does; only the first word of real SQL statements is judged.
Statements longer than ``MAX_STATEMENT_CHARS`` and text that is not valid Unicode (lone
surrogates) are answered with an error before anything else looks at them.
"""

from __future__ import annotations

import re

MAX_STATEMENT_CHARS = 65_536  # Spider's longest gold query has under 1,000

ALLOWED = ("select", "show", "describe", "desc", "explain", "with", "use", "values", "table", "(")
# Words that begin a MySQL/MariaDB statement but are not reads, compound statements
# (MariaDB runs BEGIN NOT ATOMIC, IF, CASE, LOOP, WHILE, REPEAT and FOR outside stored
# programs) included; an unknown first word is a syntax error on the server
STATEMENTS = frozenset(
    "alter analyze backup begin binlog cache call case change check checksum clone commit "
    "create deallocate delete do drop execute flush for get grant handler if import insert "
    "install kill load lock loop optimize prepare purge release rename repair repeat replace "
    "reset resignal restart revoke rollback savepoint set shutdown signal start stop "
    "truncate uninstall unlock update while xa".split()
)
_SESSION_FUNCTIONS = re.compile(
    r"\b(get_lock|release_lock|release_all_locks|found_rows|row_count)\s*\(|"
    r"\b(last_insert_id)\s*\(\s*[^\s)]",
    re.IGNORECASE,
)
# MariaDB's spatial functions: ST_*/MBR* and the older names (constructors and operations)
_SPATIAL = re.compile(
    r"\b(st_\w+|mbr\w+|area|asbinary|astext|aswkb|aswkt|boundary|buffer|centroid|convexhull|"
    r"crosses|dimension|disjoint|endpoint|envelope|equals|exteriorring|geom\w*from\w+|"
    r"geometrycollection|geometryn|geometrytype|glength|interiorringn|intersects|isclosed|"
    r"isempty|isring|issimple|line\w*from\w+|linestring|m(?:line|point|poly)from\w+|"
    r"multi(?:linestring|point|polygon)\w*|numgeometries|numinteriorrings|numpoints|"
    r"overlaps|point|point\w*from\w+|pointn|pointonsurface|poly\w*from\w+|polygon|srid|"
    r"startpoint|touches|within)\s*\(",
    re.IGNORECASE,
)
_DIAGNOSTICS = re.compile(
    r"@@\s*(?:(?:session|local|global)\s*\.\s*)?(warning_count|error_count)\b", re.IGNORECASE
)
_SHOW = (  # what SHOW may not read, and why
    (r"(?:global\s+|session\s+|local\s+)?status\b", "the session's counters"),
    (r"(?:count\s*\(\s*\*\s*\)\s*)?(?:warnings|errors)\b", "the last statement's diagnostics"),
    (r"(?:full\s+)?processlist\b", "other environments' statements"),
    (r"grants\b|create\s+user\b", "the account's password hash"),
)
_TABLES = re.compile(
    r"\b(processlist|session_status|global_status|user_statistics|client_statistics)\b",
    re.IGNORECASE,
)

_SPACE = ("", " ", "\t", "\n", "\r", "\f", "\v")
_WORD = re.compile(r"[A-Za-z_]+|\(")


def refusal(statement: str) -> str | None:
    """Why ``statement`` may not run, or None if it may."""
    if len(statement) > MAX_STATEMENT_CHARS:
        return (
            f"the statement is {len(statement)} characters long; at most "
            f"{MAX_STATEMENT_CHARS} are allowed"
        )
    try:
        statement.encode("utf-8")
    except UnicodeEncodeError as error:
        return f"the statement is not valid text (character {error.start} is a lone surrogate)"
    if "/*!" in statement or "/*M!" in statement:
        return "executable comments are not allowed"
    code = _code_only(statement)
    if re.search(r";\s*\S", code.rstrip(" ;\n\t")):
        return "only one statement at a time is allowed"
    body = code.lstrip()  # comments are blanked in ``code`` already
    word = _WORD.match(body)
    if word is None:
        return None  # empty or garbage: the server answers with its own error
    keyword = word.group().lower()
    if keyword in STATEMENTS:
        return f"{keyword.upper()} statements are not allowed: this database is read-only"
    if keyword not in ALLOWED:
        if re.match(r"\s*:", body[word.end() :]):
            return "compound statements are not allowed"
        return None  # not SQL: the server's syntax error says so
    if re.search(r"\binto\s*(outfile\b|dumpfile\b|@)", body, re.IGNORECASE):
        return "SELECT ... INTO is not allowed"
    if ":=" in body:
        return "assigning user variables is not allowed"
    # built-in and table names as the server reads them: quoted identifiers unquoted
    named = _code_only(statement, keep_identifiers=True).lstrip()
    found = _SESSION_FUNCTIONS.search(named)
    if found:
        name = (found.group(1) or found.group(2)).upper()
        what = "reads" if name in ("FOUND_ROWS", "ROW_COUNT") else "changes"
        return f"{name} is not allowed: it {what} the session"
    found = _SPATIAL.search(named)
    if found:
        return (
            f"{found.group(1).upper()} is not allowed: spatial functions cannot be interrupted "
            "at the time limit"
        )
    found = _DIAGNOSTICS.search(named)
    if found:
        return f"@@{found.group(1).lower()} is not allowed: it reads the session"
    if keyword == "show":
        for pattern, what in _SHOW:
            if re.match(rf"show\s+(?:{pattern})", named, re.IGNORECASE):
                return f"this SHOW is not allowed: it reads {what}"
    found = _TABLES.search(named)
    if found:
        return f"{found.group(1).upper()} is not allowed: it reads other sessions"
    return None


def _code_only(statement: str, keep_identifiers: bool = False) -> str:
    """``statement`` with the inside of quotes and comments blanked out (same length), so
    that keywords, ``;`` and ``:=`` are only found in code. ``--`` starts a comment only
    before a space or the end, as in MySQL (``1--1`` is arithmetic there).
    ``keep_identifiers``: backtick-quoted names keep their text (the backticks blanked), as
    the server resolves them."""
    out = list(statement)
    quote = None
    i = 0
    while i < len(statement):
        char = statement[i]
        if quote:
            if char == "\\" and quote != "`":
                out[i] = " "
                if i + 1 < len(statement):
                    out[i + 1] = " "
                i += 2
                continue
            if char == quote:
                quote = None
                if char == "`" and keep_identifiers:
                    out[i] = " "
            elif not (quote == "`" and keep_identifiers):
                out[i] = " "
        elif char in ("'", '"', "`"):
            quote = char
            if char == "`" and keep_identifiers:
                out[i] = " "
        elif char == "#" or (statement.startswith("--", i) and statement[i + 2 : i + 3] in _SPACE):
            end = statement.find("\n", i)
            end = len(statement) if end < 0 else end
            out[i:end] = " " * (end - i)
            i = end
            continue
        elif statement.startswith("/*", i):
            end = statement.find("*/", i + 2)
            end = len(statement) if end < 0 else end + 2
            out[i:end] = " " * (end - i)
            i = end
            continue
        i += 1
    return "".join(out)
