"""Step many environments in parallel and branch them from snapshots, surviving crashes.

``EnvPool(env_id, slots, workers=W)`` spreads ``slots`` envs of one registered id over
``W`` worker processes (slot ``i`` lives in worker ``i % W``; ``W=0`` runs them in this
process, for debugging). Calls are synchronous and return results in the order asked:

    pool = EnvPool("ipr/ALFWorld-v0", slots=8, workers=2)
    pool.reset([0, 1], tasks=[task, task])
    snap = pool.snapshot([0])[0]
    pool.restore(range(8), [snap] * 8)            # fan out one point into 8 slots
    results = pool.step([(s, "look") for s in range(8)])

Faults: the pool remembers, per slot, the last snapshot it set (reset or restore) and
the actions stepped since. A worker that dies (even ``kill -9``) or does not answer within
``step_timeout_s`` is replaced; its slots are rebuilt by restoring those snapshots and
replaying those actions (environments are deterministic, so they are exactly where they
were) and the pending request is retried once. A slot that still fails gets a
``SlotError`` in its place; the call never hangs. Workers end with ``close()``, when the
pool is garbage collected, at interpreter exit, and by themselves when the parent dies.

``backend="ray"`` runs the workers as Ray actors (``pip install 'ipr[ray]'``; it joins the
running Ray cluster or starts a local one), with the same API and recovery.

``servers=[url, ...]`` plays the slots on env servers (``ipr-gym serve``; ``pip install
'ipr[serve]'``), one worker per server, one session per slot. A server that dies or stops
answering is failed over: the worker restarts on the next server that answers and its slots
are rebuilt as above.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ipr_gym.core import Snapshot, TaskId
from ipr_gym.pool.process_worker import ProcessWorker, WorkerFailed
from ipr_gym.pool.worker import SlotEnvs


@dataclass(frozen=True)
class SlotError:
    """What a slot returns instead of a result when its env failed."""

    slot: int
    message: str


@dataclass
class _SlotHistory:
    """Enough to rebuild a slot elsewhere: where it started and what it did since."""

    reset: tuple[TaskId | None, int | None] | None = None
    snapshot: Snapshot | None = None
    actions: list[str] = field(default_factory=list)


class EnvPool:
    def __init__(
        self,
        env_id: str,
        slots: int,
        *,
        workers: int = 2,
        env_kwargs: dict[str, Any] | None = None,
        step_timeout_s: float = 120.0,
        backend: str = "process",
        servers: Sequence[str] | None = None,
    ):
        if slots < 1:
            raise ValueError(f"slots must be >= 1, got {slots}")
        if workers < 0:
            raise ValueError(f"workers must be >= 0, got {workers}")
        self.env_id = env_id
        self.slots = slots
        self.servers = list(servers or [])
        if servers is not None and not self.servers:
            raise ValueError("servers= needs at least one URL")
        self.n_workers = min(len(self.servers) if self.servers else workers, slots)
        self.env_kwargs = dict(env_kwargs or {})
        self.step_timeout_s = step_timeout_s
        if backend not in ("process", "ray"):
            raise ValueError(f"unknown pool backend {backend!r}; valid: ['process', 'ray']")
        if self.servers:
            from ipr_gym.pool.remote_worker import RemoteWorker

            self._worker_class: type[Any] = RemoteWorker
        elif backend == "ray":
            from ipr_gym.pool.ray_worker import RayWorker

            self._worker_class = RayWorker
        else:
            self._worker_class = ProcessWorker
        self._history = [_SlotHistory() for _ in range(slots)]
        self._local = SlotEnvs(env_id, self.env_kwargs) if self.n_workers == 0 else None
        self._workers = [self._spawn(w) for w in range(self.n_workers)]
        self._closed = False
        # runs on close(), on garbage collection and at interpreter exit
        self._finalizer = weakref.finalize(self, EnvPool._stop_all, self._workers)

    # ------------------------------------------------------------------ public API
    def reset(
        self,
        slots: Iterable[int],
        tasks: Sequence[TaskId | None] | None = None,
        seeds: Sequence[int | None] | None = None,
    ) -> list[Any]:
        """Reset slots to tasks (or seeded picks); ``(obs, info)`` per slot."""
        slots = list(slots)
        tasks = list(tasks) if tasks is not None else [None] * len(slots)
        seeds = list(seeds) if seeds is not None else [None] * len(slots)
        for slot, task, seed in zip(slots, tasks, seeds, strict=True):
            self._history[self._check(slot)] = _SlotHistory(reset=(task, seed))
        return self._call("reset", list(zip(slots, zip(tasks, seeds, strict=True), strict=True)))

    def restore(self, slots: Iterable[int], snapshots: Sequence[Snapshot]) -> list[Any]:
        """Restore each slot from a snapshot (one snapshot may go into many slots)."""
        slots = list(slots)
        for slot, snap in zip(slots, snapshots, strict=True):
            self._history[self._check(slot)] = _SlotHistory(snapshot=snap)
        return self._call("restore", list(zip(slots, snapshots, strict=True)))

    def step(self, actions: Sequence[tuple[int, str]]) -> list[Any]:
        """Step slots in parallel; ``(obs, reward, terminated, truncated, info)`` per item."""
        for slot, _ in actions:
            self._check(slot)
        results = self._call("step", list(actions))
        for (slot, action), result in zip(actions, results, strict=True):
            if not isinstance(result, SlotError):
                self._history[slot].actions.append(action)
        return results

    def snapshot(self, slots: Iterable[int]) -> list[Any]:
        return self._call("snapshot", [(self._check(s), None) for s in slots])

    def tasks(self) -> list[TaskId]:
        """The task ids of the env's split (asked of slot 0's env)."""
        result = self._call("tasks", [(0, None)])[0]
        if isinstance(result, SlotError):
            raise RuntimeError(result.message)
        return result

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._finalizer()
        if self._local is not None:
            self._local.close()

    def __enter__(self) -> EnvPool:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def worker_pids(self) -> list[int]:
        return [w.pid for w in self._workers]

    # ------------------------------------------------------------------ internals
    def _check(self, slot: int) -> int:
        if self._closed:
            raise RuntimeError("the pool is closed")
        if not 0 <= slot < self.slots:
            raise IndexError(f"slot {slot} out of range: the pool has {self.slots} slots")
        return slot

    def _spawn(self, w: int) -> Any:
        if self.servers:
            return self._worker_class(self.env_id, self.env_kwargs, self.servers, w)
        return self._worker_class(self.env_id, self.env_kwargs)

    @staticmethod
    def _stop_all(workers: list[Any]) -> None:
        for worker in workers:
            worker.stop()

    def _call(self, op: str, items: list[tuple[int, Any]]) -> list[Any]:
        if self._local is not None:
            return [
                self._unwrap(s, r)
                for (s, _), r in zip(items, self._local.run(op, items), strict=True)
            ]
        by_worker: dict[int, list[int]] = {}
        for index, (slot, _) in enumerate(items):
            by_worker.setdefault(slot % self.n_workers, []).append(index)
        results: list[Any] = [None] * len(items)
        pending = dict(by_worker)
        for attempt in range(2):
            failed = self._exchange(op, items, pending, results)
            if not failed:
                break
            for w in failed:
                self._replace(w)
            pending = {w: pending[w] for w in failed}
            if attempt == 1:
                for indices in pending.values():
                    for i in indices:
                        results[i] = SlotError(items[i][0], "its worker failed twice")
        return results

    def _exchange(
        self, op: str, items: list, pending: dict[int, list[int]], results: list
    ) -> list[int]:
        """Send each worker its items, gather replies; the workers that failed."""
        failed = []
        waiting: dict[int, int] = {}  # id(worker) -> worker index
        for w, indices in pending.items():
            try:
                self._workers[w].submit(op, [items[i] for i in indices])
                waiting[id(self._workers[w])] = w
            except WorkerFailed:
                failed.append(w)
        while waiting:
            busy = [self._workers[w] for w in waiting.values()]
            ready = self._worker_class.wait(busy, self.step_timeout_s)
            if not ready:  # timed out: every worker still busy is replaced
                failed.extend(waiting.values())
                break
            for worker in ready:
                w = waiting.pop(id(worker))
                try:
                    replies = worker.result()
                except WorkerFailed:
                    failed.append(w)
                    continue
                for i, reply in zip(pending[w], replies, strict=True):
                    results[i] = self._unwrap(items[i][0], reply)
        return failed

    @staticmethod
    def _unwrap(slot: int, reply: tuple[str, Any]) -> Any:
        status, value = reply
        return value if status == "ok" else SlotError(slot, value)

    def _replace(self, w: int) -> None:
        """A fresh worker in place of ``w``, its slots rebuilt from their histories."""
        self._workers[w].kill()
        try:
            new = self._spawn(w)
        except WorkerFailed:  # nowhere to go (no server answers): the retry reports it
            return
        self._workers[w] = new
        for slot in range(w, self.slots, self.n_workers):
            history = self._history[slot]
            requests: list[tuple[str, list[tuple[int, Any]]]]
            if history.snapshot is not None:
                requests = [("restore", [(slot, history.snapshot)])]
            elif history.reset is not None:
                requests = [("reset", [(slot, history.reset)])]
            else:
                continue
            if history.actions:
                requests.append(("step", [(slot, a) for a in history.actions]))
            for op, items in requests:  # a rebuild that fails surfaces on the retry
                try:
                    new.submit(op, items)
                    if not self._worker_class.wait([new], self.step_timeout_s):
                        return
                    new.result()
                except WorkerFailed:
                    return
