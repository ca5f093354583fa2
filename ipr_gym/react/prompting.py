"""Assembling the opening messages of an episode in IPR's "conversation" format."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, TypedDict


class Message(TypedDict):
    role: Literal["system", "user", "assistant"]
    content: str


def opening_messages(
    instruction: str,
    examples: Sequence[Sequence[Message]],
    n_examples: int,
    task_text: str,
) -> list[Message]:
    """The messages an agent sees before its first action.

    IPR's layout: the instruction as a user turn, the assistant answering "OK", the first
    ``n_examples`` in-context episodes turn by turn with their own roles, then the task's
    first observation as a user turn.
    """
    if n_examples < 0:
        raise ValueError(f"n_examples must be >= 0, got {n_examples}")
    messages: list[Message] = [
        {"role": "user", "content": instruction},
        {"role": "assistant", "content": "OK"},
    ]
    for example in examples[:n_examples]:
        for turn in example:
            if turn["role"] not in ("user", "assistant"):
                raise ValueError(f"example turns are user or assistant, got {turn['role']!r}")
            messages.append({"role": turn["role"], "content": turn["content"]})
    messages.append({"role": "user", "content": task_text})
    return messages
