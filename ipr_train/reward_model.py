"""IPR's step reward model (§5.5): a scorer model (``ipr_train.scorer_model``) regressing
the Monte Carlo step rewards an IPR run stored, from (prefix, action), with squared error;
an IPR config's ``step_reward_model`` then replaces Monte Carlo by its predictions.

Training data are the ``scored.jsonl`` files of the runs' ``iter_*/step_rewards`` stages
(each state IPR scored: the conversation up to and including the action's reply, and the
mean outcome of the scorer's continuations). Tasks, not states, are held out: a held-out
task's states were never seen in training, so the agreement (``agreement.json``: mean
squared error beside that of the train states' mean, Pearson correlation, and how often the
model and Monte Carlo agree on IPR's step-pair rule, expert minus agent above tau; with the
held-out tasks' indices) says how well it transfers.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ipr_train.train import Schedule

Messages = list[dict[str, str]]


def action_conversation(turns: Sequence[Any]) -> Messages:
    """(prefix, action): a scored branch's turns without the observation after the action."""
    messages = [{"role": t.role, "content": t.content} for t in turns]
    while messages and messages[-1]["role"] != "assistant":
        messages.pop()
    return messages


def read_scored(runs: Sequence[str | Path]) -> list[dict[str, Any]]:
    """Every scored state of the runs' iterations, tagged with its run and iteration."""
    out = []
    for run in map(Path, runs):
        files = sorted(run.glob("iter_*/step_rewards/scored.jsonl"))
        if not files:
            raise ValueError(f"{run}: no iter_*/step_rewards/scored.jsonl; give the output "
                             "directory of an IPR run that computed step rewards")  # fmt: skip
        for path in files:
            for line in path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    out.append(dict(json.loads(line), run=str(run),
                                    iteration=path.parent.parent.name))  # fmt: skip
    return out


def split_by_task(
    scored: list[dict[str, Any]], heldout: float, seed: int = 0
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Train and held-out states: a fraction ``heldout`` of the tasks held out, a task being
    an expert's index (runs of one expert set, other seeds, share it: their states of a task
    stay on one side)."""
    tasks = sorted({s["expert"] for s in scored})
    random.Random(seed).shuffle(tasks)
    cut = max(1, round(heldout * len(tasks))) if heldout > 0 and len(tasks) > 1 else 0
    held = set(tasks[:cut])
    train = [s for s in scored if s["expert"] not in held]
    return train, [s for s in scored if s["expert"] in held]


def agreement(
    predicted: Sequence[float], target: Sequence[float], items: Sequence[dict[str, Any]],
    tau: float,
) -> dict[str, float]:  # fmt: skip
    """MSE, Pearson r, and the share of (expert, step) prefixes where the model and Monte
    Carlo make the same step-pair decision (expert - agent > tau)."""
    n = len(target)
    out: dict[str, float] = {"states": float(n)}
    if n == 0:
        return out
    out["mse"] = sum((p - t) ** 2 for p, t in zip(predicted, target, strict=True)) / n
    mp, mt = sum(predicted) / n, sum(target) / n
    cov = sum((p - mp) * (t - mt) for p, t in zip(predicted, target, strict=True))
    sp = math.sqrt(sum((p - mp) ** 2 for p in predicted))
    st = math.sqrt(sum((t - mt) ** 2 for t in target))
    out["pearson"] = cov / (sp * st) if sp > 0 and st > 0 else float("nan")
    sides: dict[tuple[Any, ...], dict[str, tuple[float, float]]] = {}
    for p, t, s in zip(predicted, target, items, strict=True):
        sides.setdefault((s["run"], s["iteration"], s["expert"], s["step"]), {})[s["side"]] = (p, t)
    decisions = [
        ((v["expert"][0] - v["agent"][0] > tau) == (v["expert"][1] - v["agent"][1] > tau))
        for v in sides.values()
        if "expert" in v and "agent" in v
    ]
    out["prefixes"] = float(len(decisions))
    if decisions:
        out["pair_decision_agreement"] = sum(decisions) / len(decisions)
    return out


def train_reward_model(
    runs: Sequence[str | Path], init: str | Path, output_dir: str | Path, *,
    schedule: Schedule, heldout: float = 0.25, tau: float = 0.01, max_length: int = 4096,
) -> dict[str, Any]:  # fmt: skip
    """Fit the model (its backbone from ``init``, an agent or the SFT model) to the runs'
    Monte Carlo step rewards; ``output_dir/final`` the model, ``agreement.json`` the
    held-out agreement."""
    from ipr_train.scorer_model import score, train_scorer

    out = Path(output_dir)
    scored = read_scored(runs)
    train, held = split_by_task(scored, heldout)
    if not train:
        raise ValueError("no training states left after holding tasks out; lower --heldout")
    result = train_scorer(init, [s["messages"] for s in train], [s["mean"] for s in train],
                          "mse", schedule, out, max_length=max_length,
                          identity={"model": str(init), "loss": "mse",
                                    "data": sorted(map(str, runs))})  # fmt: skip
    report: dict[str, Any] = {"train_states": len(train), "steps": result.steps,
                              "loss_first": result.loss_history[0],
                              "loss_last": result.loss_history[-1],
                              "heldout_experts": sorted({s["expert"] for s in held})}  # fmt: skip
    if held:
        predicted = score(out / "final", [s["messages"] for s in held], max_length=max_length)
        target = [s["mean"] for s in held]
        report["heldout"] = agreement(predicted, target, held, tau)
        constant = sum(s["mean"] for s in train) / len(train)  # the baseline: no model
        report["heldout"]["mse_of_the_train_mean"] = sum((constant - t) ** 2
                                                         for t in target) / len(target)  # fmt: skip
    (out / "agreement.json").write_text(json.dumps(report, indent=1))
    return report


def predict_step_rewards(model: str | Path, conversations: Sequence[Messages]) -> list[float]:
    from ipr_train.scorer_model import score

    return score(model, conversations, max_length=4096)
