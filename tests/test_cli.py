"""Both command lines as a shell user meets them: help without reST markup, a reader that
stops early (``| head``) ends the command quietly, data status says which catalogs work."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from ipr_gym.cli import main as ipr_gym_main

HELPS = [
    ["ipr_gym.cli"],
    ["ipr_gym.cli", "data"],
    ["ipr_gym.cli", "data", "status"],
    ["ipr_train.cli"],
    ["ipr_train.cli", "run"],
    ["ipr_train.cli", "experts"],
]


@pytest.mark.parametrize("command", HELPS, ids=" ".join)
def test_help_is_plain_text(command):
    done = subprocess.run(
        [sys.executable, "-m", *command, "--help"], capture_output=True, text=True, check=True
    )
    assert "usage:" in done.stdout
    assert "``" not in done.stdout and ":class:" not in done.stdout


@pytest.mark.parametrize("command", [["data", "status"], ["envs"]])
def test_a_reader_that_stops_early_ends_the_command_quietly(command, installed_data):
    process = subprocess.Popen(
        [sys.executable, "-m", "ipr_gym.cli", *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(os.environ, IPR_GYM_DATA=str(installed_data)),
    )
    process.stdout.close()  # as `| head -0` does: the reader is gone before any output
    stderr = process.stderr.read().decode()
    assert process.wait() == 141
    assert stderr == ""


def test_data_status_says_which_webshop_catalogs_are_usable(installed_data, capsys):
    # the shared data has WebShop's attributes and its 7 real products, not its catalogs
    assert ipr_gym_main(["data", "status", "--data-dir", str(installed_data)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "    catalogs usable: embedded, fixture" in lines
    assert (
        "    catalog small: not usable, lacks items_shuffle_1000.json "
        "(`ipr-gym data download webshop`)"
    ) in lines
    full = [line for line in lines if line.startswith("    catalog full:")]
    assert full and "lacks items_shuffle.json, items_ins_v2.json (not downloadable" in full[0]


@pytest.mark.parametrize(
    ("args", "says"),
    [(["ipr/NoSuchEnv-v0"], "unknown env id 'ipr/NoSuchEnv-v0'"),
     (["ipr/WebShop-v0", "--option", "split"], "--option takes KEY=VALUE, got 'split'"),
     (["ipr/WebShop-v0", "--option", "catalog=nowhere"], "cannot build ipr/WebShop-v0")],
)  # fmt: skip
def test_serve_refuses_a_bad_env_or_option_in_one_line(args, says, installed_data):
    done = subprocess.run(
        [sys.executable, "-m", "ipr_gym.cli", "serve", *args, "--port", "0"],
        capture_output=True, text=True, timeout=120,
        env=dict(os.environ, IPR_GYM_DATA=str(installed_data)),
    )  # fmt: skip
    assert done.returncode != 0
    assert says in done.stderr and "Traceback" not in done.stderr
