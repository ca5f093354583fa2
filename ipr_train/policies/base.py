"""The policy protocol and generation parameters shared by every backend."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

Conversation = Sequence[dict[str, str]]  # [{"role", "content"}, ...]


@dataclass(frozen=True)
class GenerationParams:
    temperature: float = 0.0
    top_p: float = 1.0
    max_new_tokens: int = 256
    stop: tuple[str, ...] = ()
    seed: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")


class Policy(Protocol):
    def generate(
        self, conversations: Sequence[Conversation], params: GenerationParams
    ) -> list[str]:
        """One reply per conversation, in order."""
        ...


def cut_at_stop(text: str, stop: Sequence[str]) -> str:
    """The text before the first stop string (stop strings themselves are not returned)."""
    cut = len(text)
    for s in stop:
        at = text.find(s)
        if at != -1:
            cut = min(cut, at)
    return text[:cut]


class ScriptedPolicy:
    """A policy from a function of one conversation (tests, baselines, oracles)."""

    def __init__(self, reply: Callable[[Conversation], str]):
        self.reply = reply

    def generate(
        self, conversations: Sequence[Conversation], params: GenerationParams
    ) -> list[str]:
        return [cut_at_stop(self.reply(c), params.stop) for c in conversations]
