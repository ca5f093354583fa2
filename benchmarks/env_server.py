"""The envs as servers under load, against the same envs in process.

``python -m benchmarks bench-env_server``: for each env, one ``ipr-gym serve`` process and
64 concurrent sessions (``gym.make(id, remote=URL)``, one thread each) of 30 steps: seeded
actions, 10% of them malformed, a snapshot and a restore from its token every 10 steps, a
new episode whenever one ends. The same 64 scripts run on in-process envs; the transcripts
must be equal. Beside them, a stream of bad HTTP requests (malformed JSON, oversized or
missing actions, unknown tasks, tampered and forged tokens) must all be 4xx. Last, a pool
over two servers loses one (``kill -9``) midway and must give the in-process pool's results.
Reports p50/p99 latency of a step and a restore, over the wire and in process.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import threading
import time
from typing import Any

import gymnasium as gym
import requests

import ipr_gym
from benchmarks.results_io import write_results
from ipr_gym.core import find_text_env
from ipr_gym.pool import EnvPool, SlotError
from ipr_gym.service.process import start_server
from ipr_gym.service.tokens import Point, Signer
from ipr_gym.testing.conformance import MALFORMED_ACTIONS

KEY = "the benchmark's shared key, 32 bytes or more"
WORDS = ["shampoo", "console table", "dress", "eye cream", "razor", "jeans", "coffee"]
SQL = ["SHOW TABLES", "SELECT 1", "SELECT COUNT(*) FROM singer", "SELECT Name FROM singer",
       "SELECT * FROM concert LIMIT 3", "USE concert_singer", "submit"]  # fmt: skip


def webshop_action(info: dict[str, Any], rng: random.Random) -> str:
    valid = info.get("valid_actions") or []
    if not valid or rng.random() < 0.15:
        return f"search[{rng.choice(WORDS)}]"
    return rng.choice(valid)


def sql_action(info: dict[str, Any], rng: random.Random) -> str:
    return rng.choice(SQL)


def alfworld_action(info: dict[str, Any], rng: random.Random) -> str:
    return rng.choice(info["valid_actions"])


ENVS = {
    "webshop": ("ipr/WebShop-v0", {"split": "test"}, webshop_action),
    "intercode": ("ipr/InterCodeSQL-v0", {"split": "test"}, sql_action),
    "alfworld": ("ipr/ALFWorld-v0", {"split": "valid_seen"}, alfworld_action),
}


def session(env: Any, tasks: list[Any], seed: int, steps: int, sampler: Any,
            timings: dict[str, list[float]]) -> list[Any]:  # fmt: skip
    """One session's script; its transcript (everything the env returned)."""
    rng = random.Random(seed)
    out: list[Any] = [env.reset(options={"task": rng.choice(tasks)})]
    info = out[-1][1]
    for t in range(1, steps + 1):
        if t % 10 == 0:
            snap = env.snapshot()
            env.step(sampler(info, rng))  # go on, then come back
            start = time.perf_counter()
            out.append(env.restore(snap))
            timings["restore"].append(time.perf_counter() - start)
            info = out[-1][1]
            continue
        action = rng.choice(MALFORMED_ACTIONS) if rng.random() < 0.1 else sampler(info, rng)
        start = time.perf_counter()
        result = env.step(action)
        timings["step"].append(time.perf_counter() - start)
        out.append(result)
        info = result[4]
        if result[2] or result[3]:
            out.append(env.reset(options={"task": rng.choice(tasks)}))
            info = out[-1][1]
    return out


def flags(options: dict[str, Any]) -> list[str]:
    """The server's own defaults: the bad requests of ``bad_requests`` name no options."""
    return [f"--option={k}={json.dumps(v)}" for k, v in options.items()]


def percentiles(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    return (statistics.median(ordered) * 1e3,
            ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] * 1e3)  # fmt: skip


