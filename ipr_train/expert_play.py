"""Playing an environment's expert over its tasks: the quickstart's job until training lands,
and a sanity check that an env's experts reach the rewards the benchmark promises."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import SupportsFloat

import gymnasium as gym

from ipr_gym.core import find_text_env


@dataclass(frozen=True)
class ExpertResult:
    env: str
    split: str
    episodes: int
    mean_reward: float
    success_rate: float
    mean_steps: float
    seconds: float
    note: str = ""


def play_experts(
    name: str, make_env: Callable[[], gym.Env], limit: int | None = None
) -> ExpertResult:
    """Play the expert of the first ``limit`` tasks of the env's split."""
    env = make_env()
    text_env = find_text_env(env)
    tasks = list(text_env.tasks)[:limit]
    rewards, wins, steps = [], [], []
    start = time.perf_counter()
    for task in tasks:
        env.reset(options={"task": task})
        reward: SupportsFloat = 0.0
        won, n = False, 0
        for action in text_env.expert_actions(task):
            _, reward, terminated, truncated, info = env.step(action)
            won, n = info["won"], info["step"]
            if terminated or truncated:
                break
        rewards.append(float(reward))
        wins.append(won)
        steps.append(n)
    env.close()
    count = max(len(tasks), 1)
    return ExpertResult(
        env=name,
        split=text_env.split,
        episodes=len(tasks),
        mean_reward=sum(rewards) / count,
        success_rate=sum(wins) / count,
        mean_steps=sum(steps) / count,
        seconds=time.perf_counter() - start,
    )


def format_table(results: Sequence[ExpertResult]) -> str:
    """A Markdown table, one row per env."""
    head = "| env | split | episodes | avg reward | success | avg steps | seconds | note |"
    rule = "|---|---|---:|---:|---:|---:|---:|---|"
    rows = [
        f"| {r.env} | {r.split} | {r.episodes} | {r.mean_reward:.3f} | {r.success_rate:.1%} "
        f"| {r.mean_steps:.1f} | {r.seconds:.2f} | {r.note} |"
        for r in results
    ]
    return "\n".join([head, rule, *rows])
