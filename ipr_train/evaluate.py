"""Evaluation: play a split with a policy through the rollout engine and the env pool.

Each episode is prompted with the env's ReAct protocol (IPR's instruction, examples and
task text), every reply parsed as IPR parses it, the env built with the options the
protocol assumes (ALFWorld: the ETO wording) unless the config says otherwise. The step
limit is IPR's per env (WebShop 10, InterCode 10, ALFWorld 20) or the config's
``max_steps`` (``kwargs: {max_episode_steps: N}`` means the same); a stopped episode scores
0, as IPR scores it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym

import ipr_gym  # noqa: F401 - registers the ids
from ipr_gym.pool import EnvPool
from ipr_gym.react import get_protocol
from ipr_train.config import EnvEval
from ipr_train.policies.base import GenerationParams, Policy
from ipr_train.progress import progress_bar
from ipr_train.records import Trajectory, write_jsonl, write_text
from ipr_train.rollout import RolloutCounters, Start, rollout

PAPER_SPLIT_NAMES = {"valid_seen": "seen", "valid_unseen": "unseen"}


@dataclass(frozen=True)
class EvalResult:
    env_id: str
    split: str
    episodes: int
    avg_reward: float
    success_rate: float
    avg_steps: float
    failures: int = 0
    error: str | None = None


def env_setup(env: EnvEval, data_dir: str | None = None) -> tuple[dict[str, Any], int | None]:
    """The env's constructor keywords and the episode step limit of an eval entry."""
    protocol = get_protocol(env.id)
    kwargs: dict[str, Any] = {**protocol.env_kwargs, **env.kwargs, "split": env.split}
    limit = kwargs.pop("max_episode_steps", env.max_steps)
    if limit is None:
        limit = gym.spec(env.id).max_episode_steps
    kwargs["max_episode_steps"] = None  # the rollout engine counts steps, format errors too
    if data_dir is not None:
        kwargs.setdefault("data_dir", data_dir)
    return kwargs, None if limit is None else int(limit)


def evaluate_env(
    policy: Policy, env: EnvEval, params: GenerationParams, *, workers: int = 0, slots: int = 8,
    data_dir: str | None = None, counters: RolloutCounters | None = None,
) -> tuple[list[Trajectory], EvalResult]:  # fmt: skip
    protocol = get_protocol(env.id)
    kwargs, limit = env_setup(env, data_dir)
    data_dir = kwargs.get("data_dir")  # the protocol's examples come from the same place
    with EnvPool(env.id, slots, workers=workers, env_kwargs=kwargs) as pool:
        tasks = list(pool.tasks())[: env.limit]
        starts = [Start(task=t, params=params, id=f"{env.id}/{env.split}/{t}") for t in tasks]
        with progress_bar(len(starts), f"eval {env.id.split('/')[-1]} {env.split}") as bar:
            result = rollout(policy, pool, protocol, starts, max_steps=limit,
                             data_dir=data_dir, progress=bar)  # fmt: skip
    if counters is not None:
        counters.add(result.counters)
    done = result.trajectories
    n = max(len(done), 1)
    summary = EvalResult(
        env_id=env.id, split=env.split, episodes=len(done),
        avg_reward=sum(t.reward for t in done) / n,
        success_rate=sum(t.success for t in done) / n,
        avg_steps=sum(len(t.steps) for t in done) / n,
        failures=sum("error" in t.meta for t in done),
    )  # fmt: skip
    return done, summary


def evaluate(
    policy: Policy, envs: Sequence[EnvEval], params: GenerationParams, output_dir: str | Path, *,
    workers: int = 0, slots: int = 8, data_dir: str | None = None,
    counters: RolloutCounters | None = None,
) -> list[EvalResult]:  # fmt: skip
    """Evaluate every env config; trajectories go to ``output_dir/<env>_<split>.jsonl`` and
    the table so far to ``output_dir/results.md`` after each env, so an env that fails
    (its row says why) loses nothing that ran before it."""
    out = Path(output_dir)
    results = []
    for env in envs:
        try:
            trajectories, result = evaluate_env(
                policy, env, params, workers=workers, slots=slots, data_dir=data_dir,
                counters=counters,
            )  # fmt: skip
        except Exception as exc:
            results.append(EvalResult(env.id, env.split, 0, 0.0, 0.0, 0.0,
                                      error=f"{type(exc).__name__}: {exc}"))  # fmt: skip
        else:
            name = env.id.split("/")[-1] + f"_{env.split}.jsonl"
            write_jsonl(out / name, sorted(trajectories, key=lambda t: str(t.task)))
            results.append(result)
        write_text(out / "results.md", results_table(results) + "\n")
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
    failed = [r for r in results if r.error is not None]
    for r in failed:
        rows.append(f"\n{r.env_id} {r.split} failed: {r.error}")
    return "\n".join(rows)
