"""The worker side of the env pool: a process that owns the envs of some slots.

It answers one request at a time over its pipe: ``(op, items)`` with ``items`` a list of
``(slot, argument)``; the reply lists, per item, ``("ok", value)`` or ``("error", text)``.
An env error is reported for its slot and never ends the worker. The worker exits when the
pipe closes or its parent disappears, so a killed parent leaves no orphan.
"""

from __future__ import annotations

import os
import traceback
from multiprocessing.connection import Connection
from typing import Any

import gymnasium as gym

import ipr_gym
from ipr_gym.core import find_text_env


class SlotEnvs:
    """The envs of one process, made on first use: the same code runs in workers and
    in-process (``workers=0``)."""

    def __init__(self, env_id: str, kwargs: dict[str, Any]):
        self.env_id = env_id
        self.kwargs = kwargs
        self.envs: dict[int, gym.Env] = {}

    def env(self, slot: int) -> gym.Env:
        env = self.envs.get(slot)
        if env is None:
            env = self.envs[slot] = ipr_gym.make(self.env_id, **self.kwargs)
        return env

    def handle(self, op: str, slot: int, arg: Any) -> Any:
        env = self.env(slot)
        if op == "reset":
            task, seed = arg
            options = None if task is None else {"task": task}
            return env.reset(seed=seed, options=options)
        if op == "restore":
            return ipr_gym.restore(env, arg)
        if op == "step":
            return env.step(arg)
        if op == "snapshot":
            return ipr_gym.snapshot(env)
        if op == "tasks":
            return list(find_text_env(env).tasks)
        raise ValueError(f"unknown pool operation {op!r}")

    def run(
        self, op: str, items: list[tuple[int, Any]], fatal: tuple[type[Exception], ...] = ()
    ) -> list[tuple[str, Any]]:
        """Each item's reply; an error of a ``fatal`` type (a lost server, for a remote
        worker) is raised instead, so the whole worker is replaced."""
        replies = []
        for slot, arg in items:
            try:
                replies.append(("ok", self.handle(op, slot, arg)))
            except fatal:
                raise
            except Exception as error:  # reported per slot; the process lives on
                text = f"{type(error).__name__}: {error}\n{traceback.format_exc(limit=5)}"
                replies.append(("error", text))
        return replies

    def close(self) -> None:
        for env in self.envs.values():
            try:
                env.close()
            except Exception:
                pass
        self.envs.clear()


def serve(conn: Connection, env_id: str, kwargs: dict[str, Any], parent: int) -> None:
    """The worker's main loop."""
    envs = SlotEnvs(env_id, kwargs)
    try:
        while True:
            if os.getppid() != parent:
                return
            if not conn.poll(1.0):
                continue
            try:
                message = conn.recv()
            except (EOFError, OSError):
                return
            if message is None:
                return
            op, items = message
            conn.send(envs.run(op, items))
    finally:
        envs.close()
