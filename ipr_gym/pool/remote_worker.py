"""A pool worker that plays its slots on an env server (``ipr-gym serve``), one session per
slot: the multi-machine path next to Ray. Slots of one worker step concurrently (each is
its own session on the server). A lost server fails the worker; the pool then starts a new
one on the next server that answers and rebuilds the slots from their histories (tokens
restore on servers sharing the key, anything else is replayed)."""

from __future__ import annotations

import concurrent.futures as futures
import urllib.request
from collections.abc import Sequence
from typing import Any

from ipr_gym.pool.process_worker import WorkerFailed
from ipr_gym.pool.worker import SlotEnvs

CONCURRENT_SLOTS = 16  # sessions a worker steps at once


def healthy(url: str, timeout_s: float = 5.0) -> bool:
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/health", timeout=timeout_s) as reply:
            return reply.status == 200
    except OSError:
        return False


class RemoteWorker:
    pid = 0  # no local process

    def __init__(self, env_id: str, kwargs: dict[str, Any], servers: Sequence[str], first: int):
        order = [servers[(first + i) % len(servers)] for i in range(len(servers))]
        url = next((u for u in order if healthy(u)), None)
        if url is None:
            raise WorkerFailed(f"no env server answers: {list(servers)}")
        self.url = url
        self.envs = SlotEnvs(env_id, {**kwargs, "remote": url})
        self._threads = futures.ThreadPoolExecutor(1)  # the call in flight
        self._sessions = futures.ThreadPoolExecutor(CONCURRENT_SLOTS)  # its slots, side by side
        self._future: futures.Future | None = None
        self._stopped = False

    def submit(self, op: str, items: list[tuple[int, Any]]) -> None:
        if self._stopped:
            raise WorkerFailed(f"the worker on {self.url} was stopped")
        by_slot: dict[int, list[int]] = {}
        for i, (slot, _) in enumerate(items):
            by_slot.setdefault(slot, []).append(i)
        groups = [[items[i] for i in indices] for indices in by_slot.values()]

        def run_all() -> list[tuple[str, Any]]:
            # each slot's items in order, the slots side by side
            done = list(self._sessions.map(lambda g: self.envs.run(op, g, (OSError,)), groups))
            replies: list[Any] = [None] * len(items)
            for indices, group_replies in zip(by_slot.values(), done, strict=True):
                for i, reply in zip(indices, group_replies, strict=True):
                    replies[i] = reply
            return replies

        self._future = self._threads.submit(run_all)

    def result(self) -> list[tuple[str, Any]]:
        assert self._future is not None
        try:
            return self._future.result()
        except OSError as error:
            raise WorkerFailed(f"{self.url}: {type(error).__name__}: {error}") from error

    @staticmethod
    def wait(workers: list[RemoteWorker], timeout: float) -> list[RemoteWorker]:
        by_future = {w._future: w for w in workers if w._future is not None}
        done, _ = futures.wait(list(by_future), timeout, return_when=futures.FIRST_COMPLETED)
        return [by_future[f] for f in done]

    def kill(self) -> None:
        self.stop()

    def stop(self, timeout: float = 5.0) -> None:
        self._stopped = True
        self.envs.close()
        self._threads.shutdown(wait=False, cancel_futures=True)
        self._sessions.shutdown(wait=False, cancel_futures=True)
