"""Running agent statements on a MySQL-compatible server, contained.

Each backend holds two connections of the same read-only account: one runs statements, the
other is the watchdog's, which ``KILL QUERY``s a statement past its time limit (an account may
kill its own statements, so this needs no privilege and works on any server). Where the
server enforces the limit itself (MariaDB's ``max_statement_time``) the watchdog waits a
little longer, as a backstop: a ``KILL`` landing on a statement at the instant the server's
own timer interrupts it can stall both for seconds (seen here with ``SELECT SLEEP``). Results are
streamed and cut at ``max_rows`` rows or ``max_observation_chars`` characters of the
observation (``result.read_rows``), the rest killed on the server, so a huge result is
never buffered.
"""

from __future__ import annotations

import threading
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

from ipr_gym.intercode_sql import mysql8
from ipr_gym.intercode_sql.result import MAX_OBSERVATION_CHARS, Result, bounded, read_rows
from ipr_gym.intercode_sql.sandbox import refusal

COM_RESET_CONNECTION = 0x1F  # the protocol's command byte


def parse_url(url: str) -> dict[str, Any]:
    """``mysql://user:password@host:port/?unix_socket=/path`` -> pymysql.connect keywords."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("mysql", "mariadb"):
        raise ValueError(f"expected a mysql:// URL, got {url!r}")
    options = dict(urllib.parse.parse_qsl(parts.query))
    kwargs: dict[str, Any] = {
        "user": urllib.parse.unquote(parts.username or ""),
        "password": urllib.parse.unquote(parts.password or ""),
        "host": parts.hostname or "127.0.0.1",
        "port": parts.port or 3306,
    }
    if "unix_socket" in options:
        kwargs["unix_socket"] = options["unix_socket"]
    return kwargs


class MySQLBackend:
    BACKSTOP_S = 0.25  # the watchdog's delay past a limit the server enforces itself

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = 5.0,
        max_rows: int = 10_000,
        max_observation_chars: int = MAX_OBSERVATION_CHARS,
        server_limit: bool = True,
    ):
        """``server_limit=False`` leaves the time limit to the watchdog alone, as on servers
        without ``max_statement_time`` (MySQL)."""
        import pymysql

        self._pymysql = pymysql
        self._kwargs = parse_url(url)
        self.timeout_s = timeout_s
        self.max_rows = max_rows
        self.max_observation_chars = max_observation_chars
        self._conn = self._connect()
        self._guard = self._connect()
        with self._conn.cursor() as cur:
            cur.execute("SELECT VERSION()")
            # MariaDB answers as MySQL 8 would (``mysql8``); a MySQL server already does
            self._mariadb = "mariadb" in str(cur.fetchone()[0]).lower()
        self._connection_killed = False
        self._use_server_limit = server_limit
        self._server_limit = False
        self._guard_lock = threading.Lock()  # the watchdog's thread uses the guard too
        self._watchdog = _Watchdog(self._kill)
        self.database: str | None = None

    def _connect(self) -> Any:
        return self._pymysql.connect(
            **self._kwargs, autocommit=True, charset="utf8mb4", connect_timeout=10
        )

    def close(self) -> None:
        self._watchdog.stop()
        for conn in (self._conn, self._guard):
            try:
                conn.close()
            except Exception:  # already gone
                pass

    def start_episode(self, database: str) -> None:
        """A fresh session on ``database`` (nothing of the last episode's session survives:
        user variables, ``LAST_INSERT_ID``, named locks), the password and limits restored."""
        self._reset_session()
        with self._conn.cursor() as cur:
            cur.execute("SET PASSWORD = PASSWORD(%s)", (self._kwargs["password"],))
        self._session(database)

    def _reset_session(self) -> None:
        """``COM_RESET_CONNECTION`` (MySQL >= 5.7.3, MariaDB >= 10.2.4): the server's own
        session reset, 0.2 ms where a new connection takes 60 ms here; pymysql has no call
        for it, so the command is sent as pymysql sends ``COM_PING``. A new connection if
        the reset fails."""
        try:
            if self._connection_killed or not self._conn.open:
                raise self._pymysql.err.InterfaceError("no connection")
            self._conn._execute_command(COM_RESET_CONNECTION, "")
            self._conn._read_ok_packet()
        except Exception:  # a killed or closed connection, an old server
            try:
                self._conn.close()
            except Exception:
                pass
            self._conn = self._connect()
        self._connection_killed = False

    def _session(self, database: str | None) -> None:
        with self._conn.cursor() as cur:
            limit = self.timeout_s if self._use_server_limit else 0  # 0: none
            try:  # MariaDB enforces this server-side; the watchdog covers other servers
                cur.execute("SET SESSION max_statement_time = %s", (limit,))
                self._server_limit = bool(limit)
            except self._pymysql.MySQLError:
                self._server_limit = False
            if database:
                cur.execute(f"USE `{database}`")
        self.database = database

    def _reconnect_if_needed(self) -> None:
        if self._connection_killed or not self._conn.open:
            self._connection_killed = False
            self._conn = self._connect()
            self._session(self.database)

    def run(self, statement: str) -> Result:
        """Run one agent statement under the sandbox's rules."""
        why = refusal(statement)
        if why is not None:
            return Result(None, why)
        result = self.query(statement)
        if result.error is None and statement.strip().lower().startswith("use"):
            with self._conn.cursor() as cur:
                cur.execute("SELECT DATABASE()")
                self.database = cur.fetchone()[0]
        return result

    def gold(self, statement: str) -> Result:
        """The gold query, as InterCode runs it: in the session's database, unfiltered."""
        return self.query(statement)

    def query(self, statement: str) -> Result:
        """Run a statement with the time limit and the row cap (no sandbox filter)."""
        self._reconnect_if_needed()
        thread_id = self._conn.thread_id()
        backstop = self.BACKSTOP_S if self._server_limit else 0.0
        self._watchdog.arm(thread_id, self.timeout_s + backstop)
        cursor = self._conn.cursor(self._pymysql.cursors.SSCursor)
        try:
            cursor.execute(statement)
            if cursor.description is None:
                return Result(None)
            rows, error = read_rows(cursor.fetchmany, self.max_rows, self.max_observation_chars)
            if rows is None:
                self._kill(thread_id)  # the server stops sending the rest
                return Result(None, error)
            result = Result(mysql8.describe_rows(statement, rows) if self._mariadb else rows)
            return bounded(result, self.max_observation_chars)
        except self._pymysql.MySQLError as error:
            if self._connection_killed:  # the statement ran over and took the connection
                self._wait_gone(thread_id)
                return Result(None, "Query execution was interrupted")
            message = str(error.args[1] if len(error.args) > 1 else error)
            if "interrupted" in message:
                self._wait_gone(thread_id)
            if self._mariadb:
                message = mysql8.error_text(message, statement)
            return Result(None, message)
        finally:
            self._watchdog.disarm()
            try:
                cursor.close()
            except self._pymysql.MySQLError:
                pass

    def _wait_gone(self, thread_id: int, limit_s: float = 2.0) -> None:
        """Return once the server no longer runs a statement on ``thread_id`` (a kill is
        only a request: the statement stops at its next check), so a step that answered
        "interrupted" leaves nothing running behind it."""
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline:
            try:
                (running,) = self._on_guard(
                    "SELECT COUNT(*) FROM information_schema.PROCESSLIST "
                    "WHERE ID = %s AND (INFO IS NOT NULL OR COMMAND = 'Killed')",
                    (thread_id,),
                )
                if running == 0:
                    return
            except self._pymysql.MySQLError:
                return
            time.sleep(0.01)

    def _kill(self, thread_id: int, what: str = "QUERY") -> None:
        if what == "CONNECTION":
            self._connection_killed = True
        try:
            self._on_guard(f"KILL {what} {int(thread_id)}")
        except self._pymysql.MySQLError:
            pass

    def _on_guard(self, statement: str, args: tuple = ()) -> Any:
        """Run ``statement`` on the guard connection (shared with the watchdog's thread,
        hence the lock; reopened if a kill took it); its first row."""
        with self._guard_lock:
            if not self._guard.open:
                self._guard = self._connect()
            with self._guard.cursor() as cur:
                cur.execute(statement, args or None)
                return cur.fetchone()


