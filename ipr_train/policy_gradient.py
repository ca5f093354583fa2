"""Policy-gradient training on the agent's own episodes through the one training loop: PPO,
Step-PPO, GRPO, GiGPO and StepAgent-Inverse differ only in the advantages they give.

A sample is an episode (or a branch from a prefix) and one advantage per reply the agent
made in it; every token of a reply carries its reply's advantage, observation and prompt
tokens carry nothing. The log-probabilities of the policy that played the episodes (the
agent that began the iteration) and of the reference are computed once before training;
the loss is PPO's clipped surrogate per token (``losses.clipped_policy_loss``), averaged
over the tokens of each accumulation window (verl's ``token-mean``).

Under a step budget whose batches reach fewer samples than there are (the comparison's
24 steps of 4 against 400 episodes), the update trains one epoch on a seeded random choice
of as many samples as the batches hold (``trained_subset``), and the log-probabilities are
computed for those alone; without it the loop would visit as many samples, drawn from a
permutation of all, and the log-probabilities of the rest would be computed for nothing.
PPO as published instead takes several epochs over every sample; the budget rule of the
comparison is what makes this a subset.
"""

from __future__ import annotations

import os
import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ipr_train.losses import clipped_policy_loss, labelled_logprobs
from ipr_train.masking import IGNORE, Encoded, encode, padded
from ipr_train.progress import progress_bar
from ipr_train.records import Trajectory
from ipr_train.train import Schedule, TrainResult, train


@dataclass(frozen=True)
class EncodedSample:
    encoded: Encoded
    advantages: tuple[float, ...]
    """Per trained token (the labelled tokens after the first position, in order)."""
    old: tuple[float, ...] = ()
    ref: tuple[float, ...] = ()


def agent_turn(trajectory: Trajectory) -> int:
    """The turn of the agent's first reply in ``trajectory`` (after any prefix it was given)."""
    if not trajectory.steps:
        raise ValueError(f"trajectory {trajectory.id!r} has no step of the agent's")
    return trajectory.steps[0].turn


def encode_sample(
    tokenizer: Any, trajectory: Trajectory, advantages: Sequence[float], max_length: int,
    max_prompt_tokens: int,
) -> EncodedSample:  # fmt: skip
    """The episode's tokens with the agent's replies labelled, each carrying the advantage
    of its step (``advantages[k]`` for the k-th step)."""
    if len(advantages) != len(trajectory.steps):
        raise ValueError(f"{len(advantages)} advantages for {len(trajectory.steps)} steps "
                         f"in {trajectory.id!r}")  # fmt: skip
    messages = [{"role": t.role, "content": t.content} for t in trajectory.turns]
    encoded = encode(tokenizer, messages, max_length, first=agent_turn(trajectory),
                     max_prompt_tokens=max_prompt_tokens)  # fmt: skip
    per_token = tuple(
        float(advantages[reply])
        for label, reply in zip(encoded.labels[1:], encoded.replies[1:], strict=True)
        if label != IGNORE
    )
    return EncodedSample(encoded, per_token)


def collate_samples(batch: Sequence[EncodedSample], pad_id: int) -> dict[str, Any]:
    """Right-padded rows and the flat per-token vectors; ``weight`` = trained tokens."""
    import torch

    flat = lambda name: torch.tensor([x for s in batch for x in getattr(s, name)],  # noqa: E731
                                     dtype=torch.float32)  # fmt: skip
    return {
        **padded([s.encoded for s in batch], pad_id),
        "advantages": flat("advantages"),
        "old": flat("old"),
        "ref": flat("ref") if all(s.ref for s in batch) else None,
        "weight": sum(len(s.advantages) for s in batch),
    }


def trained_subset(count: int, schedule: Schedule) -> list[int]:
    """The positions of the samples a step budget trains on: every one where its batches
    (over every process) reach them all, else a random choice of as many as they hold,
    seeded by the schedule's seed, in order."""
    if schedule.max_steps is None:
        return list(range(count))
    processes = int(os.environ.get("WORLD_SIZE", "1"))
    reach = schedule.max_steps * schedule.grad_accum * schedule.batch_size * processes
    if reach >= count:
        return list(range(count))
    return sorted(random.Random(schedule.seed).sample(range(count), reach))


def token_logprobs(
    model: Any, samples: Sequence[EncodedSample], pad_id: int, batch_size: int = 4,
    what: str = "log-probs", temperature: float = 1.0,
) -> list[tuple[float, ...]]:  # fmt: skip
    """Each sample's trained tokens' log-probabilities under ``model`` at ``temperature``."""
    import torch

    out: list[tuple[float, ...]] = []
    model.eval()
    with torch.no_grad(), progress_bar(len(samples), what) as bar:
        for start in range(0, len(samples), batch_size):
            chunk = samples[start : start + batch_size]
            batch = collate_samples(chunk, pad_id)
            logp, rows = labelled_logprobs(model, batch, temperature)
            for k in range(len(chunk)):
                out.append(tuple(logp[rows == k].tolist()))
            bar.update(len(chunk))
    return out


def policy_loss_fn(*, clip: float, kl_coef: float, temperature: float = 1.0) -> Any:
    def loss(model: Any, batch: dict[str, Any]) -> tuple[Any, dict[str, float]]:
        logp, _ = labelled_logprobs(model, batch, temperature)
        return clipped_policy_loss(logp, batch["old"], batch["advantages"], clip=clip,
                                   ref_logp=batch["ref"], kl_coef=kl_coef)  # fmt: skip

    return loss


def train_policy(
    policy_dir: str | Path, reference_dir: str | Path | None,
    samples: Sequence[tuple[Trajectory, Sequence[float]]], schedule: Schedule,
    output_dir: str | Path, *, max_length: int, max_prompt_tokens: int, clip: float,
    kl_coef: float, identity: dict[str, Any], temperature: float = 1.0,
) -> TrainResult:  # fmt: skip
    """One policy update of the model in ``policy_dir`` (which played the episodes, sampling
    at ``temperature``) on (episode, per-step advantages) samples; the final model goes to
    ``output_dir/final``."""
    temperature = temperature if temperature > 0 else 1.0
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(policy_dir)
    model = AutoModelForCausalLM.from_pretrained(policy_dir)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    chosen = [samples[i] for i in trained_subset(len(samples), schedule)]
    encoded = [encode_sample(tokenizer, t, a, max_length, max_prompt_tokens)
               for t, a in chosen]  # fmt: skip
    old = token_logprobs(model, encoded, pad, what="old log-probs", temperature=temperature)
    encoded = [replace(s, old=o) for s, o in zip(encoded, old, strict=True)]
    if kl_coef > 0 and reference_dir is not None:
        reference = AutoModelForCausalLM.from_pretrained(reference_dir)
        ref = token_logprobs(reference, encoded, pad, what="reference log-probs",
                             temperature=temperature)  # fmt: skip
        encoded = [replace(s, ref=r) for s, r in zip(encoded, ref, strict=True)]
        del reference

    def save(unwrapped: Any, folder: Path) -> None:
        unwrapped.save_pretrained(folder)
        tokenizer.save_pretrained(folder)

    return train(model, encoded, lambda b: collate_samples(b, pad),
                 policy_loss_fn(clip=clip, kl_coef=kl_coef, temperature=temperature),
                 schedule, output_dir,
                 identity=identity, save_model=save)  # fmt: skip
