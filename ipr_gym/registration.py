"""The gymnasium ids of ipr_gym, registered as data: an id, a lazy entry point, defaults.

Entry points are strings, so ``import ipr_gym`` imports no environment: each env's heavy
dependencies load only when ``gym.make`` builds it. Specs disable gymnasium's order-enforcing
and passive-checker wrappers (``TextEnv`` enforces order itself and the conformance kit runs
the checker). Step limits are the specs' own ``max_episode_steps``, IPR's evaluation
settings (``eval_agent/configs/task/*.json``: WebShop 10, InterCode-SQL 10, ALFWorld 20), so
``gym.make`` applies them with gymnasium's ``TimeLimit`` and ``gym.make(id,
max_episode_steps=N)`` overrides them the usual way; an env built directly (``WebShopEnv()``)
has only its own ``max_episode_steps`` keyword. On top, every made env gets
``ipr_gym.branching.Branching``: ``env.snapshot()`` and ``env.restore(s)`` on what
``gym.make`` returns, with the ``TimeLimit`` count restored too.

Every id's entry point is ``build``: ``gym.make(id, remote=URL, ...)`` gives the same env
played by an env server (``ipr-gym serve id``) instead of in this process.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
from gymnasium.envs.registration import WrapperSpec

NAMESPACE = "ipr"


@dataclass(frozen=True)
class EnvEntry:
    id: str
    entry_point: str
    max_episode_steps: int
    kwargs: dict[str, Any] = field(default_factory=dict)


ENVIRONMENTS: tuple[EnvEntry, ...] = (
    EnvEntry("ipr/WebShop-v0", "ipr_gym.webshop.env:WebShopEnv", 10),
    EnvEntry("ipr/InterCodeSQL-v0", "ipr_gym.intercode_sql.env:InterCodeSQLEnv", 10),
    EnvEntry("ipr/ALFWorld-v0", "ipr_gym.alfworld.env:ALFWorldEnv", 20),
)
BRANCHING = WrapperSpec("Branching", "ipr_gym.branching:Branching", {})


def register_environments() -> None:
    """Register every ipr id with gymnasium; safe to call more than once."""
    for entry in ENVIRONMENTS:
        if entry.id in gym.registry:
            continue
        gym.register(
            id=entry.id,
            entry_point="ipr_gym.registration:build",
            kwargs={"env_id": entry.id, **entry.kwargs},
            max_episode_steps=entry.max_episode_steps,
            order_enforce=False,
            disable_env_checker=True,
            additional_wrappers=(BRANCHING,),
        )


def build(env_id: str, remote: str | None = None, **kwargs: Any) -> gym.Env:
    """The env of a registered id: here, or on the server at ``remote`` (kwargs are then
    the server-side env's constructor options)."""
    if remote is not None:
        from ipr_gym.service.remote_env import RemoteEnv

        return RemoteEnv(remote, env_id, **kwargs)
    entry = next((e for e in ENVIRONMENTS if e.id == env_id), None)
    if entry is None:
        raise ValueError(f"unknown env id {env_id!r}; valid: {[e.id for e in ENVIRONMENTS]}")
    module, name = entry.entry_point.split(":")
    return getattr(importlib.import_module(module), name)(**kwargs)


def make(env_id: str, **kwargs: Any) -> gym.Env:
    """``gym.make`` where ``max_episode_steps=None`` means no step limit (gymnasium reads
    None as "the registered one"); the env pool and the trainer build envs this way, so a
    limit in an ``env_kwargs``/config is the limit, and None turns it off."""
    if "max_episode_steps" in kwargs and kwargs["max_episode_steps"] is None:
        kwargs["max_episode_steps"] = -1  # gymnasium's "no TimeLimit"
    return gym.make(env_id, **kwargs)
