"""The IPR mixture loss against computations written here from the model's logits, the
o-DPO term against TRL's DPO trainer, and no gradient through prompt or observation tokens."""

from __future__ import annotations

import copy
import dataclasses
import math

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from ipr_train.losses import sequence_logprobs
from ipr_train.preference import collate_pairs, encode_pair, mixture_loss_fn, reference_logprobs
from ipr_train.records import Pair, Turn

PROMPT = (
    Turn("user", "You are web shopping."),
    Turn("assistant", "OK"),
    Turn("user", "WebShop [SEP] find red shoes [SEP] Search"),
    Turn("assistant", "Thought: search.\nAction: search[red shoes]"),
    Turn("user", "Observation:\nPage 1 [SEP] B01 [SEP] Red Shoes"),
)
CHOSEN = (
    Turn("assistant", "Thought: that one.\nAction: click[B01]"),
    Turn("user", "Observation:\nRed Shoes [SEP] Buy Now"),
    Turn("assistant", "Thought: buy.\nAction: click[Buy Now]"),
)
REJECTED = (
    Turn("assistant", "Thought: next.\nAction: click[Next >]"),
    Turn("user", "Observation:\nPage 2 [SEP] B07"),
    Turn("assistant", "Thought: hm.\nAction: click[B07]"),
)


@pytest.fixture(scope="module")
def models(tiny_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_dir)
    policy = AutoModelForCausalLM.from_pretrained(tiny_dir)
    reference = copy.deepcopy(policy)
    torch.manual_seed(3)
    with torch.no_grad():  # a reference that differs from the policy
        for p in reference.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return tokenizer, policy, reference


def test_mixture_equals_an_independent_computation(models, continuation_logprob):
    tokenizer, policy, reference = models
    pairs = [
        Pair(PROMPT, CHOSEN, REJECTED, kind="step", step=1),
        Pair(PROMPT[:3], PROMPT[3:] + CHOSEN, PROMPT[3:] + REJECTED, kind="outcome"),
    ]
    beta, weights = 0.3, {"outcome_weight": 0.7, "step_weight": 1.3, "sft_weight": 0.5}
    expected = {"sum": 0.0, "mean": 0.0}
    for pair in pairs:
        c, n_c = continuation_logprob(policy, tokenizer, pair.prompt, pair.chosen)
        r, _ = continuation_logprob(policy, tokenizer, pair.prompt, pair.rejected)
        rc, _ = continuation_logprob(reference, tokenizer, pair.prompt, pair.chosen)
        rr, _ = continuation_logprob(reference, tokenizer, pair.prompt, pair.rejected)
        margin = beta * ((c - rc) - (r - rr))
        dpo = math.log1p(math.exp(-margin))  # -log sigmoid(margin)
        w = weights["step_weight"] if pair.kind == "step" else weights["outcome_weight"]
        expected["sum"] += w * dpo + weights["sft_weight"] * -c
        expected["mean"] += w * dpo + weights["sft_weight"] * -c / n_c
    pad = tokenizer.pad_token_id
    encoded = [encode_pair(tokenizer, p, 4096, 4096) for p in pairs]
    refs = reference_logprobs(reference, encoded, pad)
    encoded = [
        dataclasses.replace(e, ref_chosen=a, ref_rejected=b)
        for e, (a, b) in zip(encoded, refs, strict=True)
    ]
    batch = collate_pairs(encoded, pad)
    assert batch["weight"] == 2
    for reduction in ("sum", "mean"):
        loss, _ = mixture_loss_fn(beta=beta, sft_reduction=reduction, **weights)(policy, batch)
        assert float(loss) == pytest.approx(expected[reduction], rel=1e-5)


def test_outcome_dpo_equals_trls_dpo_sigmoid_loss(models, tmp_path):
    pytest.importorskip("trl")
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    tokenizer, policy, reference = models
    prompt = (Turn("user", "find red shoes"),)
    chosen = (Turn("assistant", "Thought: search.\nAction: search[red shoes]"),)
    rejected = (Turn("assistant", "Thought: buy.\nAction: click[Buy Now]"),)
    data = Dataset.from_list(
        [
            {
                "prompt": [{"role": "user", "content": prompt[0].content}],
                "chosen": [{"role": "assistant", "content": chosen[0].content}],
                "rejected": [{"role": "assistant", "content": rejected[0].content}],
            }
        ]
    )
    args = DPOConfig(
        output_dir=str(tmp_path),
        per_device_train_batch_size=1,
        beta=0.2,
        loss_type=["sigmoid"],
        report_to=[],
        use_cpu=True,
        bf16=False,
    )
    trainer = DPOTrainer(
        model=copy.deepcopy(policy),
        ref_model=copy.deepcopy(reference),
        args=args,
        train_dataset=data,
        processing_class=tokenizer,
    )
    trl_batch = next(iter(trainer.get_train_dataloader()))
    expected = float(trainer.compute_loss(trainer.model, trl_batch))

    pair = Pair(prompt, chosen, rejected, kind="outcome")
    encoded = encode_pair(tokenizer, pair, 4096, 4096)
    # the same tokens carry log-probability in both
    ours = [sum(1 for x in e.labels if x != -100) for e in (encoded.chosen, encoded.rejected)]
    assert ours == trl_batch["completion_mask"].sum(-1).tolist()
    ((rc, rr),) = reference_logprobs(reference, [encoded], tokenizer.pad_token_id)
    batch = collate_pairs(
        [type(encoded)(encoded.chosen, encoded.rejected, False, rc, rr)], tokenizer.pad_token_id
    )
    loss, _ = mixture_loss_fn(
        beta=0.2, outcome_weight=1.0, step_weight=1.0, sft_weight=0.0, sft_reduction="sum"
    )(policy, batch)
    assert float(loss) == pytest.approx(expected, rel=1e-5)


def test_no_gradient_reaches_prompt_or_observation_positions(models):
    tokenizer, policy, _ = models
    encoded = encode_pair(tokenizer, Pair(PROMPT, CHOSEN, REJECTED, kind="step"), 4096, 4096)
    batch = collate_pairs([encoded], tokenizer.pad_token_id)
    seen = {}

    def keep(module, args, output):  # the final hidden states, one per position
        output.retain_grad()
        seen["hidden"] = output

    hook = policy.model.norm.register_forward_hook(keep)
    try:
        logp, _ = sequence_logprobs(policy, batch)
    finally:
        hook.remove()
    logp.sum().backward()
    policy.zero_grad()
    grad = seen["hidden"].grad.abs().sum(-1)[:, :-1]  # position i predicts token i + 1
    mask = batch["labels"][:, 1:] != -100
    assert mask.any() and not mask.all()
    assert torch.all(grad[~mask] == 0) and torch.all(grad[mask] > 0)
    # what carries loss is exactly the continuation's replies, not the prompt's reply
    text = tokenizer.decode([t for t in encoded.chosen.labels if t != -100])
    assert "click[B01]" in text and "click[Buy Now]" in text and "search[red shoes]" not in text
    assert "Red Shoes [SEP] Buy Now" not in text  # the observation inside the continuation


def test_a_long_prompt_is_cut_from_the_left(models):
    tokenizer, _, _ = models
    full = encode_pair(tokenizer, Pair(PROMPT, CHOSEN, REJECTED), 4096, 4096)
    cut = encode_pair(tokenizer, Pair(PROMPT, CHOSEN, REJECTED), 4096, 8)
    first = next(i for i, x in enumerate(cut.chosen.labels) if x != -100)
    assert (
        first == 8 and cut.chosen.input_ids == full.chosen.input_ids[-len(cut.chosen.input_ids) :]
    )
