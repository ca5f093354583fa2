"""A generation backend in a child process of its own, for the life of one generating stage.

A GPU engine (vLLM) keeps its memory until its process ends, and the trainer's stages load
a new model every iteration (the agent after each update, the scorer, the evaluated
model). Built in the trainer's process, every stage would leave an engine behind: two
engines in one process, the second starved of memory, the training loop after it too. Here
the engine lives in a spawned child (a fresh interpreter: no CUDA state inherited), built
from the folder the stage names, so it always holds the current weights; ``close`` (the end
of the stage) ends the child and gives its memory back. ``vllm`` runs this way by default
(``process: false`` keeps it in-process); any backend can ask for it (``process: true``).
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Sequence
from typing import Any

from ipr_train.policies.base import Completion, Conversation, GenerationParams, Policy


def _serve(config: dict[str, Any], conn: Any) -> None:
    """The child: build the backend, answer requests until told to stop or the pipe closes."""
    from ipr_train.policies import make_policy

    try:
        policy = make_policy({**config, "process": False})
    except BaseException as exc:  # the build failed: say why, once
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("ready", None))
    while True:
        try:
            request = conn.recv()
        except EOFError:  # the parent is gone
            return
        if request is None:
            return
        name, args = request
        try:
            conn.send(("ok", getattr(policy, name)(*args)))
        except BaseException as exc:
            conn.send(("error", f"{type(exc).__name__}: {exc}"))


class ProcessPolicy(Policy):
    def __init__(self, config: dict[str, Any], start_timeout: float = 1800.0):
        context = multiprocessing.get_context("spawn")
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_serve, args=(dict(config), child), daemon=True)
        self.process.start()
        child.close()
        self.backend = config.get("backend", "hf")
        if not self.conn.poll(start_timeout):
            self.close()
            raise RuntimeError(f"the {self.backend} policy's process did not start within "
                               f"{start_timeout:.0f} s")  # fmt: skip
        status, detail = self._receive()
        if status != "ready":
            self.close()
            raise RuntimeError(f"the {self.backend} policy's process failed to start: {detail}")

    def _receive(self) -> tuple[str, Any]:
        try:
            status, detail = self.conn.recv()
        except (EOFError, OSError):
            code = self.process.exitcode if not self.process.is_alive() else None
            raise RuntimeError(f"the {self.backend} policy's process ended (exit code "
                               f"{code}); see its output above") from None  # fmt: skip
        return status, detail

    def _call(self, name: str, *args: Any) -> Any:
        if not self.process.is_alive():
            raise RuntimeError(f"the {self.backend} policy's process is not running (exit "
                               f"code {self.process.exitcode})")  # fmt: skip
        self.conn.send((name, args))
        status, detail = self._receive()
        if status != "ok":
            raise RuntimeError(f"the {self.backend} policy's process: {detail}")
        return detail

    def complete(
        self, conversations: Sequence[Conversation], params: Sequence[GenerationParams]
    ) -> list[Completion]:
        result: list[Completion] = self._call("complete", list(conversations), list(params))
        return result

    def close(self) -> None:
        """End the child (its engine and memory with it); a second call does nothing."""
        if self.process.is_alive():
            try:
                self.conn.send(None)
            except (BrokenPipeError, OSError):
                pass
            self.process.join(timeout=60)
            if self.process.is_alive():
                self.process.kill()
                self.process.join()
        self.conn.close()
