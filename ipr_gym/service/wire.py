"""What travels between an env server and its clients: OpenEnv's Action, Observation and
State models for text envs, and the errors a request can get (a status and one line)."""

from __future__ import annotations

from typing import Any

from openenv.core.env_server.types import Action, Observation, State
from pydantic import Field

MAX_ACTION_CHARS = 32_768  # longer actions are refused (422) before they reach the env


class TextAction(Action):
    """The agent's action as the env takes it: a string (``search[red shoes]``, SQL, ...)."""

    action: str = Field(max_length=MAX_ACTION_CHARS, description="the action text")


class TextObservation(Observation):
    """One step's result. ``done`` is ``terminated or truncated``; ``info`` is the env's
    info dict. ``instruction`` and ``fingerprint`` come with reset and restore (they change
    only there); ``snapshot`` is a token for this point when the request asked for one."""

    text: str = Field(description="the observation text")
    terminated: bool = False
    truncated: bool = False
    info: dict[str, Any] = Field(default_factory=dict)
    instruction: str | None = None
    fingerprint: str | None = None
    snapshot: str | None = None


class TextState(State):
    """The session's episode: ``snapshot`` is a signed token of the current point (restore
    it with ``reset(restore=token)`` in any session of a server with the same key)."""

    env_id: str = ""
    task: int | str | None = None
    instruction: str | None = None
    won: bool = False
    done: bool = False
    snapshot: str | None = None


class ServiceError(Exception):
    """A request the server refuses; ``status`` is its HTTP status. Over the WebSocket the
    message starts with the status in brackets, so clients map it back."""

    status = 400

    def __init__(self, reason: str):
        super().__init__(f"[{self.status}] {reason}")
        self.reason = reason


class BadRequest(ServiceError):
    status = 400


class TokenRefused(ServiceError):
    status = 403


class NoEpisode(ServiceError):
    status = 409


class SessionExpired(ServiceError):
    status = 410
