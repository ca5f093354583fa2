"""Env pool throughput against a single in-process env, and the cost of fan-out.

``python -m benchmarks bench-pool``: 8 slots of ALFWorld on the textworld engine (a
CPU-bound env, ~80 ms a step) step seeded admissible actions in batches; steps/s for one
env in this process, and for the pool with 1 and 2 workers. Fan-out: restoring one
snapshot into N slots of the native engine (the Monte Carlo branching pattern).
"""

from __future__ import annotations

import argparse
import random
import time

import gymnasium as gym

import ipr_gym
from benchmarks.results_io import write_results
from ipr_gym.pool import EnvPool, SlotError

ENV = "ipr/ALFWorld-v0"


def _tasks(n: int) -> list[str]:
    env = gym.make(ENV, split="valid_seen")
    return list(env.unwrapped.tasks[:n])


def single_env_steps_per_s(tasks: list[str], steps: int) -> float:
    env = ipr_gym.make(ENV, split="valid_seen", engine="textworld", max_episode_steps=None)
    rng = random.Random(0)
    _, info = env.reset(options={"task": tasks[0]})
    start = time.perf_counter()
    for _ in range(steps):
        _, _, terminated, truncated, info = env.step(rng.choice(info["valid_actions"]))
        if terminated or truncated:
            _, info = env.reset(options={"task": tasks[0]})
    return steps / (time.perf_counter() - start)


def pool_steps_per_s(tasks: list[str], workers: int, batches: int) -> float:
    slots = len(tasks)
    kwargs = {"split": "valid_seen", "engine": "textworld"}
    with EnvPool(ENV, slots, workers=workers, env_kwargs=kwargs) as pool:
        infos = [info for _, info in pool.reset(range(slots), tasks=tasks)]
        rng = random.Random(0)
        start = time.perf_counter()
        for _ in range(batches):
            results = pool.step([(s, rng.choice(infos[s]["valid_actions"])) for s in range(slots)])
            for s, result in enumerate(results):
                assert not isinstance(result, SlotError), result
                infos[s] = result[4]
                if result[2] or result[3]:
                    infos[s] = pool.reset([s], tasks=[tasks[s]])[0][1]
        return slots * batches / (time.perf_counter() - start)


def fan_out_ms(n: int, workers: int) -> float:
    with EnvPool(ENV, n, workers=workers, env_kwargs={"split": "valid_seen"}) as pool:
        _, info = pool.reset([0], tasks=[_tasks(1)[0]])[0]
        pool.step([(0, info["valid_actions"][0])])
        snap = pool.snapshot([0])[0]
        pool.restore(range(n), [snap] * n)  # warm every worker's game cache
        start = time.perf_counter()
        for _ in range(5):
            pool.restore(range(n), [snap] * n)
        return (time.perf_counter() - start) / 5 * 1000


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench-pool")
    parser.add_argument("--batches", type=int, default=12)
    args = parser.parse_args(argv)
    tasks = _tasks(8)
    single = single_env_steps_per_s(tasks, 8 * args.batches // 2)
    one = pool_steps_per_s(tasks, 1, args.batches)
    two = pool_steps_per_s(tasks, 2, args.batches)
    metrics = {
        "single_env_steps_per_s": single,
        "pool_1_worker_steps_per_s": one,
        "pool_2_workers_steps_per_s": two,
        "fan_out_64_slots_2_workers_ms": fan_out_ms(64, 2),
        "fan_out_64_slots_in_process_ms": fan_out_ms(64, 0),
    }
    ratios = {
        "two_workers_over_one": two / one,
        "one_worker_over_single_env": one / single,
    }
    notes = (
        "ALFWorld valid_seen on the textworld engine, 8 slots, seeded admissible actions; "
        "fan-out restores one native-engine snapshot into 64 slots (mean of 5)."
    )
    path = write_results("pool", metrics, ratios, notes)
    print(path.read_text())
    return 0
