"""THE episode engine: every stage that plays episodes (evaluation, exploration, Monte Carlo
continuations, expert replay) goes through ``rollout``.

A batch of ``Start``s, each a task (the env is reset) or a ``Snapshot`` with the
conversation the agent had there and the steps it already took; each with its own
``GenerationParams`` and ``n`` samples. Every generation round sends one request per live
episode to the policy, all at once (the ``n`` fresh episodes of one start share a single
request with ``n`` samples, so they share its prompt); the env steps of the round go to the
``EnvPool`` in one batch. IPR's rules: a reply without a readable action gets the
protocol's format error and counts as a step; an episode ends when the env ends it or after
``max_steps`` steps (those of the prefix included), scoring 0 unless the env paid a reward;
a request the policy cannot serve (prompt past the model's context, a server error after
retries) ends that episode as a failure, counted, and never the batch.

Seeds: the request of episode ``j`` of start ``i`` at turn ``t`` is seeded with
``derive_seed(params.seed, i, j, t)``, so samples differ across starts, samples and turns,
and a rerun with the same seeds gives the same episodes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from ipr_gym.core import Snapshot, TaskId
from ipr_gym.pool import EnvPool, SlotError
from ipr_gym.react import ReActProtocol
from ipr_train.policies.base import Completion, GenerationParams, Policy, derive_seed
from ipr_train.records import EnvStep, Trajectory, Turn


@dataclass(frozen=True)
class Start:
    """Where episodes begin: ``task`` (reset) or ``snapshot`` + ``messages`` (the agent's
    conversation at that point, ending with the observation it answers next) +
    ``steps_taken`` (counted toward the step limit; default: the snapshot's step)."""

    task: TaskId | None = None
    snapshot: Snapshot | None = None
    messages: tuple[Turn, ...] = ()
    steps_taken: int | None = None
    reward: float = 0.0
    """The outcome reward, where the snapshot's episode has already ended."""
    params: GenerationParams = field(default_factory=GenerationParams)
    script: tuple[str, ...] | None = None
    """Replies to play instead of asking the policy (expert replay, expert continuations);
    the episode ends when they run out."""
    limit: int | None = None
    """At most this many steps of its own (StepAgent: the agent's one action at a prefix)."""
    id: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if (self.task is None) == (self.snapshot is None):
            raise ValueError("a Start has either a task or a snapshot")
        if self.snapshot is not None and not self.messages:
            raise ValueError("a Start from a snapshot needs the conversation that led there")

    @property
    def prefix_steps(self) -> int:
        if self.steps_taken is not None:
            return self.steps_taken
        return self.snapshot.step if self.snapshot is not None else 0


@dataclass
class RolloutCounters:
    """What a rollout cost; ``add`` sums the counters of several."""

    episodes: int = 0
    policy_calls: int = 0
    prompt_tokens: int = 0
    generated_tokens: int = 0
    env_steps: int = 0
    env_seconds: float = 0.0
    generation_seconds: float = 0.0
    generation_failures: int = 0
    env_failures: int = 0

    def add(self, other: RolloutCounters) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))


@dataclass
class RolloutResult:
    trajectories: list[Trajectory]
    counters: RolloutCounters
    snapshots: list[list[Snapshot]] | None = None
    """Per trajectory (``keep_snapshots=True``): the env's state at the start, then after each
    of its steps (a reply without an action leaves the state as it was, so ``snapshots[k]``
    is always the state after ``k`` steps)."""


@dataclass
class _Episode:
    start: int
    sample: int
    messages: list[Turn]
    count: int
    steps: list[EnvStep] = field(default_factory=list)
    snapshots: list[Snapshot] = field(default_factory=list)
    slot: int = -1
    replies: int = 0
    fresh: bool = True
    reward: float = 0.0
    won: bool = False
    done: bool = False
    error: str | None = None


