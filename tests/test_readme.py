"""The README's code blocks work as pasted: every Python block runs in a fresh interpreter,
every YAML config validates against its config class (with the files it names present),
and the shell lines that only read or write local files run."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ipr_gym.data import data_root
from ipr_train.config import EvalConfig, SFTConfig, parse_config
from ipr_train.methods import method_of
from ipr_train.methods.ipr import IPRConfig
from ipr_train.records import Trajectory, Turn, write_jsonl
from ipr_train.tiny import save_tiny

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```(\w+)\n(.*?)```", README.read_text(), re.DOTALL)
PYTHON = [code for lang, code in BLOCKS if lang == "python"]
YAML = [code for lang, code in BLOCKS if lang == "yaml"]
# shell lines that need no network, no install and no long run
RUNNABLE = ("ipr-gym data status", "ipr-train experts ipr/WebShop-v0")


def default_data_root() -> Path:
    """Where the library looks with no argument and no ``$IPR_GYM_DATA``."""
    saved = os.environ.pop("IPR_GYM_DATA", None)
    try:
        return data_root()
    finally:
        if saved is not None:
            os.environ["IPR_GYM_DATA"] = saved


def _env(data: Path) -> dict[str, str]:
    return dict(os.environ, IPR_GYM_DATA=str(data), IPR_PROGRESS="0")


def test_the_readme_has_blocks_of_each_kind():
    assert len(PYTHON) >= 6 and len(YAML) == 4


@pytest.mark.parametrize("code", PYTHON, ids=[c.splitlines()[0][:40] for c in PYTHON])
def test_python_blocks_run_as_pasted(code, installed_data, tmp_path):
    """Under tox the data sits where the library looks by default (the README says so), so
    the blocks then run with nothing set, as a user pastes them into tox's venv."""
    env = _env(installed_data)
    if installed_data == default_data_root():
        del env["IPR_GYM_DATA"]
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]


def test_yaml_configs_validate(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    save_tiny(tmp_path / "path" / "to" / "hf-model", ["a b c"])
    turns = (Turn("user", "Observation: ..."), Turn("assistant", "Thought: ...\nAction: ..."))
    write_jsonl(tmp_path / "webshop_experts.jsonl", [Trajectory("ipr/WebShop-v0", 0, turns)])
    sft, evaluation, ipr, gigpo = (yaml.safe_load(code) for code in YAML)
    assert parse_config(sft, SFTConfig).lora == {"r": 16, "lora_alpha": 32}
    parsed = parse_config(evaluation, EvalConfig)
    assert [e.split for e in parsed.envs] == ["test", "valid_seen", "valid_unseen"]
    method = parse_config(ipr, IPRConfig)
    assert method.monte_carlo.n == 5 and method.dpo.learning_rate == 3e-6
    cls, _ = method_of(gigpo)
    online = parse_config(gigpo, cls)
    assert type(online).__name__ == "GiGPOConfig"
    assert (online.group_size, online.gamma, online.update.kl_coef) == (8, 0.95, 0.01)


def test_local_shell_lines_run_as_pasted(installed_data, tmp_path):
    lines = [line.split("#")[0].strip() for lang, code in BLOCKS if lang == "bash"
             for line in code.splitlines()]  # fmt: skip
    chosen = [line for line in lines if line.startswith(RUNNABLE)]
    assert len(chosen) == len(RUNNABLE)
    bin_dir = Path(sys.executable).parent
    for line in chosen:
        argv = shlex.split(line)
        done = subprocess.run([str(bin_dir / argv[0]), *argv[1:]], cwd=tmp_path,
                              env=_env(installed_data), capture_output=True, text=True,
                              timeout=600)  # fmt: skip
        assert done.returncode == 0, (line, done.stderr[-2000:])
    assert (tmp_path / "webshop_experts.jsonl.report.json").is_file()
