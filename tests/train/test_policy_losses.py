"""The policy-gradient losses and advantages against computations written here: PPO's
clipped surrogate with its KL term (token by token, in plain floats), the loss on a real
tiny model's episode (per-token log-probabilities from transformers' own assistant mask),
GRPO's and GiGPO's advantages (statistics module), the discriminator's cross-entropy and
the reward model's squared error."""

from __future__ import annotations

import math
import random
import statistics

import pytest
import torch

from ipr_train.advantages import discounted_returns, gigpo_advantages, grpo_advantages, whitened
from ipr_train.losses import clipped_policy_loss, discriminator_loss, regression_loss


def _surrogate(lp: float, old: float, adv: float, clip: float) -> float:
    ratio = math.exp(lp - old)
    return max(-adv * ratio, -adv * min(max(ratio, 1 - clip), 1 + clip))


def _k3(lp: float, ref: float) -> float:
    d = min(max(ref - lp, -10), 10)
    return min(max(math.exp(d) - d - 1, -10), 10)


def test_clipped_surrogate_and_kl_equal_a_token_by_token_computation():
    rng = random.Random(0)
    n = 40
    lp = [rng.uniform(-4, -0.1) for _ in range(n)]
    old = [x + rng.uniform(-0.6, 0.6) for x in lp]  # ratios on both sides of the clip range
    ref = [x + rng.uniform(-1, 1) for x in lp]
    adv = [rng.uniform(-2, 2) for _ in range(n)]
    logp = torch.tensor(lp, dtype=torch.float64, requires_grad=True)
    total, stats = clipped_policy_loss(logp, torch.tensor(old, dtype=torch.float64),
                                       torch.tensor(adv, dtype=torch.float64), clip=0.2,
                                       ref_logp=torch.tensor(ref, dtype=torch.float64),
                                       kl_coef=0.05)  # fmt: skip
    expected = sum(_surrogate(*x, 0.2) for x in zip(lp, old, adv, strict=True))
    kl = sum(_k3(a, b) for a, b in zip(lp, ref, strict=True))
    assert float(total.detach()) == pytest.approx(expected + 0.05 * kl, rel=1e-12)
    assert stats["kl"] == pytest.approx(kl, rel=1e-12)
    clipped = sum(abs(math.exp(a - b) - 1) > 0.2 for a, b in zip(lp, old, strict=True))
    assert 0 < stats["clipped"] == clipped < n
    # the gradient: -A r where the unclipped term is the max, 0 where the clip holds it
    total.backward()
    for i in range(n):
        r = math.exp(lp[i] - old[i])
        held = (adv[i] > 0 and r > 1.2) or (adv[i] < 0 and r < 0.8)
        d = min(max(ref[i] - lp[i], -10), 10)
        grad = (0.0 if held else -adv[i] * r) + 0.05 * (1 - math.exp(d))
        assert float(logp.grad[i]) == pytest.approx(grad, rel=1e-9, abs=1e-12)


