"""ipr/ALFWorld-v0 honours the contract and plays ALFWorld's games as ALFWorld does."""

import functools
import os

import gymnasium as gym
import pytest

import ipr_gym
from ipr_gym.alfworld.games import expert_conversation, task_ids, task_type
from ipr_gym.data import DatasetMissingError
from ipr_gym.testing.conformance import check_conformance

SPLIT_SIZES = {"train": 3553, "valid_seen": 140, "valid_unseen": 134, "valid_train": 200}


@pytest.mark.parametrize(("split", "size"), SPLIT_SIZES.items())
def test_splits_hold_the_official_games(split, size):
    tasks = task_ids(split, os.environ["IPR_GYM_DATA"])
    assert len(tasks) == size
    assert all(task_type(t) for t in tasks)


@pytest.mark.parametrize("wording", ["alfworld", "eto"])
def test_conformance_native(wording):
    make = functools.partial(gym.make, "ipr/ALFWorld-v0", split="valid_seen", wording=wording)
    check_conformance(make, n_walks=6, max_length=15)


def test_conformance_textworld():
    make = functools.partial(gym.make, "ipr/ALFWorld-v0", split="valid_unseen", engine="textworld")
    tasks = list(task_ids("valid_unseen", os.environ["IPR_GYM_DATA"])[:1])  # ~2 s per game load
    check_conformance(make, tasks=tasks, n_walks=2, max_length=6)


def test_a_walkthrough_wins_with_reward_one():
    env = gym.make("ipr/ALFWorld-v0", split="valid_unseen")
    obs, info = env.reset(seed=3)
    assert obs.startswith("-= Welcome to TextWorld, ALFRED! =-\n\nYou are in the middle of a room.")
    assert obs.endswith(f"Your task is to: {env.unwrapped.instruction}")
    assert "help" in info["valid_actions"] and "look" in info["valid_actions"]
    rewards = []
    for action in env.unwrapped.expert_actions(info["task"]):
        assert action in info["valid_actions"]
        _, reward, terminated, _, info = env.step(action)
        rewards.append(reward)
    assert rewards[-1] == 1.0 and set(rewards[:-1]) <= {0.0}
    assert terminated and info["won"]


def test_inadmissible_command_changes_nothing():
    env = gym.make("ipr/ALFWorld-v0", split="valid_unseen")
    _, info = env.reset(seed=0)
    obs, reward, terminated, truncated, after = env.step("fly to the moon")
    assert obs == "Nothing happens."
    assert (reward, terminated, truncated, after["invalid"]) == (0.0, False, False, True)
    assert after["valid_actions"] == info["valid_actions"]


def test_go_to_is_not_offered_where_the_agent_stands():
    env = gym.make("ipr/ALFWorld-v0", split="valid_unseen")
    _, info = env.reset(seed=1)
    target = next(a for a in info["valid_actions"] if a.startswith("go to "))
    _, _, _, _, info = env.step(target)
    assert target not in info["valid_actions"]


def test_eto_wording_renders_the_same_state_with_its_own_words():
    task = task_ids("valid_seen", os.environ["IPR_GYM_DATA"])[0]
    official = gym.make("ipr/ALFWorld-v0", split="valid_seen")
    eto = gym.make("ipr/ALFWorld-v0", split="valid_seen", wording="eto")
    official.reset(options={"task": task})
    _, info = eto.reset(options={"task": task})
    assert "help" not in info["valid_actions"]
    go = next(a for a in info["valid_actions"] if a.startswith("go to "))
    new_text = official.step(go)[0]
    old_text = eto.step(go)[0]
    assert new_text.startswith(f"You arrive at {go.removeprefix('go to ')}.")
    assert old_text.startswith("You arrive at loc ")
    assert new_text.split(". ", 1)[1] == old_text.split(". ", 1)[1]


def test_eto_expert_trajectories_replay_in_the_eto_wording():
    """ETO's train trajectories (arrival sentence stripped, as IPR does) are reproduced."""
    env = ipr_gym.make("ipr/ALFWorld-v0", split="train", wording="eto", max_episode_steps=None)
    for task in task_ids("train", os.environ["IPR_GYM_DATA"])[::400]:
        conversation = expert_conversation(task, os.environ["IPR_GYM_DATA"])
        obs, _ = env.reset(options={"task": task})
        assert obs == conversation[0]["value"]
        for ask, answer in zip(conversation[1::2], conversation[2::2], strict=False):
            obs, *_ = env.step(ask["value"])
            if obs.startswith("You arrive at loc "):
                obs = obs[obs.find(". ") + 2 :]
            assert obs == answer["value"], (task, ask["value"])


def test_bad_options_are_named(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="unknown ALFWorld split 'test'"):
        gym.make("ipr/ALFWorld-v0", split="test")
    with pytest.raises(ValueError, match="unknown ALFWorld engine"):
        gym.make("ipr/ALFWorld-v0", engine="fast")
    with pytest.raises(ValueError, match="unknown ALFWorld wording"):
        gym.make("ipr/ALFWorld-v0", wording="new")
    with pytest.raises(DatasetMissingError, match="ipr-gym data install alfworld"):
        gym.make("ipr/ALFWorld-v0", data_dir=str(tmp_path))
