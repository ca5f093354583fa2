"""docker/: the compose files are valid Compose (by the compose-spec schema, through the
maintained check-jsonschema), and the env servers' container commands work: no Docker
engine runs here, so each command runs as a process, as the container would run it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
import yaml

from ipr_gym.service.client import IPRClient
from ipr_gym.service.process import start_server

DOCKER = Path(__file__).resolve().parents[1] / "docker"
COMPOSE_FILES = sorted(DOCKER.rglob("compose.yaml"))
ENV_SERVICES = ("webshop", "intercode", "alfworld")


def validate(*paths: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "check_jsonschema", "--builtin-schema",
               "vendor.compose-spec", *map(str, paths)]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def test_every_compose_file_is_valid_compose():
    assert len(COMPOSE_FILES) >= 3
    done = validate(*COMPOSE_FILES)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_validator_refuses_a_broken_compose_file(tmp_path):
    broken = tmp_path / "compose.yaml"
    text = (DOCKER / "compose.yaml").read_text()
    broken.write_text(text.replace("    restart: unless-stopped", "    restart: [1, 2]", 1))
    assert validate(broken).returncode != 0
    broken.write_text(text.replace("  webshop:", "  webshop:\n    colour: red", 1))
    assert validate(broken).returncode != 0


def defaults(text: str) -> str:
    """Compose's ``${VAR:-default}`` with its default (nothing set, as on a fresh machine)."""
    return re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", text)


def compose_services() -> dict:
    return yaml.safe_load((DOCKER / "compose.yaml").read_text())["services"]


def as_process_args(command: list[str]) -> list[str]:
    """The container's ``ipr-gym serve`` arguments, on loopback and a free port instead."""
    args, skip = [], False
    for arg in command:
        if not skip and arg not in ("--host", "--port"):
            args.append(defaults(arg))
        skip = not skip and arg in ("--host", "--port")
    return args


def test_the_compose_file_serves_the_three_envs_and_mysql_with_health_checks():
    services = compose_services()
    assert set(services) == {*ENV_SERVICES, "spider-mysql"}
    for name in ENV_SERVICES:
        service = services[name]
        assert service["command"][0].startswith("ipr/")
        assert "8000" in service["healthcheck"]["test"][-1]
        assert service["volumes"][0].endswith(":/data")
    assert services["intercode"]["depends_on"]["spider-mysql"]["condition"] == "service_healthy"
    assert "mysqladmin ping" in services["spider-mysql"]["healthcheck"]["test"][-1]


def dockerfile_command() -> list[str]:
    text = (DOCKER / "envs" / "Dockerfile").read_text()
    entry = json.loads(re.search(r"^ENTRYPOINT (\[.*\])$", text, re.M).group(1))
    cmd = json.loads(re.search(r"^CMD (\[.*\])$", text, re.M).group(1))
    return entry + cmd


@pytest.fixture(scope="module")
def mariadb(installed_data):
    from ipr_gym.intercode_sql.server import start_server as start_mariadb

    server = start_mariadb(installed_data / "intercode" / "ic_spider_dbs.sql")
    yield server
    server.stop()


def health(url: str, healthcheck: list[str]) -> None:
    """The compose health check's own command, pointed at this process's port."""
    command = [a.replace("http://127.0.0.1:8000", url) for a in healthcheck[1:]]
    subprocess.run(command, check=True, timeout=30)


@pytest.mark.parametrize("name", [*ENV_SERVICES, "dockerfile"])
def test_each_container_command_serves_its_env_when_run_as_a_process(name, installed_data, request):
    services = compose_services()
    if name == "dockerfile":
        command = dockerfile_command()
        assert command[:2] == ["ipr-gym", "serve"]
        env_id, args = command[2], as_process_args(command[3:])
        healthcheck = services["webshop"]["healthcheck"]["test"]
    else:
        command = services[name]["command"]
        env_id, args = command[0], as_process_args(command[1:])
        healthcheck = services[name]["healthcheck"]["test"]
    if name == "intercode":  # the compose network's MySQL is, here, a private MariaDB
        url = request.getfixturevalue("mariadb").url()
        args = [re.sub(r"^url=mysql://.*$", f"url={url}", a) for a in args]
    with start_server(env_id, *args, env={"IPR_GYM_DATA": str(installed_data)}) as server:
        health(server.url, healthcheck)
        with urllib.request.urlopen(f"{server.url}/schema", timeout=10) as reply:
            assert "action" in json.loads(reply.read())
        with IPRClient(server.url).sync() as client:
            first = client.reset(seed=0).observation
            assert first.text and first.info["step"] == 0
            assert client.state().snapshot.startswith("v1.")
