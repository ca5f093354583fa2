"""Shared data for the trainer's tests: WebShop oracle conversations on the embedded
catalog, in IPR's prompt layout, a tiny model trained on nothing yet, and a reference
computation of a continuation's log-probability."""

from __future__ import annotations

import gymnasium as gym
import pytest

import ipr_gym  # noqa: F401
from ipr_gym.react import get_protocol
from ipr_train.tiny import save_tiny


def webshop_conversations(split: str, limit: int) -> list[list[dict[str, str]]]:
    env = gym.make("ipr/WebShop-v0", split=split)
    shop = env.unwrapped
    protocol = get_protocol("ipr/WebShop-v0")
    out = []
    for task in shop.tasks[:limit]:
        messages = shop.expert_messages(task)
        first = messages[0]["content"].removeprefix("Observation:\n")
        opening = [{"role": m["role"], "content": m["content"]} for m in protocol.opening(first)]
        out.append(opening + messages[1:])
    return out


@pytest.fixture(scope="session")
def train_conversations():
    return webshop_conversations("train", 60)


@pytest.fixture(scope="session")
def heldout_conversations():
    return webshop_conversations("test", 12)


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory, train_conversations):
    texts = [m["content"] for c in train_conversations for m in c]
    return save_tiny(tmp_path_factory.mktemp("tiny"), texts)


def _continuation_logprob(model, tokenizer, prompt, continuation) -> tuple[float, int]:
    """Summed log-probability of the assistant tokens after ``prompt``, found with
    transformers' own assistant mask (the template's generation tags), prompt tokens off."""
    import torch

    messages = [{"role": t.role, "content": t.content} for t in (*prompt, *continuation)]
    rendered = tokenizer.apply_chat_template(
        messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True
    )
    ids, mask = rendered["input_ids"], rendered["assistant_masks"]
    head = tokenizer.apply_chat_template(
        [{"role": t.role, "content": t.content} for t in prompt], tokenize=True, return_dict=True
    )["input_ids"]
    assert ids[: len(head)] == head
    with torch.no_grad():
        logp = torch.log_softmax(model(torch.tensor([ids])).logits[0].double(), dim=-1)
    total, count = 0.0, 0
    for i in range(len(head), len(ids)):
        if mask[i]:
            total += logp[i - 1, ids[i]].item()
            count += 1
    return total, count


@pytest.fixture(scope="session")
def continuation_logprob():
    """An independent reference for the losses: (summed log-probability, token count) of the
    assistant tokens of ``continuation`` after ``prompt``."""
    return _continuation_logprob
