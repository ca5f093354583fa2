"""A private MariaDB server holding InterCode's Spider databases, for tests and users.

``start_server`` initialises a data directory under a temp folder, starts ``mariadbd`` on a
loopback port and a private socket with ``lower_case_table_names=1`` (without it 169 gold
queries fail), sets a root password, loads the dump without its first four lines (they
create an all-privileges user) and creates the read-only account agents use. It needs
Debian's ``mariadb-server`` package (or any MariaDB/MySQL with ``mariadb-install-db``).
``ipr-gym sql-server`` runs one from the command line.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from ipr_gym.data import dataset_dir

AGENT_USER = "agent"
_DUMP_HEADER = (
    "-- TEST USER",
    "CREATE USER 'admin'@'%' IDENTIFIED BY 'admin';",
    "GRANT ALL PRIVILEGES ON *.* TO 'admin'@'%';",
    "FLUSH PRIVILEGES;",
)


@dataclass
class ServerInfo:
    """How to reach a server: the agent's read-only account and the root account."""

    host: str
    port: int
    socket: str
    agent_password: str
    root_password: str
    databases: tuple[str, ...]
    process: subprocess.Popen | None = field(default=None, repr=False)
    workdir: str | None = None

    def url(self, user: str = AGENT_USER) -> str:
        password = self.agent_password if user == AGENT_USER else self.root_password
        return f"mysql://{user}:{password}@{self.host}:{self.port}/"

    def stop(self) -> None:
        """Shut the server down and delete its data directory."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)


def _binary(*names: str) -> str:
    for name in names:
        for folder in (None, "/usr/sbin", "/usr/local/sbin"):
            found = shutil.which(name, path=folder)
            if found:
                return found
    raise FileNotFoundError(
        f"none of {names} found: install MariaDB (Debian: apt-get install mariadb-server)"
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def dump_statements(dump: Path) -> str:
    """The dump without its header that creates an all-privileges user."""
    lines = dump.read_text(encoding="utf-8").split("\n")
    header = tuple(line.strip() for line in lines[:4])
    if header != _DUMP_HEADER:
        raise ValueError(f"{dump} does not start with InterCode's known user header: {header}")
    return "\n".join(lines[4:])


def spider_databases(dump_sql: str) -> tuple[str, ...]:
    names = []
    for line in dump_sql.split("\n"):
        if line.startswith("CREATE DATABASE"):
            names.append(line.split("`")[1])
    return tuple(names)


def start_server(
    dump: Path | None = None, workdir: str | None = None, port: int | None = None
) -> ServerInfo:
    """Start a private server with the Spider databases loaded and a read-only account."""
    import pymysql

    dump = dump or dataset_dir("intercode") / "ic_spider_dbs.sql"
    statements = dump_statements(Path(dump))
    databases = spider_databases(statements)
    base = workdir or tempfile.mkdtemp(prefix="ipr-mariadb-")
    data, sock = os.path.join(base, "data"), os.path.join(base, "mysqld.sock")
    port = port or _free_port()
    common = ["--no-defaults", f"--datadir={data}", "--lower-case-table-names=1"]
    install = [_binary("mariadb-install-db", "mysql_install_db"), *common]
    install += ["--auth-root-authentication-method=normal", "--skip-test-db", "--user=root"]
    subprocess.run(install, check=True, capture_output=True)
    command = [_binary("mariadbd", "mysqld"), *common, f"--socket={sock}", f"--port={port}"]
    command += ["--bind-address=127.0.0.1", "--user=root", "--skip-log-bin"]
    command += [f"--pid-file={base}/mysqld.pid", f"--log-error={base}/error.log"]
    command += ["--innodb-buffer-pool-size=64M", "--character-set-server=utf8mb4"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    info = ServerInfo(
        "127.0.0.1", port, sock, secrets.token_hex(12), secrets.token_hex(16), databases,
        process, base,
    )  # fmt: skip
    try:
        root = _wait_for_root(sock, process, base)
        with root.cursor() as cur:
            cur.execute("ALTER USER 'root'@'localhost' IDENTIFIED BY %s", (info.root_password,))
            # the install also makes root@127.0.0.1, root@::1 and root@<hostname> with no
            # password: reachable by anyone on this machine over TCP
            cur.execute(
                "SELECT user, host FROM mysql.user WHERE authentication_string = '' "
                "AND NOT (user = 'mariadb.sys' AND host = 'localhost')"
            )
            for user, host in cur.fetchall():
                cur.execute("DROP USER %s@%s", (user, host))
        root.close()
        client = [_binary("mariadb", "mysql"), "--no-defaults", f"--socket={sock}", "-uroot"]
        subprocess.run(
            [*client, f"-p{info.root_password}"],
            input=statements.encode("utf-8"),
            check=True,
            capture_output=True,
        )
        root = pymysql.connect(unix_socket=sock, user="root", password=info.root_password)
        with root.cursor() as cur:
            for host in ("localhost", "127.0.0.1"):
                cur.execute(
                    f"CREATE USER '{AGENT_USER}'@'{host}' IDENTIFIED BY %s", (info.agent_password,)
                )
                for name in databases:
                    cur.execute(f"GRANT SELECT, SHOW VIEW ON `{name}`.* TO '{AGENT_USER}'@'{host}'")
        root.close()
    except BaseException:
        info.stop()
        raise
    return info


def _wait_for_root(sock: str, process: subprocess.Popen, base: str, timeout: float = 60):
    import pymysql

    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            log = Path(base, "error.log")
            raise RuntimeError(
                f"mariadbd exited: {log.read_text()[-2000:] if log.exists() else ''}"
            )
        try:
            return pymysql.connect(unix_socket=sock, user="root", password="")
        except pymysql.err.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
