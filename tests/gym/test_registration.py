"""The three ids are registered on import, lazily; gym.make applies IPR's step limits the
gymnasium way (TimeLimit, overridable) and what it returns branches (snapshot/restore)."""

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


def test_specs_carry_ipr_step_limits_for_gymnasiums_time_limit():
    limits = {i: gym.spec(i).max_episode_steps for i in IDS}
    assert limits == {"ipr/WebShop-v0": 10, "ipr/InterCodeSQL-v0": 10, "ipr/ALFWorld-v0": 20}
    for env_id in IDS:
        spec = gym.spec(env_id)
        assert spec.order_enforce is False and spec.disable_env_checker is True
        assert "max_episode_steps" not in spec.kwargs  # the env's own limit stays off


def _walk(env, n, action="search[shirt]"):
    return [env.step(action)[3] for _ in range(n)]


def test_make_truncates_at_the_registered_limit_or_the_one_given():
    env = gym.make("ipr/WebShop-v0")  # the embedded catalog: no dataset needed
    assert isinstance(env.env, gym.wrappers.TimeLimit) and env.unwrapped.max_episode_steps is None
    env.reset(options={"task": 0})
    assert _walk(env, 10) == [False] * 9 + [True]
    env = gym.make("ipr/WebShop-v0", max_episode_steps=3)
    env.reset(options={"task": 0})
    assert _walk(env, 3) == [False, False, True]
    env = ipr_gym.make("ipr/WebShop-v0", max_episode_steps=None)  # no limit at all
    env.reset(options={"task": 0})
    assert _walk(env, 12) == [False] * 12


def test_built_directly_only_the_envs_own_limit_applies():
    from ipr_gym.webshop.env import WebShopEnv

    env = WebShopEnv(max_episode_steps=2)
    env.reset(options={"task": 0})
    assert _walk(env, 2) == [False, True]


def test_snapshot_and_restore_work_on_the_made_env_and_through_wrappers():
    made = gym.make("ipr/WebShop-v0", max_episode_steps=4)
    made.reset(options={"task": 0})
    _walk(made, 2)
    snap = made.snapshot()
    assert snap.step == 2 and made.tasks == made.unwrapped.tasks  # attributes read through
    mine = gym.wrappers.RecordEpisodeStatistics(gym.make("ipr/WebShop-v0", max_episode_steps=4))
    mine.reset(options={"task": 5})
    _walk(mine, 3)
    mine.get_wrapper_attr("restore")(snap)  # TimeLimit counts from the snapshot's step
    assert _walk(mine, 2) == [False, True]
    made.restore(snap)
    assert _walk(made, 2) == [False, True]


def test_async_vector_envs_work_with_their_defaults():
    envs = gym.make_vec("ipr/WebShop-v0", num_envs=2, vectorization_mode="async")
    try:
        obs, info = envs.reset(seed=[0, 1])
        assert isinstance(obs, tuple)
        assert all(o.startswith("WebShop [SEP] Instruction:") for o in obs)
        obs, *_, info = envs.step(["search[shirt]", "search[caf\u00e9 \u2603]"])
        assert all(o.startswith("Instruction: [SEP] ") for o in obs)
        assert list(info["step"]) == [1, 1]
    finally:
        envs.close()


def test_registering_twice_is_harmless():
    ipr_gym.register_environments()
    assert sum(k.startswith("ipr/") for k in gym.registry) == 3
