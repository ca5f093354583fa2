"""A model that reads a conversation and says one number: a causal LM's backbone with a
linear head on the last token's hidden state (transformers' ``*ForSequenceClassification``
with one label, built from an agent's folder: the backbone is the agent's, the head new).

StepAgent-Inverse's discriminator (the head's output is the logit of D(s, a), trained with
binary cross-entropy) and IPR's step reward model (the output is the step reward, trained
with squared error on Monte Carlo estimates) are this model with two losses, trained
through the one training loop. A conversation is (prefix turns, the action's reply),
rendered by the chat template and cut from the left to ``max_length`` tokens (the end,
where the action is, stays).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ipr_train.losses import discriminator_loss, regression_loss
from ipr_train.progress import progress_bar
from ipr_train.train import Schedule, TrainResult, train

Messages = Sequence[dict[str, str]]


@dataclass(frozen=True)
class ScoredText:
    input_ids: list[int]
    target: float = 0.0


def encode_scored(tokenizer: Any, messages: Messages, max_length: int) -> list[int]:
    text = tokenizer.apply_chat_template(list(messages), tokenize=False)
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    return list(ids[-max_length:])


def collate_scored(batch: Sequence[ScoredText], pad_id: int) -> dict[str, Any]:
    """Left-padded rows (the last position is every row's last token); ``weight`` = rows."""
    import torch

    width = max(len(s.input_ids) for s in batch)
    pads = [width - len(s.input_ids) for s in batch]
    return {
        "input_ids": torch.tensor(
            [[pad_id] * p + s.input_ids for p, s in zip(pads, batch, strict=True)]
        ),
        "attention_mask": torch.tensor([[0] * p + [1] * (width - p) for p in pads]),
        "targets": torch.tensor([s.target for s in batch]),
        "weight": len(batch),
    }


def head_outputs(model: Any, batch: dict[str, Any]) -> Any:
    """The head's number per row, read at the last position (rows are left-padded; the
    positions count from each row's first real token, so padding changes nothing)."""
    inner = getattr(model, "module", model)  # DDP and friends
    mask = batch["attention_mask"]
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    backbone = getattr(inner, inner.base_model_prefix)
    out = backbone(input_ids=batch["input_ids"], attention_mask=mask, position_ids=positions)
    return inner.score(out.last_hidden_state[:, -1]).squeeze(-1)


def load_scorer(folder: str | Path) -> tuple[Any, Any]:
    """Tokenizer and scorer model from ``folder``: a scorer saved here, or an agent's causal
    LM folder (its backbone, a new head)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForSequenceClassification.from_pretrained(folder, num_labels=1)
    return tokenizer, model


def train_scorer(
    init: str | Path, conversations: Sequence[Messages], targets: Sequence[float],
    objective: str, schedule: Schedule, output_dir: str | Path, *, max_length: int,
    identity: dict[str, Any],
) -> TrainResult:  # fmt: skip
    """Fit the scorer in (or built from) ``init`` to ``targets``: ``objective`` "bce" (0/1
    labels, a discriminator) or "mse" (values, a reward model); saved to ``output_dir/final``."""
    import torch

    torch.manual_seed(schedule.seed)  # the new head's initialisation
    tokenizer, model = load_scorer(init)
    pad = _pad(tokenizer)
    data = [ScoredText(encode_scored(tokenizer, c, max_length), float(t))
            for c, t in zip(conversations, targets, strict=True)]  # fmt: skip
    loss = {"bce": discriminator_loss, "mse": regression_loss}[objective]

    def loss_fn(model: Any, batch: dict[str, Any]) -> tuple[Any, dict[str, float]]:
        return loss(head_outputs(model, batch), batch["targets"])

    def save(unwrapped: Any, folder: Path) -> None:
        unwrapped.save_pretrained(folder)
        tokenizer.save_pretrained(folder)

    return train(model, data, lambda b: collate_scored(b, pad), loss_fn, schedule, output_dir,
                 identity=identity, save_model=save)  # fmt: skip


def score(
    folder: str | Path, conversations: Sequence[Messages], *, max_length: int,
    batch_size: int = 8,
) -> list[float]:  # fmt: skip
    """The scorer's number for every conversation."""
    import torch

    tokenizer, model = load_scorer(folder)
    pad = _pad(tokenizer)
    data = [ScoredText(encode_scored(tokenizer, c, max_length)) for c in conversations]
    out: list[float] = []
    model.eval()
    with torch.no_grad(), progress_bar(len(data), "score") as bar:
        for start in range(0, len(data), batch_size):
            chunk = data[start : start + batch_size]
            out.extend(head_outputs(model, collate_scored(chunk, pad)).tolist())
            bar.update(len(chunk))
    return out


def _pad(tokenizer: Any) -> int:
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