def test_no_reference_no_kl():
    logp = torch.tensor([-1.0, -2.0])
    total, stats = clipped_policy_loss(logp, logp, torch.tensor([1.0, -3.0]), kl_coef=0.5)
    assert float(total) == pytest.approx(-1.0 + 3.0) and "kl" not in stats


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_policy_loss_on_a_real_episode_equals_one_from_the_assistant_mask(tiny_dir, temperature):
    """Two replies with different advantages: each token of a reply carries its own, the
    observation and prompt tokens none; log-probabilities from transformers' assistant mask,
    at the temperature the episode was sampled with (logits / T)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ipr_train.policy_gradient import (
        collate_samples,
        encode_sample,
        policy_loss_fn,
        token_logprobs,
    )
    from ipr_train.records import EnvStep, Trajectory, Turn

    tokenizer = AutoTokenizer.from_pretrained(tiny_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_dir)
    turns = (Turn("user", "Instruction: buy a shirt"), Turn("assistant", "OK"),
             Turn("user", "WebShop [SEP] Search"),
             Turn("assistant", "Thought: search.\nAction: search[red shirt]"),
             Turn("user", "Observation: results B01 B02"),
             Turn("assistant", "Thought: first.\nAction: click[B01]"),
             Turn("user", "Observation: a red shirt [SEP] Buy Now"))  # fmt: skip
    steps = (EnvStep("search[red shirt]", "results", turn=3),
             EnvStep("click[B01]", "shirt", turn=5))  # fmt: skip
    episode = Trajectory("ipr/WebShop-v0", 0, turns, steps, reward=0.5, id="e")
    advantages = [1.5, -0.7]
    sample = encode_sample(tokenizer, episode, advantages, 4096, 4096)

    messages = [{"role": t.role, "content": t.content} for t in turns]
    rendered = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True,
                                             return_assistant_tokens_mask=True)  # fmt: skip
    ids, mask = rendered["input_ids"], rendered["assistant_masks"]
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0].double()
        logp = torch.log_softmax(logits / temperature, -1)
    # the assistant runs in order: "OK" (the opening's, before the agent's first step: no
    # loss), then one run per step
    runs, reply = [], -1
    for i in range(len(ids)):
        if mask[i] and (i == 0 or not mask[i - 1]):
            reply += 1
        if mask[i]:
            runs.append((i, reply))
    tokens = [(i, r - 1) for i, r in runs if r >= 1]
    per_token_adv = [advantages[r] for _, r in tokens]
    assert list(sample.advantages) == per_token_adv
    rng = random.Random(1)
    old = [float(logp[i - 1, ids[i]]) + rng.uniform(-0.5, 0.5) for i, _ in tokens]
    from dataclasses import replace

    scored = token_logprobs(model, [sample], tokenizer.pad_token_id, temperature=temperature)
    assert scored[0] == pytest.approx([float(logp[i - 1, ids[i]]) for i, _ in tokens], abs=1e-4)
    batch = collate_samples([replace(sample, old=tuple(old))], tokenizer.pad_token_id)
    batch["ref"] = None
    loss, _ = policy_loss_fn(clip=0.2, kl_coef=0.0, temperature=temperature)(model, batch)
    expected = sum(_surrogate(float(logp[i - 1, ids[i]]), o, a, 0.2)
                   for (i, _), o, a in zip(tokens, old, per_token_adv, strict=True))  # fmt: skip
    assert float(loss.detach()) == pytest.approx(expected, rel=1e-4)
    assert batch["weight"] == len(tokens)


def test_grpo_normalises_within_each_task_group():
    outcomes = [1.0, 0.0, 0.5, 0.2, 0.2, 0.7]
    groups = ["a", "a", "a", "b", "b", "c"]
    got = grpo_advantages(outcomes, groups)
    a_mean, a_std = statistics.mean(outcomes[:3]), statistics.stdev(outcomes[:3])
    expected = [(x - a_mean) / (a_std + 1e-6) for x in outcomes[:3]]
    expected += [0.0, 0.0]  # equal rewards: no signal
    expected += [0.7 / (1 + 1e-6)]  # a group of one: mean 0, std 1, plus epsilon (verl)
    assert got == pytest.approx(expected, abs=1e-12)
    assert grpo_advantages(outcomes, groups, std=False)[:3] == pytest.approx(
        [x - a_mean for x in outcomes[:3]]
    )


def test_whitened_over_the_batch():
    values = [3.0, 1.0, 0.0, 2.0]
    m, s = statistics.mean(values), statistics.stdev(values)
    assert whitened(values) == pytest.approx([(v - m) / (s + 1e-6) for v in values])
    assert whitened([5.0]) == [0.0] and whitened([]) == []


@pytest.mark.parametrize("across_steps", [True, False])
def test_gigpo_joins_episode_and_anchor_state_advantages(across_steps):
    """Two episodes of task "t" meet in state "s1"; a third task runs alone. The episode
    statistics are over the group's steps (verl-agent's default: the 3-step episode counts
    3 times) or over its episodes (the paper's Eq. 3)."""
    gamma = 0.9
    episodes = [
        ("t", [0.0, 0.0, 1.0], ["s0", "s1", "s2"]),
        ("t", [0.0, 0.0], ["s0", "s1"]),
        ("u", [0.0, 0.4], ["s0", "x"]),
    ]
    got = gigpo_advantages(episodes, gamma=gamma, step_weight=0.5, std=True,
                           across_steps=across_steps)  # fmt: skip
    z = lambda x, g: (x - statistics.mean(g)) / (statistics.stdev(g) + 1e-6)  # noqa: E731
    if across_steps:  # rows 1, 1, 1, 0, 0 for task t; 0.4, 0.4 for task u (no spread: 0)
        e0, e1, e2 = z(1.0, [1, 1, 1, 0, 0]), z(0.0, [1, 1, 1, 0, 0]), 0.0
    else:  # task t outcomes 1 and 0; task u alone keeps its outcome (mean 0, std 1)
        e0, e1, e2 = z(1.0, [1.0, 0.0]), z(0.0, [1.0, 0.0]), 0.4 / (1 + 1e-6)
    # step level: returns 0.81, 0.9, 1 and 0, 0; then 0.36, 0.4
    r0, r1 = [gamma**2, gamma, 1.0], [0.0, 0.0]
    g_s0 = [r0[0], r1[0]]  # ("t", "s0") and ("t", "s1") hold two steps each
    g_s1 = [r0[1], r1[1]]
    expected = [
        [e0 + 0.5 * z(r0[0], g_s0), e0 + 0.5 * z(r0[1], g_s1), e0],  # s2: alone, 0
        [e1 + 0.5 * z(r1[0], g_s0), e1 + 0.5 * z(r1[1], g_s1)],
        [e2, e2],  # ("u", "s0") differs from ("t", "s0"): groups never cross tasks
    ]
    for g, e in zip(got, expected, strict=True):
        assert g == pytest.approx(e, abs=1e-9)
    assert discounted_returns([0.0, 0.0, 1.0], gamma) == pytest.approx(r0)


def test_gigpo_anchors_are_the_envs_observations_not_the_format_error():
    from ipr_train.methods.grpo import anchors
    from ipr_train.records import EnvStep, Trajectory, Turn

    steps = (EnvStep("search[a]", "results"), EnvStep(None, "Invalid format, try again"),
             EnvStep(None, "Invalid format, try again"), EnvStep("click[x]", "item"),
             EnvStep("click[buy]", "done"))  # fmt: skip
    episode = Trajectory("ipr/WebShop-v0", 0, (Turn("user", "start"),), steps)
    assert anchors(episode, "observation") == ["<start>", "results", "results", "results",
                                               "item"]  # fmt: skip
    assert anchors(episode, "state") == [(), ("search[a]",), ("search[a]",), ("search[a]",),
                                         ("search[a]", "click[x]")]  # fmt: skip


def test_discriminator_and_regression_losses():
    logits = torch.tensor([2.0, -1.0, 0.3, -4.0])
    labels = torch.tensor([1.0, 0.0, 0.0, 1.0])
    loss, stats = discriminator_loss(logits, labels)
    sig = [1 / (1 + math.exp(-x)) for x in logits.tolist()]
    expected = -sum(math.log(p) if y else math.log(1 - p)
                    for p, y in zip(sig, labels.tolist(), strict=True))  # fmt: skip
    assert float(loss) == pytest.approx(expected, rel=1e-6)
    assert stats["correct"] == 2  # 2.0 -> 1 right, -1 -> 0 right, 0.3 -> 0 wrong, -4 -> 1 wrong
    pred, target = torch.tensor([0.2, 0.9, -0.1]), torch.tensor([0.0, 1.0, 0.5])
    loss, _ = regression_loss(pred, target)
    assert float(loss) == pytest.approx(0.04 + 0.01 + 0.36, rel=1e-6)


def test_a_step_budget_short_of_the_samples_scores_and_trains_only_what_it_reaches(
    tiny_dir, tmp_path, monkeypatch
):
    """24 steps of 4 against 400 episodes reach 96: old and reference log-probs are
    computed for a seeded random 96 and the update trains one epoch on exactly those; a
    budget that reaches every sample (or none set) takes them all, every process counted."""
    from ipr_train import policy_gradient
    from ipr_train.records import EnvStep, Trajectory, Turn
    from ipr_train.train import Schedule

    budget = Schedule(max_steps=3, batch_size=2, learning_rate=1e-4, seed=5, resume=False)
    chosen = policy_gradient.trained_subset(10, budget)
    assert len(chosen) == len(set(chosen)) == 6 and chosen == sorted(chosen)
    assert set(chosen) <= set(range(10))
    assert policy_gradient.trained_subset(10, budget) == chosen  # seeded
    seeds = [Schedule(max_steps=3, batch_size=2, seed=s) for s in range(6)]
    others = {tuple(policy_gradient.trained_subset(10, b)) for b in seeds}
    assert len(others) > 1  # the seed draws the subset
    assert policy_gradient.trained_subset(10, Schedule(max_steps=5, batch_size=2)) == list(
        range(10)
    )
    assert policy_gradient.trained_subset(10, Schedule(batch_size=2)) == list(range(10))
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert len(policy_gradient.trained_subset(20, budget)) == 12
    monkeypatch.delenv("WORLD_SIZE")

    def episode(k: int) -> Trajectory:
        turns = (Turn("user", f"Instruction: buy shirt {k}"), Turn("assistant", "OK"),
                 Turn("user", "WebShop [SEP] Search"),
                 Turn("assistant", f"Thought: search.\nAction: search[shirt {k}]"),
                 Turn("user", "Observation: results"))  # fmt: skip
        return Trajectory("ipr/WebShop-v0", k, turns, (EnvStep(f"search[shirt {k}]", "r", turn=3),),
                          id=f"e{k}")  # fmt: skip

    scored: list[list[tuple[int, ...]]] = []
    original = policy_gradient.token_logprobs

    def spy(model, samples, *args, **kwargs):
        scored.append([tuple(s.encoded.input_ids) for s in samples])
        return original(model, samples, *args, **kwargs)

    monkeypatch.setattr(policy_gradient, "token_logprobs", spy)
    samples = [(episode(k), [1.0 if k % 2 else -1.0]) for k in range(10)]
    result = policy_gradient.train_policy(
        tiny_dir, tiny_dir, samples, budget, tmp_path / "ppo", max_length=512,
        max_prompt_tokens=512, clip=0.2, kl_coef=0.1, identity={"test": 1},
    )  # fmt: skip
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_dir)
    expected = [tuple(policy_gradient.encode_sample(tokenizer, *samples[i], 512, 512)
                      .encoded.input_ids) for i in chosen]  # fmt: skip
    assert scored == [expected, expected]  # old, then reference log-probs
    assert result.examples == 6 and result.steps == 3
