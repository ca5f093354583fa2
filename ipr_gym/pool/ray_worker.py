"""A pool worker as a Ray actor, for pools that outgrow one machine."""

from __future__ import annotations

from typing import Any

from ipr_gym.pool.process_worker import WorkerFailed
from ipr_gym.pool.worker import SlotEnvs


def _ray() -> Any:
    try:
        import ray
    except ImportError as error:
        raise ImportError("backend='ray' needs Ray: pip install 'ipr[ray]'") from error
    if not ray.is_initialized():
        ray.init(ignore_reinit_error=True, log_to_driver=False)
    return ray


class _Actor:
    """The actor body: the same ``SlotEnvs`` a process worker runs."""

    def __init__(self, env_id: str, kwargs: dict[str, Any]):
        import os

        self.envs = SlotEnvs(env_id, kwargs)
        self.pid = os.getpid()

    def run(self, op: str, items: list[tuple[int, Any]]) -> list[tuple[str, Any]]:
        return self.envs.run(op, items)

    def getpid(self) -> int:
        return self.pid


class RayWorker:
    def __init__(self, env_id: str, kwargs: dict[str, Any]):
        ray = _ray()
        self._ray = ray
        self.actor = ray.remote(max_restarts=0)(_Actor).remote(env_id, kwargs)
        self.pid: int = ray.get(self.actor.getpid.remote())
        self._ref: Any = None

    def submit(self, op: str, items: list[tuple[int, Any]]) -> None:
        self._ref = self.actor.run.remote(op, items)

    def result(self) -> list[tuple[str, Any]]:
        try:
            return self._ray.get(self._ref)
        except self._ray.exceptions.RayError as error:
            raise WorkerFailed(str(error)) from error

    @staticmethod
    def wait(workers: list[RayWorker], timeout: float) -> list[RayWorker]:
        if not workers:
            return []
        ray = workers[0]._ray
        by_ref = {worker._ref: worker for worker in workers}
        ready, _ = ray.wait(list(by_ref), num_returns=1, timeout=timeout)
        return [by_ref[ref] for ref in ready]

    def kill(self) -> None:
        self._ray.kill(self.actor, no_restart=True)

    def stop(self, timeout: float = 5.0) -> None:
        try:
            self._ray.kill(self.actor, no_restart=True)
        except Exception:  # already gone, or Ray shut down first
            pass
