"""The env pool: same results as in-process, fan-out, crash and hang recovery, no orphans."""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from ipr_gym.pool import EnvPool, SlotError

TOY = "ipr_gym.testing.toy:ipr-testing/Toy-v0"
SLOW = "ipr_gym.testing.toy:ipr-testing/SlowToy-v0"
TASKS = ["garden", "cellar", "attic", "garden", "cellar", "attic"]
SCRIPT = [
    ["take key", "go to garden", "go to shed", "unlock chest with key", "open chest"],
    ["go to kitchen", "take key", "go to hall", "go to cellar", "look"],
    ["go to corridor", "fly", "go to study", "take book", "inventory"],
    ["look", "take key", "drop key", "take key", "go to garden"],
    ["go to cellar", "look", "go to hall", "go to kitchen", "take apple"],
    ["inventory", "go to corridor", "go to attic", "look", "go to corridor"],
]


def play(pool: EnvPool) -> list:
    transcript = [pool.reset(range(6), tasks=TASKS)]
    for t in range(5):
        transcript.append(pool.step([(slot, SCRIPT[slot][t]) for slot in range(6)]))
    return transcript


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_workers_give_the_same_results_as_in_process():
    with EnvPool(TOY, 6, workers=0) as local, EnvPool(TOY, 6, workers=2) as pooled:
        assert play(pooled) == play(local)


def test_one_snapshot_fans_out_into_many_slots():
    with EnvPool(TOY, 4, workers=2) as pool:
        pool.reset([0], tasks=["garden"])
        pool.step([(0, "take key")])
        snap = pool.snapshot([0])[0]
        restored = pool.restore(range(4), [snap] * 4)
        assert {obs for obs, _ in restored} == {"You take the key."}
        results = pool.step([(0, "drop key"), (1, "go to garden"), (2, "look"), (3, "inventory")])
        assert [r[4]["step"] for r in results] == [2, 2, 2, 2]
        assert results[3][0] == "You carry: key."


def test_env_errors_come_back_per_slot():
    with EnvPool(TOY, 2, workers=2) as pool:
        pool.reset([0], tasks=["garden"])
        results = pool.step([(0, "look"), (1, "look")])  # slot 1 was never reset
        assert results[0][0].startswith("You are in the porch")
        assert isinstance(results[1], SlotError) and "EpisodeError" in results[1].message
        with pytest.raises(IndexError, match="slot 7 out of range"):
            pool.step([(7, "look")])


def test_kill_9_mid_batch_gives_the_uninterrupted_results():
    with EnvPool(SLOW, 6, workers=0) as local:
        local.reset(range(6), tasks=TASKS)
        local.step([(s, SCRIPT[s][0]) for s in range(6)])
        expected = local.step([(s, "wait") for s in range(6)] + [(s, "look") for s in range(6)])
    with EnvPool(SLOW, 6, workers=2) as pool:
        pool.reset(range(6), tasks=TASKS)
        pool.step([(s, SCRIPT[s][0]) for s in range(6)])
        victim = pool.worker_pids[0]
        killer = threading.Timer(0.4, os.kill, (victim, signal.SIGKILL))
        killer.start()  # the batch takes ~0.9 s per worker: the kill lands mid-batch
        got = pool.step([(s, "wait") for s in range(6)] + [(s, "look") for s in range(6)])
        killer.join()
        assert not alive(victim)
        assert victim not in pool.worker_pids
        assert got == expected


def test_a_hung_step_times_out_and_the_slot_reports_an_error():
    with EnvPool(SLOW, 2, workers=2, step_timeout_s=1.0) as pool:
        pool.reset(range(2), tasks=["garden", "cellar"])
        start = time.monotonic()
        results = pool.step([(0, "hang"), (1, "look")])
        assert time.monotonic() - start < 10
        assert isinstance(results[0], SlotError)
        assert results[1][0].startswith("You are in the hall")
        # the replaced worker rebuilt slot 0 where it was: it still works
        assert pool.step([(0, "look")])[0][0].startswith("You are in the porch")


def test_no_orphans_after_close_or_garbage_collection():
    pool = EnvPool(TOY, 2, workers=2)
    pids = pool.worker_pids
    pool.close()
    assert not any(alive(p) for p in pids)
    pool = EnvPool(TOY, 2, workers=2)
    pids = pool.worker_pids
    del pool
    gc.collect()
    time.sleep(0.2)
    assert not any(alive(p) for p in pids)


def test_no_orphans_at_interpreter_exit_or_when_the_parent_is_killed():
    code = (
        "import sys; from ipr_gym.pool import EnvPool; "
        f"pool = EnvPool({TOY!r}, 2, workers=2); print(*pool.worker_pids, flush=True); "
        "sys.stdin.readline() if len(sys.argv) > 1 else None"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    pids = [int(p) for p in out.stdout.split()]
    time.sleep(0.2)
    assert pids and not any(alive(p) for p in pids)

    parent = subprocess.Popen(
        [sys.executable, "-c", code, "wait"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    pids = [int(p) for p in parent.stdout.readline().split()]
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 10
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(alive(p) for p in pids)


def test_the_real_environments_run_in_workers(installed_data, tmp_path):
    from ipr_gym.intercode_sql.server import start_server

    alfworld = {"split": "valid_seen", "data_dir": str(installed_data)}
    with EnvPool("ipr/ALFWorld-v0", 2, workers=2, env_kwargs=alfworld) as pool:
        tasks = pool.tasks()[:2]
        first = pool.reset(range(2), tasks=tasks)
        actions = [(s, first[s][1]["valid_actions"][0]) for s in range(2)]
        assert all(not isinstance(r, SlotError) for r in pool.step(actions))
    server = start_server(installed_data / "intercode" / "ic_spider_dbs.sql")
    try:
        for kwargs in ({}, {"backend": "mysql", "url": server.url()}):  # each worker connects
            kwargs = {"split": "all", "data_dir": str(installed_data), **kwargs}
            with EnvPool("ipr/InterCodeSQL-v0", 2, workers=2, env_kwargs=kwargs) as pool:
                pool.reset(range(2), tasks=[0, 0])
                results = pool.step([(0, "SHOW TABLES"), (1, "SHOW TABLES")])
                assert [r[0] for r in results] == ["[('people',), ('poker_player',)]"] * 2
    finally:
        server.stop()


def test_ray_backend_gives_the_same_results_and_survives_a_killed_actor():
    ray = pytest.importorskip("ray", reason="the ray extra is not installed")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    try:
        with EnvPool(TOY, 6, workers=0) as local, EnvPool(TOY, 6, workers=2, backend="ray") as pool:
            assert play(pool) == play(local)
            ray.kill(pool._workers[0].actor, no_restart=True)  # what a lost node looks like
            looks = [(s, "look") for s in range(1, 6)]
            assert pool.step(looks) == local.step(looks)
    finally:
        ray.shutdown()
