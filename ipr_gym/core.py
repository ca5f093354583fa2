"""The environment contract that every ipr_gym environment honours.

An environment is a ``gymnasium.Env`` whose observations and actions are strings.

* ``reset(*, seed=None, options=None) -> (obs, info)``. ``options={"task": id}`` selects a task
  of the env's split; otherwise the seeded RNG picks one. Same task + same actions => same
  transcript, in any process.
* ``step(action) -> (obs, reward, terminated, truncated, info)``. The reward is the benchmark's
  outcome reward when the episode ends and 0 before. An action the env cannot understand is
  not an exception: the env answers as the benchmark would (e.g. "Nothing happens."), sets
  ``info["invalid"] = True`` and leaves the game state unchanged (the step still counts).
* ``info`` always has ``task``, ``step``, ``won`` and ``invalid``; ``valid_actions`` where the
  action set is finite; ``progress`` in [0, 1] where the env has a dense score of its state
  and it was asked for (WebShop: ``progress=True``, since it costs more than the step).
* Constructor keywords select the split, the backend and its options; ``max_episode_steps``
  truncates.
* ``snapshot() -> Snapshot`` and ``restore(snapshot) -> (obs, info)``. After ``restore(s)``
  everything the env returns is identical to what it would return after resetting to
  ``s.task`` and replaying ``s.actions``, in this instance, another instance or another
  process. ``restore`` returns the observation and info the env last returned at that point.

Subclasses implement the game (``tasks``, ``instruction``, ``_begin``, ``_act``) and may add
``_valid_actions``, ``_progress`` and a fast snapshot path (``_save_state``/``_load_state``);
this class owns the bookkeeping so that every env counts steps, truncates, fills ``info`` and
snapshots the same way.
"""

from __future__ import annotations

import copy
import multiprocessing as mp
import os
import string
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
from gymnasium.vector.utils import shared_memory

TaskId = int | str

_SAMPLE_CHARS = string.ascii_letters + string.digits + string.punctuation + " "


class TextSpace(gym.spaces.Space[str]):
    """Any Python string of at most ``max_length`` characters.

    gymnasium's ``Text`` space only admits a fixed character set; benchmark text contains any
    Unicode (product names, SQL results), so membership here is "is a str, not too long".
    """

    def __init__(self, max_length: int = 1 << 20, seed: int | None = None):
        super().__init__(shape=None, dtype=None, seed=seed)
        self.max_length = max_length

    def sample(self, mask: Any = None, probability: Any = None) -> str:
        length = int(self.np_random.integers(0, 32))
        picks = self.np_random.integers(0, len(_SAMPLE_CHARS), size=length)
        return "".join(_SAMPLE_CHARS[i] for i in picks)

    def contains(self, x: Any) -> bool:
        return isinstance(x, str) and len(x) <= self.max_length

    @property
    def is_np_flattenable(self) -> bool:
        return False

    def __repr__(self) -> str:
        return f"TextSpace(max_length={self.max_length})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TextSpace) and other.max_length == self.max_length


def _text_slot_bytes(space: TextSpace) -> int:
    return 4 + 4 * space.max_length  # a length, then UTF-8 (at most 4 bytes a character)


@shared_memory.create_shared_memory.register(TextSpace)
def _create_text_memory(space: TextSpace, n: int = 1, ctx: Any = mp) -> Any:
    """``AsyncVectorEnv``'s shared memory for text (its default): one UTF-8 slot per env."""
    return ctx.Array("B", n * _text_slot_bytes(space))


@shared_memory.write_to_shared_memory.register(TextSpace)
def _write_text_memory(space: TextSpace, index: int, value: str, memory: Any) -> None:
    data = value.encode("utf-8", "surrogatepass")
    size = _text_slot_bytes(space)
    if len(data) > size - 4:
        raise ValueError(f"an observation of {len(value)} characters exceeds {space}")
    buffer = memoryview(memory.get_obj()).cast("B")
    start = index * size
    buffer[start : start + 4] = len(data).to_bytes(4, "little")
    buffer[start + 4 : start + 4 + len(data)] = data


