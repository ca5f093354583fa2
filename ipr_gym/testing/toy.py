"""A tiny text game with a real state machine, for the conformance kit's own tests and as
the smallest complete example of a ``TextEnv``.

The player walks between rooms, picks up and drops items, unlocks a chest with the key and
opens it to win. Location, inventory, item placement and the lock are all state, so a
snapshot that forgets any of them is caught by the kit.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym

from ipr_gym.core import TaskId, TextEnv, Transition


@dataclass(frozen=True)
class Layout:
    start: str
    doors: dict[str, tuple[str, ...]]
    items: dict[str, tuple[str, ...]]
    chest_room: str


LAYOUTS: dict[str, Layout] = {
    "cellar": Layout(
        start="hall",
        doors={"hall": ("kitchen", "cellar"), "kitchen": ("hall",), "cellar": ("hall",)},
        items={"kitchen": ("key", "apple"), "hall": ("lamp",)},
        chest_room="cellar",
    ),
    "attic": Layout(
        start="bedroom",
        doors={
            "bedroom": ("corridor",),
            "corridor": ("bedroom", "study", "attic"),
            "study": ("corridor",),
            "attic": ("corridor",),
        },
        items={"study": ("book", "key"), "bedroom": ("pillow",), "attic": ("dust",)},
        chest_room="attic",
    ),
    "garden": Layout(
        start="porch",
        doors={"porch": ("garden",), "garden": ("porch", "shed"), "shed": ("garden",)},
        items={"porch": ("key",), "shed": ("rake", "seeds")},
        chest_room="shed",
    ),
}

NOTHING_HAPPENS = "Nothing happens."


class ToyEnv(TextEnv):
    """Find the key, unlock the chest, open it. Reward 1.0 on opening, else 0."""

    def __init__(
        self,
        split: str = "all",
        max_episode_steps: int | None = 30,
        render_mode: str | None = None,
    ):
        super().__init__(split=split, max_episode_steps=max_episode_steps, render_mode=render_mode)
        self._layout: Layout | None = None
        self.room = ""
        self.inventory: tuple[str, ...] = ()
        self.placed: dict[str, tuple[str, ...]] = {}
        self.unlocked = False

    @property
    def tasks(self) -> Sequence[TaskId]:
        return tuple(LAYOUTS)

    @property
    def instruction(self) -> str:
        return "Find the key, unlock the chest and open it."

    def _begin(self, task: TaskId) -> str:
        self._layout = LAYOUTS[str(task)]
        self.room = self._layout.start
        self.inventory = ()
        self.placed = {room: self._layout.items.get(room, ()) for room in self._layout.doors}
        self.unlocked = False
        return f"{self.instruction}\n{self._describe()}"

    def _describe(self) -> str:
        assert self._layout is not None
        seen = ", ".join(self.placed[self.room]) or "nothing"
        text = f"You are in the {self.room}. You see: {seen}."
        if self.room == self._layout.chest_room:
            text += " There is a " + ("unlocked" if self.unlocked else "locked") + " chest."
        return text

    def _valid_actions(self) -> list[str]:
        assert self._layout is not None
        actions = ["look", "inventory"]
        actions += [f"go to {room}" for room in self._layout.doors[self.room]]
        actions += [f"take {item}" for item in self.placed[self.room]]
        actions += [f"drop {item}" for item in self.inventory]
        if self.room == self._layout.chest_room:
            if not self.unlocked and "key" in self.inventory:
                actions.append("unlock chest with key")
            if self.unlocked:
                actions.append("open chest")
        return actions

    def _act(self, action: str) -> Transition:
        command = " ".join(action.strip().lower().split())
        if command not in self._valid_actions():
            return Transition(NOTHING_HAPPENS, invalid=True)
        verb, _, rest = command.partition(" ")
        if verb == "look":
            return Transition(self._describe())
        if verb == "inventory":
            return Transition("You carry: " + (", ".join(self.inventory) or "nothing") + ".")
        if verb == "go":
            self.room = rest.removeprefix("to ")
            return Transition(self._describe())
        if verb == "take":
            self.placed[self.room] = tuple(i for i in self.placed[self.room] if i != rest)
            self.inventory = tuple(sorted((*self.inventory, rest)))
            return Transition(f"You take the {rest}.")
        if verb == "drop":
            self.inventory = tuple(i for i in self.inventory if i != rest)
            self.placed[self.room] = (*self.placed[self.room], rest)
            return Transition(f"You drop the {rest}.")
        if verb == "unlock":
            self.unlocked = True
            return Transition("You unlock the chest.")
        return Transition("You open the chest and find the treasure!", 1.0, True, won=True)

    def _save_state(self) -> Any:
        return (self.room, self.inventory, tuple(self.placed.items()), self.unlocked)

    def _load_state(self, task: TaskId, state: Any) -> bool:
        room, inventory, placed, unlocked = state
        self._layout = LAYOUTS[str(task)]
        self.room, self.inventory, self.unlocked = room, inventory, unlocked
        self.placed = dict(placed)
        return True

    def expert_actions(self, task: TaskId) -> list[str]:
        """The shortest winning action list, found by breadth-first search over states."""
        start = type(self)(split=self.split, max_episode_steps=None)
        start.reset(options={"task": task})
        frontier: list[tuple[Any, list[str]]] = [(start._save_state(), [])]
        seen = {frontier[0][0]}
        while frontier:
            next_frontier = []
            for state, path in frontier:
                for action in self._actions_from(start, task, state):
                    start._load_state(task, state)
                    result = start._act(action)
                    if result.won:
                        return [*path, action]
                    after = start._save_state()
                    if after not in seen:
                        seen.add(after)
                        next_frontier.append((after, [*path, action]))
            frontier = next_frontier
        raise ValueError(f"task {task!r} cannot be won")

    @staticmethod
    def _actions_from(env: ToyEnv, task: TaskId, state: Any) -> list[str]:
        env._load_state(task, state)
        return [a for a in env._valid_actions() if a not in ("look", "inventory")]


class SlowToy(ToyEnv):
    """The toy game where ``wait`` takes a while (to catch a worker mid-batch) and ``hang``
    never returns (to trip a step timeout)."""

    def _act(self, action: str) -> Transition:
        if action == "wait":
            time.sleep(0.3)
            return Transition("You wait.")
        if action == "hang":
            time.sleep(3600)
        return super()._act(action)


# Importing this module registers the toy games, so ``gym.make`` (and an env pool's
# workers) can build them by id: ``gym.make("ipr_gym.testing.toy:ipr-testing/Toy-v0")``.
for _name, _entry in (("Toy", "ToyEnv"), ("SlowToy", "SlowToy")):
    if f"ipr-testing/{_name}-v0" not in gym.registry:
        gym.register(
            f"ipr-testing/{_name}-v0",
            entry_point=f"ipr_gym.testing.toy:{_entry}",
            order_enforce=False,
            disable_env_checker=True,
        )
