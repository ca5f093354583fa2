"""Preference training on pairs through the one training loop: encoding, the reference
model's log-probabilities (computed once, stored), and the IPR mixture loss.

Chosen and rejected go through the model in one concatenated batch (TRL's
``concatenated_forward``); only the assistant tokens after the prompt carry
log-probability, the prompt is cut from the left to ``max_prompt_tokens``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ipr_train.losses import ipr_mixture, sequence_logprobs
from ipr_train.masking import Encoded, encode, padded
from ipr_train.progress import progress_bar
from ipr_train.records import Pair, write_text
from ipr_train.train import Schedule, TrainResult, train


@dataclass(frozen=True)
class EncodedPair:
    chosen: Encoded
    rejected: Encoded
    is_step: bool
    ref_chosen: float = 0.0
    ref_rejected: float = 0.0


def _messages(turns: Sequence[Any]) -> list[dict[str, str]]:
    return [{"role": t.role, "content": t.content} for t in turns]


def encode_pair(tokenizer: Any, pair: Pair, max_length: int, max_prompt_tokens: int) -> EncodedPair:
    first = len(pair.prompt)
    sides = [
        encode(
            tokenizer,
            _messages(pair.prompt + side),
            max_length,
            first=first,
            max_prompt_tokens=max_prompt_tokens,
        )
        for side in (pair.chosen, pair.rejected)
    ]
    return EncodedPair(sides[0], sides[1], pair.kind == "step")


def collate_pairs(batch: Sequence[EncodedPair], pad_id: int) -> dict[str, Any]:
    """Chosen rows then rejected rows, right-padded; ``weight`` = pairs."""
    import torch

    rows = [p.chosen for p in batch] + [p.rejected for p in batch]
    return {
        **padded(rows, pad_id),
        "ref_chosen": torch.tensor([p.ref_chosen for p in batch]),
        "ref_rejected": torch.tensor([p.ref_rejected for p in batch]),
        "is_step": torch.tensor([p.is_step for p in batch]),
        "weight": len(batch),
    }


def reference_logprobs(
    model: Any, pairs: Sequence[EncodedPair], pad_id: int, batch_size: int = 4
) -> list[tuple[float, float]]:
    """The summed log-probability of each pair's chosen and rejected side under ``model``."""
    import torch

    out: list[tuple[float, float]] = []
    model.eval()
    with torch.no_grad(), progress_bar(len(pairs), "reference log-probs") as bar:
        for start in range(0, len(pairs), batch_size):
            chunk = pairs[start : start + batch_size]
            batch = collate_pairs(chunk, pad_id)
            batch = {k: v.to(model.device) if hasattr(v, "to") else v for k, v in batch.items()}
            logp, _ = sequence_logprobs(model, batch)
            n = len(chunk)
            out.extend(zip(logp[:n].tolist(), logp[n:].tolist(), strict=True))
            bar.update(n)
    return out


def mixture_loss_fn(
    *, beta: float, outcome_weight: float, step_weight: float, sft_weight: float, sft_reduction: str
) -> Any:
    """The loop's loss function: IPR's mixture on a collated batch of pairs."""

    def loss(model: Any, batch: dict[str, Any]) -> tuple[Any, dict[str, float]]:
        logp, tokens = sequence_logprobs(model, batch)
        n = len(batch["ref_chosen"])
        return ipr_mixture(
            logp[:n],
            logp[n:],
            batch["ref_chosen"],
            batch["ref_rejected"],
            batch["is_step"],
            tokens[:n],
            beta=beta,
            outcome_weight=outcome_weight,
            step_weight=step_weight,
            sft_weight=sft_weight,
            sft_reduction=sft_reduction,
        )

    return loss


def train_on_pairs(
    policy_dir: str | Path,
    reference: Sequence[tuple[float, float]],
    pairs: Sequence[Pair],
    schedule: Schedule,
    output_dir: str | Path,
    *,
    max_length: int,
    max_prompt_tokens: int,
    loss: dict[str, Any],
    identity: dict[str, Any],
) -> TrainResult:
    """Optimise the model in ``policy_dir`` on ``pairs`` (their reference log-probabilities
    given); the final model goes to ``output_dir/final``."""
    from dataclasses import replace

    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(policy_dir)
    model = AutoModelForCausalLM.from_pretrained(policy_dir)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    encoded = [
        replace(
            encode_pair(tokenizer, p, max_length, max_prompt_tokens), ref_chosen=rc, ref_rejected=rr
        )
        for p, (rc, rr) in zip(pairs, reference, strict=True)
    ]

    def save(unwrapped: Any, folder: Path) -> None:
        unwrapped.save_pretrained(folder)
        tokenizer.save_pretrained(folder)

    return train(
        model,
        encoded,
        lambda b: collate_pairs(b, pad),
        mixture_loss_fn(**loss),
        schedule,
        output_dir,
        identity=identity,
        save_model=save,
    )


def compute_reference(
    reference_dir: str | Path,
    pairs: Sequence[Pair],
    path: str | Path,
    *,
    max_length: int,
    max_prompt_tokens: int,
    batch_size: int = 4,
) -> list[tuple[float, float]]:
    """The reference model's log-probabilities of every pair, written to ``path`` (JSON)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(reference_dir)
    model = AutoModelForCausalLM.from_pretrained(reference_dir)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    encoded = [encode_pair(tokenizer, p, max_length, max_prompt_tokens) for p in pairs]
    values = reference_logprobs(model, encoded, pad, batch_size)
    write_text(
        path,
        json.dumps(
            [
                {"id": p.id, "chosen": c, "rejected": r}
                for p, (c, r) in zip(pairs, values, strict=True)
            ]
        ),
    )
    return values


def load_reference(path: str | Path) -> list[tuple[float, float]]:
    return [(r["chosen"], r["rejected"]) for r in json.loads(Path(path).read_text())]
