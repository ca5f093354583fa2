"""The conformance kit: checks that an environment honours the contract in ``ipr_gym.core``.

Every environment's tests call ``check_conformance(make_env)``. ``make_env`` builds a fresh
env and must be picklable (a class, a ``functools.partial`` of one, or a top-level function),
because determinism and snapshots are also checked in a freshly spawned process.

The checks play seeded random walks: mostly admissible actions where the env lists them
(``info["valid_actions"]``), otherwise actions from ``action_sampler``, with malformed actions
mixed in. Each check raises ``ConformanceError`` naming the task, the actions and the first
step at which two transcripts differ.
"""

from __future__ import annotations

import copy
import os
import pickle
import random
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, SupportsFloat

import gymnasium as gym
from gymnasium.utils.env_checker import check_env

from ipr_gym.core import Snapshot, TaskId, find_text_env, restore, snapshot

EnvFactory = Callable[[], gym.Env]
ActionSampler = Callable[[dict[str, Any], random.Random], str]

MALFORMED_ACTIONS: tuple[str, ...] = (
    "",
    " ",
    "\n\t\r",
    "\x00\x01\x7f",
    "asdf qwer zxcv",
    "Action: Action: Thought:",
    "click[",
    "search[]]",
    "go to",
    "take  from ",
    "'; DROP TABLE users; --",
    "\u202e\u0000\ud7ff emoji \U0001f916",
    "x" * 5000,
    "{}[]()<>",
)

# One step of a transcript: (observation, reward, terminated, truncated, info).
Step = tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]


class ConformanceError(AssertionError):
    """The environment breaks the contract; the message says where."""


@dataclass(frozen=True)
class Walk:
    task: TaskId
    actions: tuple[str, ...]


# --------------------------------------------------------------------------- playing
def play(env: gym.Env, task: TaskId, actions: Sequence[str]) -> list[Step]:
    """Reset ``env`` to ``task`` and play ``actions``; the transcript, reset included."""
    obs, info = env.reset(options={"task": task})
    transcript: list[Step] = [(obs, 0.0, False, False, info)]
    for action in actions:
        transcript.append(env.step(action))
    return transcript


def _continue(env: gym.Env, actions: Sequence[str]) -> list[Step]:
    return [env.step(action) for action in actions]


def _default_sampler(info: dict[str, Any], rng: random.Random) -> str:
    valid = info.get("valid_actions")
    if not valid:
        raise ConformanceError(
            "the env lists no info['valid_actions']; pass action_sampler= to the kit"
        )
    return rng.choice(valid)


def random_walks(
    make_env: EnvFactory,
    *,
    n_walks: int,
    max_length: int,
    seed: int,
    tasks: Sequence[TaskId] | None = None,
    action_sampler: ActionSampler | None = None,
    malformed: Sequence[str] = MALFORMED_ACTIONS,
) -> list[Walk]:
    """Seeded walks that stop when the episode ends; ~10% of actions are malformed."""
    rng = random.Random(seed)
    sampler = action_sampler or _default_sampler
    env = make_env()
    pool = list(tasks) if tasks is not None else list(find_text_env(env).tasks)
    walks = []
    for _ in range(n_walks):
        task = rng.choice(pool)
        _, info = env.reset(options={"task": task})
        actions: list[str] = []
        for _ in range(rng.randint(1, max_length)):
            use_malformed = malformed and rng.random() < 0.1
            action = rng.choice(list(malformed)) if use_malformed else sampler(info, rng)
            actions.append(action)
            _, _, terminated, truncated, info = env.step(action)
            if terminated or truncated:
                break
        walks.append(Walk(task, tuple(actions)))
    env.close()
    return walks


# --------------------------------------------------------------------------- comparing
def _describe(value: Any, limit: int = 300) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def assert_same(expected: Sequence[Any], actual: Sequence[Any], what: str, walk: Walk) -> None:
    """Raise ``ConformanceError`` at the first differing step of two transcripts."""
    for i, (a, b) in enumerate(zip(expected, actual, strict=False)):
        if a != b:
            raise ConformanceError(
                f"{what}: transcripts differ at step {i} of task {walk.task!r} "
                f"(actions {_describe(walk.actions)}):\n  expected {_describe(a)}\n"
                f"  got      {_describe(b)}"
            )
    if len(expected) != len(actual):
        raise ConformanceError(
            f"{what}: transcript lengths differ ({len(expected)} vs {len(actual)}) "
            f"for task {walk.task!r}"
        )