class _SharedTexts(Sequence):
    """The live view ``AsyncVectorEnv`` keeps of the buffer (it reads the memory once and
    expects later writes to show): every access decodes the slot; a copy is a tuple."""

    def __init__(self, space: TextSpace, memory: Any, n: int):
        self._size, self._memory, self._n = _text_slot_bytes(space), memory, n

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return tuple(self[i] for i in range(*index.indices(self._n)))
        if not -self._n <= index < self._n:
            raise IndexError(index)
        buffer = memoryview(self._memory.get_obj()).cast("B")
        start = (index % self._n) * self._size
        length = int.from_bytes(buffer[start : start + 4], "little")
        return bytes(buffer[start + 4 : start + 4 + length]).decode("utf-8", "surrogatepass")

    def __deepcopy__(self, memo: Any) -> tuple[str, ...]:
        return tuple(self)

    def __repr__(self) -> str:
        return repr(tuple(self))


@shared_memory.read_from_shared_memory.register(TextSpace)
def _read_text_memory(space: TextSpace, memory: Any, n: int = 1) -> _SharedTexts:
    return _SharedTexts(space, memory, n)


@dataclass(frozen=True)
class Snapshot:
    """A point of an episode: enough to continue it anywhere.

    ``task`` and ``actions`` alone define the point (replaying them from a reset reaches it);
    ``state`` optionally carries an engine-specific copy of the state so that ``restore``
    need not replay. ``observation`` and ``info`` are what the env returned at that point and
    ``ended`` says whether the episode was over there. ``env`` names the env class and the
    options that change its behaviour, so a snapshot is never restored into an env that
    would play differently. Treat every field as read-only.
    """

    env: str
    task: TaskId
    actions: tuple[str, ...]
    observation: str
    info: dict[str, Any] = field(hash=False, compare=False)
    ended: bool = False
    state: Any = field(default=None, hash=False, compare=False)

    @property
    def step(self) -> int:
        return len(self.actions)


@dataclass(frozen=True)
class Transition:
    """What the game says about one action; ``TextEnv.step`` adds the bookkeeping."""

    observation: str
    reward: float = 0.0
    terminated: bool = False
    won: bool = False
    invalid: bool = False


class ProcessLocal:
    """A snapshot payload that only its own engine, in its own process, can load (a state
    id inside a C library, say). It pickles to an empty handle, so a snapshot sent to
    another process restores there by replaying its actions."""

    def __init__(self, owner: object = None, payload: Any = None):
        self._owner = None if owner is None else id(owner)
        self._pid = os.getpid()
        self.payload = payload

    def usable_by(self, engine: object) -> bool:
        return self.payload is not None and self._owner == id(engine) and self._pid == os.getpid()

    def __reduce__(self) -> tuple[Any, ...]:
        return (ProcessLocal, ())


@dataclass(frozen=True)
class ServerToken:
    """A snapshot payload held by an env server (``ipr_gym.service``): a signed token that
    server restores from. An env of this process restores such a snapshot by replay."""

    token: str
    server: str


class EpisodeError(RuntimeError):
    """``step`` called with no episode running (before ``reset`` or after the episode ended)."""


