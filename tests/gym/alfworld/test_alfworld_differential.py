"""Native vs textworld, step by step, on seeded random walks over a sample of games."""

import os
import random

import pytest

from ipr_gym.alfworld.games import game_path, load_game, task_ids
from ipr_gym.alfworld.native import NativeEngine, NativeGame
from ipr_gym.alfworld.reference import ReferenceEngine

SAMPLE = [("valid_seen", "alfworld", 0), ("valid_unseen", "alfworld", 1),
          ("valid_train", "alfworld", 2), ("train", "alfworld", 3),
          ("valid_seen", "eto", 4), ("valid_unseen", "eto", 5)]  # fmt: skip


def walk_and_compare(split, wording, seed, steps=40):
    root = os.environ["IPR_GYM_DATA"]
    rng = random.Random(seed)
    task = rng.choice(task_ids(split, root))
    reference = ReferenceEngine(game_path(split, task, wording, root))
    native = NativeEngine(NativeGame(load_game(split, task, wording, root)))
    assert native.reset() == reference.reset()
    for step in range(steps):
        assert native.admissible == reference.admissible, (task, step)
        assert native.won == reference.won, (task, step)
        if reference.won:
            break
        action = rng.choice(reference.admissible) if rng.random() > 0.1 else "open the moon"
        assert native.step(action) == reference.step(action), (task, step, action)
    return task


@pytest.mark.parametrize(("split", "wording", "seed"), SAMPLE)
def test_native_matches_textworld(split, wording, seed):
    walk_and_compare(split, wording, seed)


def test_textworld_state_ids_restore_any_point():
    root = os.environ["IPR_GYM_DATA"]
    task = task_ids("valid_seen", root)[7]
    engine = ReferenceEngine(game_path("valid_seen", task, "alfworld", root))
    engine.reset()
    first = engine.admissible[0]
    engine.step(first)
    saved, feedback, admissible = engine.save(), engine.feedback, engine.admissible
    engine.step(engine.admissible[-1])
    engine.reset()
    engine.load(saved)
    assert (engine.feedback, engine.admissible) == (feedback, admissible)
    second = engine.admissible[1]
    after = engine.step(second)
    engine.load(saved)
    assert engine.step(second) == after
