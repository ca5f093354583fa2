"""The step reward model's held-out split: whole tasks (expert indices) are held out, so a
held-out state's task was never trained on, whichever run or iteration scored it."""

from __future__ import annotations

from ipr_train.reward_model import split_by_task


def _states():
    return [{"expert": e, "run": run, "step": t, "mean": 0.1 * e}
            for run in ("seed0", "seed1") for e in range(8) for t in range(e % 3 + 1)]  # fmt: skip


def test_a_task_is_held_out_whole_across_runs():
    states = _states()
    train, held = split_by_task(states, 0.25)
    held_tasks = {s["expert"] for s in held}
    assert len(held_tasks) == 2  # a quarter of the 8 tasks
    assert not held_tasks & {s["expert"] for s in train}
    assert sorted(map(id, train + held)) == sorted(map(id, states))  # nothing lost
    for task in held_tasks:  # every state of a held-out task, from both runs
        assert {s["run"] for s in held if s["expert"] == task} == {"seed0", "seed1"}


def test_the_split_is_fixed_by_its_seed_and_nothing_is_held_out_at_zero():
    states = _states()
    assert split_by_task(states, 0.5, seed=3) == split_by_task(states, 0.5, seed=3)
    picks = {frozenset(s["expert"] for s in split_by_task(states, 0.25, seed=k)[1])
             for k in range(10)}  # fmt: skip
    assert len(picks) > 1  # the seed chooses which tasks, not always the first ones
    train, held = split_by_task(states, 0.0)
    assert held == [] and len(train) == len(states)
    one = [s for s in states if s["expert"] == 0]
    assert split_by_task(one, 0.5) == (one, [])  # a single task is never held out
