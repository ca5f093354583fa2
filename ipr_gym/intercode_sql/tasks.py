"""InterCode-SQL's 1,034 Spider dev tasks, their splits and InterCode's published episodes.

Splits: ``all``; ``test`` = the tasks whose index is a multiple of 5 (207); ``train`` = the
other 827. The split is by index so it is stable, covers every database and needs no
file. (IPR's own split lists index IPR's unpublished task files, so they cannot be used.)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from ipr_gym.data import dataset_dir

SPLITS = ("train", "test", "all")
TRAJECTORIES = {
    "gpt-4": "ic_sql_multiturn_gpt-4_10_turns.json",
    "gpt-3.5": "ic_sql_multiturn_gpt-3.5_10_turns.json",
    "gpt-3.5-react": "ic_sql_react_10_turns.json",
}


@dataclass(frozen=True)
class SQLTask:
    index: int
    db: str
    gold: str
    query: str
    hardness: str


@lru_cache(maxsize=4)
def load_tasks(root: str | None = None) -> tuple[SQLTask, ...]:
    path = dataset_dir("intercode", root) / "ic_spider_dev.json"
    records = json.loads(path.read_text())
    return tuple(
        SQLTask(i, r["db"], r["gold"], r["query"], r["hardness"]) for i, r in enumerate(records)
    )


def split_indices(split: str, count: int) -> tuple[int, ...]:
    if split == "all":
        return tuple(range(count))
    if split == "test":
        return tuple(i for i in range(count) if i % 5 == 0)
    if split == "train":
        return tuple(i for i in range(count) if i % 5 != 0)
    raise ValueError(f"unknown InterCode-SQL split {split!r}; valid: {list(SPLITS)}")


def published_episodes(model: str = "gpt-4", root: str | None = None) -> dict[int, dict[str, Any]]:
    """InterCode's published episodes by task index (``turn_history`` with actions,
    observations and rewards)."""
    if model not in TRAJECTORIES:
        raise ValueError(f"unknown model {model!r}; valid: {sorted(TRAJECTORIES)}")
    path = dataset_dir("intercode", root) / "trajectories" / TRAJECTORIES[model]
    data = json.loads(path.read_text())
    return {int(episode["task_id"]): episode for episode in data.values()}


def expert_episodes(model: str = "gpt-4", root: str | None = None) -> dict[int, list[str]]:
    """The action lists of the published episodes that reach reward 1.0, ``submit`` last."""
    experts = {}
    for index, episode in published_episodes(model, root).items():
        history = episode["turn_history"]
        rewards = history.get("rewards", [])
        if rewards and max(rewards) == 1.0:
            best = rewards.index(1.0)
            actions = [a for a in history["actions"][: best + 1] if a != "submit"]
            experts[index] = [*actions, "submit"]
    return experts
