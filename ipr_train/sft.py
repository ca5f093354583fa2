"""Supervised fine-tuning on trajectories: loss on assistant tokens only.

Runs through accelerate, so the same code trains on the CPU, one GPU, or several with
FSDP/DeepSpeed (configure them with ``accelerate config`` and start with ``accelerate
launch -m ipr_train.cli sft CONFIG``). LoRA through peft when ``lora`` is set. Every
``save_steps`` optimizer steps the full training state (model, optimizer, scheduler, RNG)
goes to ``output_dir/checkpoints/step-N``; a rerun with the same config resumes from the
newest one, skipping the batches already seen, so an interrupted run ends where an
uninterrupted one does. The final model (LoRA merged) is saved to ``output_dir/final``.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ipr_train.config import SFTConfig
from ipr_train.fastchat import load_fastchat
from ipr_train.masking import IGNORE, Encoded, encode
from ipr_train.records import Trajectory, read_trajectories


def load_conversations(paths: Sequence[str]) -> list[list[dict[str, str]]]:
    """Chat turns of every trajectory in our JSONL files or FastChat JSON files."""
    conversations = []
    for path in paths:
        records: list[Any] = (
            read_trajectories(path) if str(path).endswith(".jsonl") else load_fastchat(path)
        )
        for record in records:
            if not isinstance(record, Trajectory):
                raise ValueError(f"{path}: SFT takes trajectories, found a preference pair")
            conversations.append([{"role": t.role, "content": t.content} for t in record.turns])
    return conversations


def collate(batch: Sequence[Encoded], pad_id: int) -> dict[str, Any]:
    import torch

    width = max(len(e.input_ids) for e in batch)
    ids = [e.input_ids + [pad_id] * (width - len(e.input_ids)) for e in batch]
    labels = [e.labels + [IGNORE] * (width - len(e.labels)) for e in batch]
    mask = [[1] * len(e.input_ids) + [0] * (width - len(e.input_ids)) for e in batch]
    return {
        "input_ids": torch.tensor(ids),
        "labels": torch.tensor(labels),
        "attention_mask": torch.tensor(mask),
    }


def _latest_checkpoint(folder: Path) -> Path | None:
    steps = sorted(
        (int(p.name.split("-")[1]), p) for p in folder.glob("step-*") if (p / "done").is_file()
    )
    return steps[-1][1] if steps else None


def run_sft(cfg: SFTConfig) -> dict[str, Any]:
    import torch
    from accelerate import Accelerator
    from accelerate.utils import set_seed
    from transformers import AutoModelForCausalLM, AutoTokenizer, get_linear_schedule_with_warmup

    set_seed(cfg.seed)
    accelerator = Accelerator(
        gradient_accumulation_steps=cfg.grad_accum, mixed_precision=cfg.mixed_precision
    )
    tokenizer = AutoTokenizer.from_pretrained(cfg.model)
    model = AutoModelForCausalLM.from_pretrained(cfg.model)
    if cfg.lora:
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(model, LoraConfig(task_type="CAUSAL_LM", **cfg.lora))  # type: ignore[assignment]
    pad_id = (
        tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    )
    examples = [encode(tokenizer, c, cfg.max_length) for c in load_conversations(cfg.data)]
    examples = [e for e in examples if e.n_trained > 0]
    if not examples:
        raise ValueError("no training example has assistant tokens within max_length")

    batches_per_epoch = math.ceil(len(examples) / cfg.batch_size)
    total_batches = math.ceil(batches_per_epoch * cfg.epochs)
    total_steps = math.ceil(total_batches / cfg.grad_accum)
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad],
        lr=cfg.learning_rate, weight_decay=cfg.weight_decay,
    )  # fmt: skip
    scheduler = get_linear_schedule_with_warmup(
        optimizer, int(cfg.warmup_ratio * total_steps), total_steps
    )
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)

    out = Path(cfg.output_dir)
    checkpoints = out / "checkpoints"
    done_batches, history = 0, []
    latest = _latest_checkpoint(checkpoints) if cfg.resume else None
    if latest is not None:
        accelerator.load_state(str(latest))
        saved = json.loads((latest / "progress.json").read_text())
        done_batches, history = saved["batches"], saved["history"]

    def order(epoch: int) -> list[int]:
        indices = list(range(len(examples)))
        random.Random(cfg.seed * 100_003 + epoch).shuffle(indices)
        return indices

    model.train()
    batch_index, window = 0, []
    for epoch in range(math.ceil(cfg.epochs)):
        indices = order(epoch)
        for start in range(0, len(indices), cfg.batch_size):
            if batch_index >= total_batches:
                break
            batch_index += 1
            if batch_index <= done_batches:
                continue  # seen before the checkpoint we resumed from
            batch = collate([examples[i] for i in indices[start : start + cfg.batch_size]], pad_id)
            batch = {k: v.to(accelerator.device) for k, v in batch.items()}
            with accelerator.accumulate(model):
                loss = model(**batch).loss
                accelerator.backward(loss)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad()
            window.append(float(loss.detach()))
            if accelerator.sync_gradients:
                history.append(sum(window) / len(window))
                window = []
                step = len(history)
                if cfg.save_steps and step % cfg.save_steps == 0:
                    target = checkpoints / f"step-{step}"
                    accelerator.save_state(str(target))
                    if accelerator.is_main_process:
                        (target / "progress.json").write_text(
                            json.dumps({"batches": batch_index, "history": history})
                        )
                        (target / "done").write_text("ok")

    accelerator.wait_for_everyone()
    final = out / "final"
    unwrapped = accelerator.unwrap_model(model)
    if cfg.lora:
        unwrapped = unwrapped.merge_and_unload()
    if accelerator.is_main_process:
        unwrapped.save_pretrained(final)
        tokenizer.save_pretrained(final)
        summary = {"steps": len(history), "loss_history": history, "examples": len(examples)}
        (out / "sft_summary.json").write_text(json.dumps(summary, indent=1))
    return {"steps": len(history), "loss_history": history, "final": str(final)}
