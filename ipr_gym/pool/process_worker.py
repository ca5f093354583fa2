"""A pool worker as a separate Python process, reached over a private Unix socket."""

from __future__ import annotations

import os
import pickle
import secrets
import shutil
import subprocess
import sys
import tempfile
from multiprocessing.connection import Listener, wait
from typing import Any


class WorkerFailed(Exception):
    """The worker died or its connection broke; the pool replaces it."""


class ProcessWorker:
    """A worker process started as ``python -m ipr_gym.pool.worker_main``: a fresh interpreter
    (safe beside CUDA or threads, unlike fork) that needs nothing from ``__main__``
    (unlike multiprocessing's spawn), connected back over a private Unix socket."""

    def __init__(self, env_id: str, kwargs: dict[str, Any], start_timeout_s: float = 120.0):
        folder = tempfile.mkdtemp(prefix="ipr-pool-")
        address = os.path.join(folder, "socket")
        key = secrets.token_bytes(32)
        listener = Listener(address, family="AF_UNIX", authkey=key)
        environment = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "ipr_gym.pool.worker_main", address, str(os.getpid())],
            stdin=subprocess.PIPE,
            env=environment,
        )
        assert self.process.stdin is not None
        self.process.stdin.write(pickle.dumps((key, env_id, kwargs)))
        self.process.stdin.close()
        listener._listener._socket.settimeout(start_timeout_s)  # type: ignore[attr-defined]
        try:
            self.conn = listener.accept()
        finally:
            listener.close()
            shutil.rmtree(folder, ignore_errors=True)

    @property
    def pid(self) -> int:
        return self.process.pid

    def submit(self, op: str, items: list[tuple[int, Any]]) -> None:
        try:
            self.conn.send((op, items))
        except (OSError, ValueError) as error:
            raise WorkerFailed(str(error)) from error

    def result(self) -> list[tuple[str, Any]]:
        try:
            return self.conn.recv()
        except (EOFError, OSError) as error:
            raise WorkerFailed(str(error)) from error

    @staticmethod
    def wait(workers: list[ProcessWorker], timeout: float) -> list[ProcessWorker]:
        """The workers with a reply ready (or dead), waiting up to ``timeout``."""
        by_conn = {worker.conn: worker for worker in workers}
        return [by_conn[conn] for conn in wait(list(by_conn), timeout=timeout)]  # type: ignore[index]

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self.conn.close()

    def stop(self, timeout: float = 5.0) -> None:
        try:
            self.conn.send(None)
        except (OSError, ValueError):
            pass
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.conn.close()
