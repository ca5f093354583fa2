"""The policy interface and generation parameters shared by every backend.

A policy completes a batch of requests: each a conversation with its own
``GenerationParams``, answered by ``n`` independent samples. Samples are reproducible:
a request's ``seed`` (derived by the caller from a base seed and the request's position,
see ``derive_seed``) fixes its samples, and different positions give different samples.
A request that cannot be served (a prompt longer than the model's context, a server error
after retries) comes back as a ``Completion`` with ``error`` set instead of raising, so a
batch never fails as a whole.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

Conversation = Sequence[dict[str, str]]  # [{"role", "content"}, ...]


def chat_prompt(tokenizer: Any, conversation: Conversation) -> str:
    """The text a model continues for ``conversation``: its chat template with the
    assistant's turn opened. Every local backend builds its prompts here."""
    messages = list(conversation)
    return str(tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))


def prompt_ids(tokenizer: Any, conversation: Conversation) -> list[int]:
    """``chat_prompt`` as token ids (the template already holds any special tokens). Under
    transformers 5 ``apply_chat_template`` tokenizes into a ``BatchEncoding`` by default, whose
    list form is its keys: never take ids from it directly."""
    return text_ids(tokenizer, chat_prompt(tokenizer, conversation))


def text_ids(tokenizer: Any, prompt: str) -> list[int]:
    """The ids of a ``chat_prompt`` text, as every backend tokenizes it."""
    return list(tokenizer(prompt, add_special_tokens=False)["input_ids"])


def derive_seed(base: int, *position: int) -> int:
    """A 31-bit seed for ``position`` (start, sample, turn, ...) under ``base``; stable across
    processes and Python versions (unlike ``hash``)."""
    digest = hashlib.sha256(repr((int(base), *map(int, position))).encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


@dataclass(frozen=True)
class GenerationParams:
    """How to sample replies. ``temperature`` 0 is greedy; there is no top-k (every backend
    samples the same distribution: vLLM's defaults). ``n`` replies per request."""

    temperature: float = 0.0
    top_p: float = 1.0
    max_new_tokens: int = 256
    stop: tuple[str, ...] = ()
    seed: int | None = None
    n: int = 1
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.n < 1:
            raise ValueError(f"n must be >= 1, got {self.n}")

    def with_seed(self, seed: int | None, n: int | None = None) -> GenerationParams:
        return replace(self, seed=seed, n=self.n if n is None else n)


@dataclass(frozen=True)
class Completion:
    """The ``n`` replies to one request and what they cost; ``error`` set means no reply."""

    texts: tuple[str, ...] = ()
    prompt_tokens: int = 0
    generated_tokens: int = 0
    error: str | None = None


class Policy(ABC):
    def close(self) -> None:  # noqa: B027 (a no-op unless the backend holds something)
        """Free what the backend holds (a child process, an engine); nothing by default."""

    def __enter__(self) -> Policy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @abstractmethod
    def complete(
        self, conversations: Sequence[Conversation], params: Sequence[GenerationParams]
    ) -> list[Completion]:
        """One ``Completion`` per conversation, in order, never raising for one request."""

    def generate(
        self, conversations: Sequence[Conversation], params: GenerationParams
    ) -> list[str]:
        """The first reply of each conversation (one params for all); raises on a failure."""
        out = []
        for c in self.complete(conversations, [params] * len(conversations)):
            if c.error is not None:
                raise RuntimeError(c.error)
            out.append(c.texts[0])
        return out


def cut_at_stop(text: str, stop: Sequence[str]) -> str:
    """The text before the first stop string (stop strings themselves are not returned)."""
    cut = len(text)
    for s in stop:
        at = text.find(s)
        if at != -1:
            cut = min(cut, at)
    return text[:cut]


class ScriptedPolicy(Policy):
    """A policy from a function of one conversation (tests, baselines, oracles). A function
    that raises answers that request with an error, as a failing server would."""

    def __init__(self, reply: Callable[[Conversation], str]):
        self.reply = reply

    def complete(
        self, conversations: Sequence[Conversation], params: Sequence[GenerationParams]
    ) -> list[Completion]:
        out = []
        for conversation, p in zip(conversations, params, strict=True):
            try:
                texts = tuple(cut_at_stop(self.reply(conversation), p.stop) for _ in range(p.n))
            except Exception as exc:
                out.append(Completion(error=f"{type(exc).__name__}: {exc}"))
                continue
            out.append(Completion(texts, generated_tokens=sum(len(t.split()) for t in texts)))
        return out
