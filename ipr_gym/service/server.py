"""An ipr env as an OpenEnv server: ``ipr-gym serve ipr/WebShop-v0``.

OpenEnv's server library (``create_app``) gives the protocol: a WebSocket ``/ws`` where
each connection is a session with an env of its own (``reset``, ``step``, ``state``,
``close`` messages), stateless ``POST /reset`` and ``POST /step``, ``GET /schema``,
``/health``, ``/metadata``. This module supplies the env behind it and extends the protocol
for branching (documented in the README, "Envs as services"):

* ``reset`` takes ``task`` (else ``seed`` picks one, as ``env.reset`` does), ``options``
  (constructor keywords: ``split``, ``wording``, ``backend``, ``catalog``, ``progress``,
  ``max_episode_steps``, ... over the server's own) or ``restore`` (a snapshot token: the
  episode continues from that point, exactly as a reset and replay would bring it);
* ``state`` returns the episode's task, step, whether it is won or over, and ``snapshot``:
  a token of the current point, signed by the server (``tokens``);
* ``POST /step`` takes ``snapshot`` (a token from a reset, a step or a state): the HTTP
  routes hold no session, so a step names the point it starts from and returns the token
  of the next one;
* ``POST /ipr/tasks`` lists the task ids for some options.

Refusals are 4xx with one line (``wire.ServiceError``): an unknown task or option, a bad
token, an action over ``MAX_ACTION_CHARS``, malformed JSON, a step with no episode, a session
closed for idleness; none of them touches another session.
"""

from __future__ import annotations

import copy
import functools
import json
import socket
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from openenv.core.env_server import create_app
from openenv.core.env_server.interfaces import Environment
from openenv.core.env_server.types import ConcurrencyConfig
from starlette.exceptions import HTTPException as StarletteHTTPException

import ipr_gym
from ipr_gym.core import EpisodeError, Snapshot, find_text_env
from ipr_gym.registration import ENVIRONMENTS
from ipr_gym.service.tokens import Point, Signer, TokenError, server_key
from ipr_gym.service.wire import (
    BadRequest,
    NoEpisode,
    ServiceError,
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

    def mint(self, env: Any, options: dict[str, Any]) -> str:
        """A token for the env's current point; its snapshot is kept for fast restores."""
        snap = ipr_gym.snapshot(env)
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
            snapshot=self.config.mint(self._env, self._options),
            instruction=inner.instruction,
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
        ended = ipr_gym.snapshot(env).ended
        truncated = not ended and self._truncated_at(len(point.actions))
        return self._observation(obs, 0.0, ended, truncated, info, start=True)

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
    ) -> TextObservation:
        inner = find_text_env(self._env)
        assert self._options is not None
        return TextObservation(
            text=obs,
            reward=float(reward),
            done=bool(terminated or truncated),
            terminated=bool(terminated),
            truncated=bool(truncated),
            info=info,
            instruction=inner.instruction if start else None,
            fingerprint=inner.fingerprint() if start else None,
            snapshot=self.config.mint(self._env, self._options) if start or token else None,
        )


def _step_limit(env: Any) -> int | None:
    """The step limit of gymnasium's ``TimeLimit`` in a made env, if any."""
    import gymnasium as gym

    layer = env
    while isinstance(layer, gym.Wrapper):
        if isinstance(layer, gym.wrappers.TimeLimit):
            return int(layer._max_episode_steps)
        layer = layer.env
    return None


def make_app(config: ServerConfig, max_sessions: int = 64, idle_timeout_s: float | None = 600):
    """The FastAPI app: OpenEnv's routes, the task list, and one-line 4xx refusals."""
    app = create_app(
        functools.partial(ServedEnv, config),
        TextAction,
        TextObservation,
        env_name=config.env_id,
        concurrency_config=ConcurrencyConfig(
            max_concurrent_envs=max_sessions, session_timeout=idle_timeout_s
        ),
    )

    @app.exception_handler(ServiceError)
    async def refused(request: Request, error: ServiceError) -> JSONResponse:
        return JSONResponse({"detail": error.reason}, status_code=error.status)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        detail = error.detail  # OpenEnv's /step puts pydantic's error list (and the input) here
        if isinstance(detail, list) and detail and isinstance(detail[0], dict):
            where = ".".join(str(p) for p in detail[0].get("loc", ()))
            detail = f"invalid action at {where}: {detail[0].get('msg', '')}"
        return JSONResponse({"detail": detail}, status_code=error.status_code)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        first = error.errors()[0] if error.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return JSONResponse({"detail": f"invalid request at {where}: {first.get('msg', error)}"},
                            status_code=422)  # fmt: skip

    @app.post("/ipr/tasks")
    async def tasks(request: Request) -> JSONResponse:
        try:
            body = await request.json() if await request.body() else {}
        except ValueError as error:
            raise BadRequest(f"malformed JSON: {error}") from error
        if not isinstance(body, dict):
            raise BadRequest('the body is an object: {"options": {...}}')
        return JSONResponse(config.listing(body.get("options")))

    return app


def bind(host: str, port: int) -> socket.socket:
    """A listening socket (port 0: a free one), so the caller knows the port before serving."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    return sock


def serve(
    env_id: str,
    host: str = "127.0.0.1",
    port: int = 8000,
    options: dict[str, Any] | None = None,
    max_sessions: int = 64,
    idle_timeout_s: float | None = 600,
    key_file: str | None = None,
) -> None:
    """Serve until interrupted; prints the URL first (with the port, when 0 was asked)."""
    import uvicorn

    known = [entry.id for entry in ENVIRONMENTS]
    if env_id not in known:
        raise ValueError(f"unknown env id {env_id!r}; valid: {known}")
    config = ServerConfig(env_id, dict(options or {}), Signer(server_key(key_file)))
    try:  # build the default env once: bad options fail here, and the data loads now
        find_text_env(config.task_env(None)).warm_up()
    except ServiceError as error:
        raise ValueError(error.reason) from None
    app = make_app(config, max_sessions=max_sessions, idle_timeout_s=idle_timeout_s)
    sock = bind(host, port)
    shown = f"[{host}]" if ":" in host else host
    print(f"serving {env_id} at http://{shown}:{sock.getsockname()[1]}", flush=True)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", ws_max_size=16 << 20))
    server.run(sockets=[sock])
