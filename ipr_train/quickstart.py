"""The main job on embedded defaults: IPR on the embedded WebShop catalog with a tiny
Llama trained from scratch, end to end on a CPU.

It builds the first-result shopper's demonstrations of the 1,053 train goals (the
oracle's query, the first result, the options the instruction names, buy: a tiny model
can imitate it, where the oracle's paging to the exact product it cannot), a word-level
tokenizer from their text and a randomly initialised Llama-architecture model (package
code: no hub), then runs ``ipr_train.methods.ipr`` with settings sized for a 2-core machine:
SFT (1,806 steps), evaluation, one IPR iteration (exploration from 30 expert paths: with 3,
the SFT agent matched the experts' actions and no pair formed; Monte Carlo step rewards,
pairs, mixture loss), evaluation, and the report (table + plot). ``quick=True`` shrinks
every stage for CI (8 SFT experts, 1 expert path explored, 3 test goals).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from ipr_train.methods.ipr import IPRConfig, run_ipr

ENV = "ipr/WebShop-v0"


def quickstart_config(output_dir: str | Path, *, quick: bool = False) -> dict[str, Any]:
    """The quickstart's IPR config (the model folder is built by ``quickstart``)."""
    out = Path(output_dir)
    sft_experts, explore_experts, eval_goals = (8, 1, 3) if quick else (None, 30, 30)
    reply_tokens = 24 if quick else 40
    return {
        "output_dir": str(out / "run"),
        "model": str(out / "tiny-llama"),
        "experts": str(out / "experts.jsonl"),
        "env": {"id": ENV, "split": "train", "limit": sft_experts},
        "explore_limit": explore_experts,
        "sft": {
            "epochs": 1 if quick else 6.84,  # 1,053 demonstrations: 1,806 steps of 4
            "learning_rate": 4e-3,
            "batch_size": 4,
            "lr_scheduler": "cosine",
            "warmup_ratio": 0.03,
            "max_length": 4096,
        },
        "eval": [{"id": ENV, "split": "test", "limit": eval_goals}],
        "iterations": 1,
        "explore": {"max_new_tokens": reply_tokens},
        "monte_carlo": {"n": 2 if quick else 5, "max_new_tokens": reply_tokens},
        "eval_generation": {"max_new_tokens": reply_tokens},
        "dpo": {
            "epochs": 1 if quick else 2,
            "learning_rate": 1e-4,
            "batch_size": 4,
            "beta": 0.1,
            "max_length": 4096,
            "max_prompt_tokens": 3072,
        },
        "policy": {"backend": "hf", "device": "cpu", "batch_size": 16},
        "slots": 16,
    }


def prepare(
    raw: dict[str, Any], *, hidden: int = 128, layers: int = 2, source: str | None = "first_result",
    data_dir: str | None = None,
) -> None:  # fmt: skip
    """The config's expert file and tiny model folder, built when missing: the demonstrations
    of ``source`` (WebShop's first-result shopper by default; None: the env's own experts)
    for the config's env and train split, a word-level tokenizer of their text and a random
    Llama."""
    from ipr_train.experts import build_experts
    from ipr_train.records import read_trajectories, write_jsonl
    from ipr_train.tiny import build_model, build_word_tokenizer

    experts = Path(raw["experts"])
    experts.parent.mkdir(parents=True, exist_ok=True)
    if not experts.is_file():  # quick: only the goals SFT uses (the vocabulary is theirs)
        env = raw["env"]
        kept, _ = build_experts(
            env["id"], env["split"], limit=env["limit"], data_dir=data_dir,
            env_kwargs=env.get("kwargs"), min_reward=0.0 if source else 1.0, source=source,
        )  # fmt: skip
        write_jsonl(experts, kept)
    model_dir = Path(raw["model"])
    if not model_dir.is_dir():
        texts = [t.content for e in read_trajectories(experts) for t in e.turns]
        tokenizer = build_word_tokenizer(texts)
        model = build_model(tokenizer, hidden=hidden, layers=layers, context=4096)
        temp = model_dir.with_name(model_dir.name + ".tmp")
        shutil.rmtree(temp, ignore_errors=True)
        model.save_pretrained(temp)
        tokenizer.save_pretrained(temp)
        os.replace(temp, model_dir)  # a killed build leaves no half model


def quickstart(
    output_dir: str | Path = "runs/quickstart",
    *,
    quick: bool = False,
    hidden: int = 128,
    layers: int = 2,
) -> list[dict[str, Any]]:
    raw = quickstart_config(output_dir, quick=quick)
    prepare(raw, hidden=hidden, layers=layers)
    return run_ipr(IPRConfig.model_validate(raw))
