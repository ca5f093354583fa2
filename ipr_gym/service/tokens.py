"""Snapshot tokens: an episode point as an opaque string a client can hold but not forge.

A token is ``v1.<payload>.<mac>``: the payload (base64url JSON) names the env id, its
constructor options, the task and the actions; the mac is HMAC-SHA256 of the payload under
the server's key. Restoring a token is resetting to its task with its options and replaying
its actions, so a valid token can only lead where the env itself can go; the mac keeps a
client from making the server replay anything else under another episode's name. Servers
that share a key (``--key-file`` or ``IPR_GYM_SERVE_KEY``) restore each other's tokens.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ipr_gym.core import TaskId

VERSION = "v1"
KEY_ENV = "IPR_GYM_SERVE_KEY"


class TokenError(ValueError):
    """A token that is malformed, signed with another key, or altered."""


@dataclass(frozen=True)
class Point:
    """What a token names: an episode point of one env id built with ``options``."""

    env_id: str
    options: dict[str, Any]
    task: TaskId
    actions: tuple[str, ...]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def server_key(key_file: str | Path | None = None) -> bytes:
    """The signing key: the file's bytes, else ``$IPR_GYM_SERVE_KEY``, else a random key for
    this process only (its tokens then restore on this server alone)."""
    if key_file is not None:
        key = Path(key_file).read_bytes().strip()
        if len(key) < 16:
            raise ValueError(f"the key in {key_file} is {len(key)} bytes; use at least 16")
        return key
    if os.environ.get(KEY_ENV):
        return os.environ[KEY_ENV].encode("utf-8")
    return secrets.token_bytes(32)


class Signer:
    def __init__(self, key: bytes):
        self._key = key

    def _mac(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode("ascii"), hashlib.sha256).digest())

    def sign(self, point: Point) -> str:
        body = {"env": point.env_id, "options": point.options, "task": point.task,
                "actions": list(point.actions)}  # fmt: skip
        payload = _b64(json.dumps(body, separators=(",", ":"), sort_keys=True).encode("utf-8"))
        return f"{VERSION}.{payload}.{self._mac(payload)}"

    def verify(self, token: Any) -> Point:
        """The point a token names; ``TokenError`` unless this key signed it unaltered."""
        if not isinstance(token, str):
            raise TokenError(f"a snapshot token is a string, got {type(token).__name__}")
        parts = token.split(".")
        if len(parts) != 3 or parts[0] != VERSION:
            raise TokenError("not a snapshot token of this server (expected 'v1.<payload>.<mac>')")
        _, payload, mac = parts
        if not hmac.compare_digest(self._mac(payload), mac):
            raise TokenError(
                "snapshot token refused: altered, or signed by a server with another key "
                f"(servers that restore each other's tokens share ${KEY_ENV} or --key-file)"
            )
        try:
            body = json.loads(_unb64(payload))
            return Point(str(body["env"]), dict(body["options"]), body["task"],
                         tuple(str(a) for a in body["actions"]))  # fmt: skip
        except (ValueError, KeyError, TypeError) as error:  # signed by us, so never expected
            raise TokenError(f"snapshot token unreadable: {error}") from error
