"""Deliberately broken variants of the toy env: each breaks one clause of the contract."""

from __future__ import annotations

import os
from typing import Any

from ipr_gym.core import TaskId, Transition
from ipr_gym.testing.toy import LAYOUTS, ToyEnv


class ForgetfulSnapshotToy(ToyEnv):
    """Its fast snapshot path forgets what the player carries."""

    def _save_state(self) -> Any:
        return (self.room, tuple(self.placed.items()), self.unlocked)

    def _load_state(self, task: TaskId, state: Any) -> bool:
        self._layout = LAYOUTS[str(task)]
        self.room, placed, self.unlocked = state
        self.placed = dict(placed)
        self.inventory = ()
        return True


class RaisingToy(ToyEnv):
    """Raises on actions it does not know instead of answering like the benchmark."""

    def _act(self, action: str) -> Transition:
        if " ".join(action.lower().split()) not in self._valid_actions():
            raise ValueError(f"unknown action {action!r}")
        return super()._act(action)


class LeakyInvalidToy(ToyEnv):
    """An invalid action says "Nothing happens." but sends the player back to the start."""

    def _act(self, action: str) -> Transition:
        result = super()._act(action)
        if result.invalid and self._layout is not None:
            self.room = self._layout.start
        return result


class ProcessBoundToy(ToyEnv):
    """Its text depends on the process it runs in, so transcripts differ elsewhere."""

    def _begin(self, task: TaskId) -> str:
        return super()._begin(task) + f" (server {os.getpid()})"


class ReplayOnlyToy(ToyEnv):
    """Correct, but without a fast snapshot path: restore replays the actions."""

    def _save_state(self) -> Any:
        return None
