"""Walkthroughs win on the native engine: every game of the three valid splits and every
third train game (1,185 of 3,553; IPR_ALL_WALKTHROUGHS=1 plays all of them, ~2 minutes more)."""

import os

import pytest

from ipr_gym.alfworld.games import SPLITS, load_game, task_ids
from ipr_gym.alfworld.native import NativeEngine, NativeGame


@pytest.mark.slow
@pytest.mark.parametrize("split", SPLITS)
def test_walkthroughs_win(split):
    root = os.environ["IPR_GYM_DATA"]
    tasks = task_ids(split, root)
    if split == "train" and not os.environ.get("IPR_ALL_WALKTHROUGHS"):
        tasks = tasks[::3]
    lost = []
    for task in tasks:
        data = load_game(split, task, "alfworld", root)
        engine = NativeEngine(NativeGame(data))
        engine.reset()
        for action in data["walkthrough"]:
            _, admissible = engine.step(action)
            if not admissible:
                break
        if not engine.won:
            lost.append(task)
    assert len(tasks) > 100 and lost == []
