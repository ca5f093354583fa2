"""Soak the env pool at full rate and record memory and processes (not run by CI).

``python -m benchmarks pool_soak --minutes 60``: 8 slots of ALFWorld (native engine) over
2 workers, branching from snapshots and stepping admissible actions as fast as possible.
Every 30 s it records the RSS of the parent and each worker and the number of processes
descending from this one; the result is ``benchmarks/results/pool_soak.json``.
"""

from __future__ import annotations

import argparse
import os
import random
import time
from pathlib import Path

from benchmarks.results_io import write_results
from ipr_gym.pool import EnvPool, SlotError


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except FileNotFoundError:
        pass
    return 0.0


def descendants(pid: int) -> int:
    children = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (FileNotFoundError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    count, stack = 0, [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            count += 1
            stack.append(child)
    return count


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="pool_soak")
    parser.add_argument("--minutes", type=float, default=60.0)
    args = parser.parse_args(argv)
    rng = random.Random(0)
    samples = []
    steps = 0
    with EnvPool("ipr/ALFWorld-v0", 8, workers=2, env_kwargs={"split": "valid_seen"}) as pool:
        tasks = pool.tasks()
        infos = [i for _, i in pool.reset(range(8), tasks=rng.sample(tasks, 8))]
        start = last = time.monotonic()
        while time.monotonic() - start < args.minutes * 60:
            results = pool.step([(s, rng.choice(infos[s]["valid_actions"])) for s in range(8)])
            steps += 8
            for s, result in enumerate(results):
                if isinstance(result, SlotError) or result[2] or result[3]:
                    infos[s] = pool.reset([s], tasks=[rng.choice(tasks)])[0][1]
                else:
                    infos[s] = result[4]
                    if rng.random() < 0.05:  # branch: restore a sibling's snapshot here
                        snap = pool.snapshot([s])[0]
                        other = rng.randrange(8)
                        infos[other] = pool.restore([other], [snap])[0][1]
            if time.monotonic() - last >= 30 or not samples:
                last = time.monotonic()
                samples.append(
                    {
                        "minute": (last - start) / 60,
                        "parent_rss_mb": rss_mb(os.getpid()),
                        "workers_rss_mb": sum(rss_mb(p) for p in pool.worker_pids),
                        "processes": descendants(os.getpid()),
                        "steps": steps,
                    }
                )
                print(samples[-1], flush=True)
    time.sleep(1)
    after = descendants(os.getpid())
    first, final = samples[min(2, len(samples) - 1)], samples[-1]  # after warm-up
    total = final["parent_rss_mb"] + final["workers_rss_mb"]
    base = first["parent_rss_mb"] + first["workers_rss_mb"]
    metrics = {
        "minutes": args.minutes,
        "steps": float(steps),
        "rss_mb_after_warmup": base,
        "rss_mb_at_end": total,
        "max_processes_during": float(max(s["processes"] for s in samples)),
        "processes_after_close": float(after),
    }
    write_results(
        "pool_soak",
        metrics,
        {"rss_growth": total / base - 1},
        notes="RSS growth measured from the third sample (1 min) to the end.",
    )
    return 0
