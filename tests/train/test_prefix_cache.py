"""The HF backend's prefix cache: a conversation's next turn and a request's other samples
read only tokens no earlier prompt held, the keys and values it assembles are those of a
forward pass over the whole sequence, the samples are those drawn without it, and it holds
no more than its byte budget."""

from __future__ import annotations

import pytest
import torch

from ipr_train.policies import GenerationParams
from ipr_train.policies.base import prompt_ids
from ipr_train.policies.hf import HFPolicy
from ipr_train.policies.prefix_cache import PrefixCache

FIRST = [{"role": "user", "content": "Observation:\nWebShop [SEP] Instruction: [SEP] red shoes"}]


NEXT = {"role": "user", "content": "Observation:\n[SEP] B01 [SEP] Red Shoe [SEP] $9.99"}


def _second(reply: str) -> list[dict[str, str]]:
    return [*FIRST, {"role": "assistant", "content": reply}, NEXT]


@pytest.fixture(scope="module")
def cached(tiny_dir):
    return HFPolicy(str(tiny_dir), device="cpu")


@pytest.fixture(scope="module")
def uncached(tiny_dir):
    return HFPolicy(str(tiny_dir), device="cpu", prefix_cache_mb=0)


def test_a_next_turn_reads_only_its_new_tokens_and_samples_as_without_the_cache(cached, uncached):
    params = GenerationParams(temperature=1.0, n=3, seed=3, max_new_tokens=12)
    cache = cached.cache
    assert cache is not None and uncached.cache is None
    before = cache.read_tokens
    (one,) = cached.complete([FIRST], [params])
    first_ids = prompt_ids(cached.tokenizer, FIRST)
    # three samples of one prompt: it is read once (all but its last token, read decoding)
    assert cache.read_tokens - before == len(first_ids) - 1
    assert uncached.complete([FIRST], [params]) == [one]

    second = _second(one.texts[1])
    second_ids = prompt_ids(cached.tokenizer, second)
    new = len(second_ids) - len(first_ids)  # reply, end marker, next observation
    before = cache.read_tokens
    (two,) = cached.complete([second], [params.with_seed(4)])
    assert 0 < cache.read_tokens - before <= new
    assert uncached.complete([second], [params.with_seed(4)]) == [two]


def test_assembled_keys_and_values_are_those_of_one_pass_over_the_sequence(tiny_dir):
    policy = HFPolicy(str(tiny_dir), device="cpu", prefix_cache_mb=0)
    model = policy.model
    cache = PrefixCache(model, 64 << 20)
    ids = prompt_ids(policy.tokenizer, _second("Thought: look.\nAction: search[red shoes]"))
    head = ids[:20]
    # a batch of two rows (left padded) through the cache: the long row's prefix is kept
    width = len(ids)
    batch = cache.assemble([cache.read(head), cache.read(ids[:15])], width - 1)
    cache.keep(head[:-1], batch, 0, width - len(head))
    read = cache.read(ids)
    assert cache.read_tokens == (len(head) - 1) + (15 - 1) + (len(ids) - len(head))

    from transformers import DynamicCache

    whole = DynamicCache(config=model.config)
    with torch.no_grad():
        model(input_ids=torch.tensor([ids[:-1]]), cache=whole, use_cache=True)
    for (k, v), layer in zip(read, whole.layers, strict=True):
        assert k.shape == layer.keys[0].shape
        torch.testing.assert_close(k, layer.keys[0], atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(v, layer.values[0], atol=1e-5, rtol=1e-4)


def test_the_cache_holds_no_more_than_its_budget_and_evicts_the_least_recent(tiny_dir):
    policy = HFPolicy(str(tiny_dir), device="cpu", prefix_cache_mb=0)
    ids = prompt_ids(policy.tokenizer, _second("Thought: look.\nAction: search[red shoes]"))
    probe = PrefixCache(policy.model, 1 << 30)
    rows = [ids[: 10 + 5 * i] for i in range(4)]
    width = max(map(len, rows))

    def keep_all(cache: PrefixCache) -> None:
        batch = cache.assemble([cache.read(r) for r in rows], width - 1)
        for i, r in enumerate(rows):
            cache.keep(r[:-1], batch, i, width - len(r))

    keep_all(probe)
    sizes = [size for _, _, size in probe.entries.values()]
    # a row of n tokens: keys and values of n positions in every layer, float32
    c = policy.model.config
    per_token = c.num_hidden_layers * 2 * c.num_key_value_heads * c.head_dim * 4
    assert sizes == [(len(r) - 1) * per_token for r in rows]
    budget = sizes[2] + sizes[3]
    small = PrefixCache(policy.model, budget)
    keep_all(small)
    assert small.bytes <= budget
    assert [len(held) for held, _, _ in small.entries.values()] == [len(rows[2]) - 1,
                                                                  len(rows[3]) - 1]  # fmt: skip
