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

import functools
import socket
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from openenv.core.env_server import create_app
from openenv.core.env_server.types import ConcurrencyConfig
from starlette.exceptions import HTTPException as StarletteHTTPException

from ipr_gym.core import find_text_env
from ipr_gym.registration import ENVIRONMENTS
from ipr_gym.service.session import ServedEnv, ServerConfig
from ipr_gym.service.tokens import Signer, server_key
from ipr_gym.service.wire import BadRequest, ServiceError, TextAction, TextObservation


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