def rollout(
    policy: Policy | None,
    pool: EnvPool,
    protocol: ReActProtocol,
    starts: Sequence[Start],
    *,
    max_steps: int | None,
    keep_snapshots: bool = False,
    data_dir: str | None = None,
    progress: Any = None,
) -> RolloutResult:
    """Play every start ``start.params.n`` times; trajectories in start order, then sample.

    ``progress`` is an optional tqdm-like bar, advanced by one per finished episode.
    """
    counters = RolloutCounters()
    queue = [(i, j) for i, s in enumerate(starts) for j in range(s.params.n)]
    queue.reverse()  # pop() from the end takes them in order
    live: dict[int, _Episode] = {}
    finished: dict[tuple[int, int], _Episode] = {}
    rewards: list[float] = []

    def env_call(op: str, *args: Any) -> list[Any]:
        began = time.perf_counter()
        out = getattr(pool, op)(*args)
        counters.env_seconds += time.perf_counter() - began
        return out

    def finish(slot: int) -> None:
        episode = live.pop(slot)
        finished[(episode.start, episode.sample)] = episode
        rewards.append(episode.reward)
        if progress is not None:
            progress.update(1)
            progress.set_postfix(mean_reward=f"{sum(rewards) / len(rewards):.3f}")

    while queue or live:
        free = [s for s in range(pool.slots) if s not in live]
        admitted = [queue.pop() for _ in free[: len(queue)]]
        _admit(admitted, free, starts, live, protocol, data_dir, env_call, counters)
        if keep_snapshots:
            _first_snapshots(admitted, free, starts, live, env_call)
        spent = [s for s in live if _spent(live[s], starts, max_steps)]
        order = sorted(s for s in live if not live[s].done and s not in spent)
        scripted = [s for s in order if starts[live[s].start].script is not None]
        requests = _requests([s for s in order if s not in scripted], live, starts)
        began = time.perf_counter()
        if requests and policy is None:
            raise ValueError("a rollout without a policy takes scripted starts only")
        completions = [] if not requests or policy is None else policy.complete(
            [[{"role": t.role, "content": t.content} for t in live[group[0]].messages]
             for group, _ in requests],
            [p for _, p in requests],
        )  # fmt: skip
        counters.generation_seconds += time.perf_counter() - began
        moves: list[tuple[int, str]] = []
        for slot in scripted:
            script, done = starts[live[slot].start].script or (), live[slot].replies
            reply = Completion((script[done],)) if done < len(script) else Completion(
                error="the script has no more replies")  # fmt: skip
            action = _answer(live[slot], reply, 0, protocol, counters)
            if action is not None:
                moves.append((slot, action))
        for (group, _), completion in zip(requests, completions, strict=True):
            counters.policy_calls += 1
            counters.prompt_tokens += completion.prompt_tokens
            counters.generated_tokens += completion.generated_tokens
            for k, slot in enumerate(group):
                action = _answer(live[slot], completion, k, protocol, counters)
                if action is not None:
                    moves.append((slot, action))
        results = env_call("step", moves) if moves else []
        counters.env_steps += len(moves)
        snaps = env_call("snapshot", [s for s, _ in moves]) if keep_snapshots and moves else []
        for index, ((slot, action), result) in enumerate(zip(moves, results, strict=True)):
            _observe(live[slot], action, result, protocol, counters)
            if keep_snapshots and not isinstance(result, SlotError):
                live[slot].snapshots.append(snaps[index])
        if keep_snapshots:  # replies without an action: the state is the one before
            for episode in live.values():
                while episode.snapshots and len(episode.snapshots) <= len(episode.steps):
                    episode.snapshots.append(episode.snapshots[-1])
        for slot in sorted(live):
            episode = live[slot]
            if episode.done or _spent(episode, starts, max_steps):
                finish(slot)

    out = [finished[key] for key in sorted(finished)]
    counters.episodes += len(out)
    return RolloutResult(
        trajectories=[_trajectory(e, starts[e.start], pool.env_id) for e in out],
        counters=counters,
        snapshots=[e.snapshots for e in out] if keep_snapshots else None,
    )


def _spent(episode: _Episode, starts: Sequence[Start], max_steps: int | None) -> bool:
    """Whether the episode used up its steps: the env's limit or the start's own."""
    start = starts[episode.start]
    if start.limit is not None and episode.count - start.prefix_steps >= start.limit:
        return True
    return max_steps is not None and episode.count >= max_steps


def _admit(
    admitted: list[tuple[int, int]], free: list[int], starts: Sequence[Start],
    live: dict[int, _Episode], protocol: ReActProtocol, data_dir: str | None,
    env_call: Callable[..., list[Any]], counters: RolloutCounters,
) -> None:  # fmt: skip
    """Reset or restore a slot for each admitted episode and give it its conversation."""
    by_task = [
        (slot, i, j)
        for slot, (i, j) in zip(free, admitted, strict=False)
        if starts[i].task is not None
    ]
    by_snap = [
        (slot, i, j) for slot, (i, j) in zip(free, admitted, strict=False) if starts[i].task is None
    ]
    answers: dict[int, Any] = {}
    if by_task:
        slots = [slot for slot, _, _ in by_task]
        tasks = [starts[i].task for _, i, _ in by_task]
        answers.update(zip(slots, env_call("reset", slots, tasks), strict=True))
    if by_snap:
        slots = [slot for slot, _, _ in by_snap]
        snaps = [starts[i].snapshot for _, i, _ in by_snap]
        answers.update(zip(slots, env_call("restore", slots, snaps), strict=True))
    for slot, i, j in by_task + by_snap:
        start, answer = starts[i], answers[slot]
        if start.task is not None and not isinstance(answer, SlotError):
            obs, _ = answer
            messages = [Turn(m["role"], m["content"]) for m in protocol.opening(obs, data_dir)]
        else:
            messages = list(start.messages)
        episode = _Episode(i, j, messages, start.prefix_steps, slot=slot)
        live[slot] = episode
        if isinstance(answer, SlotError):
            episode.done, episode.error = True, f"env error: {answer.message}"
            counters.env_failures += 1
        elif start.snapshot is not None and start.snapshot.ended:
            episode.done = True  # nothing to continue: the prefix already ended the episode
            episode.reward = start.reward
            episode.won = bool(start.snapshot.info.get("won", False))


