"""Evaluation: play a split with a policy, batched across environments in the env pool.

Each episode is prompted with the env's ReAct protocol (IPR's instruction, examples and
task text), every reply parsed as IPR parses it; a reply without a readable action gets
the protocol's format error and counts as a step, as in IPR. Episodes stop when the env
ends them or after the env's step limit (IPR's: WebShop 10, InterCode 10, ALFWorld 20); a
stopped episode scores 0, again as IPR scores it. Generation is batched over every live
episode, env steps go to the pool in one batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym

import ipr_gym  # noqa: F401 - registers the ids
from ipr_gym.pool import EnvPool, SlotError
from ipr_gym.react import get_protocol
from ipr_train.config import EnvEval
from ipr_train.policies.base import GenerationParams, Policy
from ipr_train.records import EnvStep, Trajectory, Turn, write_jsonl

PAPER_SPLIT_NAMES = {"valid_seen": "seen", "valid_unseen": "unseen"}


@dataclass(frozen=True)
class EvalResult:
    env_id: str
    split: str
    episodes: int
    avg_reward: float
    success_rate: float
    avg_steps: float


@dataclass
class _Episode:
    task: Any
    messages: list[dict[str, str]]
    steps: list[EnvStep]
    count: int = 0
    reward: float = 0.0
    won: bool = False
    done: bool = False


def _step_limit(env: EnvEval) -> int | None:
    limit = env.kwargs.get("max_episode_steps", gym.spec(env.id).kwargs.get("max_episode_steps"))
    return None if limit is None else int(limit)


def evaluate_env(
    policy: Policy, env: EnvEval, params: GenerationParams, *, workers: int = 0, slots: int = 8,
    data_dir: str | None = None,
) -> tuple[list[Trajectory], EvalResult]:  # fmt: skip
    protocol = get_protocol(env.id)
    limit = _step_limit(env)
    kwargs = dict(env.kwargs, split=env.split, max_episode_steps=None)
    if data_dir is not None:
        kwargs.setdefault("data_dir", data_dir)
    finished: list[_Episode] = []
    with EnvPool(env.id, slots, workers=workers, env_kwargs=kwargs) as pool:
        queue = list(pool.tasks())[: env.limit]
        live: dict[int, _Episode] = {}
        while queue or live:
            free = [s for s in range(slots) if s not in live][: len(queue)]
            if free:
                tasks = [queue.pop(0) for _ in free]
                for slot, task, (obs, _) in zip(free, tasks, pool.reset(free, tasks), strict=True):
                    opening = [
                        {"role": m["role"], "content": m["content"]}
                        for m in protocol.opening(obs, data_dir)
                    ]
                    live[slot] = _Episode(task, opening, [])
            order = sorted(live)
            replies = policy.generate([live[s].messages for s in order], params)
            moves = []
            for slot, reply in zip(order, replies, strict=True):
                episode = live[slot]
                episode.messages.append({"role": "assistant", "content": reply})
                action = protocol.parse_action(reply)
                if action is None:
                    episode.messages.append({"role": "user", "content": protocol.format_error})
                    episode.steps.append(EnvStep(None, protocol.format_error, invalid=True))
                    episode.count += 1
                else:
                    moves.append((slot, action))
            results = pool.step(moves) if moves else []
            for (slot, action), result in zip(moves, results, strict=True):
                episode = live[slot]
                episode.count += 1
                if isinstance(result, SlotError):
                    episode.steps.append(EnvStep(action, f"[env error: {result}]", invalid=True))
                    episode.done = True
                    continue
                obs, reward, terminated, truncated, info = result
                episode.messages.append(
                    {"role": "user", "content": protocol.format_observation(obs)}
                )
                episode.steps.append(EnvStep(
                    action, obs, float(reward), bool(terminated), bool(truncated),
                    bool(info.get("invalid")), bool(info.get("won")), info.get("progress"),
                ))  # fmt: skip
                if terminated:
                    episode.done, episode.reward, episode.won = (
                        True,
                        float(reward),
                        bool(info["won"]),
                    )
            for slot in order:
                episode = live[slot]
                if episode.done or (limit is not None and episode.count >= limit):
                    finished.append(live.pop(slot))
    trajectories = [
        Trajectory(
            env_id=env.id,
            task=e.task,
            id=f"{env.id}/{env.split}/{e.task}",
            turns=tuple(Turn(m["role"], m["content"]) for m in e.messages),  # type: ignore[arg-type]
            steps=tuple(e.steps),
            reward=e.reward,
            success=e.won,
        )
        for e in finished
    ]
    n = max(len(finished), 1)
    result = EvalResult(
        env_id=env.id, split=env.split, episodes=len(finished),
        avg_reward=sum(e.reward for e in finished) / n,
        success_rate=sum(e.won for e in finished) / n,
        avg_steps=sum(e.count for e in finished) / n,
    )  # fmt: skip
    return trajectories, result


def evaluate(
    policy: Policy, envs: Sequence[EnvEval], params: GenerationParams, output_dir: str | Path, *,
    workers: int = 0, slots: int = 8, data_dir: str | None = None,
) -> list[EvalResult]:  # fmt: skip
    """Evaluate every env config; trajectories go to ``output_dir/<env>_<split>.jsonl``."""
    out = Path(output_dir)
    results = []
    for env in envs:
        trajectories, result = evaluate_env(
            policy, env, params, workers=workers, slots=slots, data_dir=data_dir
        )
        name = env.id.split("/")[-1] + f"_{env.split}.jsonl"
        write_jsonl(out / name, sorted(trajectories, key=lambda t: str(t.task)))
        results.append(result)
    return results


def results_table(results: Sequence[EvalResult]) -> str:
    """The papers' Table 2 form: average reward (and success) per env and split; ALFWorld's
    valid_seen / valid_unseen shown as seen / unseen."""
    rows = [
        "| env | split | episodes | avg reward | success | avg steps |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in results:
        split = PAPER_SPLIT_NAMES.get(r.split, r.split)
        rows.append(f"| {r.env_id} | {split} | {r.episodes} | {r.avg_reward:.3f} "
                    f"| {r.success_rate:.1%} | {r.avg_steps:.1f} |")  # fmt: skip
    return "\n".join(rows)
