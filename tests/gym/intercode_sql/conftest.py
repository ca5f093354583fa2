"""InterCode-SQL tests run against a real MariaDB server started for the session."""

import pytest

from ipr_gym.intercode_sql.server import start_server


@pytest.fixture(scope="session")
def mariadb(installed_data):
    """A private MariaDB with the Spider databases (needs Debian's mariadb-server)."""
    server = start_server(installed_data / "intercode" / "ic_spider_dbs.sql")
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _intercode_data(installed_data, monkeypatch):
    monkeypatch.setenv("IPR_GYM_DATA", str(installed_data))