class _Watchdog:
    """One thread per backend that kills the running statement when it outlives its
    deadline: ``KILL QUERY`` at the limit, ``KILL CONNECTION`` half a second later if it
    still runs. Arming costs no thread start, so it stays off the per-statement path.
    ``disarm`` waits out a kill already under way: a statement that ended on its own just
    before its deadline must not have its late kill land on the connection's next statement."""

    GRACE_S = 0.5

    def __init__(self, kill: Callable[[int, str], None]):
        self._kill = kill
        self._cond = threading.Condition()
        self._job: list[Any] | None = None  # [thread id, deadline, next stage]
        self._killing = False
        self._stopped = False
        self._thread = threading.Thread(target=self._run, daemon=True, name="ipr-sql-watchdog")
        self._thread.start()

    def arm(self, thread_id: int, timeout_s: float) -> None:
        with self._cond:
            self._job = [thread_id, time.monotonic() + timeout_s, "QUERY"]
            self._cond.notify_all()

    def disarm(self) -> None:
        with self._cond:
            self._job = None
            while self._killing:
                self._cond.wait()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopped:
                    if self._job is None:
                        self._cond.wait()
                        continue
                    remaining = self._job[1] - time.monotonic()
                    if remaining <= 0:
                        break
                    self._cond.wait(remaining)
                if self._stopped:
                    return
                assert self._job is not None
                thread_id, _, stage = self._job
                if stage == "QUERY":
                    self._job = [thread_id, time.monotonic() + self.GRACE_S, "CONNECTION"]
                else:
                    self._job = None
                self._killing = True
            try:
                self._kill(thread_id, stage)
            finally:
                with self._cond:
                    self._killing = False
                    self._cond.notify_all()
