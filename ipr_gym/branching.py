"""The outermost layer ``gym.make`` puts on every ipr env, so branching works on what it
returns.

gymnasium 1.x wrappers do not pass attributes through, and ``gym.make`` wraps every ipr env
in ``TimeLimit`` (the registered step limits are gymnasium's own). ``Branching`` gives the
made env ``snapshot()`` and ``restore()`` of its own, and ``restore`` sets the step count of
every ``TimeLimit`` below it to the snapshot's step, so truncation comes where a replay of
the prefix would bring it. ``env.get_wrapper_attr("restore")`` finds the same method, also
under wrappers a user adds on top. Other public attributes of the env (``tasks``,
``instruction``, ...) read through; set them on ``env.unwrapped``.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from ipr_gym.core import Snapshot, find_text_env, restore, snapshot


class Branching(gym.Wrapper, gym.utils.RecordConstructorArgs):
    def __init__(self, env: gym.Env):
        gym.utils.RecordConstructorArgs.__init__(self)
        gym.Wrapper.__init__(self, env)

    def snapshot(self) -> Snapshot:
        return snapshot(self.env)

    def restore(self, snap: Snapshot) -> tuple[str, dict[str, Any]]:
        return restore(self.env, snap)

    def __getattr__(self, name: str) -> Any:
        inner = self.__dict__.get("env")
        if inner is None or name.startswith("_"):
            raise AttributeError(name)
        return getattr(find_text_env(inner), name)