def _first_snapshots(
    admitted: list[tuple[int, int]], free: list[int], starts: Sequence[Start],
    live: dict[int, _Episode], env_call: Callable[..., list[Any]],
) -> None:  # fmt: skip
    """The start state of each admitted episode: its snapshot, or one taken after reset."""
    reset = [slot for slot, (i, _) in zip(free, admitted, strict=False)
             if starts[i].task is not None and not live[slot].done]  # fmt: skip
    taken = dict(zip(reset, env_call("snapshot", reset), strict=True)) if reset else {}
    for slot, (i, _) in zip(free, admitted, strict=False):
        snap = starts[i].snapshot if starts[i].snapshot is not None else taken.get(slot)
        if snap is not None and not isinstance(snap, SlotError):
            live[slot].snapshots.append(snap)


def _requests(
    order: list[int], live: dict[int, _Episode], starts: Sequence[Start]
) -> list[tuple[list[int], GenerationParams]]:
    """One request per live episode, except that fresh episodes of one start share one."""
    requests: list[tuple[list[int], GenerationParams]] = []
    shared: dict[int, list[int]] = {}
    for slot in order:
        episode = live[slot]
        if episode.fresh:
            shared.setdefault(episode.start, []).append(slot)
            continue
        requests.append(([slot], _params(starts, episode, 1)))
    for slots in shared.values():
        episode = live[slots[0]]  # the lowest sample of the group names the request
        requests.append((slots, _params(starts, episode, len(slots))))
    return requests


def _params(starts: Sequence[Start], episode: _Episode, n: int) -> GenerationParams:
    params = starts[episode.start].params
    seed = (
        None
        if params.seed is None
        else derive_seed(params.seed, episode.start, episode.sample, episode.replies)
    )
    return params.with_seed(seed, n)


def _answer(
    episode: _Episode, completion: Completion, k: int, protocol: ReActProtocol,
    counters: RolloutCounters,
) -> str | None:  # fmt: skip
    """Record the ``k``-th reply of ``completion``; the env action to take, if any."""
    episode.fresh = False
    episode.replies += 1
    if completion.error is not None or k >= len(completion.texts):
        episode.done, episode.error = True, f"generation failed: {completion.error}"
        counters.generation_failures += 1
        return None
    reply = completion.texts[k]
    episode.messages.append(Turn("assistant", reply))
    action = protocol.parse_action(reply)
    if action is None:
        episode.messages.append(Turn("user", protocol.format_error))
        episode.steps.append(EnvStep(None, protocol.format_error, invalid=True,
                                     turn=len(episode.messages) - 2))  # fmt: skip
        episode.count += 1
    return action


def _observe(
    episode: _Episode, action: str, result: Any, protocol: ReActProtocol,
    counters: RolloutCounters,
) -> None:  # fmt: skip
    turn = len(episode.messages) - 1
    episode.count += 1
    if isinstance(result, SlotError):
        episode.steps.append(EnvStep(action, f"[env error: {result.message}]", invalid=True,
                                     turn=turn))  # fmt: skip
        episode.done, episode.error = True, f"env error: {result.message}"
        counters.env_failures += 1
        return
    obs, reward, terminated, truncated, info = result
    episode.messages.append(Turn("user", protocol.format_observation(obs)))
    episode.steps.append(EnvStep(
        action, obs, float(reward), bool(terminated), bool(truncated),
        bool(info.get("invalid")), bool(info.get("won")), info.get("progress"), turn,
    ))  # fmt: skip
    if terminated or truncated:
        episode.done, episode.reward, episode.won = True, float(reward), bool(info.get("won"))


def _trajectory(episode: _Episode, start: Start, env_id: str) -> Trajectory:
    task = start.task if start.task is not None else start.snapshot.task  # type: ignore[union-attr]
    meta: dict[str, Any] = dict(start.meta, start=episode.start, sample=episode.sample)
    if start.snapshot is not None:
        meta["prefix_steps"] = start.prefix_steps
        meta["prefix_turns"] = len(start.messages)
    if episode.error is not None:
        meta["error"] = episode.error
    return Trajectory(
        env_id=env_id, task=task, turns=tuple(episode.messages), steps=tuple(episode.steps),
        reward=episode.reward, success=episode.won,
        id=start.id or f"{env_id}/{task}", meta=meta,
    )  # fmt: skip
