"""Losses as short functions of token log-probabilities, one per method.

Every loss here returns a *sum* over its units (tokens for SFT, pairs for preference
losses) and the training loop divides by the units of the whole accumulation window across
processes, so the gradient is the same whatever the micro-batch size, the accumulation or
the number of GPUs.
"""

from __future__ import annotations

import functools
from typing import Any

IGNORE = -100


def _accepts_label_mask(model: Any) -> bool:
    """Whether ``model`` projects onto the vocabulary only where a boolean
    ``logits_to_keep`` mask says (transformers >= 5 causal LMs)."""
    inner = getattr(model, "module", model)  # DDP and friends forward their kwargs
    forward: Any = type(inner).forward
    return _forward_accepts_label_mask(forward)


@functools.cache
def _forward_accepts_label_mask(forward: Any) -> bool:  # asked once per model class
    import inspect

    from transformers import modeling_utils

    return hasattr(modeling_utils, "slice_logits_to_keep") and (
        "logits_to_keep" in inspect.signature(forward).parameters
    )


def labelled_logprobs(
    model: Any, batch: dict[str, Any], temperature: float = 1.0
) -> tuple[Any, Any]:
    """The log-probability of every labelled token, flattened, and the row each belongs to;
    under the distribution sampled at ``temperature`` (logits / T), as the policy-gradient
    methods need it for the tokens an episode sampled at T.

    Logits are computed only at the positions that predict a label: the vocabulary
    projection and its softmax are about half of a small model's step on WebShop's long
    pages, where a tenth of the tokens are the assistant's."""
    import torch

    labels = batch["labels"]
    predicts = torch.zeros_like(labels, dtype=torch.bool)
    predicts[:, :-1] = labels[:, 1:] != IGNORE  # position i predicts token i + 1
    inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
    if _accepts_label_mask(model):
        logits = model(**inputs, logits_to_keep=predicts).logits
    else:
        logits = model(**inputs).logits[predicts]
    targets = labels[:, 1:][predicts[:, :-1]]
    logits = logits.float() if temperature == 1.0 else logits.float() / temperature
    logp = torch.log_softmax(logits, dim=-1)
    picked = logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    return picked, predicts.nonzero()[:, 0]


def sft_loss(model: Any, batch: dict[str, Any]) -> tuple[Any, dict[str, float]]:
    """Summed negative log-likelihood of the assistant tokens (labels != -100)."""
    logp, _ = labelled_logprobs(model, batch)
    nll = -logp.sum()
    return nll, {"nll_sum": float(nll.detach()), "tokens": float(logp.numel())}


def sequence_logprobs(model: Any, batch: dict[str, Any]) -> tuple[Any, Any]:
    """Per row: the summed log-probability of its labelled tokens and how many there are."""
    import torch

    logp, rows = labelled_logprobs(model, batch)
    size = batch["labels"].shape[0]
    sums = torch.zeros(size, dtype=logp.dtype, device=logp.device).index_add(0, rows, logp)
    return sums, torch.bincount(rows, minlength=size)


def dpo_sigmoid(
    chosen: Any, rejected: Any, ref_chosen: Any, ref_rejected: Any, beta: float
) -> tuple[Any, Any, Any]:
    """DPO's sigmoid loss per pair (Rafailov et al. 2023, Eq. 7; IPR Eq. 7 and 8) from
    summed log-probabilities, with the implicit rewards beta * log(pi / pi_ref)."""
    import torch.nn.functional as F

    chosen_reward = beta * (chosen - ref_chosen)
    rejected_reward = beta * (rejected - ref_rejected)
    return -F.logsigmoid(chosen_reward - rejected_reward), chosen_reward, rejected_reward


def ipr_mixture(
    chosen: Any, rejected: Any, ref_chosen: Any, ref_rejected: Any, is_step: Any,
    chosen_tokens: Any, *, beta: float, outcome_weight: float = 1.0, step_weight: float = 1.0,
    sft_weight: float = 1.0, sft_reduction: str = "sum",
) -> tuple[Any, dict[str, float]]:  # fmt: skip
    """IPR's loss (Eq. 10), summed over the pairs: o-DPO on outcome pairs (Eq. 7), s-DPO on
    step pairs (Eq. 8), and the chosen side's negative log-likelihood (Eq. 9), summed over
    its tokens as IPR releases it (``sft_reduction="sum"``) or averaged (``"mean"``)."""
    dpo, chosen_reward, rejected_reward = dpo_sigmoid(chosen, rejected, ref_chosen,
                                                      ref_rejected, beta)  # fmt: skip
    step = is_step.float()
    weight = step_weight * step + outcome_weight * (1 - step)
    nll = -chosen if sft_reduction == "sum" else -chosen / chosen_tokens.clamp(min=1)
    total = (weight * dpo).sum() + sft_weight * nll.sum()
    return total, {
        "dpo": float(dpo.detach().sum()),
        "sft": float(nll.detach().sum()),
        "reward_margin": float((chosen_reward - rejected_reward).detach().sum()),
        "reward_accuracy": float((chosen_reward > rejected_reward).float().sum()),
    }


def clipped_policy_loss(
    logp: Any, old_logp: Any, advantages: Any, *, clip: float = 0.2, ref_logp: Any = None,
    kl_coef: float = 0.0,
) -> tuple[Any, dict[str, float]]:  # fmt: skip
    """PPO's clipped surrogate (Schulman et al. 2017, Eq. 7) per token, summed: for every
    assistant token max(-A r, -A clip(r, 1 - eps, 1 + eps)) with r = pi / pi_old, plus
    ``kl_coef`` times the k3 estimate of KL(pi || pi_ref) (exp(d) - d - 1, d = log pi_ref -
    log pi, clamped to [-10, 10] as verl does) where a reference is given."""
    import torch

    ratio = torch.exp(logp - old_logp)
    surrogate = torch.maximum(-advantages * ratio,
                              -advantages * ratio.clamp(1 - clip, 1 + clip))  # fmt: skip
    total = surrogate.sum()
    stats = {
        "policy": float(surrogate.detach().sum()),
        "clipped": float(((ratio - 1).abs() > clip).float().sum()),
    }
    if ref_logp is not None and kl_coef > 0:
        d = (ref_logp - logp).clamp(-10, 10)
        kl = (torch.exp(d) - d - 1).clamp(-10, 10)
        total = total + kl_coef * kl.sum()
        stats["kl"] = float(kl.detach().sum())
    return total, stats


def discriminator_loss(logits: Any, targets: Any) -> tuple[Any, dict[str, float]]:
    """Binary cross-entropy of D = sigmoid(logit) against 1 (expert) / 0 (agent), summed:
    StepAgent's discriminator objective (Eq. 10), maximising log D(expert) + log(1 - D(agent))."""
    import torch.nn.functional as F

    loss = F.binary_cross_entropy_with_logits(logits.float(), targets.float(), reduction="sum")
    correct = ((logits > 0).float() == targets.float()).float().sum()
    return loss, {"bce": float(loss.detach()), "correct": float(correct)}


def regression_loss(predictions: Any, targets: Any) -> tuple[Any, dict[str, float]]:
    """Squared error, summed: a step reward model regressing Monte Carlo estimates."""
    loss = ((predictions.float() - targets.float()) ** 2).sum()
    return loss, {"squared_error": float(loss.detach())}
