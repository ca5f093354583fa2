"""Tokenising conversations so that only assistant tokens carry loss.

The chat template renders the whole conversation once; each assistant turn's span is
found by rendering the conversation up to that turn with the generation prompt (the text
before the reply) and up to and including it (the text after, end-of-turn marker
included, so the model learns to stop). Tokens whose characters fall inside a span get
their ids as labels; every other token (system, instruction, observations, template
markup) gets -100. Templates must render prefixes consistently; one that does not is
reported, never silently mis-masked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

IGNORE = -100


class TemplateError(ValueError):
    """The chat template does not render conversation prefixes as prefixes."""


@dataclass(frozen=True)
class Encoded:
    input_ids: list[int]
    labels: list[int]
    replies: tuple[int, ...] = ()
    """Per token: which trained reply it belongs to (0 for the first from turn ``first``),
    -1 outside them."""

    @property
    def n_trained(self) -> int:
        return sum(1 for x in self.labels if x != IGNORE)


def padded(rows: Sequence[Encoded], pad_id: int) -> dict[str, Any]:
    """Right-padded ``input_ids``, ``labels`` and ``attention_mask`` tensors of ``rows``."""
    import torch

    width = max(len(e.input_ids) for e in rows)
    return {
        "input_ids": torch.tensor(
            [e.input_ids + [pad_id] * (width - len(e.input_ids)) for e in rows]
        ),
        "labels": torch.tensor([e.labels + [IGNORE] * (width - len(e.labels)) for e in rows]),
        "attention_mask": torch.tensor(
            [[1] * len(e.input_ids) + [0] * (width - len(e.input_ids)) for e in rows]
        ),
    }


def assistant_spans(
    tokenizer: Any, messages: Sequence[dict[str, str]], first: int = 0
) -> tuple[str, list[tuple[int, int]]]:
    """The rendered conversation and the character spans of its assistant replies from
    turn ``first`` on (earlier turns are context: a preference pair's prompt)."""
    text = tokenizer.apply_chat_template(list(messages), tokenize=False)
    spans = []
    for i, message in enumerate(messages):
        if message["role"] != "assistant" or i < first:
            continue
        before = tokenizer.apply_chat_template(
            list(messages[:i]), tokenize=False, add_generation_prompt=True
        )
        upto = tokenizer.apply_chat_template(list(messages[: i + 1]), tokenize=False)
        if not (text.startswith(before) and text.startswith(upto) and len(upto) > len(before)):
            raise TemplateError(
                f"the chat template does not render turn {i}'s prefix as a prefix of the "
                "conversation; assistant tokens cannot be located"
            )
        spans.append((len(before), len(upto)))
    return text, spans


def encode(
    tokenizer: Any, messages: Sequence[dict[str, str]], max_length: int | None = None, *,
    first: int = 0, max_prompt_tokens: int | None = None,
) -> Encoded:  # fmt: skip
    """Token ids and labels (-100 outside assistant replies from turn ``first`` on), up to
    the last labelled token.

    ``max_prompt_tokens`` cuts the tokens before the first labelled one from the left (a
    long prompt keeps its end, next to the reply); ``max_length`` then cuts the end."""
    text, spans = assistant_spans(tokenizer, messages, first)
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids, offsets = list(enc["input_ids"]), enc["offset_mapping"]
    labels, replies = [], []
    for token, (start, end) in zip(ids, offsets, strict=True):
        owner = next((k for k, (s, e) in enumerate(spans) if s <= start and end <= e), -1)
        inside = end > start and owner >= 0
        labels.append(token if inside else IGNORE)
        replies.append(owner if inside else -1)
    # tokens after the last reply (the final observation) condition nothing that is trained
    end = next((i + 1 for i in range(len(labels) - 1, -1, -1) if labels[i] != IGNORE), 0)
    ids, labels, replies = ids[:end], labels[:end], replies[:end]
    if max_prompt_tokens is not None:
        prompt = next((i for i, x in enumerate(labels) if x != IGNORE), len(labels))
        cut = max(0, prompt - max_prompt_tokens)
        ids, labels, replies = ids[cut:], labels[cut:], replies[cut:]
    if max_length is not None:
        ids, labels, replies = ids[:max_length], labels[:max_length], replies[:max_length]
    return Encoded(ids, labels, tuple(replies))
