"""A gymnasium env whose episodes run on an env server: ``gym.make(id, remote=URL, ...)``.

It keeps the contract of ``ipr_gym.core`` (same transcripts as the env in process, same
errors, ``snapshot``/``restore``) over one OpenEnv session, which it rejoins when the server
has closed it (idle timeout). Its snapshots carry the server's
signed token (``ServerToken``) and the task and actions: they restore on the same server (or
one sharing its key) from the token, elsewhere (another key, a local env) by replay.
"""

from __future__ import annotations

import copy
import json
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any

from ipr_gym.core import EpisodeError, ServerToken, Snapshot, TaskId, TextEnv
from ipr_gym.service.client import IPRClient, SessionLostError, TokenRefusedError
from ipr_gym.service.wire import TextObservation


def post_json(url: str, body: dict[str, Any], timeout_s: float = 60.0) -> dict[str, Any]:
    request = urllib.request.Request(
        url, json.dumps(body).encode("utf-8"), {"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as error:
        raw = error.read()
        try:
            detail = json.loads(raw).get("detail", error.reason)
        except (ValueError, AttributeError):
            detail = raw.decode("utf-8", "replace")[:300] or error.reason
        if error.code >= 500:  # the server's fault: as a lost server (a pool fails over)
            raise SessionLostError(f"{url}: {error.code} {detail}") from error
        raise ValueError(f"{url}: {error.code} {detail}") from error


class RemoteEnv(TextEnv):
    def __init__(self, url: str, env_id: str, render_mode: str | None = None, **options: Any):
        super().__init__(split=str(options.get("split", "")), render_mode=render_mode)
        self.url = url.rstrip("/")
        self.env_id = env_id
        # the step limit is gymnasium's TimeLimit on this side (as for a local made env)
        self.options = {"max_episode_steps": None, **options}
        self._client: Any = None
        self._listing: dict[str, Any] | None = None
        self._instruction = ""

    # ------------------------------------------------------------------ what the server knows
    def _server(self) -> Any:
        if self._client is None:
            self._client = IPRClient(self.url, message_timeout_s=300.0).sync().connect()
        return self._client

    def _in_episode(self, call: Any) -> Any:
        """``call(client)`` in this episode's session; a session the server lost (idle past
        its timeout, a restart) is rejoined once: a new session replays the episode's
        acknowledged actions, then the call is made again."""
        try:
            return call(self._server())
        except SessionLostError:
            self.close()
            if self._episode_task is not None:
                client = self._server()
                client.reset(task=self._episode_task, options=self.options)
                for action in self._episode_actions:
                    client.step(action)
            return call(self._server())

    def _listed(self) -> dict[str, Any]:
        if self._listing is None:
            self._listing = post_json(f"{self.url}/ipr/tasks", {"options": self.options})
        return self._listing

    @property
    def tasks(self) -> Sequence[TaskId]:
        return self._listed()["tasks"]

    @property
    def instruction(self) -> str:
        return self._instruction

    def fingerprint(self) -> str:
        return str(self._listed()["fingerprint"])

    # ------------------------------------------------------------------ gymnasium API
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]]:
        options = options or {}
        unknown = set(options) - {"task"}
        if unknown:
            raise ValueError(f"unknown reset option(s) {sorted(unknown)}; valid: ['task']")
        super(TextEnv, self).reset(seed=seed)  # gymnasium's seeding, then TextEnv's task pick
        if "task" in options:
            task = options["task"]
            self._check_task(task)
        else:
            tasks = self.tasks
            if not tasks:
                raise ValueError(f"split {self.split!r} of {self.env_id} has no tasks")
            task = tasks[int(self.np_random.integers(len(tasks)))]
        result = self._server().reset(task=task, options=self.options)
        return self._begun(task, (), result.observation)

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        if self._episode_task is None:
            raise EpisodeError("step() called before reset(); call reset() or restore() first")
        if self._episode_done:
            raise EpisodeError("the episode has ended; call reset() or restore() first")
        if not isinstance(action, str):
            raise TypeError(f"an action is a str, got {type(action).__name__}: {action!r}")
        obs: TextObservation = self._in_episode(lambda c: c.step(action)).observation
        self._episode_actions.append(action)
        self._episode_done = obs.terminated or obs.truncated
        self._last(obs.text, obs.info)
        return obs.text, float(obs.reward or 0.0), obs.terminated, obs.truncated, obs.info

    def close(self) -> None:
        if self._client is not None:
            try:
                self._client.close()
            except Exception:  # the server may be gone already
                pass
            self._client = None

    # ------------------------------------------------------------------ snapshots
    def _save_state(self) -> ServerToken | None:
        """The server's signed token of this point (``TextEnv.snapshot`` builds the rest)."""
        token = self._in_episode(lambda c: c.state()).snapshot
        return ServerToken(token, self.url) if token else None

    def restore(self, snapshot: Snapshot) -> tuple[str, dict[str, Any]]:
        self._check_snapshot(snapshot)
        if isinstance(snapshot.state, ServerToken):
            try:
                result = self._server().reset(restore=snapshot.state.token)
                obs = result.observation
                self._begun(snapshot.task, snapshot.actions, obs)
                self._episode_done = obs.terminated or snapshot.ended
                return obs.text, copy.deepcopy(obs.info)
            except TokenRefusedError:
                pass  # another server's key: replay below
        result = self._server().reset(task=snapshot.task, options=self.options)
        self._begun(snapshot.task, (), result.observation)
        for action in snapshot.actions:
            self.step(action)
        obs_text, info = self._episode_last
        return obs_text, copy.deepcopy(info)

    def _begun(
        self, task: TaskId, actions: Sequence[str], obs: TextObservation
    ) -> tuple[str, dict[str, Any]]:
        self._episode_task = task
        self._episode_actions = list(actions)
        self._episode_done = False
        self._instruction = obs.instruction or ""
        self._last(obs.text, obs.info)
        return obs.text, copy.deepcopy(obs.info)
