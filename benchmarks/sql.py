"""InterCode-SQL: env overhead per step against a bare pymysql query, on the gold set.

``python -m benchmarks bench-sql`` starts a private MariaDB, then for every gold query
times ``env.step(gold)`` (sandbox check, watchdog, streamed fetch, row cap, observation
text) and the same statement on a plain pymysql connection (execute + fetchall), in
alternation so both see the same server state; and times ``env.reset``.
"""

from __future__ import annotations

import statistics
import time

import pymysql

import ipr_gym
from benchmarks.results_io import write_results
from ipr_gym.intercode_sql.server import start_server


def main(argv: list[str]) -> int:
    server = start_server()
    try:
        env = ipr_gym.make("ipr/InterCodeSQL-v0", backend="mysql", url=server.url(), split="all",
                           max_episode_steps=None)  # fmt: skip
        bare = pymysql.connect(
            host=server.host, port=server.port, user="agent", password=server.agent_password,
            autocommit=True, charset="utf8mb4",
        )  # fmt: skip
        env_ms, bare_ms, reset_ms, ratios = [], [], [], []
        for task in env.unwrapped.tasks:
            record = env.unwrapped.task_record(task)
            start = time.perf_counter()
            env.reset(options={"task": task})
            reset_ms.append((time.perf_counter() - start) * 1000)
            with bare.cursor() as cur:
                cur.execute(f"USE `{record.db}`")
            for _ in range(2):  # warm both paths (query cache, plans) before timing
                env.step(record.gold)
                _bare_query(bare, record.gold)
            start = time.perf_counter()
            env.step(record.gold)
            env_time = (time.perf_counter() - start) * 1000
            start = time.perf_counter()
            _bare_query(bare, record.gold)
            bare_time = (time.perf_counter() - start) * 1000
            env_ms.append(env_time)
            bare_ms.append(bare_time)
            ratios.append(env_time / bare_time)
        env.close()
        bare.close()
        lite_ms, agree = _sqlite_side(server)
        replay = _replay_side(server)
    finally:
        server.stop()
    med = statistics.median
    metrics = {
        "queries": float(len(env_ms)),
        "env_step_ms_median": med(env_ms),
        "bare_query_ms_median": med(bare_ms),
        "env_reset_ms_median": med(reset_ms),
        "sqlite_env_step_ms_median": med(lite_ms),
        "sqlite_gold_agreement": agree,
        "gpt4_replay_steps": float(replay["steps"]),
        "gpt4_replay_observations_equal": replay["observations"],
        "gpt4_replay_rewards_equal": replay["rewards"],
    }
    residual = ", ".join(f"{name} {count}" for name, count in replay["classes"].most_common())
    notes = (
        "MariaDB 10.11 started by the benchmark; each gold query timed once per path after "
        "two warm-up runs; overhead ratio = median over queries of env step / bare query. "
        "GPT-4 replay: every published GPT-4 episode (InterCode's, recorded on MySQL 8) "
        "replayed action by action on MariaDB; a step matches when our observation equals "
        "the recorded one exactly, and its reward (InterCode's reward of that step's result) "
        f"equals the recorded reward. Steps that differ, by kind: {residual}."
    )
    path = write_results(
        "sql",
        metrics,
        {
            "env_step_over_bare_query_median": med(ratios),
            "sqlite_step_over_mysql_step_median": med(lite_ms) / med(env_ms),
        },
        notes=notes,
    )
    print(path.read_text())
    return 0


def _sqlite_side(server) -> tuple[list[float], float]:
    """SQLite env step times on the gold set, and the share of gold queries whose SQLite
    answer scores 1.0 against MariaDB's (both failing counts as agreeing)."""
    from ipr_gym.intercode_sql.mysql_backend import MySQLBackend
    from ipr_gym.intercode_sql.reward import intercode_reward

    env = ipr_gym.make("ipr/InterCodeSQL-v0", split="all", max_episode_steps=None)
    mysql = MySQLBackend(server.url())
    times, agree = [], 0
    for task in env.unwrapped.tasks:
        record = env.unwrapped.task_record(task)
        env.reset(options={"task": task})
        env.step(record.gold)
        start = time.perf_counter()
        env.step(record.gold)
        times.append((time.perf_counter() - start) * 1000)
        mysql.start_episode(record.db)
        ours, theirs = env.unwrapped._result, mysql.query(record.gold)
        if theirs.error is not None:
            agree += ours.error is not None
        else:
            agree += ours.error is None and intercode_reward(ours.rows, theirs.rows) == 1.0
    mysql.close()
    env.close()
    return times, agree / len(times)


def _replay_side(server) -> dict:
    """Replay InterCode's GPT-4 episodes on MariaDB: the share of steps whose observation
    and reward equal the recorded (MySQL 8) ones, and the differing steps by kind."""
    from collections import Counter

    from ipr_gym.intercode_sql.reward import intercode_reward
    from ipr_gym.intercode_sql.tasks import published_episodes

    env = ipr_gym.make("ipr/InterCodeSQL-v0", backend="mysql", url=server.url(), split="all",
                       max_episode_steps=None)  # fmt: skip
    shop = env.unwrapped
    steps = same_obs = same_reward = 0
    classes: Counter[str] = Counter()
    for index, episode in published_episodes("gpt-4").items():
        history = episode["turn_history"]
        env.reset(options={"task": index})
        gold = shop._backend.gold(shop.task_record(index).gold)
        for action, recorded, reward in zip(
            history["actions"], history["observations"], history["rewards"], strict=False
        ):
            if action == "submit":
                break
            ours, *_ = env.step(action)
            steps += 1
            same_obs += ours == str(recorded)
            mine = intercode_reward(shop._result.rows, gold.rows)
            same_reward += mine == reward
            if ours != str(recorded):
                classes[_difference(ours, str(recorded))] += 1
    env.close()
    return {"steps": steps, "observations": same_obs / steps, "rewards": same_reward / steps,
            "classes": classes}  # fmt: skip


def _difference(ours: str, theirs: str) -> str:
    """What kind of difference a replayed step shows (for the residual classes)."""
    import re

    if theirs.startswith("Format your SQL command"):
        return "a message of InterCode's harness, not of the server"
    if "statements are not allowed" in ours or "is not allowed" in ours:
        return "refused by the sandbox (InterCode's server took writes)"
    if ours.startswith("Error") and theirs.startswith("Error"):
        return "error text"
    if ours.startswith("Error") or theirs.startswith("Error"):
        return "error on one side only"
    if "b'" in theirs and "b'" not in ours:
        return "column types as bytes (DESCRIBE, information_schema)"
    if re.sub(r"\(\d+\)", "", ours) == re.sub(r"\(\d+\)", "", theirs):
        return "integer display widths"
    if sorted(ours) == sorted(theirs):
        return "row order"
    if "Decimal(" in ours or "Decimal(" in theirs:
        return "numeric type or precision"
    if theirs in ("None", "[]") or ours in ("", "[]"):
        return "empty result"
    return "other"


def _bare_query(conn: pymysql.Connection, statement: str) -> None:
    with conn.cursor() as cur:
        try:
            cur.execute(statement)
            cur.fetchall()
        except pymysql.MySQLError:
            pass
