"""What each session of an env server holds: the env behind OpenEnv's ``Environment``
interface (``ServedEnv``, one per session, built at its first reset with the options asked
for) and what the sessions of one server share (``ServerConfig``: defaults, the token
signer, the snapshots behind recent tokens)."""

from __future__ import annotations

import copy
import json
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
from openenv.core.env_server.interfaces import Environment
from openenv.core.env_server.types import EnvironmentMetadata

import ipr_gym
from ipr_gym.core import EpisodeError, Snapshot, find_text_env
from ipr_gym.service.tokens import Point, Signer, TokenError, server_key
from ipr_gym.service.wire import (
    BadRequest,
    NoEpisode,
    SessionExpired,
    TextAction,
    TextObservation,
    TextState,
    TokenRefused,
)

SERVER_ONLY_OPTIONS = frozenset({"data_dir", "render_mode"})  # a client may not set these
SNAPSHOT_CACHE = 4096  # snapshots kept per process so a token restores without replaying


@dataclass
class ServerConfig:
    """What every session of one server shares."""

    env_id: str
    options: dict[str, Any] = field(default_factory=dict)
    signer: Signer = field(default_factory=lambda: Signer(server_key()))
    _snapshots: OrderedDict[str, Snapshot] = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _task_envs: dict[str, Any] = field(default_factory=dict)

    def merged(self, options: Any) -> dict[str, Any]:
        if options is None:
            options = {}
        if not isinstance(options, dict):
            raise BadRequest(f"'options' is an object of constructor keywords, got {options!r}")
        refused = sorted(set(options) & SERVER_ONLY_OPTIONS)
        if refused:
            raise BadRequest(f"option(s) {refused} are set by the server, not by a request")
        return {**self.options, **options}

    def mint(self, snap: Snapshot, options: dict[str, Any]) -> str:
        """A token for the point ``snap`` records; the snapshot is kept for fast restores."""
        token = self.signer.sign(Point(self.env_id, options, snap.task, snap.actions))
        with self._lock:
            self._snapshots[token] = snap
            self._snapshots.move_to_end(token)
            if len(self._snapshots) > SNAPSHOT_CACHE:
                self._snapshots.popitem(last=False)
        return token

    def kept(self, token: str) -> Snapshot | None:
        with self._lock:
            return self._snapshots.get(token)

    def task_env(self, options: Any) -> Any:
        """An env for ``options`` kept to answer questions about them (tasks, fingerprint)."""
        merged = self.merged(options)
        key = json.dumps(merged, sort_keys=True, default=str)
        with self._lock:
            env = self._task_envs.get(key)
        if env is None:
            env = build_env(self.env_id, merged)
            with self._lock:
                self._task_envs[key] = env
        return env

    def listing(self, options: Any) -> dict[str, Any]:
        """The task ids and the env's fingerprint for ``options``."""
        inner = find_text_env(self.task_env(options))
        return {"tasks": list(inner.tasks), "fingerprint": inner.fingerprint()}


def build_env(env_id: str, options: dict[str, Any]) -> Any:
    try:
        return ipr_gym.make(env_id, **options)
    except (TypeError, ValueError, KeyError, FileNotFoundError) as error:
        raise BadRequest(f"cannot build {env_id} with options {options}: {error}") from error