class TextEnv(gym.Env[str, str]):
    """Base class of all ipr_gym environments; see the module docstring for the contract."""

    # "ansi": render() returns the last observation; "human": reset, step and restore print it
    # (gymnasium's convention for text envs), render() returns None
    metadata: dict[str, Any] = {"render_modes": ["ansi", "human"]}  # noqa: RUF012 - gymnasium's type

    def __init__(
        self,
        *,
        split: str,
        max_episode_steps: int | None = None,
        render_mode: str | None = None,
    ):
        if max_episode_steps is not None and max_episode_steps < 1:
            raise ValueError(f"max_episode_steps must be >= 1 or None, got {max_episode_steps}")
        if render_mode not in (None, "ansi", "human"):
            raise ValueError(f"render_mode must be None, 'ansi' or 'human', got {render_mode!r}")
        self.split = split
        self.max_episode_steps = max_episode_steps
        self.render_mode = render_mode
        self.observation_space = TextSpace()
        self.action_space = TextSpace()
        self._episode_task: TaskId | None = None
        self._episode_actions: list[str] = []
        self._episode_done = False
        self._episode_last: tuple[str, dict[str, Any]] = ("", {})
        self._task_ids: frozenset[TaskId] | None = None

    # ----------------------------------------------------------------- the game (subclasses)
    @property
    def tasks(self) -> Sequence[TaskId]:
        """The task ids of this env's split, in a fixed order."""
        raise NotImplementedError

    @property
    def instruction(self) -> str:
        """The current task's instruction, as the benchmark states it to the agent."""
        raise NotImplementedError

    def _begin(self, task: TaskId) -> str:
        """Put the game in ``task``'s initial state and return the first observation."""
        raise NotImplementedError

    def _act(self, action: str) -> Transition:
        """Apply one action to the game. Must not raise on actions it cannot understand."""
        raise NotImplementedError

    def _valid_actions(self) -> list[str] | None:
        """The admissible actions of the current state, where the action set is finite."""
        return None

    def _progress(self) -> float | None:
        """A dense score of the current state in [0, 1], where the env has one."""
        return None

    def _save_state(self) -> Any:
        """An immutable, picklable copy of the game state, or None to restore by replay."""
        return None

    def _load_state(self, task: TaskId, state: Any) -> bool:
        """Put the game in ``state``, which ``_save_state`` returned during ``task``.

        Returns False when the state cannot be used here (say it belongs to an engine of
        another process); ``restore`` then replays the snapshot's actions instead.
        """
        raise NotImplementedError

    def _options(self) -> dict[str, Any]:
        """Constructor options besides the split that change what the env returns."""
        return {}

    def warm_up(self) -> None:
        """Load now what the first episodes would load on the way (models, caches), so a
        server answers its first requests as fast as the rest. Nothing by default."""

    def expert_actions(self, task: TaskId) -> list[str]:
        """An expert's actions for ``task`` (a walkthrough, an oracle, a recorded episode).

        Raises ``NotImplementedError`` where the env has no expert.
        """
        raise NotImplementedError(f"{type(self).__name__} has no expert")

    def fingerprint(self) -> str:
        """Names this env's behaviour: its class and every option that changes transcripts."""
        cls = type(self)
        options = "".join(f", {k}={v!r}" for k, v in self._options().items())
        return f"{cls.__module__}.{cls.__qualname__}(split={self.split!r}{options})"

    # ----------------------------------------------------------------- gymnasium API
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]]:
        super().reset(seed=seed)
        options = options or {}
        unknown = set(options) - {"task"}
        if unknown:
            raise ValueError(f"unknown reset option(s) {sorted(unknown)}; valid: ['task']")
        if "task" in options:
            task = options["task"]
            self._check_task(task)
        else:
            tasks = self.tasks
            if not tasks:
                raise ValueError(f"split {self.split!r} of {type(self).__name__} has no tasks")
            task = tasks[int(self.np_random.integers(len(tasks)))]
        return self._start(task)

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        if self._episode_task is None:
            raise EpisodeError("step() called before reset(); call reset() or restore() first")
        if self._episode_done:
            raise EpisodeError("the episode has ended; call reset() or restore() first")
        if not isinstance(action, str):
            raise TypeError(f"an action is a str, got {type(action).__name__}: {action!r}")
        result = self._act(action)
        self._episode_actions.append(action)
        truncated = (
            not result.terminated
            and self.max_episode_steps is not None
            and len(self._episode_actions) >= self.max_episode_steps
        )
        self._episode_done = result.terminated or truncated
        info = self._info(won=result.won, invalid=result.invalid)
        self._last(result.observation, info)
        return result.observation, float(result.reward), result.terminated, truncated, info

    def render(self) -> str | None:
        return self._episode_last[0] if self.render_mode == "ansi" else None

    def _last(self, observation: str, info: dict[str, Any]) -> None:
        self._episode_last = (observation, info)
        if self.render_mode == "human":
            print(observation, flush=True)

    # ----------------------------------------------------------------- snapshots
    def snapshot(self) -> Snapshot:
        if self._episode_task is None:
            raise EpisodeError("snapshot() needs an episode; call reset() first")
        obs, info = self._episode_last
        return Snapshot(
            env=self.fingerprint(),
            task=self._episode_task,
            actions=tuple(self._episode_actions),
            observation=obs,
            info=copy.deepcopy(info),
            ended=self._episode_done,
            state=self._save_state(),
        )

    def restore(self, snapshot: Snapshot) -> tuple[str, dict[str, Any]]:
        self._check_snapshot(snapshot)
        state = snapshot.state
        if (
            state is None
            or isinstance(state, ServerToken)
            or not self._load_state(snapshot.task, state)
        ):
            self._start(snapshot.task)
            for action in snapshot.actions:
                self.step(action)
        else:
            self._episode_task = snapshot.task
            self._episode_actions = list(snapshot.actions)
            self._last(snapshot.observation, copy.deepcopy(snapshot.info))
            self._episode_done = snapshot.ended
        obs, info = self._episode_last
        return obs, copy.deepcopy(info)

    # ----------------------------------------------------------------- internals
    def _start(self, task: TaskId) -> tuple[str, dict[str, Any]]:
        obs = self._begin(task)
        self._episode_task = task
        self._episode_actions = []
        self._episode_done = False
        info = self._info(won=False, invalid=False)
        self._last(obs, info)
        return obs, copy.deepcopy(info)

    def _info(self, *, won: bool, invalid: bool) -> dict[str, Any]:
        info: dict[str, Any] = {
            "task": self._episode_task,
            "step": len(self._episode_actions),
            "won": bool(won),
            "invalid": bool(invalid),
        }
        valid = self._valid_actions()
        if valid is not None:
            info["valid_actions"] = list(valid)
        progress = self._progress()
        if progress is not None:
            info["progress"] = float(progress)
        return info

    def _check_snapshot(self, snapshot: Any) -> None:
        """A snapshot this env can restore: one of an env that plays as this one does."""
        if not isinstance(snapshot, Snapshot):
            raise TypeError(f"restore() takes a Snapshot, got {type(snapshot).__name__}")
        if snapshot.env != self.fingerprint():
            raise ValueError(
                f"snapshot was taken from {snapshot.env}, which plays differently from "
                f"this env ({self.fingerprint()})"
            )
        self._check_task(snapshot.task)

    def _check_task(self, task: Any) -> None:
        if self._task_ids is None:
            self._task_ids = frozenset(self.tasks)
        if task not in self._task_ids:
            some = list(self.tasks[:5])
            raise ValueError(
                f"unknown task {task!r} for split {self.split!r} of {type(self).__name__} "
                f"({len(self._task_ids)} tasks, e.g. {some})"
            )


