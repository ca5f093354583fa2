"""ALFWorld's game files: splits, task ids, the two wordings, and expert trajectories.

A task id is ``<task dir>/<trial dir>`` (``pick_and_place_simple-Vase-None-CoffeeTable-207/
trial_T20190909_091313_185407``); the task type is the prefix of the task dir. The ETO
wording (``put X in/on Y``, arrival at ``loc N``, no ``help``) is what ETO and IPR prompts
and expert data use. Its game files exist for the two valid splits; for the others it is
made from the official file by ``to_eto_wording``, which reproduces 273 of those 274
files byte for byte (tested); the odd one carries an older domain whose ``CleanObject``
accepts a sink basin but not a sink.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from ipr_gym.data import dataset_dir

SPLITS = ("train", "valid_seen", "valid_unseen", "valid_train")
WORDINGS = ("alfworld", "eto")
TASK_TYPES = (
    "pick_and_place_simple",
    "look_at_obj_in_light",
    "pick_clean_then_place_in_recep",
    "pick_heat_then_place_in_recep",
    "pick_cool_then_place_in_recep",
    "pick_two_obj_and_place",
)
GAME_FILE = "game.tw-pddl"


def _check(split: str, wording: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"unknown ALFWorld split {split!r}; valid: {list(SPLITS)}")
    if wording not in WORDINGS:
        raise ValueError(f"unknown ALFWorld wording {wording!r}; valid: {list(WORDINGS)}")


@lru_cache(maxsize=16)
def task_ids(split: str, root: str | None = None) -> tuple[str, ...]:
    """The sorted task ids of a split."""
    _check(split, "alfworld")
    base = dataset_dir("alfworld", root) / "json_2.1.1" / split
    return tuple(
        sorted(f"{p.parent.parent.name}/{p.parent.name}" for p in base.glob(f"*/*/{GAME_FILE}"))
    )


def task_type(task: str) -> str:
    prefix = task.split("-", 1)[0]
    if prefix not in TASK_TYPES:
        raise ValueError(f"task {task!r} has no known ALFWorld task type")
    return prefix


def game_path(split: str, task: str, wording: str = "alfworld", root: str | None = None) -> Path:
    """The game file to load; for the ETO wording, its own file where one exists."""
    _check(split, wording)
    base = dataset_dir("alfworld", root)
    if wording == "eto":
        eto = base / "eto" / "json_2.1.1" / split / task / GAME_FILE
        if eto.is_file():
            return eto
    return base / "json_2.1.1" / split / task / GAME_FILE


def load_game(
    split: str, task: str, wording: str = "alfworld", root: str | None = None
) -> dict[str, Any]:
    """The game file's JSON in the requested wording."""
    path = game_path(split, task, wording, root)
    if not path.is_file():
        raise ValueError(f"no game {task!r} in split {split!r} (looked for {path})")
    data = json.loads(path.read_text())
    if wording == "eto" and "/eto/" not in path.as_posix():
        data = to_eto_wording(data)
    return data


_HELP_ACTION = re.compile(r"\n\naction help \{.*?\n\}\n", re.DOTALL)
_HELP_PDDL = re.compile(r"\(:action help\n.*?\n\)\n", re.DOTALL)


def to_eto_wording(data: dict[str, Any]) -> dict[str, Any]:
    """The older wording of the same game: the same problem, another grammar and domain."""
    grammar = data["grammar"]
    replacements = (
        ("You arrive at {r.name}. #examineReceptacle.feedback#",
         "You arrive at {lend.name}. #examineReceptacle.feedback#"),
        ("You move the {o.name} to the {r.name}.", "You put the {o.name} in/on the {r.name}."),
        ('template :: "move {o} to {r}";', 'template :: "put {o} in/on {r}";'),
    )  # fmt: skip
    for old, new in replacements:
        if old not in grammar:
            raise ValueError(f"game grammar lacks {old!r}: not an official ALFWorld file")
        grammar = grammar.replace(old, new)
    grammar = _HELP_ACTION.sub("\n", grammar)
    domain = _HELP_PDDL.sub("", data["pddl_domain"])
    out = {k: v for k, v in data.items() if k != "walkthrough"}
    out.update(grammar=grammar, pddl_domain=domain)
    return out


def walkthrough(split: str, task: str, root: str | None = None) -> list[str]:
    """The game's planner walkthrough, in the official wording."""
    return list(load_game(split, task, "alfworld", root)["walkthrough"])


def expert_conversation(task: str, root: str | None = None) -> list[dict[str, str]]:
    """The ETO-wording expert trajectory of a train game (FastChat ``from``/``value`` turns)."""
    path = dataset_dir("alfworld", root) / "eto" / "json_2.1.1" / "train" / task / "gt_traj.json"
    if not path.is_file():
        raise ValueError(f"no ETO expert trajectory for train task {task!r}")
    return json.loads(path.read_text())