def load(name: str, sessions: int, steps: int) -> dict[str, float]:
    env_id, options, sampler = ENVS[name]
    options = {**options, "max_episode_steps": 10}
    local = ipr_gym.make(env_id, **options)
    tasks = list(find_text_env(local).tasks)[:200]
    here: dict[str, list[float]] = {"step": [], "restore": []}
    expected = [session(local, tasks, s, steps, sampler, here) for s in range(sessions)]
    with start_server(env_id, *flags(options), env={"IPR_GYM_SERVE_KEY": KEY}) as server:
        there: dict[str, list[float]] = {"step": [], "restore": []}
        got: list[Any] = [None] * sessions
        errors: list[str] = []
        gate = threading.Barrier(sessions)

        def play(s: int) -> None:
            env = gym.make(env_id, remote=server.url, **options)
            try:
                find_text_env(env).tasks  # noqa: B018 - fetched before the clock starts
                gate.wait()
                timings: dict[str, list[float]] = {"step": [], "restore": []}
                got[s] = session(env, tasks, s, steps, sampler, timings)
                for k in timings:
                    there[k].extend(timings[k])
            except Exception as error:
                errors.append(f"session {s}: {type(error).__name__}: {error}")
            finally:
                env.close()

        alone: dict[str, list[float]] = {"step": [], "restore": []}
        single = gym.make(env_id, remote=server.url, **options)  # one session, no load
        for s in range(4):
            session(single, tasks, sessions + s, steps, sampler, alone)
        single.close()
        started = time.perf_counter()
        threads = [threading.Thread(target=play, args=(s,)) for s in range(sessions)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - started
        statuses = bad_requests(server.url, tasks[0])
    equal = sum(g == e for g, e in zip(got, expected, strict=True))
    for error in errors[:5]:
        print(error)
    alone_p50, alone_p99 = percentiles(alone["step"])
    step_p50, step_p99 = percentiles(there["step"])
    local_p50, local_p99 = percentiles(here["step"])
    restore_p50, restore_p99 = percentiles(there["restore"])
    lrestore_p50, lrestore_p99 = percentiles(here["restore"])
    return {
        f"{name}_sessions": sessions, f"{name}_steps": len(there["step"]),
        f"{name}_session_errors": len(errors),
        f"{name}_transcripts_equal_in_process": equal,
        f"{name}_bad_requests": len(statuses),
        f"{name}_bad_requests_4xx": sum(400 <= s < 500 for s in statuses),
        f"{name}_5xx": sum(s >= 500 for s in statuses),
        f"{name}_wall_s": wall,
        f"{name}_steps_per_s": len(there["step"]) / wall,
        f"{name}_one_session_step_p50_ms": alone_p50,
        f"{name}_one_session_step_p99_ms": alone_p99,
        f"{name}_step_p50_ms": step_p50, f"{name}_step_p99_ms": step_p99,
        f"{name}_in_process_step_p50_ms": local_p50,
        f"{name}_in_process_step_p99_ms": local_p99,
        f"{name}_restore_p50_ms": restore_p50, f"{name}_restore_p99_ms": restore_p99,
        f"{name}_in_process_restore_p50_ms": lrestore_p50,
        f"{name}_in_process_restore_p99_ms": lrestore_p99,
    }  # fmt: skip


def bad_requests(url: str, task: Any) -> list[int]:
    """The status of each refused request; a tampered and a forged token among them."""
    token = requests.post(f"{url}/reset", json={"task": task}).json()["observation"]["snapshot"]
    version, payload, mac = token.split(".")
    tampered = f"{version}.{payload[:-2]}{'AB' if payload[-2:] != 'AB' else 'CD'}.{mac}"
    forged = Signer(b"a key that is not the server's, 32+ bytes").sign(
        Point("ipr/WebShop-v0", {}, task, ("search[x]",))
    )
    step = f"{url}/step"
    attempts: list[tuple[str, Any]] = [
        (f"{url}/reset", "{not json"), (step, "[1, 2"), (f"{url}/reset", {"task": "no such task"}),
        (f"{url}/reset", {"options": {"data_dir": "/"}}), (f"{url}/reset", {"colour": 1}),
        (step, {"action": {"action": "x"}}), (step, {"action": {"action": "x" * 40_000}}),
        (step, {"action": {}}), (step, {"action": {"action": "look"}, "snapshot": tampered}),
        (step, {"action": {"action": "look"}, "snapshot": forged}),
        (step, {"action": {"action": "look"}, "snapshot": "garbage"}),
    ]  # fmt: skip
    statuses = []
    for route, body in attempts * 3:
        if isinstance(body, str):
            reply = requests.post(route, data=body, headers={"Content-Type": "application/json"})
        else:
            reply = requests.post(route, json=body)
        statuses.append(reply.status_code)
    return statuses


def failover(name: str) -> dict[str, float]:
    """A pool over two servers; the first is killed after the third call."""
    env_id, options, sampler = ENVS[name]
    tasks = list(find_text_env(ipr_gym.make(env_id, **options)).tasks)[:8]

    def run(pool: EnvPool, kill: Any = None) -> list[Any]:
        rng = random.Random(0)
        out = [pool.reset(range(8), tasks=tasks)]
        infos = [r[1] for r in out[0]]
        for t in range(8):
            if t == 3 and kill is not None:
                kill()
            if t == 5:
                snaps = pool.snapshot(range(4))
                out.append(pool.restore(range(4, 8), snaps))
            results = pool.step([(s, sampler(infos[s], rng)) for s in range(8)])
            out.append(results)
            infos = [r[4] if not isinstance(r, SlotError) else {} for r in results]
            ended = [s for s, r in enumerate(results) if not isinstance(r, SlotError) and
                     (r[2] or r[3])]  # fmt: skip
            if ended:  # a new episode where one ended
                again = pool.reset(ended, tasks=[tasks[(s + t + 1) % 8] for s in ended])
                out.append(again)
                for s, r in zip(ended, again, strict=True):
                    infos[s] = r[1] if not isinstance(r, SlotError) else {}
        return out

    with EnvPool(env_id, 8, workers=0, env_kwargs=options) as local:
        expected = run(local)
    extra = {"IPR_GYM_SERVE_KEY": KEY}
    a_server = start_server(env_id, *flags(options), env=extra)
    with a_server as a, start_server(env_id, *flags(options), env=extra) as b:
        with EnvPool(env_id, 8, servers=[a.url, b.url], env_kwargs=options) as pool:
            start = time.perf_counter()
            got = run(pool, kill=a.kill)
            wall = time.perf_counter() - start
            moved = sum(w.url == b.url for w in pool._workers)
    lost = sum(isinstance(r, SlotError) for call in got for r in call)
    return {f"{name}_failover_equal_in_process": float(got == expected),
            f"{name}_failover_slot_errors": lost, f"{name}_failover_workers_on_b": moved,
            f"{name}_failover_wall_s": wall}  # fmt: skip


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench-env_server")
    parser.add_argument("--sessions", type=int, default=64)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--envs", default=",".join(ENVS))
    args = parser.parse_args(argv)
    metrics: dict[str, float] = {}
    ratios: dict[str, float] = {}
    for name in args.envs.split(","):
        print(f"{name}: {args.sessions} sessions x {args.steps} steps", flush=True)
        metrics.update(load(name, args.sessions, args.steps))
        metrics.update(failover(name))
        ratios[f"{name}_one_session_step_p50_wire_over_in_process"] = (
            metrics[f"{name}_one_session_step_p50_ms"] / metrics[f"{name}_in_process_step_p50_ms"]
        )
        ratios[f"{name}_64_sessions_step_p50_over_one_session"] = (
            metrics[f"{name}_step_p50_ms"] / metrics[f"{name}_one_session_step_p50_ms"]
        )
        print(json.dumps({k: v for k, v in metrics.items() if k.startswith(name)}), flush=True)
    notes = (
        "One `ipr-gym serve` process per env on this machine's cores (loopback), 64 sessions "
        "(`gym.make(id, remote=URL)`, a thread each, started together) of 30 steps: seeded "
        "actions, 10% malformed, a snapshot, a step and a restore every 10 steps. "
        "`transcripts_equal_in_process` counts sessions whose whole transcript equals the "
        "same script on an in-process env. `bad_requests`: malformed JSON, oversized and "
        "missing actions, unknown tasks and fields, a server-only option, a step with no "
        "episode, tampered, forged and garbage tokens, three times each. Failover: a pool "
        "over two servers with one shared key, 8 slots, the first server killed (`kill -9`) "
        "before the fourth step; its results must equal the in-process pool's. Latencies are "
        "wall-clock per call on the client, in ms. `one_session`: one session alone, 4 "
        "scripts before the load (the protocol's own cost: WebSocket, JSON, a thread hop "
        "each way); the others are under the 64 sessions' load, queueing for 2 cores. The "
        "servers warm up (spaCy for WebShop) before they listen."
    )
    path = write_results("env_server", metrics, ratios, notes)
    print(path.read_text())
    return 0