# --------------------------------------------------------------------------- fresh process
def _play_walks(make_env: EnvFactory, walks: list[Walk]) -> list[list[Step]]:
    env = make_env()
    try:
        return [play(env, w.task, w.actions) for w in walks]
    finally:
        env.close()


def _restore_and_continue(
    make_env: EnvFactory, jobs: list[tuple[bytes, tuple[str, ...]]]
) -> list[list[Any]]:
    env = make_env()
    try:
        results = []
        for payload, suffix in jobs:
            snap = pickle.loads(payload)
            results.append([restore(env, snap), *_continue(env, suffix)])
        return results
    finally:
        env.close()


_CHILD = """
import pickle, sys
path = sys.argv[1]  # read first: code under test may rewrite sys.argv
with open(path, "rb") as f:
    fn, args = pickle.load(f)
result = fn(*args)
with open(path + ".out", "wb") as f:
    pickle.dump(result, f)
"""


def in_fresh_process(fn: Callable[..., Any], *args: Any) -> Any:
    """Run ``fn(*args)`` in a new interpreter that shares only ``sys.path`` with this one.

    A plain subprocess rather than multiprocessing: it works from any ``__main__`` (a REPL,
    stdin) and the child gets its own hash seed, as a real second process would.
    """
    with tempfile.TemporaryDirectory() as tmp:
        exchange = os.path.join(tmp, "exchange.pkl")
        with open(exchange, "wb") as f:
            pickle.dump((fn, args), f)
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        env.pop("PYTHONHASHSEED", None)
        done = subprocess.run(
            [sys.executable, "-c", _CHILD, exchange], env=env, capture_output=True, text=True
        )
        if done.returncode != 0:
            raise ConformanceError(f"the fresh process failed:\n{done.stderr[-3000:]}")
        if not os.path.exists(exchange + ".out"):
            raise ConformanceError("the fresh process exited without returning a result")
        with open(exchange + ".out", "rb") as f:
            return pickle.load(f)


# --------------------------------------------------------------------------- the checks
def check_gymnasium_api(make_env: EnvFactory) -> None:
    """gymnasium's own ``check_env`` on a fresh instance."""
    env = make_env()
    try:
        check_env(env.unwrapped, skip_render_check=True)
    except AssertionError as error:
        raise ConformanceError(f"gymnasium check_env failed: {error}") from error
    except Exception as error:
        raise ConformanceError(
            f"gymnasium check_env: the env raised {type(error).__name__}: {error}"
        ) from error
    finally:
        env.close()


def check_determinism(
    make_env: EnvFactory, walks: Sequence[Walk], *, fresh_process: bool = True
) -> None:
    """Same task + same actions => same transcript: twice here, once more elsewhere."""
    env = make_env()
    first = [play(env, w.task, w.actions) for w in walks]
    other = make_env()
    for walk, expected in zip(walks, first, strict=True):
        assert_same(expected, play(env, walk.task, walk.actions), "replay, same instance", walk)
        assert_same(expected, play(other, walk.task, walk.actions), "replay, new instance", walk)
    env.close()
    other.close()
    if fresh_process:
        remote = in_fresh_process(_play_walks, make_env, list(walks))
        for walk, expected, got in zip(walks, first, remote, strict=True):
            assert_same(expected, got, "replay in a fresh process", walk)


def check_snapshot_restore(
    make_env: EnvFactory,
    walks: Sequence[Walk],
    *,
    seed: int = 0,
    cuts_per_walk: int = 3,
    fresh_process: bool = True,
) -> None:
    """Restoring a snapshot equals resetting and replaying its actions, anywhere."""
    rng = random.Random(seed)
    env, other = make_env(), make_env()
    remote_jobs: list[tuple[bytes, tuple[str, ...]]] = []
    remote_expect: list[tuple[Walk, list[Any]]] = []
    for walk in walks:
        reference = play(env, walk.task, walk.actions)
        for _ in range(cuts_per_walk):
            cut = rng.randint(0, len(walk.actions))
            prefix, suffix = walk.actions[:cut], walk.actions[cut:]
            play(env, walk.task, prefix)
            snap = snapshot(env)
            if not isinstance(snap, Snapshot):
                raise ConformanceError(f"snapshot() returned {type(snap).__name__}")
            if snap.task != walk.task or snap.actions != prefix:
                raise ConformanceError(
                    f"snapshot records task {snap.task!r} and actions {_describe(snap.actions)}"
                    f", expected {walk.task!r} and {_describe(prefix)}"
                )
            # the point as a reset-and-replay reaches it, then what follows
            at_cut = reference[cut]
            expected = [(at_cut[0], at_cut[4]), *reference[cut + 1 :]]
            _continue(env, suffix)  # move the instance on, then go back
            got_same = [restore(env, snap), *_continue(env, suffix)]
            assert_same(expected, got_same, f"restore at step {cut}, same instance", walk)
            got_again = [restore(env, snap), *_continue(env, suffix)]
            assert_same(expected, got_again, f"second restore at step {cut}", walk)
            copied = pickle.loads(pickle.dumps(snap))
            got_other = [restore(other, copied), *_continue(other, suffix)]
            assert_same(expected, got_other, f"restore at step {cut}, new instance", walk)
            remote_jobs.append((pickle.dumps(snap), suffix))
            remote_expect.append((walk, expected))
    env.close()
    other.close()
    if fresh_process and remote_jobs:
        results = in_fresh_process(_restore_and_continue, make_env, remote_jobs)
        for (walk, expected), got in zip(remote_expect, results, strict=True):
            assert_same(expected, got, "restore of a pickled snapshot in a fresh process", walk)