class ServedEnv(Environment[TextAction, TextObservation, TextState]):
    """One session's env, built at its first reset with the options asked for."""

    SUPPORTS_CONCURRENT_SESSIONS = True

    def __init__(self, config: ServerConfig):
        super().__init__()
        self.config = config
        self._env: Any = None
        self._options: dict[str, Any] | None = None
        self._episode_id: str | None = None
        self._closed = False

    # ------------------------------------------------------------------ OpenEnv's interface
    def reset(
        self,
        seed: int | None = None,
        episode_id: str | None = None,
        task: Any = None,
        options: Any = None,
        restore: str | None = None,
        **unknown: Any,
    ) -> TextObservation:
        self._check_open()
        if unknown:
            raise BadRequest(f"unknown reset field(s) {sorted(unknown)}; valid: seed, "
                             "episode_id, task, options, restore")  # fmt: skip
        self._episode_id = episode_id
        if restore is not None:
            if task is not None or seed is not None or options is not None:
                raise BadRequest("'restore' carries its own task and options; send it alone")
            return self._restore(restore)
        env = self._use(options)
        try:
            obs, info = env.reset(seed=seed, options=None if task is None else {"task": task})
        except ValueError as error:
            raise BadRequest(str(error)) from error
        return self._observation(obs, 0.0, False, False, info, start=True)

    def step(
        self,
        action: TextAction,
        timeout_s: float | None = None,
        snapshot: str | None = None,
        **unknown: Any,
    ) -> TextObservation:
        self._check_open()
        if snapshot is not None:
            self._restore(snapshot)
        if self._env is None:
            raise NoEpisode("no episode in this session: reset first (or, over HTTP, send "
                            "'snapshot', the token a reset or step returned)")  # fmt: skip
        try:
            obs, reward, terminated, truncated, info = self._env.step(action.action)
        except EpisodeError as error:
            raise NoEpisode(str(error)) from error
        return self._observation(obs, reward, terminated, truncated, info,
                                 token=snapshot is not None)  # fmt: skip

    @property
    def state(self) -> TextState:
        self._check_open()
        if self._env is None:
            return TextState(env_id=self.config.env_id, episode_id=self._episode_id)
        inner = find_text_env(self._env)
        snap = ipr_gym.snapshot(self._env)
        assert self._options is not None
        return TextState(
            env_id=self.config.env_id,
            episode_id=self._episode_id,
            step_count=snap.step,
            task=snap.task,
            won=bool(snap.info.get("won", False)),
            done=snap.ended or self._truncated_at(snap.step),
            snapshot=self.config.mint(snap, self._options),
            instruction=inner.instruction,
        )

    def get_metadata(self) -> EnvironmentMetadata:
        return EnvironmentMetadata(
            name=self.config.env_id,
            description=f"{self.config.env_id} (ipr_gym), options {self.config.options}; "
            "snapshot tokens in state, restore=token in reset",
            version=ipr_gym.__version__,
        )

    def close(self) -> None:
        self._closed = True
        if self._env is not None:
            self._env.close()
            self._env = None

    # ------------------------------------------------------------------ internals
    def _check_open(self) -> None:
        if self._closed:
            raise SessionExpired("this session was closed (idle past the server's timeout); "
                                 "open a new one and restore your last token")  # fmt: skip

    def _use(self, options: Any) -> Any:
        """The session's env for the requested ``options`` over the server's (rebuilt only
        when they change). Tokens record the requested ones, so a server with other
        defaults (another data directory, say) restores them with its own."""
        merged = self.config.merged(options)
        if self._env is None or (options or {}) != self._options:
            if self._env is not None:
                self._env.close()
                self._env = None
            self._env = build_env(self.config.env_id, merged)
            self._options = copy.deepcopy(options or {})
        return self._env

    def _restore(self, token: str) -> TextObservation:
        try:
            point = self.config.signer.verify(token)
        except TokenError as error:
            raise TokenRefused(str(error)) from error
        if point.env_id != self.config.env_id:
            raise TokenRefused(f"the token is for {point.env_id}, this server runs "
                               f"{self.config.env_id}")  # fmt: skip
        env = self._use(point.options)
        snap = self.config.kept(token)
        if snap is None:  # taken by another server process: restore by replay
            fingerprint = find_text_env(env).fingerprint()
            snap = Snapshot(fingerprint, point.task, point.actions, "", {})
        try:
            obs, info = ipr_gym.restore(env, snap)
        except ValueError as error:
            raise BadRequest(str(error)) from error
        now = ipr_gym.snapshot(env)
        truncated = not now.ended and self._truncated_at(len(point.actions))
        return self._observation(obs, 0.0, now.ended, truncated, info, start=True, snap=now)

    def _truncated_at(self, step: int) -> bool:
        limit = _step_limit(self._env)
        return limit is not None and step >= limit

    def _observation(
        self,
        obs: str,
        reward: float,
        terminated: bool,
        truncated: bool,
        info: dict[str, Any],
        start: bool = False,
        token: bool = False,
        snap: Snapshot | None = None,
    ) -> TextObservation:
        """The wire form of a step's result; with a token of the point (``snap``, when the
        caller has it already) at a start or when ``token`` asks."""
        inner = find_text_env(self._env)
        assert self._options is not None
        if start or token:
            snap = snap or ipr_gym.snapshot(self._env)
        return TextObservation(
            text=obs,
            reward=float(reward),
            done=bool(terminated or truncated),
            terminated=bool(terminated),
            truncated=bool(truncated),
            info=info,
            instruction=inner.instruction if start else None,
            fingerprint=inner.fingerprint() if start else None,
            snapshot=self.config.mint(snap, self._options) if snap is not None else None,
        )


def _step_limit(env: Any) -> int | None:
    """The step limit of gymnasium's ``TimeLimit`` in a made env, if any."""
    layer = env
    while isinstance(layer, gym.Wrapper):
        if isinstance(layer, gym.wrappers.TimeLimit):
            return int(layer._max_episode_steps)
        layer = layer.env
    return None
