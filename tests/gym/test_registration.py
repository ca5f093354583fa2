"""The three ids are registered on import, lazily, and gym.make returns the env itself."""

import subprocess
import sys

import gymnasium as gym

import ipr_gym

IDS = ["ipr/WebShop-v0", "ipr/InterCodeSQL-v0", "ipr/ALFWorld-v0"]


def test_import_registers_the_three_ids_in_a_fresh_interpreter():
    code = (
        "import sys, gymnasium as gym, ipr_gym; "
        "print([k for k in gym.registry if k.startswith('ipr/')]); "
        "print(any(m.startswith('ipr_gym.webshop') for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines() == [str(IDS), "False"]


def test_specs_hand_back_the_bare_env_with_ipr_step_limits():
    limits = {i: gym.spec(i).kwargs["max_episode_steps"] for i in IDS}
    assert limits == {"ipr/WebShop-v0": 10, "ipr/InterCodeSQL-v0": 10, "ipr/ALFWorld-v0": 20}
    for env_id in IDS:
        spec = gym.spec(env_id)
        assert spec.order_enforce is False and spec.disable_env_checker is True


def test_make_returns_the_env_itself_so_snapshots_need_no_unwrapping(installed_data):
    env = gym.make("ipr/ALFWorld-v0", data_dir=str(installed_data))
    assert env is env.unwrapped
    env.reset(seed=0)
    assert env.snapshot().task == env.snapshot().task


def test_registering_twice_is_harmless():
    ipr_gym.register_environments()
    assert sum(k.startswith("ipr/") for k in gym.registry) == 3


def test_webshop_builds_with_nothing_installed_and_defaults_to_ipr_step_limit():
    env = gym.make("ipr/WebShop-v0")  # the embedded catalog: no dataset needed
    assert env.unwrapped.max_episode_steps == 10
