"""Monte Carlo step rewards from snapshots (IPR Eq. 3-5), with a cache.

The step reward of action a_t at prefix e_{t-1} is the mean outcome reward of N
continuations that a fixed scorer (the SFT model, temperature 1, N = 5) samples from the
state after a_t; where a_t ended the episode it is the outcome reward itself. The N
continuations of one state are one request with ``n = N`` (they share the prompt) starting
from the state's snapshot, never a replay.

The scorer is fixed across iterations, so an estimate depends only on the state it scores
and on the scorer: the ``EstimateCache`` keys it by (env, task, the env actions that led
there, the steps taken, scorer) and never computes it twice. The expert's estimates are
computed in the first iteration and reused in every later one, and an agent action equal to
the expert's (same env actions) reuses the expert's estimate.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ipr_gym.core import Snapshot
from ipr_gym.pool import EnvPool
from ipr_gym.react import ReActProtocol
from ipr_train.policies.base import GenerationParams, Policy
from ipr_train.records import Trajectory, Turn
from ipr_train.rollout import RolloutCounters, Start, rollout

Key = tuple[str, str, tuple[str, ...], int, str]


@dataclass(frozen=True)
class Branch:
    """A state to score: reached by ``action`` (None: a reply without one) at ``step``."""

    snapshot: Snapshot
    messages: tuple[Turn, ...]
    steps_taken: int
    step: int
    action: str | None
    ended: bool = False
    reward: float = 0.0
    """The outcome reward, where ``action`` ended the episode."""

    @classmethod
    def after_step(
        cls, trajectory: Trajectory, k: int, snapshot: Snapshot, steps_taken: int
    ) -> Branch:
        """The state after the k-th step of ``trajectory``'s own (``snapshot``), its
        ``steps_taken``-th step counting a prefix it started from."""
        step = trajectory.steps[k]
        return cls(snapshot=snapshot, messages=trajectory.turns[: step.turn + 2],
                   steps_taken=steps_taken, step=steps_taken - 1, action=step.action,
                   ended=step.terminated or step.truncated, reward=trajectory.reward)  # fmt: skip


@dataclass(frozen=True)
class Estimate:
    env_id: str
    task: Any
    actions: tuple[str, ...]
    steps_taken: int
    scorer: str
    step: int
    action: str | None
    rewards: tuple[float, ...]
    mean: float

    @property
    def key(self) -> Key:
        return (self.env_id, repr(self.task), self.actions, self.steps_taken, self.scorer)


@dataclass
class EstimateCounters:
    computed: int = 0
    reused: int = 0
    rollout: RolloutCounters = field(default_factory=RolloutCounters)


class EstimateCache:
    """Estimates by key, persisted as JSONL (appended as they are computed)."""

    def __init__(self, path: str | Path | None = None):
        self.path = None if path is None else Path(path)
        self.entries: dict[Key, Estimate] = {}
        if self.path is not None and self.path.is_file():
            for estimate in read_estimates(self.path):
                self.entries[estimate.key] = estimate

    def get(self, key: Key) -> Estimate | None:
        return self.entries.get(key)

    def add(self, estimates: Iterable[Estimate]) -> None:
        new = [e for e in estimates if e.key not in self.entries]
        for e in new:
            self.entries[e.key] = e
        if self.path is not None and new:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as f:
                for e in new:
                    f.write(json.dumps(asdict(e), ensure_ascii=False) + "\n")


def read_estimates(path: str | Path) -> list[Estimate]:
    out = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.strip():
            raw = json.loads(line)
            raw["actions"], raw["rewards"] = tuple(raw["actions"]), tuple(raw["rewards"])
            out.append(Estimate(**raw))
    return out


def branch_key(env_id: str, branch: Branch, scorer: str) -> Key:
    snap = branch.snapshot
    return (env_id, repr(snap.task), snap.actions, branch.steps_taken, scorer)


def estimate_step_rewards(
    scorer: Policy, scorer_id: str, pool: EnvPool, protocol: ReActProtocol,
    branches: Sequence[Branch], cache: EstimateCache, params: GenerationParams, *,
    max_steps: int | None, data_dir: str | None = None, progress: Any = None,
) -> tuple[list[Estimate], EstimateCounters]:  # fmt: skip
    """One estimate per branch, from the cache where it has one; ``params.n`` samples each."""
    counters = EstimateCounters()
    env_id = pool.env_id
    keys = [branch_key(env_id, b, scorer_id) for b in branches]
    todo: dict[Key, Branch] = {}
    for key, branch in zip(keys, branches, strict=True):
        if cache.get(key) is not None or key in todo:
            continue
        if branch.ended:
            cache.add([_estimate(env_id, branch, scorer_id, (branch.reward,))])
            counters.computed += 1
            continue
        todo[key] = branch
    starts = [Start(snapshot=b.snapshot, messages=b.messages, steps_taken=b.steps_taken,
                    params=params) for b in todo.values()]  # fmt: skip
    if starts:
        result = rollout(scorer, pool, protocol, starts, max_steps=max_steps, data_dir=data_dir,
                         progress=progress)  # fmt: skip
        counters.rollout = result.counters
        by_start: dict[int, list[float]] = {}
        for t in result.trajectories:
            by_start.setdefault(t.meta["start"], []).append(t.reward)
        cache.add(_estimate(env_id, b, scorer_id, tuple(by_start[i]))
                  for i, b in enumerate(todo.values()))  # fmt: skip
        counters.computed += len(todo)
    out = []
    for key in keys:
        estimate = cache.get(key)
        assert estimate is not None
        out.append(estimate)
    counters.reused = len(keys) - counters.computed
    return out, counters


def _estimate(env_id: str, b: Branch, scorer: str, rewards: tuple[float, ...]) -> Estimate:
    return Estimate(env_id=env_id, task=b.snapshot.task, actions=b.snapshot.actions,
                    steps_taken=b.steps_taken, scorer=scorer, step=b.step, action=b.action,
                    rewards=rewards, mean=sum(rewards) / len(rewards))  # fmt: skip