def check_malformed_actions(
    make_env: EnvFactory,
    walks: Sequence[Walk],
    *,
    malformed: Sequence[str] = MALFORMED_ACTIONS,
    seed: int = 0,
) -> None:
    """Malformed actions never raise, are flagged invalid and change nothing.

    At a random point of each walk every malformed action is tried in turn; the walk then
    goes on, and must go on exactly as it does without them (step counts aside).
    """
    rng = random.Random(seed)
    env = make_env()
    for walk in walks:
        reference = play(env, walk.task, walk.actions)
        cut = rng.randint(0, len(walk.actions))
        if reference[cut][2] or reference[cut][3]:
            cut = max(cut - 1, 0)
        play(env, walk.task, walk.actions[:cut])
        for action in malformed:
            try:
                _, reward, terminated, truncated, info = env.step(action)
            except Exception as error:
                raise ConformanceError(
                    f"step({_describe(action, 60)}) raised {type(error).__name__}: {error} "
                    f"(task {walk.task!r}, after {cut} actions)"
                ) from error
            if info.get("invalid") is not True:
                raise ConformanceError(
                    f"malformed action {_describe(action, 60)} not flagged info['invalid'] "
                    f"(task {walk.task!r}, after {cut} actions)"
                )
            if terminated or reward != 0.0:
                raise ConformanceError(
                    f"malformed action {_describe(action, 60)} ended the episode or paid "
                    f"a reward (task {walk.task!r})"
                )
            if truncated:
                break
        else:
            rest = _continue_until_done(env, walk.actions[cut:])
            assert_same(
                [_game_part(s) for s in reference[cut + 1 : cut + 1 + len(rest)]],
                [_game_part(s) for s in rest],
                f"continuing after malformed actions at step {cut}",
                walk,
            )
    env.close()


def _continue_until_done(env: gym.Env, actions: Sequence[str]) -> list[Step]:
    """Like ``_continue``, but stops at the end of the episode (the extra malformed steps
    may bring the step limit sooner)."""
    steps = []
    for action in actions:
        steps.append(env.step(action))
        if steps[-1][2] or steps[-1][3]:
            break
    return steps


def _game_part(step: Step) -> tuple[Any, ...]:
    """A step without its step count and truncation, which the malformed steps shift."""
    obs, reward, terminated, _, info = step
    info = copy.copy(info)
    info.pop("step", None)
    return obs, reward, terminated, info


def check_conformance(
    make_env: EnvFactory,
    *,
    tasks: Sequence[TaskId] | None = None,
    n_walks: int = 8,
    max_length: int = 15,
    seed: int = 0,
    action_sampler: ActionSampler | None = None,
    malformed: Sequence[str] = MALFORMED_ACTIONS,
    fresh_process: bool = True,
) -> None:
    """Run every check of the kit; raises ``ConformanceError`` on the first violation."""
    check_gymnasium_api(make_env)
    walks = random_walks(
        make_env,
        n_walks=n_walks,
        max_length=max_length,
        seed=seed,
        tasks=tasks,
        action_sampler=action_sampler,
        malformed=malformed,
    )
    check_determinism(make_env, walks, fresh_process=fresh_process)
    check_snapshot_restore(make_env, walks, seed=seed, fresh_process=fresh_process)
    check_malformed_actions(make_env, walks, malformed=malformed, seed=seed)
