"""Policies sample independent, reproducible replies: ``n`` samples of one request differ,
the same seeds give the same samples, HF samples without top-k and stops at stop strings,
and a request that cannot be served fails alone."""

from __future__ import annotations

import pytest
import torch

from ipr_train.policies import GenerationParams, derive_seed
from ipr_train.policies.hf import HFPolicy

PROMPT = [{"role": "user", "content": "Observation: WebShop [SEP] Search"}]


@pytest.fixture(scope="module")
def policy(tiny_dir):
    return HFPolicy(str(tiny_dir), device="cpu")


def test_five_samples_at_temperature_one_differ_and_reproduce(policy):
    params = GenerationParams(temperature=1.0, n=5, seed=11, max_new_tokens=16)
    (first,) = policy.complete([PROMPT], [params])
    assert len(first.texts) == 5
    assert len(set(first.texts)) > 1, first.texts
    (again,) = policy.complete([PROMPT], [params])
    assert again.texts == first.texts
    (other,) = policy.complete([PROMPT], [params.with_seed(12)])
    assert other.texts != first.texts
    assert first.generated_tokens > 0 and first.prompt_tokens > 0


def test_greedy_samples_are_identical(policy):
    (c,) = policy.complete([PROMPT], [GenerationParams(n=3, max_new_tokens=8)])
    assert len(set(c.texts)) == 1


def test_no_implicit_top_k(policy):
    """With transformers' implicit top_k=50, every first token would rank in the top 50 of
    the model's distribution; sampled as vLLM samples (no top-k), many do not."""
    (c,) = policy.complete([PROMPT], [GenerationParams(temperature=1.0, n=40, seed=1,
                                                       max_new_tokens=1)])  # fmt: skip
    tok = policy.tokenizer
    prompt = tok.apply_chat_template(PROMPT, tokenize=False, add_generation_prompt=True)
    ids = tok(prompt, return_tensors="pt", add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logits = policy.model(ids).logits[0, -1]
    order = torch.argsort(logits, descending=True).tolist()
    first_ids = [tok(t, add_special_tokens=False)["input_ids"][0] for t in c.texts if t]
    ranks = [order.index(i) for i in first_ids if i in order]
    assert ranks and max(ranks) >= 50, ranks


def test_stop_strings_end_generation(policy):
    # a seeded sample (the untrained model's greedy reply is special tokens only); the
    # same seed with a stop string draws the same tokens until the stop
    free = GenerationParams(temperature=1.0, seed=4, max_new_tokens=24)
    (plain,) = policy.complete([PROMPT], [free])
    text = plain.texts[0]
    assert plain.generated_tokens == 24 and len(text) > 8
    stop = text[6:8]  # two characters a few tokens in
    (stopped,) = policy.complete([PROMPT], [GenerationParams(
        temperature=1.0, seed=4, max_new_tokens=24, stop=(stop,))])  # fmt: skip
    assert stopped.texts[0] == text[: text.find(stop)]
    assert stopped.generated_tokens < 24


def test_an_overlong_prompt_fails_alone(policy):
    long = [{"role": "user", "content": "word " * (policy.context + 10)}]
    a, b = policy.complete([long, PROMPT], [GenerationParams(max_new_tokens=4)] * 2)
    assert a.error is not None and "context" in a.error and a.texts == ()
    assert b.error is None and len(b.texts) == 1


def test_derived_seeds_are_stable_and_distinct():
    assert derive_seed(0, 1, 2) == derive_seed(0, 1, 2)
    seeds = {derive_seed(7, i, j) for i in range(20) for j in range(5)}
    assert len(seeds) == 100 and all(0 <= s < 2**31 for s in seeds)


def test_the_vllm_backend_prompts_with_the_ids_the_hf_backend_generates_from(policy):
    """One prompt function for every backend, on the real tokenizer: the ids the vLLM
    backend hands its engine equal those the HF backend hands ``generate`` (recorded from
    the real call) and transformers' own tokenized chat template. (Under transformers 5 a
    bare ``apply_chat_template`` returns a ``BatchEncoding``, which the vLLM backend once
    took for the ids.) The engine itself needs a GPU; building its prompt does not."""
    from ipr_train.policies.vllm_engine import VLLMPolicy

    conversation = [
        {"role": "user", "content": "Observation:\nWebShop [SEP] Instruction: [SEP] red shoes"},
        {"role": "assistant", "content": "Thought: search.\nAction: search[red shoes]"},
        {"role": "user", "content": "Observation:\n[SEP] B01 [SEP] Red Shoe [SEP] $9.99"},
    ]
    seen = []
    generate = policy.model.generate

    def recording(**kwargs):
        ids, mask = kwargs["input_ids"][0], kwargs["attention_mask"][0]
        seen.append(ids[mask.bool()].tolist())
        return generate(**kwargs)

    policy.model.generate = recording
    try:
        policy.generate([conversation], GenerationParams(max_new_tokens=2))
    finally:
        policy.model.generate = generate
    engine = object.__new__(VLLMPolicy)
    engine.tokenizer = policy.tokenizer
    templated = policy.tokenizer.apply_chat_template(
        conversation, add_generation_prompt=True, return_dict=True
    )["input_ids"]
    assert seen == [engine.prompt_ids(conversation)] == [list(templated)]
    assert len(seen[0]) > 10 and all(isinstance(i, int) for i in seen[0])


def test_a_backend_in_its_own_process_answers_as_in_process_and_ends_with_its_stage(
    policy, tiny_dir, tmp_path
):
    """``process: true`` (vLLM's default) builds the backend in a spawned child: the same
    replies for the same seeds; closing it (the end of a stage) ends
    the child; a child that died, or a model folder that is not one, is a clear error."""
    import os
    import signal

    from ipr_train.policies import make_policy

    params = [GenerationParams(temperature=1.0, n=3, seed=5, max_new_tokens=12),
              GenerationParams(max_new_tokens=8)]  # fmt: skip
    second = [{"role": "user", "content": "Observation: Instruction: [SEP] a red shirt"}]
    here = policy.complete([PROMPT, second], params)
    with make_policy({"backend": "hf", "model": str(tiny_dir), "device": "cpu",
                      "process": True}) as remote:  # fmt: skip
        child = remote.process
        assert child.pid != os.getpid() and child.is_alive()
        assert remote.complete([PROMPT, second], params) == here
        os.kill(child.pid, signal.SIGKILL)
        child.join(timeout=30)
        with pytest.raises(RuntimeError, match="process is not running"):
            remote.complete([PROMPT], params[:1])
    assert not child.is_alive()
    with make_policy({"backend": "hf", "model": str(tiny_dir), "process": True}) as again:
        pass
    assert not again.process.is_alive()  # closed with the stage
    with pytest.raises(RuntimeError, match=r"failed to start: \w+Error"):
        make_policy({"backend": "hf", "model": str(tmp_path), "process": True})
