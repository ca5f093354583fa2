"""Exploration along expert trajectories (IPR §3.2): the agent acts from every expert
prefix and continues to the end.

Each expert trajectory is replayed once, keeping the env's snapshot after every step;
every branch then starts with ``restore`` from the snapshot of its prefix (never a replay),
with the expert's conversation up to there, and the prefix's steps count toward the env's
step limit, as in IPR. The branch from step 0 is the agent's own whole episode, which
IPR's outcome pairs contrast with the expert's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ipr_gym.core import Snapshot
from ipr_gym.pool import EnvPool
from ipr_gym.react import ReActProtocol
from ipr_train.policies.base import GenerationParams, Policy
from ipr_train.records import Trajectory
from ipr_train.rollout import RolloutResult, Start, rollout


@dataclass(frozen=True)
class ExpertPath:
    """An expert trajectory and the env's state before each of its steps and after the last
    (``snapshots[t]``: after ``t`` steps)."""

    trajectory: Trajectory
    snapshots: tuple[Snapshot, ...]

    def prefix(self, t: int) -> Start:
        """Where step ``t`` begins: the state after ``t`` steps and the turns before reply t."""
        steps = self.trajectory.steps
        return Start(snapshot=self.snapshots[t], messages=self.trajectory.turns[: steps[t].turn],
                     steps_taken=t, id=self.trajectory.id)  # fmt: skip


def expert_replies(trajectory: Trajectory) -> tuple[str, ...]:
    return tuple(trajectory.turns[s.turn].content for s in trajectory.steps)


def replay_experts(
    pool: EnvPool, protocol: ReActProtocol, experts: Sequence[Trajectory], *,
    data_dir: str | None = None,
) -> tuple[list[ExpertPath], RolloutResult]:  # fmt: skip
    """Replay each expert once with snapshots; an expert whose replay differs from its record
    (other turns or reward) is an error: the data does not belong to this env."""
    starts = [Start(task=t.task, script=expert_replies(t), id=t.id) for t in experts]
    result = rollout(None, pool, protocol, starts, max_steps=None, keep_snapshots=True,
                     data_dir=data_dir)  # fmt: skip
    assert result.snapshots is not None
    paths = []
    for expert, replayed, snaps in zip(experts, result.trajectories, result.snapshots,
                                       strict=True):  # fmt: skip
        if replayed.turns != expert.turns or replayed.reward != expert.reward:
            raise ValueError(f"expert {expert.id or expert.task!r} does not replay in "
                             f"{pool.env_id} as recorded (reward {replayed.reward} vs "
                             f"{expert.reward}); rebuild it with `ipr-train experts`")  # fmt: skip
        paths.append(ExpertPath(expert, tuple(snaps)))
    return paths, result


def explore(
    policy: Policy, pool: EnvPool, protocol: ReActProtocol, paths: Sequence[ExpertPath],
    params: GenerationParams, *, max_steps: int | None, data_dir: str | None = None,
    progress: Any = None, start_only: bool = False, limit: int | None = None,
) -> RolloutResult:  # fmt: skip
    """The agent's continuation from every prefix of every expert path (meta: ``expert``,
    the path's index, and ``step``), ``params.n`` samples each, with snapshots after each of
    its steps; ``start_only``: from the empty prefix only (the agent's own whole episodes);
    ``limit``: at most that many steps from each prefix (1: only the agent's next action)."""
    starts = []
    for index, path in enumerate(paths):
        for t in range(1 if start_only else len(path.trajectory.steps)):
            start = path.prefix(t)
            starts.append(Start(snapshot=start.snapshot, messages=start.messages,
                                steps_taken=t, params=params, id=f"{start.id}@{t}",
                                limit=limit, meta={"expert": index, "step": t}))  # fmt: skip
    return rollout(policy, pool, protocol, starts, max_steps=max_steps, keep_snapshots=True,
                   data_dir=data_dir, progress=progress)  # fmt: skip
