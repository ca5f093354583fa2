"""``ipr/ALFWorld-v0``: ALFWorld's text games with either engine, in either wording.

Observations are ALFWorld's own text (the intro with the task sentence, then each
action's feedback); ``info["valid_actions"]`` are the admissible commands; the reward is
1.0 when the game is won, else 0. A command that is not admissible gets
"Nothing happens." and leaves the game as it was, as in ALFWorld.
"""

from __future__ import annotations

import functools
import re
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from ipr_gym.alfworld.games import SPLITS, WORDINGS, game_path, load_game, task_ids, walkthrough
from ipr_gym.alfworld.native import NativeEngine, NativeGame, NativeState
from ipr_gym.core import ProcessLocal, TaskId, TextEnv, Transition

ENGINES = ("native", "textworld")
TEXTWORLD_ENGINES_KEPT = 8
_TASK = re.compile(r"Your task is to: (.*)")

Engine = Any  # NativeEngine or reference.ReferenceEngine


@functools.lru_cache(maxsize=64)
def _native_game(split: str, task: str, wording: str, root: str | None) -> NativeGame:
    """Parsed games are shared by every env of the process: a reset then costs no parsing."""
    return NativeGame(load_game(split, task, wording, root))


class ALFWorldEnv(TextEnv):
    def __init__(
        self,
        split: str = "valid_unseen",
        engine: str = "native",
        wording: str = "alfworld",
        max_episode_steps: int | None = None,
        data_dir: str | None = None,
        render_mode: str | None = None,
    ):
        super().__init__(split=split, max_episode_steps=max_episode_steps, render_mode=render_mode)
        if split not in SPLITS:
            raise ValueError(f"unknown ALFWorld split {split!r}; valid: {list(SPLITS)}")
        if engine not in ENGINES:
            raise ValueError(f"unknown ALFWorld engine {engine!r}; valid: {list(ENGINES)}")
        if wording not in WORDINGS:
            raise ValueError(f"unknown ALFWorld wording {wording!r}; valid: {list(WORDINGS)}")
        self.engine_name = engine
        self.wording = wording
        self.data_dir = None if data_dir is None else str(data_dir)
        self._tasks = task_ids(split, self.data_dir)
        self._engine: Engine | None = None
        # textworld engines are costly to start (seconds) and to keep: the last few stay
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        self._instruction = ""

    @property
    def tasks(self) -> Sequence[TaskId]:
        return self._tasks

    @property
    def instruction(self) -> str:
        return self._instruction

    def _options(self) -> dict[str, Any]:
        return {"engine": self.engine_name, "wording": self.wording}

    def _engine_for(self, task: str) -> Engine:
        if self.engine_name == "native":
            return NativeEngine(_native_game(self.split, task, self.wording, self.data_dir))
        engine = self._engines.get(task)
        if engine is not None:
            self._engines.move_to_end(task)
        else:
            from ipr_gym.alfworld.reference import ReferenceEngine

            path = game_path(self.split, task, self.wording, self.data_dir)
            if self.wording == "eto" and "/eto/" not in path.as_posix():
                raise ValueError(
                    f"engine='textworld' plays the ETO wording only where its game files "
                    f"exist (valid_seen, valid_unseen), not split {self.split!r}"
                )
            engine = ReferenceEngine(path)
            self._engines[task] = engine
            if len(self._engines) > TEXTWORLD_ENGINES_KEPT:
                self._engines.popitem(last=False)[1].close()
        return engine

    def _begin(self, task: TaskId) -> str:
        self._engine = self._engine_for(str(task))
        observation = self._engine.reset()
        found = _TASK.search(observation)
        self._instruction = found.group(1) if found else ""
        return observation

    def _act(self, action: str) -> Transition:
        assert self._engine is not None
        feedback, admissible = self._engine.step(action)
        won = self._engine.won
        return Transition(feedback, 1.0 if won else 0.0, won, won=won, invalid=not admissible)

    def _valid_actions(self) -> list[str]:
        assert self._engine is not None
        return list(self._engine.admissible)

    def _save_state(self) -> Any:
        assert self._engine is not None
        if isinstance(self._engine, NativeEngine):
            return self._engine.save()
        return ProcessLocal(self._engine, self._engine.save())

    def _load_state(self, task: TaskId, state: Any) -> bool:
        engine = self._engine_for(str(task))
        if isinstance(state, NativeState):
            engine.load(state)
        elif isinstance(state, ProcessLocal) and state.usable_by(engine):
            engine.load(state.payload)
        else:
            return False
        self._engine = engine
        return True

    def expert_actions(self, task: TaskId) -> list[str]:
        """The game's walkthrough (planner actions, official wording)."""
        actions = walkthrough(self.split, str(task), self.data_dir)
        if self.wording == "eto":
            actions = [re.sub(r"^move (.*) to (.*)$", r"put \1 in/on \2", a) for a in actions]
        return actions

    def close(self) -> None:
        for engine in self._engines.values():
            engine.close()
        self._engines.clear()
