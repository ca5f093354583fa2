"""The base class enforces the contract's bookkeeping for every env."""

from __future__ import annotations

import pickle

import gymnasium as gym
import pytest

import ipr_gym
from ipr_gym import EpisodeError
from ipr_gym.testing.toy import ToyEnv

WIN_GARDEN = ["take key", "go to garden", "go to shed", "unlock chest with key", "open chest"]


def test_info_carries_the_contract_keys():
    env = ToyEnv()
    obs, info = env.reset(options={"task": "garden"})
    assert "porch" in obs
    assert info["task"] == "garden" and info["step"] == 0
    assert info["won"] is False and info["invalid"] is False
    assert "take key" in info["valid_actions"]


def test_reward_only_when_the_episode_ends():
    env = ToyEnv()
    env.reset(options={"task": "garden"})
    results = [env.step(a) for a in WIN_GARDEN]
    assert [r[1] for r in results] == [0.0, 0.0, 0.0, 0.0, 1.0]
    assert results[-1][2] is True and results[-1][4]["won"] is True


def test_invalid_action_answers_like_the_game_and_counts_a_step():
    env = ToyEnv()
    env.reset(options={"task": "garden"})
    obs, reward, terminated, truncated, info = env.step("fly to the moon")
    assert obs == "Nothing happens."
    assert (reward, terminated, truncated) == (0.0, False, False)
    assert info["invalid"] is True and info["step"] == 1


def test_max_episode_steps_truncates():
    env = ToyEnv(max_episode_steps=2)
    env.reset(options={"task": "garden"})
    assert env.step("look")[3] is False
    assert env.step("look")[3] is True
    with pytest.raises(EpisodeError, match="ended"):
        env.step("look")


def test_misuse_gets_clear_errors():
    env = ToyEnv()
    with pytest.raises(EpisodeError, match="before reset"):
        env.step("look")
    with pytest.raises(ValueError, match=r"unknown task 'moon'.*e\.g\."):
        env.reset(options={"task": "moon"})
    with pytest.raises(ValueError, match="unknown reset option"):
        env.reset(options={"level": 3})
    env.reset(options={"task": "garden"})
    with pytest.raises(TypeError, match="an action is a str"):
        env.step(3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_episode_steps"):
        ToyEnv(max_episode_steps=0)


def test_seed_picks_the_task_reproducibly():
    picks = [ToyEnv().reset(seed=s)[1]["task"] for s in range(20)]
    assert picks == [ToyEnv().reset(seed=s)[1]["task"] for s in range(20)]
    assert len(set(picks)) > 1


def test_snapshot_is_small_immutable_and_picklable():
    env = ToyEnv()
    env.reset(options={"task": "garden"})
    env.step("take key")
    snap = env.snapshot()
    assert snap.task == "garden" and snap.actions == ("take key",) and snap.step == 1
    with pytest.raises(AttributeError):
        snap.task = "cellar"  # type: ignore[misc]
    assert len(pickle.dumps(snap)) < 2000
    env.step("go to garden")
    obs, info = env.restore(pickle.loads(pickle.dumps(snap)))
    assert obs == "You take the key." and info["step"] == 1
    assert "drop key" in info["valid_actions"]


def test_restore_refuses_a_snapshot_of_an_env_that_plays_differently():
    env = ToyEnv()
    env.reset(options={"task": "garden"})
    with pytest.raises(ValueError, match="plays differently"):
        ToyEnv(split="other").restore(env.snapshot())


def test_restore_through_time_limit_wrapper_keeps_its_counter():
    env = gym.wrappers.TimeLimit(ToyEnv(max_episode_steps=None), max_episode_steps=3)
    env.reset(options={"task": "garden"})
    env.step("look")
    snap = ipr_gym.snapshot(env)
    env.step("look")
    env.step("look")  # the wrapper truncates here
    ipr_gym.restore(env, snap)
    assert env.step("look")[3] is False
    assert env.step("look")[3] is True


def test_render_modes_follow_gymnasiums_text_convention(capsys):
    ansi = ToyEnv(render_mode="ansi")
    obs, _ = ansi.reset(options={"task": "garden"})
    assert ansi.render() == obs and capsys.readouterr().out == ""
    human = ToyEnv(render_mode="human")
    shown = [human.reset(options={"task": "garden"})[0]]
    shown.append(human.step("take key")[0])
    snap = human.snapshot()
    shown.append(human.step("go to garden")[0])
    shown.append(human.restore(snap)[0])
    assert human.render() is None
    assert capsys.readouterr().out == "".join(f"{o}\n" for o in shown)
    assert shown[1] == shown[3] != shown[2]
    with pytest.raises(ValueError, match="'ansi' or 'human'"):
        ToyEnv(render_mode="rgb_array")
