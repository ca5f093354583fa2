"""Every walkthrough of all four splits wins on the native engine (slow: ~4,000 games)."""

import os

import pytest

from ipr_gym.alfworld.games import SPLITS, load_game, task_ids
from ipr_gym.alfworld.native import NativeEngine, NativeGame


@pytest.mark.slow
@pytest.mark.parametrize("split", SPLITS)
def test_every_walkthrough_wins(split):
    root = os.environ["IPR_GYM_DATA"]
    lost = []
    for task in task_ids(split, root):
        data = load_game(split, task, "alfworld", root)
        engine = NativeEngine(NativeGame(data))
        engine.reset()
        for action in data["walkthrough"]:
            _, admissible = engine.step(action)
            if not admissible:
                break
        if not engine.won:
            lost.append(task)
    assert lost == []
