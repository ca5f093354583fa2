"""THE training loop: every method that trains (SFT, the preference losses to come) runs
through ``train`` with a loss function of its own.

Through accelerate, so the same code runs on the CPU, one GPU or several (DDP, FSDP,
DeepSpeed: ``accelerate launch -m ipr_train.cli ...``). What it guarantees:

* Data: a DataLoader with a seeded sampler, prepared by accelerate, so every process sees
  its own share of each epoch's shuffle (reshuffled per epoch with ``seed``).
* Schedule: counted in optimizer steps (the scheduler is stepped once per optimizer step,
  not once per process), so on N processes with the same global batch the learning rate
  follows the single-process curve; a last partial accumulation window still steps. A
  budget in optimizer steps (``max_steps``) replaces ``epochs``: the data is cycled,
  reshuffled per epoch, until the budget is spent, so methods with little data and much
  data can be given the same number of updates.
* Loss scale: the loss function returns a sum over its units (assistant tokens, pairs) and
  the batch's unit count; the loop divides by the units of the whole accumulation window
  summed over processes, so a token weighs the same wherever it lands.
* Gradient clipping (``max_grad_norm``), the scheduler of choice with warmup.
* Checkpoints every ``save_steps`` optimizer steps (model, optimizer, scheduler, RNG and the
  batches consumed); a rerun resumes from the newest, skipping consumed batches, and
  refuses when the model, data, loss or schedule differ from the checkpoint's.
* Progress: a bar with loss, lr and tokens/s; ``metrics.jsonl`` (and TensorBoard when
  installed) in the output folder.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import json
import math
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ipr_train.config import ConfigError
from ipr_train.progress import MetricsLog, progress_bar

# Schedule fields that do not change what is trained: a resume may change them
BOOKKEEPING = frozenset({"save_steps", "log_steps", "resume", "record_batches"})

LossFn = Callable[[Any, dict[str, Any]], tuple[Any, dict[str, float]]]


@dataclass(frozen=True)
class Schedule:
    """The knobs of the loop (one config class per method maps onto it)."""

    epochs: float = 1.0
    max_steps: int | None = None  # optimizer steps; set: as many epochs as they take
    learning_rate: float = 2e-5
    batch_size: int = 1
    grad_accum: int = 1
    lr_scheduler: str = "cosine"
    warmup_ratio: float = 0.03
    weight_decay: float = 0.0
    max_grad_norm: float | None = 1.0
    save_steps: int = 0
    log_steps: int = 1
    seed: int = 0
    resume: bool = True
    mixed_precision: str = "no"
    record_batches: bool = False


@dataclass
class TrainResult:
    steps: int
    loss_history: list[float]
    lr_history: list[float]
    examples: int
    trained_tokens: int = 0  # labelled tokens the loss saw, over every process and epoch


def file_digest(paths: Sequence[str | Path]) -> str:
    h = hashlib.sha256()
    for p in paths:
        h.update(Path(p).read_bytes())
    return h.hexdigest()[:16]


def _latest_checkpoint(folder: Path) -> Path | None:
    steps = sorted(
        (int(p.name.split("-")[1]), p) for p in folder.glob("step-*") if (p / "done").is_file()
    )
    return steps[-1][1] if steps else None


def _check_identity(out: Path, identity: dict[str, Any], resume: bool) -> None:
    """Refuse to resume (or overwrite) a run in ``out`` that trained something else."""
    marker = out / "run_identity.json"
    if marker.is_file() and resume:
        before = json.loads(marker.read_text())
        changed = sorted(k for k in set(before) | set(identity) if before.get(k) != identity.get(k))
        if changed:
            raise ConfigError(
                f"{out} holds a run with different {', '.join(changed)} (was "
                f"{[before.get(k) for k in changed]}, now {[identity.get(k) for k in changed]}); "
                "use another output_dir, delete this one, or set resume: false to start over"
            )
    if not resume and (out / "checkpoints").is_dir():
        shutil.rmtree(out / "checkpoints")  # starting over: the old run's states must not load
    out.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps(identity, indent=1, sort_keys=True))


def train(
    model: Any,
    examples: Sequence[Any],
    collate: Callable[[Sequence[Any]], dict[str, Any]],
    loss_fn: LossFn,
    schedule: Schedule,
    output_dir: str | Path,
    *,
    identity: dict[str, Any],
    save_model: Callable[[Any, Path], None] | None = None,
) -> TrainResult:
    """Train ``model`` on ``examples`` with ``loss_fn``; ``collate`` turns a list of examples
    into a batch dict that holds ``weight`` (the loss's unit count) and ``index`` (the
    examples' positions). ``identity`` names the model, data and loss: a resume with another
    identity or schedule is refused. ``save_model(unwrapped_model, folder)`` writes the
    final model to ``output_dir/final`` on the main process."""
    import torch
    from accelerate import Accelerator
    from accelerate.utils import set_seed
    from torch.utils.data import DataLoader, RandomSampler
    from transformers import get_scheduler

    from ipr_train.determinism import pin_threads

    pin_threads()
    set_seed(schedule.seed)
    # launched on several processes on a machine without GPUs: accelerate needs cpu=True to
    # join them (gloo); without it every process would train alone on all the data
    multi_cpu = int(os.environ.get("WORLD_SIZE", "1")) > 1 and not torch.cuda.is_available()
    accelerator = Accelerator(mixed_precision=schedule.mixed_precision, cpu=multi_cpu)
    if accelerator.num_processes > 1:
        atexit.unregister(_release_process_group)  # once, however many runs this process trains
        atexit.register(_release_process_group)
    out = Path(output_dir)
    trains = {k: v for k, v in schedule.__dict__.items() if k not in BOOKKEEPING}
    identity = dict(identity, schedule=trains, processes=accelerator.num_processes)
    if accelerator.is_main_process:
        _check_identity(out, identity, schedule.resume)
    accelerator.wait_for_everyone()

    generator = torch.Generator().manual_seed(schedule.seed)
    loader: Any = DataLoader(
        list(range(len(examples))),  # type: ignore[arg-type]
        batch_size=schedule.batch_size,
        sampler=RandomSampler(range(len(examples)), generator=generator),
        collate_fn=lambda idx: collate([examples[i] for i in idx]) | {"index": list(idx)},
    )  # fmt: skip
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad],
        lr=schedule.learning_rate, weight_decay=schedule.weight_decay,
    )  # fmt: skip
    model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
    per_epoch = len(loader)  # micro-batches per process per epoch
    if schedule.max_steps is not None:  # a budget in optimizer steps: cycle the data
        total_batches = schedule.max_steps * schedule.grad_accum
        epochs = math.ceil(total_batches / max(per_epoch, 1))
    else:
        total_batches = math.ceil(per_epoch * schedule.epochs)
        epochs = math.ceil(schedule.epochs)
    total_steps = math.ceil(total_batches / schedule.grad_accum)
    scheduler = get_scheduler(
        schedule.lr_scheduler, optimizer,
        num_warmup_steps=int(schedule.warmup_ratio * total_steps), num_training_steps=total_steps,
    )  # fmt: skip
    accelerator.register_for_checkpointing(scheduler)

    checkpoints = out / "checkpoints"
    consumed, losses, lrs, counts = 0, [], [], []
    latest = _latest_checkpoint(checkpoints) if schedule.resume else None
    if latest is not None:
        accelerator.load_state(str(latest))
        saved = json.loads((latest / "progress.json").read_text())
        consumed, losses, lrs = saved["batches"], saved["losses"], saved["lrs"]
        counts = saved.get("tokens", [])
    metrics = MetricsLog(out, enabled=accelerator.is_main_process)
    trace = out / "batches" / f"rank{accelerator.process_index}.jsonl"
    if schedule.record_batches and consumed == 0:
        trace.parent.mkdir(parents=True, exist_ok=True)
        trace.write_text("")

    model.train()
    bar = progress_bar(total_steps, "train", initial=len(losses),
                       disable=not accelerator.is_local_main_process)  # fmt: skip
    window: list[dict[str, Any]] = []
    began, tokens_seen = time.perf_counter(), 0.0

    def optimizer_step() -> None:
        nonlocal tokens_seen
        local = torch.tensor([float(sum(b["weight"] for b in window)),
                              float(sum(_labelled(b) for b in window))],
                             device=accelerator.device)  # fmt: skip
        total, labelled = (float(x) for x in accelerator.reduce(local, reduction="sum"))
        counts.append(int(labelled))
        loss_sum = 0.0
        for k, batch in enumerate(window):
            sync = k == len(window) - 1
            context = accelerator.no_sync(model) if not sync else contextlib.nullcontext()
            with context:
                loss, _ = loss_fn(model, batch)
                # DDP averages gradients over processes: scale back to a global sum
                accelerator.backward(loss * accelerator.num_processes / max(total, 1e-9))
            loss_sum += float(loss.detach())
        if schedule.max_grad_norm is not None:
            accelerator.clip_grad_norm_(model.parameters(), schedule.max_grad_norm)
        lrs.append(scheduler.get_last_lr()[0])
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
        window_loss = float(
            accelerator.reduce(torch.tensor(loss_sum, device=accelerator.device), reduction="sum")
        ) / max(total, 1e-9)
        losses.append(window_loss)
        tokens_seen += total
        step = len(losses)
        rate = tokens_seen / max(time.perf_counter() - began, 1e-9)
        bar.update(1)
        bar.set_postfix(loss=f"{window_loss:.4f}", lr=f"{lrs[-1]:.2e}", units_per_s=f"{rate:.0f}")
        if step % schedule.log_steps == 0 or step == total_steps:
            metrics.log(step, loss=window_loss, lr=lrs[-1], units_per_s=rate)
        window.clear()

    batch_index = 0
    for epoch in range(epochs):
        loader.set_epoch(epoch)
        skip = max(0, min(consumed - batch_index, per_epoch))
        epoch_loader = accelerator.skip_first_batches(loader, skip) if skip else loader
        batch_index += skip
        for batch in epoch_loader:
            if batch_index >= total_batches:
                break
            batch_index += 1
            if schedule.record_batches:
                with open(trace, "a") as f:
                    f.write(json.dumps({"batch": batch_index, "index": batch["index"]}) + "\n")
            window.append(batch)
            if len(window) == schedule.grad_accum or batch_index == total_batches:
                optimizer_step()
                step = len(losses)
                if schedule.save_steps and step % schedule.save_steps == 0:
                    _save_checkpoint(
                        accelerator,
                        checkpoints / f"step-{step}",
                        {"batches": batch_index, "losses": losses, "lrs": lrs, "tokens": counts},
                    )
    if window:  # the epochs ended inside a window
        optimizer_step()
    bar.close()
    metrics.close()
    accelerator.wait_for_everyone()
    if save_model is not None and accelerator.is_main_process:
        save_model(accelerator.unwrap_model(model), out / "final")
    accelerator.wait_for_everyone()
    return TrainResult(steps=len(losses), loss_history=losses, lr_history=lrs,
                       examples=len(examples), trained_tokens=sum(counts))  # fmt: skip


def _labelled(batch: dict[str, Any]) -> int:
    """The tokens of ``batch`` that carry a label (those the loss is computed on)."""
    from ipr_train.masking import IGNORE

    labels = batch.get("labels")
    return 0 if labels is None else int((labels[:, 1:] != IGNORE).sum())


def _release_process_group() -> None:
    """Destroy the process group while the interpreter is still whole: left to interpreter
    teardown, gloo's worker threads can abort the process (SIGABRT, "terminate called without
    an active exception") after a run that finished; seen in CI, pytorch/pytorch#179291."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def _save_checkpoint(accelerator: Any, target: Path, progress: dict[str, Any]) -> None:
    accelerator.save_state(str(target))
    if accelerator.is_main_process:
        (target / "progress.json").write_text(json.dumps(progress))
        (target / "done").write_text("ok")
    accelerator.wait_for_everyone()
