"""The OpenEnv client of an ipr env server, and the errors it raises.

``IPRClient(url)`` is an ``openenv`` ``EnvClient`` (async; ``.sync()`` gives the blocking
one), so code written for OpenEnv envs (TRL's examples among them) talks to ipr envs as is:

    with IPRClient("http://127.0.0.1:8000").sync() as client:
        first = client.reset(task=3)
        result = client.step(TextAction(action="search[red shoes]"))
        token = client.state().snapshot          # a signed point of this episode
        client.reset(restore=token)              # ... back to it, in any session

A refusal raises what the same mistake raises in process: ``ValueError`` for a bad task,
option or action, ``EpisodeError`` for a step with no episode; ``TokenRefusedError`` for a
token of another key; ``SessionLostError`` when the session or the server is gone.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

from openenv.core.client_types import StepResult
from openenv.core.env_client import EnvClient

from ipr_gym.core import EpisodeError
from ipr_gym.service.wire import TextAction, TextObservation, TextState


class TokenRefusedError(ValueError):
    """The server did not sign this token (another key) or it was altered."""


class SessionLostError(ConnectionError):
    """The session ended (idle timeout, server gone); reconnect and restore a token."""


_STATUS = re.compile(r"\[(\d{3})\] (.*)$", re.S)


def raise_refusal(data: dict[str, Any]) -> None:
    """Raise the error a server's error message stands for: ours carry ``[status] reason``,
    OpenEnv's own a code (``VALIDATION_ERROR`` with pydantic's errors, ``CAPACITY_REACHED``)."""
    message, code = str(data.get("message", "unknown error")), data.get("code", "")
    match = _STATUS.match(message)
    if match is None:
        if code == "VALIDATION_ERROR":
            first = (data.get("errors") or [{}])[0]
            where = ".".join(str(p) for p in first.get("loc", ()))
            raise ValueError(f"invalid message at {where}: {first.get('msg', message)}")
        raise SessionLostError(f"{message} ({code})")
    status, reason = int(match.group(1)), match.group(2)
    if status == 403:
        raise TokenRefusedError(reason)
    if status == 409:
        raise EpisodeError(reason)
    if status == 410:
        raise SessionLostError(reason)
    raise ValueError(reason)


class IPRClient(EnvClient[TextAction, TextObservation, TextState]):
    def _step_payload(self, action: TextAction | str) -> dict[str, Any]:
        text = action if isinstance(action, str) else action.action
        return {"action": text}

    def _parse_result(self, payload: dict[str, Any]) -> StepResult[TextObservation]:
        observation = TextObservation(
            **payload.get("observation", {}),
            reward=payload.get("reward"),
            done=payload.get("done", False),
        )
        return StepResult(observation, payload.get("reward"), payload.get("done", False))

    def _parse_state(self, payload: dict[str, Any]) -> TextState:
        return TextState(**payload)

    async def _send_and_receive(self, message: dict[str, Any]) -> dict[str, Any]:
        try:
            await self._send(message)
            response = await self._receive()
        except (OSError, TimeoutError) as error:
            raise SessionLostError(f"{type(error).__name__}: {error}") from error
        except Exception as error:  # websockets' ConnectionClosed and kin
            if type(error).__module__.startswith("websockets"):
                await self._last_words()  # the server's reason, when it said one first
                raise SessionLostError(f"{type(error).__name__}: {error}") from error
            raise
        if response.get("type") == "error":
            raise_refusal(response.get("data", {}))
        return response

    async def _last_words(self) -> None:
        """A refusal the server sent before closing (a full server says so, then closes;
        our message may cross its close), raised as such."""
        try:
            raw = await asyncio.wait_for(self._ws.recv(), timeout=1.0)  # type: ignore[union-attr]
        except Exception:
            return
        message = json.loads(raw)
        if message.get("type") == "error":
            raise_refusal(message.get("data", {}))
