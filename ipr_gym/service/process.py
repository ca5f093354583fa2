"""An env server in a child process (``ipr-gym serve``), for tests, benchmarks, examples and
anyone who wants one from Python: ``with start_server("ipr/WebShop-v0") as server: ...``."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Sequence
from typing import Any


class ServerProcess:
    def __init__(self, env_id: str, args: Sequence[str] = (), env: dict[str, str] | None = None,
                 start_timeout_s: float = 300.0):  # fmt: skip
        command = [sys.executable, "-m", "ipr_gym.cli", "serve", env_id, "--port", "0", *args]
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env={**os.environ, **(env or {})},
        )  # fmt: skip
        self.url = self._wait_for_url(start_timeout_s)
        self._drain = threading.Thread(target=self._read_rest, daemon=True)
        self._drain.start()

    def _wait_for_url(self, timeout_s: float) -> str:
        assert self.process.stdout is not None
        lines: list[str] = []
        timer = threading.Timer(timeout_s, self.process.kill)
        timer.start()
        try:
            for line in self.process.stdout:
                lines.append(line)
                if line.startswith("serving ") and " at http" in line:
                    return line.rsplit(" at ", 1)[1].strip()
        finally:
            timer.cancel()
        self.process.wait()
        raise RuntimeError(f"the env server exited ({self.process.returncode}):\n"
                           + "".join(lines[-30:]))  # fmt: skip

    def _read_rest(self) -> None:
        assert self.process.stdout is not None
        for _ in self.process.stdout:  # keep the pipe from filling
            pass

    @property
    def pid(self) -> int:
        return self.process.pid

    def kill(self) -> None:
        """Gone at once, as a crashed server would be."""
        self.process.kill()
        self.process.wait()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def start_server(env_id: str, *args: str, env: dict[str, str] | None = None) -> ServerProcess:
    """``ipr-gym serve env_id --port 0 *args`` in a child process, once it listens."""
    return ServerProcess(env_id, args, env)