def find_text_env(env: gym.Env) -> TextEnv:
    """The ``TextEnv`` under any stack of wrappers."""
    inner = env.unwrapped
    if not isinstance(inner, TextEnv):
        raise TypeError(f"{type(inner).__name__} is not an ipr_gym TextEnv")
    return inner


def snapshot(env: gym.Env) -> Snapshot:
    """``env.snapshot()`` that also works through gymnasium wrappers."""
    return find_text_env(env).snapshot()


def restore(env: gym.Env, snap: Snapshot) -> tuple[str, dict[str, Any]]:
    """``env.restore(snap)`` through wrappers, keeping their step counters consistent.

    ``gym.make(id, max_episode_steps=N)`` wraps the env in ``TimeLimit``, whose own counter
    must read ``snap.step`` after a restore, or truncation would come at the wrong step.
    """
    result = find_text_env(env).restore(snap)
    layer: gym.Env = env
    while isinstance(layer, gym.Wrapper):
        if isinstance(layer, gym.wrappers.TimeLimit):
            layer._elapsed_steps = snap.step  # type: ignore[assignment]
        if isinstance(layer, gym.wrappers.OrderEnforcing):
            layer._has_reset = True
        layer = layer.env
    return result


__all__ = [
    "EpisodeError",
    "ProcessLocal",
    "ServerToken",
    "Snapshot",
    "TaskId",
    "TextEnv",
    "TextSpace",
    "Transition",
    "find_text_env",
    "restore",
    "snapshot",
]
