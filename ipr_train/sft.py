"""Supervised fine-tuning on trajectories: loss on assistant tokens only, through the one
training loop (``ipr_train.train``) with ``losses.sft_loss``.

LoRA through peft when ``lora`` is set (merged into the saved model). The final model goes
to ``output_dir/final``; checkpoints, resume, progress and metrics are the loop's.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ipr_train.config import SFTConfig
from ipr_train.fastchat import load_fastchat
from ipr_train.losses import sft_loss
from ipr_train.masking import IGNORE, Encoded, encode, padded
from ipr_train.progress import progress_bar
from ipr_train.records import Trajectory, read_trajectories, write_text
from ipr_train.train import Schedule, TrainResult, file_digest, train


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
    """Right-padded ids, labels and attention mask; ``weight`` = assistant tokens."""
    return {
        **padded(batch, pad_id),
        # labels are shifted by one in the loss: the first token never carries one
        "weight": sum(sum(1 for x in e.labels[1:] if x != IGNORE) for e in batch),
    }


def schedule_of(cfg: Any) -> Schedule:
    """The loop's knobs from a method config (the fields they share, by name)."""
    return Schedule(**{k: getattr(cfg, k) for k in Schedule.__dataclass_fields__})


def run_sft(cfg: SFTConfig) -> TrainResult:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(cfg.model)
    model = AutoModelForCausalLM.from_pretrained(cfg.model)
    if cfg.lora:
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(model, LoraConfig(task_type="CAUSAL_LM", **cfg.lora))  # type: ignore[assignment]
    pad_id = (
        tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    )
    conversations = load_conversations(cfg.data)
    examples = []
    with progress_bar(len(conversations), "encode") as bar:
        for conversation in conversations:
            examples.append(encode(tokenizer, conversation, cfg.max_length))
            bar.update(1)
    examples = [e for e in examples if e.n_trained > 0]
    if not examples:
        raise ValueError("no training example has assistant tokens within max_length")

    def save(unwrapped: Any, folder: Path) -> None:
        if cfg.lora:
            unwrapped = unwrapped.merge_and_unload()
        unwrapped.save_pretrained(folder)
        tokenizer.save_pretrained(folder)

    identity = {"model": str(Path(cfg.model).resolve()), "data": file_digest(cfg.data),
                "loss": "sft", "max_length": cfg.max_length, "lora": cfg.lora}  # fmt: skip
    result = train(
        model, examples, lambda b: collate(b, pad_id), sft_loss, schedule_of(cfg),
        cfg.output_dir, identity=identity, save_model=save,
    )  # fmt: skip
    from accelerate import PartialState

    if PartialState().is_main_process:
        write_text(Path(cfg.output_dir) / "sft_summary.json", _summary(result))
    return result


def _summary(result: TrainResult) -> str:
    import json

    return json.dumps(
        {
            "steps": result.steps,
            "loss_history": result.loss_history,
            "lr_history": result.lr_history,
            "examples": result.examples,
        },
        indent=1,
    )
